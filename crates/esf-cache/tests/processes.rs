//! The cache shared by several processes, and what killing them does.
//!
//! The other processes are this test binary run again with
//! `--exact child_entry` and `ESF_CACHE_CHILD=<role>` (`child_entry` returns
//! at once in a normal run). THE KILL TEST, `killed_writers_leave_a_usable_cache`,
//! SIGKILLs writer and reader processes at random moments, then checks that
//! the environment opens within a time limit, every entry reads back whole
//! or misses, and a new write transaction begins.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use esf_cache::{CacheError, CacheStats, ObjectCache};
use serde::{Deserialize, Serialize};

const CHILD_ROLE: &str = "ESF_CACHE_CHILD";
const CHILD_DIR: &str = "ESF_CACHE_CHILD_DIR";
/// What a child prints once it holds what the parent waits for.
const READY: &str = "esf-cache-child-ready";
const MAP_SIZE: u64 = 64 * 1024 * 1024;
const MAX_READERS: u32 = 64;
const BLOB_FORMAT: u16 = 3;
const BLOB_KEYS: u64 = 48;
/// How long a child may live if nobody kills it: a forgotten child ends.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- values

/// A large value that proves it was read whole: its length and a checksum
/// of its text (and key) travel inside it. Text rather than `Vec<u8>`
/// because serde copies a string at once but a byte vector one element at
/// a time, and the writers should spend their time inside transactions.
#[derive(Debug, Serialize, Deserialize)]
struct Blob {
    key: String,
    len: u32,
    checksum: u64,
    text: String,
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Blob {
    /// 4 to 64 KiB of `letters` (random, at least 64 KiB), from a random
    /// place.
    fn new(key: &str, letters: &str, rng: &mut Rng) -> Blob {
        let len = 4096 + rng.below(60 * 1024) as usize;
        let start = rng.below((letters.len() - len) as u64 + 1) as usize;
        let text = letters[start..start + len].to_string();
        Blob { key: key.to_string(), len: len as u32, checksum: fnv1a(&[key.as_bytes(), text.as_bytes()]), text }
    }

    fn is_whole(&self, key: &str) -> bool {
        self.key == key && self.text.len() == self.len as usize && fnv1a(&[key.as_bytes(), self.text.as_bytes()]) == self.checksum
    }
}

/// xorshift64*: random enough for picking moments and sizes.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        Rng((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn blob_key(n: u64) -> String {
    format!("blob:{n}")
}

// ---------------------------------------------------------------- children

/// The entry point of every child process; a no-op in a normal test run.
#[test]
fn child_entry() {
    let (Ok(role), Ok(dir)) = (std::env::var(CHILD_ROLE), std::env::var(CHILD_DIR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    match role.as_str() {
        "writer" => run_writer(&dir),
        "reader" => run_reader(&dir),
        "holder" => run_holder(&dir),
        "peer" => run_peer(&dir),
        "hold-read" => hold_raw_transaction(&dir, false),
        "hold-write" => hold_raw_transaction(&dir, true),
        other => panic!("unknown child role {other}"),
    }
}

/// Writes large values under many keys in a tight loop, reads some back,
/// removes some, and sweeps often, until killed.
fn run_writer(dir: &Path) {
    let mut rng = Rng::seeded();
    // Two versions of each key's value, made up front so that the loop is
    // mostly inside write transactions.
    let letters: String = (0..128 * 1024).map(|_| char::from(b'a' + rng.below(26) as u8)).collect();
    let versions: Vec<[Blob; 2]> = (0..BLOB_KEYS)
        .map(|n| {
            let key = blob_key(n);
            [Blob::new(&key, &letters, &mut rng), Blob::new(&key, &letters, &mut rng)]
        })
        .collect();
    let cache = ObjectCache::open(dir, MAP_SIZE, MAX_READERS).expect("writer opens the cache");
    cache.set_auto_sweep_interval(Duration::from_millis(20));
    let started = Instant::now();
    let mut op = 0u64;
    while started.elapsed() < CHILD_LIFETIME {
        op += 1;
        let n = rng.below(BLOB_KEYS);
        let ttl = if rng.below(4) == 0 { Duration::from_millis(30) } else { Duration::from_secs(300) };
        let blob = &versions[n as usize][(op % 2) as usize];
        tolerate_full(cache.put(&blob.key, BLOB_FORMAT, blob, ttl), "writer puts");
        if op.is_multiple_of(64) {
            let key = blob_key(rng.below(BLOB_KEYS));
            if let Some(hit) = cache.get::<Blob>(&key, BLOB_FORMAT) {
                assert!(hit.value.is_whole(&key), "writer read a torn {key}");
            }
        }
        if op.is_multiple_of(32) {
            tolerate_full(cache.apply_invalidation("blob:1* blob:7 nosuch:*"), "writer invalidates");
        }
    }
}

/// A full map is an expected outcome while a reader killed mid-read pins
/// old pages (no stale-reader check is installed in these tests); any
/// other error is a failure.
fn tolerate_full<T>(result: Result<T, CacheError>, what: &str) {
    match result {
        Ok(_) | Err(CacheError::Full) | Err(CacheError::Lmdb(lmdb::Error::MapFull)) => {}
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Reads and checks values in a tight loop until killed (a reader killed
/// mid-read leaves a stale reader slot).
fn run_reader(dir: &Path) {
    let cache = ObjectCache::open(dir, MAP_SIZE, MAX_READERS).expect("reader opens the cache");
    let mut rng = Rng::seeded();
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        let key = blob_key(rng.below(BLOB_KEYS));
        if let Some(hit) = cache.get::<Blob>(&key, BLOB_FORMAT) {
            assert!(hit.value.is_whole(&key), "reader read a torn {key}");
        }
    }
}

/// Keeps the environment open (so that the test's own opens are not the
/// first, which would reinitialise the lock table and hide what killed
/// processes left in it) until its stdin closes.
fn run_holder(dir: &Path) {
    let cache = ObjectCache::open(dir, MAP_SIZE, MAX_READERS).expect("holder opens the cache");
    println!("{READY}");
    let _ = std::io::stdin().read_line(&mut String::new());
    drop(cache);
}

/// Reads what the parent wrote, and writes for the parent to read.
fn run_peer(dir: &Path) {
    let cache = ObjectCache::open(dir, MAP_SIZE, MAX_READERS).expect("peer opens the cache");
    let hit = cache.get::<String>("note:from-parent", 1).expect("the parent's write is visible");
    assert_eq!(hit.value, "hello child");
    cache.put("note:from-child", 1, &"hello parent".to_string(), Duration::from_secs(60)).unwrap();
}

/// Opens the environment with lmdb directly, as the cache does, begins a
/// read or write transaction, says so, and waits to be killed inside it.
fn hold_raw_transaction(dir: &Path, write: bool) {
    use lmdb::{EnvironmentFlags as F, WriteFlags};
    let env = lmdb::Environment::new()
        .set_flags(F::NO_TLS | F::NO_SYNC | F::NO_META_SYNC | F::NO_READAHEAD)
        .set_map_size(MAP_SIZE as usize)
        .set_max_readers(MAX_READERS)
        .open(dir)
        .expect("raw open");
    let db = env.open_db(None).unwrap();
    if write {
        let mut txn = env.begin_rw_txn().unwrap();
        // May fail in a full map; the lock is held all the same.
        let _ = txn.put(db, &"note:uncommitted", &[0u8; 100], WriteFlags::empty());
        println!("{READY}");
        thread::sleep(CHILD_LIFETIME);
        drop(txn);
    } else {
        let txn = env.begin_ro_txn().unwrap();
        println!("{READY}");
        thread::sleep(CHILD_LIFETIME);
        drop(txn);
    }
}

// ---------------------------------------------------------------- parent side

fn spawn_child(role: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role)
        .env(CHILD_DIR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a child")
}

/// Waits for the child's ready mark (the harness prints its own text
/// around it, on the same line).
fn wait_ready(stdout: &mut BufReader<ChildStdout>) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the child ended before it was ready");
        if line.contains(READY) {
            return;
        }
    }
}

fn kill_and_reap(child: &mut Child) {
    // Child::kill sends SIGKILL on Unix.
    let _ = child.kill();
    child.wait().unwrap();
}

/// Runs `check` in a thread and fails if it takes more than `limit`: an
/// open or a write that hangs on a lock a dead process held is the failure
/// this guards against.
fn within<T: Send + 'static>(limit: Duration, what: &str, check: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(check());
    });
    match result.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} took longer than {limit:?}: hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

#[test]
fn two_processes_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), MAP_SIZE, MAX_READERS).unwrap();
    cache.put("note:from-parent", 1, &"hello child".to_string(), Duration::from_secs(60)).unwrap();
    let mut peer = spawn_child("peer", dir.path());
    drop(peer.stdin.take());
    let status = within(Duration::from_secs(10), "the peer process", move || peer.wait().unwrap());
    assert!(status.success(), "the peer failed: {status}");
    assert_eq!(cache.get::<String>("note:from-child", 1).map(|hit| hit.value).as_deref(), Some("hello parent"));
}

#[test]
fn a_reader_and_a_writer_killed_inside_transactions_are_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), MAP_SIZE, MAX_READERS).unwrap();
    cache.put("note:committed", 1, &1u32, Duration::from_secs(60)).unwrap();

    // A reader killed inside its read transaction leaves its slot taken.
    let mut reader = spawn_child("hold-read", dir.path());
    wait_ready(&mut BufReader::new(reader.stdout.take().unwrap()));
    kill_and_reap(&mut reader);
    let stats = cache.stats();
    assert_eq!((stats.readers_in_use, stats.stale_readers), (1, 1), "{stats:?}");

    // A writer killed inside its write transaction dies holding LMDB's
    // writer lock.
    let mut writer = spawn_child("hold-write", dir.path());
    wait_ready(&mut BufReader::new(writer.stdout.take().unwrap()));
    kill_and_reap(&mut writer);

    let stats = within(Duration::from_secs(10), "a write after the writer died", move || {
        // The robust mutex hands the lock over with EOWNERDEAD, and LMDB's
        // recovery also clears the stale reader slots.
        cache.put("note:after", 1, &2u32, Duration::from_secs(60)).expect("write after a killed writer");
        assert!(cache.get::<u32>("note:after", 1).is_some());
        assert!(cache.get::<u32>("note:committed", 1).is_some());
        // What the killed writer put was never committed.
        assert!(cache.get::<Vec<u8>>("note:uncommitted", 1).is_none());
        cache.stats()
    });
    assert_eq!((stats.readers_in_use, stats.stale_readers), (0, 0), "{stats:?}");
}

#[test]
fn a_reader_killed_mid_read_pins_the_map_until_its_slot_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ObjectCache::open(dir.path(), 4 * 1024 * 1024, MAX_READERS).unwrap();
    cache.put("note:kept", 1, &7u32, Duration::from_secs(60)).unwrap();

    let mut reader = spawn_child("hold-read", dir.path());
    wait_ready(&mut BufReader::new(reader.stdout.take().unwrap()));
    kill_and_reap(&mut reader);
    assert_eq!(cache.stats().stale_readers, 1);

    // Rewriting a few keys frees pages all the time, but none freed after
    // the dead reader's snapshot can be reused: the map fills up.
    let big = "x".repeat(60 * 1024);
    let full_after = (0..1_000).find(|n| match cache.put(&format!("churn:{}", n % 4), 1, &big, Duration::from_secs(60)) {
        Ok(()) => false,
        Err(CacheError::Full) => true,
        Err(e) => panic!("churn put: {e}"),
    });
    assert!(full_after.is_some(), "the map never filled");
    // Emptying would not have helped, so the cache was not emptied; reads
    // go on.
    assert_eq!(cache.get::<u32>("note:kept", 1).map(|hit| hit.value), Some(7));
    let stats = cache.stats();
    assert_eq!((stats.stale_readers, stats.full_resets), (1, 0), "{stats:?}");

    // What clears the slot without mdb_reader_check: LMDB's recovery after
    // a writer dies holding the writer lock.
    let mut writer = spawn_child("hold-write", dir.path());
    wait_ready(&mut BufReader::new(writer.stdout.take().unwrap()));
    kill_and_reap(&mut writer);
    let stats = within(Duration::from_secs(10), "a put after the recovery", move || {
        cache.put("churn:0", 1, &big, Duration::from_secs(60)).expect("room again once the slot is cleared");
        cache.stats()
    });
    assert_eq!(stats.stale_readers, 0, "{stats:?}");
}

/// Whether LMDB's writer lock was last held by a thread that died (glibc's
/// robust-mutex futex word carries FUTEX_OWNER_DIED until the next locker
/// recovers it). Only a diagnostic for the kill test's report, and only on
/// x86-64 Linux, where the writer mutex sits at offset 64 of lock.mdb.
///
/// It opens lock.mdb, so it may only be called while this process has no
/// environment open: closing a descriptor of the lock file would drop this
/// process's LMDB locks on it.
fn writer_lock_owner_died(dir: &Path) -> Option<bool> {
    use std::os::unix::fs::FileExt;
    const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return None;
    }
    let file = std::fs::File::open(dir.join("lock.mdb")).ok()?;
    let mut word = [0u8; 4];
    file.read_exact_at(&mut word, 64).ok()?;
    Some(u32::from_ne_bytes(word) & FUTEX_OWNER_DIED != 0)
}

/// What one check after a round of kills found.
#[derive(Debug)]
struct Check {
    hits: u64,
    misses: u64,
    stale_before_write: u32,
    /// The check's own put met a map pinned full by stale reader slots.
    pinned_full: bool,
    stats: CacheStats,
    elapsed: Duration,
}

/// Opens the cache as a fresh process would, reads every key, and writes.
fn check_cache(dir: PathBuf) -> Check {
    let started = Instant::now();
    let cache = ObjectCache::open(&dir, MAP_SIZE, MAX_READERS).expect("the cache opens after the kills");
    let (mut hits, mut misses) = (0, 0);
    for n in 0..BLOB_KEYS {
        let key = blob_key(n);
        match cache.get::<Blob>(&key, BLOB_FORMAT) {
            Some(hit) => {
                assert!(hit.value.is_whole(&key), "{key} did not read back whole");
                hits += 1;
            }
            None => misses += 1,
        }
    }
    let stale_before_write = cache.stats().stale_readers;
    // A write transaction begins and commits: the writer lock was released
    // or recovered.
    assert!(!cache.remove("check:absent").expect("a write transaction after the kills"));
    let pinned_full = match cache.put("check:written", 1, &hits, Duration::from_secs(60)) {
        Ok(()) => {
            assert_eq!(cache.get::<u64>("check:written", 1).map(|hit| hit.value), Some(hits));
            assert_eq!(cache.apply_invalidation("check:*").expect("an invalidation after the kills"), 1);
            cache.sweep_expired(usize::MAX).expect("a sweep after the kills");
            false
        }
        Err(CacheError::Full) => {
            let stats = cache.stats();
            assert!(stats.stale_readers > 0, "full without a stale reader to pin it: {stats:?}");
            true
        }
        Err(e) => panic!("a write after the kills: {e}"),
    };
    let stats = cache.stats();
    assert!(stats.entries <= BLOB_KEYS + 1, "{stats:?}");
    Check { hits, misses, stale_before_write, pinned_full, stats, elapsed: started.elapsed() }
}

#[test]
fn killed_writers_leave_a_usable_cache() {
    const ROUNDS: usize = 6;
    const WRITERS: usize = 3;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seeded();

    let mut killed_holding_the_lock = 0;
    let mut holder = spawn_child("holder", dir.path());
    wait_ready(&mut BufReader::new(holder.stdout.take().unwrap()));

    for round in 1..=ROUNDS {
        let mut children: Vec<Child> = (0..WRITERS).map(|_| spawn_child("writer", dir.path())).collect();
        children.push(spawn_child("reader", dir.path()));
        // Early rounds also kill children while they create or open the
        // environment.
        thread::sleep(Duration::from_millis(20 + rng.below(400)));
        let mut died_holding_the_lock = 0;
        for child in &mut children {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("a child ended by itself before being killed: {status}");
            }
            let before = writer_lock_owner_died(dir.path()) == Some(true);
            kill_and_reap(child);
            if !before && writer_lock_owner_died(dir.path()) == Some(true) {
                died_holding_the_lock += 1;
            }
            thread::sleep(Duration::from_millis(rng.below(25)));
        }
        killed_holding_the_lock += died_holding_the_lock;
        let path = dir.path().to_path_buf();
        let check = within(Duration::from_secs(10), "opening and checking after the kills", move || check_cache(path));
        eprintln!(
            "kill round {round}: {died_holding_the_lock} writers killed holding the writer lock; \
             {} whole, {} missing, {} stale reader slots before the write, {} after{}; \
             {} entries, {} KiB used; checked in {:?}",
            check.hits,
            check.misses,
            check.stale_before_write,
            check.stats.stale_readers,
            if check.pinned_full { " (map pinned full)" } else { "" },
            check.stats.entries,
            check.stats.bytes_used / 1024,
            check.elapsed,
        );
    }

    // Last, kill the holder too: the next open is the first one again and
    // LMDB reinitialises the lock table.
    let _ = holder.stdin.take().map(|mut stdin| stdin.flush());
    kill_and_reap(&mut holder);
    let path = dir.path().to_path_buf();
    let check = within(Duration::from_secs(10), "opening after every process died", move || check_cache(path));
    assert_eq!(check.stats.stale_readers, 0, "{:?}", check.stats);
    assert!(!check.pinned_full, "{:?}", check.stats);
    eprintln!(
        "after killing the holder: {} whole, {} missing; {killed_holding_the_lock} writers killed holding the writer lock in all; \
         whole test {:?}",
        check.hits,
        check.misses,
        started.elapsed()
    );
}
