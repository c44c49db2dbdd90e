//! The cache's behaviour in one process, on real LMDB files in temporary
//! directories: round trips, expiry, format versions, removals and
//! invalidation payloads, counters, a full map, and concurrent threads.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use esf_cache::{CacheError, ObjectCache};
use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;
const LONG: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Product {
    id: u32,
    name: String,
    price_cents: i64,
}

fn product(id: u32) -> Product {
    Product { id, name: format!("Toy {id}"), price_cents: 999 + i64::from(id) }
}

fn open(dir: &tempfile::TempDir) -> ObjectCache {
    ObjectCache::open(dir.path(), 16 * MIB, 32).expect("open the cache")
}

fn keys_present(cache: &ObjectCache, keys: &[&str]) -> Vec<String> {
    keys.iter().filter(|key| cache.get::<Product>(key, 1).is_some()).map(|key| key.to_string()).collect()
}

#[test]
fn object_cache_is_send_and_sync() {
    fn shared_by_threads<T: Send + Sync>() {}
    shared_by_threads::<ObjectCache>();
}

#[test]
fn a_value_round_trips_with_its_times() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    let before = SystemTime::now();
    cache.put("product:12", 1, &product(12), LONG).unwrap();
    let hit = cache.get::<Product>("product:12", 1).expect("a hit");
    assert_eq!(hit.value, product(12));
    let stored = hit.stored_at.duration_since(before - Duration::from_millis(1)).expect("stored after the put began");
    assert!(stored < Duration::from_secs(5));
    assert_eq!(hit.expires_at.duration_since(hit.stored_at).unwrap(), LONG);
    assert!(cache.get::<Product>("product:13", 1).is_none());
}

#[test]
fn an_entry_expires_after_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    // Long enough for the first read to come before it even on a busy
    // machine.
    cache.put("inventory:5", 1, &17u32, Duration::from_millis(100)).unwrap();
    assert_eq!(cache.get::<u32>("inventory:5", 1).map(|hit| hit.value), Some(17));
    thread::sleep(Duration::from_millis(200));
    assert!(cache.get::<u32>("inventory:5", 1).is_none());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.expired, stats.misses), (1, 1, 0));
}

#[test]
fn two_keys_of_one_object_expire_separately() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    // A product's slow part and its stock, as docs/DATA.md splits them.
    cache.put("product:7", 1, &product(7), Duration::from_secs(30)).unwrap();
    cache.put("inventory:7", 1, &3u32, Duration::from_millis(50)).unwrap();
    thread::sleep(Duration::from_millis(120));
    assert_eq!(cache.get::<Product>("product:7", 1).map(|hit| hit.value), Some(product(7)));
    assert!(cache.get::<u32>("inventory:7", 1).is_none());
    assert_eq!(cache.stats().expired, 1);
}

#[test]
fn another_format_version_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    cache.put("product:1", 1, &product(1), LONG).unwrap();
    assert!(cache.get::<Product>("product:1", 2).is_none());
    assert!(cache.get::<Product>("product:1", 1).is_some());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.expired), (1, 1, 0));
}

#[test]
fn bytes_that_do_not_decode_are_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    // Invalid UTF-8 where Product has its name.
    cache.put("product:1", 1, &vec![1u8, 3, 0xff, 0xfe, 0xfd], LONG).unwrap();
    // Decodes as a Product with bytes to spare: some other type.
    cache.put("product:2", 1, &(product(2), 42u64), LONG).unwrap();
    // Too short to be a Product at all.
    cache.put("product:3", 1, &(), LONG).unwrap();
    for key in ["product:1", "product:2", "product:3"] {
        assert!(cache.get::<Product>(key, 1).is_none(), "{key} decoded");
    }
    assert_eq!(cache.stats().misses, 3);
    assert!(cache.get::<(Product, u64)>("product:2", 1).is_some());
}

#[test]
fn keys_that_lmdb_cannot_hold_are_refused_or_missed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    let long = "k".repeat(512);
    assert!(matches!(cache.put("", 1, &1u8, LONG), Err(CacheError::InvalidKey)));
    assert!(matches!(cache.put(&long, 1, &1u8, LONG), Err(CacheError::InvalidKey)));
    assert!(cache.get::<u8>("", 1).is_none());
    assert!(cache.get::<u8>(&long, 1).is_none());
    assert!(!cache.remove(&long).unwrap());
    assert_eq!(cache.apply_invalidation(&format!("{long} {long}*")).unwrap(), 0);
    cache.put(&"k".repeat(511), 1, &1u8, LONG).unwrap();
}

const CATALOG: [&str; 12] = [
    "product:1",
    "product:12",
    "product:2",
    "inventory:1",
    "inventory:12",
    "catlist:1:1",
    "catlist:1:2",
    "catlist:12:1",
    "category:4",
    "categories",
    "session:abc",
    "order:9",
];

fn fill_catalog(cache: &ObjectCache) {
    for (n, key) in CATALOG.iter().enumerate() {
        cache.put(key, 1, &product(n as u32), LONG).unwrap();
    }
}

fn all_but(removed: &[&str]) -> Vec<String> {
    CATALOG.iter().filter(|key| !removed.contains(key)).map(|key| key.to_string()).collect()
}

#[test]
fn remove_drops_exactly_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    fill_catalog(&cache);
    assert!(cache.remove("product:1").unwrap());
    assert!(!cache.remove("product:1").unwrap());
    assert_eq!(keys_present(&cache, &CATALOG), all_but(&["product:1"]));
    assert_eq!(cache.stats().removals, 1);
}

#[test]
fn remove_prefix_drops_the_keys_under_it_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    fill_catalog(&cache);
    assert_eq!(cache.remove_prefix("catlist:1:").unwrap(), 2);
    assert_eq!(keys_present(&cache, &CATALOG), all_but(&["catlist:1:1", "catlist:1:2"]));
    assert_eq!(cache.remove_prefix("zzz").unwrap(), 0);
    assert_eq!(cache.remove_prefix("product:").unwrap(), 3);
    assert_eq!(cache.stats().removals, 5);
}

#[test]
fn remove_prefix_handles_more_keys_than_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), 64 * MIB, 32).unwrap();
    for id in 0..25_000 {
        cache.put(&format!("catlist:{id}"), 1, &id, LONG).unwrap();
    }
    cache.put("categories", 1, &0u32, LONG).unwrap();
    assert_eq!(cache.remove_prefix("catlist:").unwrap(), 25_000);
    assert_eq!(cache.stats().entries, 1);
}

#[test]
fn invalidation_payloads_follow_the_data_contract() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    fill_catalog(&cache);

    // An exact key never takes a longer id with it.
    assert_eq!(cache.apply_invalidation("product:1").unwrap(), 1);
    assert_eq!(keys_present(&cache, &CATALOG), all_but(&["product:1"]));

    // Mixed tokens, odd spacing, a key that is not there.
    assert_eq!(cache.apply_invalidation("  inventory:12   catlist:1:*\tcategory:4 nosuch:1 ").unwrap(), 4);
    let gone = ["product:1", "inventory:12", "catlist:1:1", "catlist:1:2", "category:4"];
    assert_eq!(keys_present(&cache, &CATALOG), all_but(&gone));

    // A prefix stops at its last character: catlist:12:1 survived above.
    assert_eq!(cache.apply_invalidation("catlist:*").unwrap(), 1);
    assert_eq!(cache.apply_invalidation("").unwrap(), 0);
    assert_eq!(cache.apply_invalidation("   ").unwrap(), 0);

    // `*` alone: everything.
    let left = CATALOG.len() - gone.len() - 1;
    assert_eq!(cache.apply_invalidation("*").unwrap(), left);
    assert!(keys_present(&cache, &CATALOG).is_empty());
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cache.stats().removals as usize, CATALOG.len());
}

#[test]
fn an_invalidation_after_everything_is_gone_still_counts_right() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    fill_catalog(&cache);
    // Everything, then keys already dropped by it, in one transaction.
    assert_eq!(cache.apply_invalidation("* product:12 catlist:*").unwrap(), CATALOG.len());
    assert_eq!(cache.apply_invalidation("product:* *").unwrap(), 0);
}

#[test]
fn counters_and_environment_figures_move() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), 16 * MIB, 200).unwrap();
    let empty = cache.stats();
    assert_eq!((empty.hits, empty.misses, empty.puts, empty.entries), (0, 0, 0, 0));
    assert_eq!(empty.map_size, 16 * MIB);
    assert_eq!(empty.max_readers, 200);

    for id in 0..10 {
        cache.put(&format!("product:{id}"), 1, &product(id), LONG).unwrap();
    }
    cache.get::<Product>("product:3", 1).unwrap();
    cache.get::<Product>("product:4", 1).unwrap();
    assert!(cache.get::<Product>("product:99", 1).is_none());
    cache.remove("product:5").unwrap();

    let stats = cache.stats();
    assert_eq!((stats.puts, stats.hits, stats.misses, stats.removals), (10, 2, 1, 1));
    assert_eq!(stats.entries, 9);
    assert!(stats.bytes_used >= 2 * 4096, "{stats:?}");
    assert!(stats.bytes_used < stats.map_size);
    // No read is in progress: no slot is taken, none is stale.
    assert_eq!((stats.readers_in_use, stats.stale_readers), (0, 0));
    // Reports serialize (e.g. for a status page).
    assert!(!postcard::to_stdvec(&stats).unwrap().is_empty());
}

#[test]
fn opening_a_directory_twice_in_a_process_shares_one_environment() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(&dir);
    let second = ObjectCache::open(dir.path(), 16 * MIB, 32).unwrap();
    first.put("order:1", 1, &product(1), LONG).unwrap();
    assert_eq!(second.get::<Product>("order:1", 1).map(|hit| hit.value), Some(product(1)));
    drop(first);
    second.put("order:2", 1, &product(2), LONG).unwrap();
    assert_eq!(second.stats().puts, 2);
}

#[test]
fn sweep_expired_removes_only_expired_entries_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    for id in 0..10 {
        cache.put(&format!("inventory:{id}"), 1, &id, Duration::from_millis(30)).unwrap();
    }
    for id in 0..5 {
        cache.put(&format!("product:{id}"), 1, &product(id), LONG).unwrap();
    }
    thread::sleep(Duration::from_millis(80));
    assert_eq!(cache.sweep_expired(0).unwrap(), 0);
    assert_eq!(cache.sweep_expired(3).unwrap(), 3);
    assert_eq!(cache.sweep_expired(100).unwrap(), 7);
    assert_eq!(cache.sweep_expired(100).unwrap(), 0);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.swept), (5, 10));
    assert!(cache.get::<Product>("product:4", 1).is_some());
}

#[test]
fn put_sweeps_now_and_then() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    for id in 0..20 {
        cache.put(&format!("inventory:{id}"), 1, &id, Duration::from_millis(20)).unwrap();
    }
    // Within the first minute no put sweeps.
    thread::sleep(Duration::from_millis(60));
    cache.put("product:1", 1, &product(1), LONG).unwrap();
    assert_eq!(cache.stats().swept, 0);

    cache.set_auto_sweep_interval(Duration::from_millis(0));
    cache.put("product:2", 1, &product(2), LONG).unwrap();
    let stats = cache.stats();
    assert_eq!((stats.swept, stats.entries), (20, 2));
}

/// Puts 1.5 KiB values until the loop ends; panics if a put fails.
fn fill(cache: &ObjectCache, prefix: &str, count: usize, ttl: Duration) {
    let filler = vec![7u8; 1500];
    for n in 0..count {
        cache.put(&format!("{prefix}:{n}"), 1, &filler, ttl).unwrap_or_else(|e| panic!("{prefix}:{n}: {e}"));
    }
}

#[test]
fn a_full_map_is_relieved_by_sweeping_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), 2 * MIB, 16).unwrap();
    // ~60% of the map in entries that expire soon.
    fill(&cache, "inventory", 400, Duration::from_millis(50));
    thread::sleep(Duration::from_millis(100));
    // As much again: only fits if the expired ones make room.
    fill(&cache, "product", 400, LONG);
    let stats = cache.stats();
    assert!(stats.swept > 0, "{stats:?}");
    assert_eq!(stats.full_resets, 0, "{stats:?}");
    for n in 0..400 {
        assert!(cache.get::<Vec<u8>>(&format!("product:{n}"), 1).is_some(), "product:{n}");
    }
}

#[test]
fn a_map_full_of_live_entries_is_emptied_and_the_put_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), MIB, 16).unwrap();
    // Twice what the map holds, none expired: the cache must empty itself.
    fill(&cache, "session", 1000, LONG);
    let stats = cache.stats();
    assert!(stats.full_resets >= 1, "{stats:?}");
    assert!(cache.get::<Vec<u8>>("session:999", 1).is_some());
    assert!(cache.get::<Vec<u8>>("session:0", 1).is_none());
    assert!(stats.bytes_used <= stats.map_size);
}

#[test]
fn a_value_too_large_for_the_map_is_refused_without_evicting() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), MIB, 16).unwrap();
    cache.put("product:1", 1, &product(1), LONG).unwrap();
    let huge = vec![0u8; 600 * 1024];
    assert!(matches!(cache.put("product:2", 1, &huge, LONG), Err(CacheError::TooLarge { .. })));
    assert!(cache.get::<Product>("product:1", 1).is_some());
}

#[test]
fn removals_in_a_full_map_still_remove() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), MIB, 16).unwrap();
    fill(&cache, "catlist", 1000, LONG);
    let present = cache.stats().entries;
    assert!(present > 0);
    let removed = cache.apply_invalidation("catlist:* product:1").unwrap();
    assert_eq!(removed as u64, present);
    assert_eq!(cache.stats().entries, 0);
}

/// A value that proves it was read whole: every byte derives from `generation`.
#[derive(Debug, Serialize, Deserialize)]
struct Versioned {
    key: String,
    generation: u64,
    bytes: Vec<u8>,
}

impl Versioned {
    fn new(key: &str, generation: u64) -> Versioned {
        let len = 200 + (generation % 7) as usize * 300;
        Versioned { key: key.to_string(), generation, bytes: vec![generation as u8; len] }
    }

    fn is_whole(&self, key: &str) -> bool {
        self.key == key
            && self.bytes.len() == 200 + (self.generation % 7) as usize * 300
            && self.bytes.iter().all(|b| *b == self.generation as u8)
    }
}

#[test]
fn eight_threads_read_while_another_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(open(&dir));
    let keys: Vec<String> = (0..50).map(|n| format!("product:{n}")).collect();
    for key in &keys {
        cache.put(key, 1, &Versioned::new(key, 0), LONG).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..8)
        .map(|reader| {
            let (cache, keys, stop, hits) = (cache.clone(), keys.clone(), stop.clone(), hits.clone());
            thread::spawn(move || {
                let mut seen = vec![0u64; keys.len()];
                let mut n = reader;
                while !stop.load(Ordering::Relaxed) {
                    n = (n + 7) % keys.len();
                    let hit = cache.get::<Versioned>(&keys[n], 1).expect("every key stays present");
                    assert!(hit.value.is_whole(&keys[n]), "torn value under {}", keys[n]);
                    // Generations of one key only move forward.
                    assert!(hit.value.generation >= seen[n]);
                    seen[n] = hit.value.generation;
                    hits.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let writer = {
        let (cache, keys) = (cache.clone(), keys.clone());
        thread::spawn(move || {
            for generation in 1..=40u64 {
                for key in &keys {
                    cache.put(key, 1, &Versioned::new(key, generation), LONG).unwrap();
                }
            }
        })
    };
    writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(hits.load(Ordering::Relaxed) > 1000);
    let stats = cache.stats();
    assert_eq!(stats.hits, hits.load(Ordering::Relaxed));
    assert_eq!((stats.misses, stats.readers_in_use), (0, 0));
}

#[test]
fn a_data_file_that_is_not_an_environment_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    // What a creator killed while writing the first meta page leaves.
    std::fs::write(dir.path().join("data.mdb"), vec![0u8; 4096]).unwrap();
    let cache = open(&dir);
    cache.put("product:1", 1, &product(1), LONG).unwrap();
    assert!(cache.get::<Product>("product:1", 1).is_some());
}

#[test]
fn a_cache_from_before_a_reboot_starts_empty() {
    if std::fs::metadata("/proc/sys/kernel/random/boot_id").is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    cache.put("product:1", 1, &product(1), LONG).unwrap();
    drop(cache);

    // Same boot: the entries are kept.
    let cache = open(&dir);
    assert!(cache.get::<Product>("product:1", 1).is_some());
    drop(cache);

    std::fs::write(dir.path().join("esf-cache.boot"), "another-boot\n").unwrap();
    let cache = open(&dir);
    assert!(cache.get::<Product>("product:1", 1).is_none());
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("esf-cache.boot")).unwrap().trim(), boot_id.trim());
}

#[test]
fn the_cache_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let cache = ObjectCache::open(&cache_dir, 16 * MIB, 32).unwrap();
    cache.put("session:1", 1, &"cart", LONG).unwrap();
    let mode = |name: &str| std::fs::metadata(cache_dir.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("."), 0o700);
    assert_eq!(mode("data.mdb"), 0o600);
    assert_eq!(mode("lock.mdb"), 0o600);
}

#[test]
fn threads_opening_and_dropping_one_directory_share_and_close_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|thread_no| {
            let path = path.clone();
            thread::spawn(move || {
                for round in 0..50 {
                    let cache = ObjectCache::open(&path, 16 * MIB, 32).unwrap();
                    let key = format!("session:{thread_no}");
                    cache.put(&key, 1, &round, LONG).unwrap();
                    assert_eq!(cache.get::<i32>(&key, 1).map(|hit| hit.value), Some(round));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let cache = ObjectCache::open(&path, 16 * MIB, 32).unwrap();
    assert_eq!(cache.stats().entries, 4);
}
