//! [`ObjectCache`]: reads, writes, removals, sweeping and statistics over
//! the shared LMDB environment.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread;
use std::time::{Duration, SystemTime};

use lmdb::{Cursor, Database, Environment, RwTransaction, Transaction, WriteFlags};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::entry::{self, Header};
use crate::error::CacheError;
use crate::open;
use crate::readers::{self, ReaderTable};
use crate::stats::{CacheStats, Counters};

/// LMDB's default (compiled-in) key size limit.
const MAX_KEY_LEN: usize = 511;
/// How often `put` may trigger a sweep in one process.
const AUTO_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How many entries one automatic sweep looks at (it resumes where the
/// previous one stopped), so that it stays a few milliseconds long.
const AUTO_SWEEP_SCAN: usize = 10_000;
/// Entries examined per write transaction while sweeping: short
/// transactions let other writers in between.
const SWEEP_BATCH: usize = 2_000;
/// Deletions in the first sweeping transaction when the map is full (see
/// `sweep`).
const FULL_MAP_FIRST_BATCH: usize = 4;
/// Keys collected at a time while removing a prefix (bounds the memory a
/// `product:*` over millions of entries takes).
const REMOVE_BATCH: usize = 10_000;
/// A value larger than this fraction of the map is refused rather than
/// allowed to evict the whole cache.
const MAX_VALUE_FRACTION: u64 = 4;
/// The least time between two runs of the stale-reader hook, and between
/// two warnings about failed reads.
const CHECK_INTERVAL_MS: u64 = 1_000;
const WARN_INTERVAL_MS: u64 = 10_000;
/// How long puts fail at once after a full map nothing could relieve.
const FULL_BACKOFF_MS: u64 = 1_000;

/// A value read from the cache, with when it was stored and when it expires
/// (e.g. for a `Cache-Control: max-age`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cached<T> {
    pub value: T,
    pub stored_at: SystemTime,
    pub expires_at: SystemTime,
}

/// A handle on a cache directory's LMDB environment, shared by the threads
/// of a process (it is `Send + Sync`; clones share the same environment).
///
/// Opening the same directory twice in one process returns handles on the
/// one environment: LMDB forbids opening an environment twice per process
/// (closing the second would drop the first one's file locks).
#[derive(Clone)]
pub struct ObjectCache {
    shared: Arc<Shared>,
}

struct Shared {
    /// Only `None` while being dropped.
    lmdb: Option<Lmdb>,
    db: Database,
    dir: PathBuf,
    /// The process that opened the environment: a forked child must open
    /// its own.
    pid: u32,
    map_size: u64,
    counters: Counters,
    last_auto_sweep_ms: AtomicU64,
    auto_sweep_interval_ms: AtomicU64,
    /// Where the next automatic sweep starts (None: at the first key).
    sweep_resume: Mutex<Option<Vec<u8>>>,
    last_reader_check_ms: AtomicU64,
    last_warning_ms: AtomicU64,
    /// Until when puts that meet a full map fail at once (see `stay_full`).
    full_until_ms: AtomicU64,
}

/// What holds descriptors of the LMDB files.
struct Lmdb {
    // Field order matters: the environment must close before the reader
    // table's descriptor of lock.mdb does (see ReaderTable).
    env: Environment,
    readers: Option<ReaderTable>,
}

impl Shared {
    fn env(&self) -> &Environment {
        &self.lmdb.as_ref().expect("the environment is open until the cache is dropped").env
    }
}

impl Drop for Shared {
    /// Closes the environment, under the registry's lock: closing a
    /// descriptor of lock.mdb drops every lock this process holds on it, so
    /// no other environment on this directory may be opening meanwhile
    /// (`open` waits for the close to finish).
    fn drop(&mut self) {
        let mut open_caches = OPEN_CACHES.lock().unwrap_or_else(PoisonError::into_inner);
        let lmdb = self.lmdb.take();
        if self.pid == std::process::id() {
            drop(lmdb);
        } else {
            // Inherited across fork: closing it here would drop the locks
            // of this process's own environment on the same files.
            std::mem::forget(lmdb);
        }
        open_caches.retain(|open| !std::ptr::eq(open.shared.as_ptr(), self));
        CACHE_CLOSED.notify_all();
    }
}

/// The caches open in this process, by canonical directory.
static OPEN_CACHES: Mutex<Vec<OpenCache>> = Mutex::new(Vec::new());
/// Signalled when a cache has closed and left OPEN_CACHES.
static CACHE_CLOSED: Condvar = Condvar::new();

struct OpenCache {
    dir: PathBuf,
    pid: u32,
    shared: Weak<Shared>,
}

enum Lookup<T> {
    Hit(Cached<T>),
    Expired,
    Miss,
}

impl ObjectCache {
    /// Opens (creating it if needed) the cache environment in `dir`, with a
    /// map of `map_size` bytes (the most the cache holds) and `max_readers`
    /// reader slots (at least httpd's MaxRequestWorkers, plus a few for
    /// other threads). Every process must pass the same `map_size`.
    ///
    /// Call it in each child after fork, never before: an LMDB environment
    /// does not survive a fork.
    pub fn open(dir: &Path, map_size: u64, max_readers: u32) -> Result<ObjectCache, CacheError> {
        let dir = open::prepare_dir(dir)?;
        let pid = std::process::id();
        // Held across the open so two threads cannot both open `dir`.
        let mut open_caches = OPEN_CACHES.lock().unwrap_or_else(PoisonError::into_inner);
        // Entries copied from a parent process are not this process's.
        open_caches.retain(|open| open.pid == pid);
        while let Some(open) = open_caches.iter().find(|open| open.dir == dir) {
            match open.shared.upgrade() {
                Some(shared) => return Ok(ObjectCache { shared }),
                // Its last handle is being dropped: wait until it is closed.
                None => open_caches = CACHE_CLOSED.wait(open_caches).unwrap_or_else(PoisonError::into_inner),
            }
        }

        let opened = open::open_environment(&dir, map_size, max_readers)?;
        let map_size = opened.env.info().map(|info| info.map_size() as u64).unwrap_or(map_size);
        let now = entry::now_ms();
        let shared = Arc::new(Shared {
            lmdb: Some(Lmdb { env: opened.env, readers: opened.readers }),
            db: opened.db,
            dir: opened.dir,
            pid,
            map_size,
            counters: Counters::default(),
            last_auto_sweep_ms: AtomicU64::new(now),
            auto_sweep_interval_ms: AtomicU64::new(entry::duration_ms(AUTO_SWEEP_INTERVAL)),
            sweep_resume: Mutex::new(None),
            last_reader_check_ms: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(0),
            full_until_ms: AtomicU64::new(0),
        });
        open_caches.push(OpenCache { dir, pid, shared: Arc::downgrade(&shared) });
        drop(open_caches);

        let cache = ObjectCache { shared };
        cache.check_readers_at_open();
        Ok(cache)
    }

    /// The cache directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Reads `key` as a `T` stored with `format`. Anything unusable — no
    /// entry, an expired one, another format version, bytes that do not
    /// decode as a `T`, an LMDB error — is `None`. Never blocks on writers.
    pub fn get<T: DeserializeOwned>(&self, key: &str, format: u16) -> Option<Cached<T>> {
        let counters = &self.shared.counters;
        let lookup = if valid_key(key) { self.lookup(key, format) } else { Lookup::Miss };
        match lookup {
            Lookup::Hit(hit) => {
                Counters::bump(&counters.hits);
                Some(hit)
            }
            Lookup::Expired => {
                Counters::bump(&counters.expired);
                None
            }
            Lookup::Miss => {
                Counters::bump(&counters.misses);
                None
            }
        }
    }

    fn lookup<T: DeserializeOwned>(&self, key: &str, format: u16) -> Lookup<T> {
        let shared = &self.shared;
        let txn = match shared.env().begin_ro_txn() {
            Ok(txn) => txn,
            Err(e) => {
                self.read_failed(e);
                return Lookup::Miss;
            }
        };
        let bytes = match txn.get(shared.db, &key) {
            Ok(bytes) => bytes,
            Err(lmdb::Error::NotFound) => return Lookup::Miss,
            Err(e) => {
                self.read_failed(e);
                return Lookup::Miss;
            }
        };
        let Some((header, body)) = Header::parse(bytes) else {
            return Lookup::Miss;
        };
        if header.format != format {
            return Lookup::Miss;
        }
        if header.is_expired_at(entry::now_ms()) {
            return Lookup::Expired;
        }
        match entry::decode_value(body) {
            Some(value) => Lookup::Hit(Cached {
                value,
                stored_at: entry::system_time(header.stored_at_ms),
                expires_at: entry::system_time(header.expires_at_ms),
            }),
            None => Lookup::Miss,
        }
    }

    /// Stores `value` under `key` for `ttl`, tagged with `format`.
    ///
    /// When the map is full, expired entries are swept and the write is
    /// tried again; if the map is still full the whole cache is emptied
    /// (and a warning logged) before the last try. When reader slots of
    /// dead processes pin the map, neither can make room: the put fails
    /// with [`CacheError::Full`] at once, as does every put that meets a
    /// full map in the second after such a failure.
    pub fn put<T: Serialize>(&self, key: &str, format: u16, value: &T, ttl: Duration) -> Result<(), CacheError> {
        if !valid_key(key) {
            return Err(CacheError::InvalidKey);
        }
        let now = entry::now_ms();
        let bytes = entry::encode(format, value, now, now.saturating_add(entry::duration_ms(ttl)))?;
        if bytes.len() as u64 > self.shared.map_size / MAX_VALUE_FRACTION {
            return Err(CacheError::TooLarge { bytes: bytes.len() });
        }
        self.store(key.as_bytes(), &bytes)?;
        Counters::bump(&self.shared.counters.puts);
        self.maybe_sweep();
        Ok(())
    }

    fn store(&self, key: &[u8], bytes: &[u8]) -> Result<(), CacheError> {
        let shared = &self.shared;
        let write = || self.write(|txn| txn.put(shared.db, &key, &bytes, WriteFlags::empty()));
        match write() {
            Err(lmdb::Error::MapFull) => {}
            other => return other.map_err(|e| self.failed(e)),
        }
        // The map is full. After a full map that nothing could relieve,
        // writes fail fast for a while instead of repeating the effort.
        if entry::now_ms() < shared.full_until_ms.load(Ordering::Relaxed) {
            return Err(CacheError::Full);
        }
        // A reader slot left by a killed process pins every page freed
        // since its snapshot: then neither sweeping nor emptying makes room.
        self.check_stale_readers();
        if let Some(stale) = self.reader_counts().map(|counts| counts.stale).filter(|stale| *stale > 0) {
            return Err(self.stay_full(&format!(
                "{stale} reader slots of dead processes pin the pages it would reuse \
                 (install esf_cache::set_stale_reader_check to clear them)"
            )));
        }

        // Make room from what is dead anyway.
        let swept = self.sweep(usize::MAX, usize::MAX, None, FULL_MAP_FIRST_BATCH).map(|(swept, _)| swept).unwrap_or(0);
        match write() {
            Err(lmdb::Error::MapFull) => {}
            other => return other.map_err(|e| self.failed(e)),
        }
        log::warn!(
            "object cache in {}: the map ({} bytes) is full even after sweeping {swept} expired entries; emptying the cache",
            shared.dir.display(),
            shared.map_size,
        );
        self.clear_all()?;
        // Pages the clear freed are reused once the readers that began
        // before it are done: give them a few milliseconds.
        for pause_ms in [0, 1, 2, 4, 8, 16] {
            thread::sleep(Duration::from_millis(pause_ms));
            match write() {
                Err(lmdb::Error::MapFull) => {}
                other => return other.map_err(|e| self.failed(e)),
            }
        }
        Err(self.stay_full("it is still full after emptying it"))
    }

    /// Logs why the map cannot take writes and makes puts fail fast for a
    /// second.
    fn stay_full(&self, why: &str) -> CacheError {
        let shared = &self.shared;
        shared.full_until_ms.store(entry::now_ms() + FULL_BACKOFF_MS, Ordering::Relaxed);
        Counters::bump(&shared.counters.errors);
        log::error!("object cache in {}: the map is full and {why}; writes fail for a second", shared.dir.display());
        CacheError::Full
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&self, key: &str) -> Result<bool, CacheError> {
        if !valid_key(key) {
            return Ok(false);
        }
        let removed = self.remove_with_fallback(|txn, db| delete_key(txn, db, key.as_bytes()))?;
        Ok(removed > 0)
    }

    /// Removes every key starting with `prefix` (all of them for an empty
    /// prefix), in one transaction; how many.
    pub fn remove_prefix(&self, prefix: &str) -> Result<usize, CacheError> {
        self.remove_with_fallback(|txn, db| delete_prefix(txn, db, prefix.as_bytes()))
    }

    /// Applies a change notification's payload (docs/DATA.md): space
    /// separated tokens, each an exact key, a prefix ending in `*`, or `*`
    /// alone for everything; all in one write transaction. Returns how many
    /// entries were removed.
    pub fn apply_invalidation(&self, payload: &str) -> Result<usize, CacheError> {
        if payload.split_ascii_whitespace().next().is_none() {
            return Ok(0);
        }
        self.remove_with_fallback(|txn, db| {
            let mut removed = 0;
            for token in payload.split_ascii_whitespace() {
                removed += match token.strip_suffix('*') {
                    Some(prefix) => delete_prefix(txn, db, prefix.as_bytes())?,
                    None => delete_key(txn, db, token.as_bytes())?,
                };
            }
            Ok(removed)
        })
    }

    /// Runs a removal in one write transaction. A removal must not fail
    /// for lack of room (the cache would go on serving what was meant to be
    /// dropped), and deleting takes new pages in a copy-on-write tree: if
    /// the map is too full for it, everything is dropped instead.
    fn remove_with_fallback(&self, removal: impl Fn(&mut RwTransaction<'_>, Database) -> lmdb::Result<usize>) -> Result<usize, CacheError> {
        let db = self.shared.db;
        let removed = match self.write(|txn| removal(txn, db)) {
            Err(lmdb::Error::MapFull) => {
                log::warn!(
                    "object cache in {}: the map is too full to remove entries one by one; emptying the cache",
                    self.shared.dir.display()
                );
                return self.clear_all();
            }
            other => other.map_err(|e| self.failed(e))?,
        };
        Counters::add(&self.shared.counters.removals, removed);
        Ok(removed)
    }

    /// Empties the cache; how many entries it held.
    fn clear_all(&self) -> Result<usize, CacheError> {
        let db = self.shared.db;
        let cleared = self
            .write(|txn| {
                let entries = txn.stat(db)?.entries();
                txn.clear_db(db)?;
                Ok(entries)
            })
            .map_err(|e| self.failed(e))?;
        Counters::bump(&self.shared.counters.full_resets);
        Counters::add(&self.shared.counters.removals, cleared);
        Ok(cleared)
    }

    /// Removes up to `max_entries` expired entries (and entries that could
    /// never be read: foreign bytes), scanning from the first key. Returns
    /// how many it removed.
    pub fn sweep_expired(&self, max_entries: usize) -> Result<usize, CacheError> {
        if max_entries == 0 {
            return Ok(0);
        }
        let (swept, _) = self.sweep(max_entries, usize::MAX, None, SWEEP_BATCH).map_err(|e| self.failed(e))?;
        Ok(swept)
    }

    /// How often `put` may trigger a sweep of this process (60 s unless
    /// changed). Each such sweep looks at 10,000 entries, resuming where the
    /// previous one stopped.
    pub fn set_auto_sweep_interval(&self, interval: Duration) {
        self.shared.auto_sweep_interval_ms.store(entry::duration_ms(interval), Ordering::Relaxed);
    }

    /// The cheap sweep `put` runs at most once per interval per process.
    fn maybe_sweep(&self) {
        let shared = &self.shared;
        let now = entry::now_ms();
        let last = shared.last_auto_sweep_ms.load(Ordering::Relaxed);
        if now < last.saturating_add(shared.auto_sweep_interval_ms.load(Ordering::Relaxed)) {
            return;
        }
        // One thread wins the interval; the others go on at once.
        if shared.last_auto_sweep_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let Ok(mut resume) = shared.sweep_resume.try_lock() else {
            return;
        };
        match self.sweep(AUTO_SWEEP_SCAN, AUTO_SWEEP_SCAN, resume.take(), SWEEP_BATCH) {
            Ok((_, next)) => *resume = next,
            Err(e) => {
                Counters::bump(&shared.counters.errors);
                log::warn!("object cache in {}: sweeping expired entries failed: {e}", shared.dir.display());
            }
        }
    }

    /// Removes up to `max_remove` dead entries among at most `max_scan`,
    /// starting at `start` (a key; None: the first), in short write
    /// transactions. Returns how many it removed and where to resume (None:
    /// it reached the last key).
    ///
    /// Deleting from a copy-on-write tree takes free pages, which a full map
    /// lacks: a transaction that runs out deletes half as much on its next
    /// try, and each one that commits frees room for a bigger next one. A
    /// full map therefore starts with `first_batch` small.
    fn sweep(
        &self,
        max_remove: usize,
        max_scan: usize,
        mut start: Option<Vec<u8>>,
        first_batch: usize,
    ) -> lmdb::Result<(usize, Option<Vec<u8>>)> {
        let db = self.shared.db;
        let (mut removed, mut scanned) = (0, 0);
        let mut batch_limit = first_batch.clamp(1, SWEEP_BATCH);
        while removed < max_remove && scanned < max_scan {
            let now = entry::now_ms();
            let scan_limit = SWEEP_BATCH.min(max_scan - scanned);
            let remove_limit = batch_limit.min(max_remove - removed);
            let batch = match self.write(|txn| sweep_batch(txn, db, start.as_deref(), scan_limit, remove_limit, now)) {
                Ok(batch) => batch,
                Err(lmdb::Error::MapFull) if batch_limit > 1 => {
                    batch_limit /= 2;
                    continue;
                }
                Err(e) => return Err(e),
            };
            removed += batch.removed;
            scanned += batch.scanned;
            Counters::add(&self.shared.counters.swept, batch.removed);
            batch_limit = (batch_limit * 2).min(SWEEP_BATCH);
            start = batch.next;
            if start.is_none() {
                break;
            }
        }
        Ok((removed, start))
    }

    /// This process's counters only (hits, misses, ...), the rest left at
    /// zero: a few atomic loads, cheap enough to call after every request,
    /// where [`stats`](Self::stats) reads the environment and its reader table.
    pub fn counters(&self) -> CacheStats {
        self.shared.counters.report()
    }

    /// This process's counters and the environment's figures.
    pub fn stats(&self) -> CacheStats {
        let shared = &self.shared;
        let mut stats = shared.counters.report();
        let mut slots_used = 0;
        if let Ok(info) = shared.env().info() {
            stats.map_size = info.map_size() as u64;
            stats.max_readers = info.max_readers();
            slots_used = info.num_readers();
            if let Ok(stat) = shared.env().stat() {
                stats.entries = stat.entries() as u64;
                let free_pages = shared.env().freelist().unwrap_or(0);
                let pages_in_use = (info.last_pgno() + 1).saturating_sub(free_pages);
                stats.bytes_used = pages_in_use as u64 * u64::from(stat.page_size());
            }
        }
        match self.reader_counts() {
            Some(counts) => {
                stats.readers_in_use = counts.in_use;
                stats.stale_readers = counts.stale;
            }
            // Unknown layout: LMDB's high-water mark of slots ever used.
            None => stats.readers_in_use = slots_used,
        }
        stats
    }

    /// Clears reader slots left by dead processes through the hook
    /// installed with [`set_stale_reader_check`](crate::set_stale_reader_check):
    /// `Ok(None)` when there is none, else how many slots it cleared.
    pub fn clear_stale_readers(&self) -> Result<Option<usize>, CacheError> {
        match readers::run_stale_reader_check(self.shared.env()) {
            None => Ok(None),
            Some(Ok(cleared)) => Ok(Some(cleared)),
            Some(Err(e)) => Err(self.failed(e)),
        }
    }

    fn reader_counts(&self) -> Option<readers::ReaderCounts> {
        let shared = &self.shared;
        let info = shared.env().info().ok()?;
        shared.lmdb.as_ref()?.readers.as_ref()?.scan(info.max_readers(), info.num_readers())
    }

    fn check_readers_at_open(&self) {
        let dir = self.shared.dir.display();
        match self.clear_stale_readers() {
            Ok(Some(cleared)) if cleared > 0 => log::info!("object cache in {dir}: cleared {cleared} reader slots of dead processes"),
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Some(counts) = self.reader_counts().filter(|counts| counts.stale > 0) {
                    log::warn!(
                        "object cache in {dir}: {} reader slots belong to dead processes and no stale-reader check is installed; \
                         they pin old pages until a writer dies holding the lock or every process closes the cache",
                        counts.stale
                    );
                }
            }
            Err(e) => log::warn!("object cache in {dir}: checking for stale readers failed: {e}"),
        }
    }

    /// Runs the stale-reader hook, at most once a second per process.
    fn check_stale_readers(&self) {
        let shared = &self.shared;
        let now = entry::now_ms();
        let last = shared.last_reader_check_ms.load(Ordering::Relaxed);
        if now < last.saturating_add(CHECK_INTERVAL_MS)
            || shared.last_reader_check_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        if let Err(e) = self.clear_stale_readers() {
            log::warn!("object cache in {}: checking for stale readers failed: {e}", shared.dir.display());
        }
    }

    fn write<R>(&self, op: impl FnOnce(&mut RwTransaction<'_>) -> lmdb::Result<R>) -> lmdb::Result<R> {
        debug_assert_eq!(self.shared.pid, std::process::id(), "an ObjectCache was used across fork");
        let mut txn = self.shared.env().begin_rw_txn()?;
        let result = op(&mut txn)?;
        txn.commit()?;
        Ok(result)
    }

    /// Counts a failed write and turns it into the caller's error.
    fn failed(&self, e: lmdb::Error) -> CacheError {
        Counters::bump(&self.shared.counters.errors);
        CacheError::Lmdb(e)
    }

    /// A failed read is a miss; it is counted, logged now and then, and if
    /// the reader slots ran out the stale ones are looked for.
    fn read_failed(&self, e: lmdb::Error) {
        let shared = &self.shared;
        Counters::bump(&shared.counters.errors);
        if e == lmdb::Error::ReadersFull {
            self.check_stale_readers();
        }
        let now = entry::now_ms();
        let last = shared.last_warning_ms.load(Ordering::Relaxed);
        if now >= last.saturating_add(WARN_INTERVAL_MS)
            && shared.last_warning_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            log::warn!("object cache in {}: read failed (served as a miss): {e}", shared.dir.display());
        }
    }
}

impl fmt::Debug for ObjectCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectCache").field("dir", &self.shared.dir).finish_non_exhaustive()
    }
}

fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
}

/// Deletes one key; 1 if it was there. A key LMDB could not hold cannot be
/// there.
fn delete_key(txn: &mut RwTransaction<'_>, db: Database, key: &[u8]) -> lmdb::Result<usize> {
    if !(1..=MAX_KEY_LEN).contains(&key.len()) {
        return Ok(0);
    }
    match txn.del(db, &key, None) {
        Ok(()) => Ok(1),
        Err(lmdb::Error::NotFound) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Deletes every key starting with `prefix` (everything for ""), walking a
/// cursor from the first key ≥ `prefix`.
fn delete_prefix(txn: &mut RwTransaction<'_>, db: Database, prefix: &[u8]) -> lmdb::Result<usize> {
    if prefix.is_empty() {
        let entries = txn.stat(db)?.entries();
        txn.clear_db(db)?;
        return Ok(entries);
    }
    if prefix.len() > MAX_KEY_LEN {
        return Ok(0);
    }
    let mut removed = 0;
    loop {
        let mut keys = Vec::new();
        {
            let mut cursor = txn.open_ro_cursor(db)?;
            for item in cursor.iter_from(prefix) {
                let (key, _) = item?;
                if !key.starts_with(prefix) || keys.len() == REMOVE_BATCH {
                    break;
                }
                keys.push(key.to_vec());
            }
        }
        for key in &keys {
            txn.del(db, key, None)?;
        }
        removed += keys.len();
        if keys.len() < REMOVE_BATCH {
            return Ok(removed);
        }
    }
}

struct SweepBatch {
    scanned: usize,
    removed: usize,
    /// The first key not examined (None: the end was reached).
    next: Option<Vec<u8>>,
}

/// One sweeping transaction: examines up to `scan_limit` entries from
/// `start` and deletes the dead ones, at most `remove_limit`.
fn sweep_batch(
    txn: &mut RwTransaction<'_>,
    db: Database,
    start: Option<&[u8]>,
    scan_limit: usize,
    remove_limit: usize,
    now_ms: u64,
) -> lmdb::Result<SweepBatch> {
    let mut dead = Vec::new();
    let mut scanned = 0;
    let mut next = None;
    {
        let mut cursor = txn.open_ro_cursor(db)?;
        let entries = match start {
            Some(key) => cursor.iter_from(key),
            None => cursor.iter_start(),
        };
        for item in entries {
            let (key, bytes) = item?;
            if scanned == scan_limit || dead.len() == remove_limit {
                next = Some(key.to_vec());
                break;
            }
            scanned += 1;
            if entry::is_dead(bytes, now_ms) {
                dead.push(key.to_vec());
            }
        }
    }
    for key in &dead {
        txn.del(db, key, None)?;
    }
    Ok(SweepBatch { scanned, removed: dead.len(), next })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(300);

    /// Writes raw bytes under `key`, as some other program might have.
    fn put_raw(cache: &ObjectCache, key: &str, bytes: &[u8]) {
        cache.write(|txn| txn.put(cache.shared.db, &key, &bytes, WriteFlags::empty())).unwrap();
    }

    #[test]
    fn foreign_bytes_are_misses_and_get_swept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ObjectCache::open(dir.path(), 1 << 24, 16).unwrap();
        put_raw(&cache, "product:1", b"");
        put_raw(&cache, "product:2", b"\x01\x00");
        put_raw(&cache, "product:3", &[0xff; 64]);
        let mut wrong_layout = entry::encode(1, &5u32, 0, u64::MAX).unwrap();
        wrong_layout[0] = 2;
        put_raw(&cache, "product:4", &wrong_layout);
        cache.put("product:5", 1, &5u32, LONG).unwrap();

        for n in 1..=4 {
            assert!(cache.get::<u32>(&format!("product:{n}"), 1).is_none());
        }
        assert_eq!(cache.get::<u32>("product:5", 1).map(|hit| hit.value), Some(5));
        assert_eq!(cache.stats().misses, 4);
        assert_eq!(cache.sweep_expired(100).unwrap(), 4);
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn a_panicking_deserialize_is_a_miss() {
        #[derive(Debug)]
        struct Fragile;
        impl<'de> serde::Deserialize<'de> for Fragile {
            fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
                panic!("a Deserialize impl that panics");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = ObjectCache::open(dir.path(), 1 << 24, 16).unwrap();
        cache.put("product:1", 1, &1u8, LONG).unwrap();
        assert!(cache.get::<Fragile>("product:1", 1).is_none());
        assert_eq!(cache.stats().misses, 1);
    }
}
