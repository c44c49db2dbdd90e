//! A model part: one row's worth of data stored as one cache entry with its
//! own TTL, loaded from the object cache, else from PostgreSQL (and then
//! stored in the cache). A model can be split into parts that change at
//! different rates: a product's description (300 s) and its stock (30 s).
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::{DbError, Handle};
use crate::layer::DataLayer;

/// One cacheable part of a model.
pub trait Part: Serialize + DeserializeOwned {
    /// The cache key's prefix: the key is `{KIND}:{id}` (docs/DATA.md).
    const KIND: &'static str;
    /// Bumped whenever the serialized shape changes, so a new build never
    /// misreads an old entry after a graceful deploy.
    const FORMAT: u16;
    const TTL: Duration;
    type Id: std::fmt::Display + ?Sized;

    /// The cache key: `{KIND}:{id}` unless the part is a singleton.
    fn cache_key(id: &Self::Id) -> String {
        format!("{}:{}", Self::KIND, id)
    }

    /// Reads the part from the database; `None` when there is no such row.
    fn fetch(db: &mut Handle<'_>, id: &Self::Id) -> Result<Option<Self>, DbError>;

    /// When the row last changed (unix seconds), for `Last-Modified`.
    fn modified(&self) -> i64;
}

/// A part and how long it may be served as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Fresh<T> {
    pub value: T,
    /// The end of its TTL: from the cache entry, or now + TTL when it was
    /// just read from the database.
    pub expires_at: SystemTime,
}

/// The freshness of a page built from several parts: the shortest TTL and
/// the newest change among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub expires_at: SystemTime,
    pub modified: i64,
}

impl Freshness {
    pub fn of<T: Part>(part: &Fresh<T>) -> Freshness {
        Freshness { expires_at: part.expires_at, modified: part.value.modified() }
    }

    /// Both constraints: expires at the earlier, modified at the later.
    pub fn and(self, other: Freshness) -> Freshness {
        Freshness { expires_at: self.expires_at.min(other.expires_at), modified: self.modified.max(other.modified) }
    }

    /// Seconds left to `expires_at`, from `now` (0 once expired).
    pub fn max_age(&self, now: SystemTime) -> u64 {
        self.expires_at.duration_since(now).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// Cache, then database (then the cache is filled). A cache that fails to
/// store is logged, not fatal: the page is served from the database value.
pub fn load<P: Part>(data: &DataLayer, id: &P::Id) -> Result<Option<Fresh<P>>, DbError> {
    let key = P::cache_key(id);
    if let Some(cache) = data.cache() {
        if let Some(hit) = cache.get::<P>(&key, P::FORMAT) {
            return Ok(Some(Fresh { value: hit.value, expires_at: hit.expires_at }));
        }
    }
    let Some(value) = P::fetch(&mut data.db()?.handle()?, id)? else {
        return Ok(None);
    };
    store_at(data, &key, &value);
    Ok(Some(Fresh { value, expires_at: SystemTime::now() + P::TTL }))
}

/// Writes `value` to the cache (write-through after a save).
pub(crate) fn store<P: Part>(data: &DataLayer, id: &P::Id, value: &P) {
    store_at(data, &P::cache_key(id), value)
}

fn store_at<P: Part>(data: &DataLayer, key: &str, value: &P) {
    if let Some(cache) = data.cache() {
        if let Err(e) = cache.put(key, P::FORMAT, value, P::TTL) {
            log::warn!("object cache: could not store {key}: {e}");
        }
    }
}

/// Drops a part from the cache (after a write the cache cannot rebuild).
pub(crate) fn forget<P: Part>(data: &DataLayer, id: &P::Id) {
    if let Some(cache) = data.cache() {
        let key = P::cache_key(id);
        if let Err(e) = cache.remove(&key) {
            log::warn!("object cache: could not remove {key}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_takes_the_shortest_ttl_and_newest_change() {
        let now = SystemTime::now();
        let a = Freshness { expires_at: now + Duration::from_secs(300), modified: 100 };
        let b = Freshness { expires_at: now + Duration::from_secs(30), modified: 50 };
        let both = a.and(b);
        assert_eq!(both.expires_at, b.expires_at);
        assert_eq!(both.modified, 100);
        assert!((29..=30).contains(&both.max_age(now)));
        assert_eq!(both.max_age(now + Duration::from_secs(31)), 0);
    }
}
