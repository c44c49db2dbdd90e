//! What a cache reports about itself: this process's counters and the shared
//! environment's figures.
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// A snapshot of [`ObjectCache::stats`](crate::ObjectCache::stats).
///
/// The counters (`hits` … `errors`) count this process's calls since it
/// opened the cache; the rest describes the environment all processes
/// share.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheStats {
    /// Reads that returned a value.
    pub hits: u64,
    /// Reads that found nothing usable: no entry, another format version,
    /// bytes that do not decode, or a read error.
    pub misses: u64,
    /// Reads that found an entry past its expiry.
    pub expired: u64,
    /// Values stored.
    pub puts: u64,
    /// Entries removed by `remove`, `remove_prefix` and `apply_invalidation`.
    pub removals: u64,
    /// Expired (or unreadable) entries removed by sweeping.
    pub swept: u64,
    /// Times the whole cache was emptied because the map stayed full.
    pub full_resets: u64,
    /// LMDB errors met on any path (reads included, which still miss).
    pub errors: u64,

    /// Entries in the cache, expired ones included until swept.
    pub entries: u64,
    /// Pages in use × page size.
    pub bytes_used: u64,
    /// The size of the memory map: the most the cache can hold.
    pub map_size: u64,
    /// Reader slots taken right now, in every process (each is an open read
    /// transaction; stale ones included).
    pub readers_in_use: u32,
    /// Reader slots held by processes that no longer exist (see
    /// [`readers`](crate::readers)).
    pub stale_readers: u32,
    /// The size of the reader table.
    pub max_readers: u32,
}

/// This process's counters for one environment. Relaxed: they are figures
/// for reports, not synchronisation.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub expired: AtomicU64,
    pub puts: AtomicU64,
    pub removals: AtomicU64,
    pub swept: AtomicU64,
    pub full_resets: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Fills the counter half of a report.
    pub fn report(&self) -> CacheStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&self.hits),
            misses: read(&self.misses),
            expired: read(&self.expired),
            puts: read(&self.puts),
            removals: read(&self.removals),
            swept: read(&self.swept),
            full_resets: read(&self.full_resets),
            errors: read(&self.errors),
            ..CacheStats::default()
        }
    }
}
