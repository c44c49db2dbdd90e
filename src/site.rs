//! The module's record for one server (main or `<VirtualHost>`): its
//! settings and what is made from them: the session keys, the throttle's
//! shared counters and, in a child, the data layer.
//!
//! The data layer (database pool, LMDB cache, coherence listener, search
//! daemon connections) is opened in the child, never in the parent
//! (connections and LMDB environments must not cross a fork): at child
//! start for every server, or on first use. Servers with the same settings
//! share one.
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use esf_core::config::ServerConfig;
use esf_core::sealed::Sealer;
use esf_core::session::SessionKeys;
use esf_core::status::Gauges;
use esf_data::coherence::Listener;
use esf_data::page_cache::PagePurger;
use esf_data::{DataLayer, DataSettings};
use parking_lot::Mutex;

/// Threads and workers of the running MPM (from `ap_mpm_query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpmLimits {
    pub threads_per_child: usize,
    /// MaxRequestWorkers across all children.
    pub max_workers: usize,
}

/// Throttle counters in memory shared by all children (see
/// `esf_core::throttle`): 64 Ki slots, 512 KiB.
pub const THROTTLE_SLOTS: usize = 1 << 16;

pub struct Server {
    pub config: ServerConfig,
    data: OnceLock<Option<Arc<DataLayer>>>,
    page_purger: OnceLock<Option<Listener>>,
    keys: OnceLock<Option<(SessionKeys, Sealer)>>,
    throttle_slots: OnceLock<&'static [AtomicU64]>,
}

/// The page purgers' election lock, in the page cache's root (htcacheclean
/// leaves files it does not know alone).
const PURGE_LOCK: &str = ".esf-page-purge.lock";

/// Data layers opened in this child, by settings, so vhosts share them.
static OPENED: Mutex<Vec<(DataSettings, Option<Arc<DataLayer>>)>> = Mutex::new(Vec::new());

impl Server {
    pub fn new(config: ServerConfig) -> Server {
        Server { config, data: OnceLock::new(), page_purger: OnceLock::new(), keys: OnceLock::new(), throttle_slots: OnceLock::new() }
    }

    /// With `EsfPurgePages` and `EsfDatabase` (the front proxy), starts
    /// this child's contender for removing changed pages from the page
    /// cache; one child per proxy leads (a lock file in the cache root).
    pub fn start_page_purger(&self) {
        self.page_purger.get_or_init(|| {
            let (Some(purge), Some(conninfo)) = (&self.config.purge_pages, &self.config.database) else {
                return None;
            };
            let purger = Arc::new(PagePurger::new(purge.cache_root.clone(), purge.store_url.clone()));
            match Listener::spawn(conninfo.clone(), purger, purge.cache_root.join(PURGE_LOCK)) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    log::error!("cannot start the page purger: {e}");
                    None
                }
            }
        });
    }

    /// This server's data layer in this child (`None` when it has neither
    /// a database nor a cache, or could not open its cache: logged once).
    pub fn data(&self, limits: impl FnOnce() -> MpmLimits) -> Option<&DataLayer> {
        self.data.get_or_init(|| open(settings(&self.config, limits()))).as_deref()
    }

    /// The session keys and token sealer, with `EsfSessionSecret`.
    pub fn keys(&self) -> Option<&(SessionKeys, Sealer)> {
        self.keys
            .get_or_init(|| {
                self.config.session_secret.clone().map(|secret| {
                    let keys = SessionKeys::new(secret);
                    let sealer = Sealer::new(&keys);
                    (keys, sealer)
                })
            })
            .as_ref()
    }

    /// Gives the server the generation's shared throttle counters.
    pub fn set_throttle_slots(&self, slots: &'static [AtomicU64]) {
        let _ = self.throttle_slots.set(slots);
    }

    pub fn throttle_slots(&self) -> Option<&'static [AtomicU64]> {
        self.throttle_slots.get().copied()
    }
}

fn settings(config: &ServerConfig, limits: MpmLimits) -> DataSettings {
    DataSettings {
        database: config.database.clone(),
        pool_size: config.database_pool.unwrap_or(limits.threads_per_child.max(1)),
        cache_dir: config.cache_dir.clone(),
        cache_size: config.cache_size(),
        // Every worker may read at once, plus the coherence listener and
        // room for children of an old generation finishing after a graceful.
        cache_readers: u32::try_from(limits.max_workers * 2 + 16).unwrap_or(u32::MAX),
        search: config.search.clone(),
    }
}

/// What this child's data layers hold and have counted, over all of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChildDataFigures {
    pub gauges: Gauges,
    /// Cache lookups since the child opened its caches.
    pub cache_hits: u64,
    pub cache_misses: u64,
}

/// This child's figures for the status page (cheap: atomics and one lock
/// per data layer).
pub fn child_data_figures() -> ChildDataFigures {
    let mut figures = ChildDataFigures::default();
    for layer in OPENED.lock().iter().filter_map(|(_, layer)| layer.as_ref()) {
        if let Some(db) = layer.db_stats() {
            figures.gauges.db_open += db.open as u64;
            figures.gauges.db_in_use += db.in_use as u64;
        }
        if let Some(cache) = layer.cache_counters() {
            figures.cache_hits += cache.hits;
            figures.cache_misses += cache.misses;
        }
        if let Some(search) = layer.search_stats() {
            // Between requests every connection a child keeps is idle.
            figures.gauges.search_connections += search.idle as u64;
        }
    }
    figures
}

fn open(settings: DataSettings) -> Option<Arc<DataLayer>> {
    if settings.database.is_none() && settings.cache_dir.is_none() {
        return None;
    }
    let mut opened = OPENED.lock();
    if let Some((_, layer)) = opened.iter().find(|(s, _)| *s == settings) {
        return layer.clone();
    }
    let layer = match DataLayer::open(&settings) {
        Ok(layer) => Some(Arc::new(layer)),
        Err(e) => {
            log::error!("{e}; pages that need data answer 503 in this child");
            None
        }
    };
    opened.push((settings, layer.clone()));
    layer
}
