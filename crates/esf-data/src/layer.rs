//! What a child holds of the data layer: its database pool, its view of
//! the server's object cache and its connections to the search daemon.
//! Made in the child (after fork), once per distinct configuration, and
//! shared by the child's threads.
use std::path::PathBuf;
use std::sync::Arc;

use esf_cache::{CacheStats, ObjectCache};
use esf_search::{Address, Client, ClientStats};

use crate::coherence::Listener;
use crate::db::{Database, DbError, DbStats};

/// How a child's data layer is configured (from `EsfDatabase`,
/// `EsfDatabasePool`, `EsfCacheDir`, `EsfCacheSize`, `EsfSearch`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataSettings {
    pub database: Option<String>,
    pub pool_size: usize,
    pub cache_dir: Option<PathBuf>,
    pub cache_size: u64,
    /// Reader slots: at least the server's MaxRequestWorkers.
    pub cache_readers: u32,
    /// The search daemon; `None`: search runs in PostgreSQL.
    pub search: Option<Address>,
}

pub struct DataLayer {
    db: Option<Database>,
    cache: Option<Arc<ObjectCache>>,
    /// Connections to the search daemon, kept up to one per database
    /// connection (a child never runs more searches at once than that).
    search: Option<Client>,
    /// Keeps the cache coherent with the database (stops on drop).
    _listener: Option<Listener>,
}

/// The file whose lock elects the one listener of an app server.
pub const LISTENER_LOCK: &str = "coherence.lock";

impl std::fmt::Debug for DataLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLayer").field("db", &self.db).field("cache", &self.cache.is_some()).field("search", &self.search).finish()
    }
}

impl DataLayer {
    /// Opens the cache now (so a bad cache directory shows at child start),
    /// makes the pool, which connects on first use, and, with both a
    /// database and a cache, starts this child's coherence listener.
    pub fn open(settings: &DataSettings) -> Result<DataLayer, String> {
        let cache = match &settings.cache_dir {
            Some(dir) => Some(Arc::new(
                ObjectCache::open(dir, settings.cache_size, settings.cache_readers)
                    .map_err(|e| format!("cannot open the object cache in {}: {e}", dir.display()))?,
            )),
            None => None,
        };
        let db = settings.database.as_deref().map(|conninfo| Database::new(conninfo, settings.pool_size));
        let listener = match (&settings.database, &cache, &settings.cache_dir) {
            (Some(conninfo), Some(cache), Some(dir)) => Some(
                Listener::spawn(conninfo.clone(), cache.clone(), dir.join(LISTENER_LOCK))
                    .map_err(|e| format!("cannot start the cache coherence listener: {e}"))?,
            ),
            _ => None,
        };
        let search = settings.search.clone().map(|address| Client::new(address, settings.pool_size, esf_search::client::DEFAULT_TIMEOUT));
        Ok(DataLayer { db, cache, search, _listener: listener })
    }

    /// The database, or Unavailable when `EsfDatabase` is not set.
    pub fn db(&self) -> Result<&Database, DbError> {
        self.db.as_ref().ok_or_else(|| DbError::Unavailable("no EsfDatabase is configured".into()))
    }

    pub fn cache(&self) -> Option<&ObjectCache> {
        self.cache.as_deref()
    }

    /// The search daemon's client, with `EsfSearch`.
    pub fn search_daemon(&self) -> Option<&Client> {
        self.search.as_ref()
    }

    pub fn search_stats(&self) -> Option<ClientStats> {
        self.search.as_ref().map(Client::stats)
    }

    pub fn db_stats(&self) -> Option<DbStats> {
        self.db.as_ref().map(Database::stats)
    }

    /// The cache's counters in this process, without the environment's
    /// figures (see `ObjectCache::counters`): for per-request publishing.
    pub fn cache_counters(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|c| c.counters())
    }

    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }
}
