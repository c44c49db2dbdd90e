//! The stale-reader hook: installed once per process, run when a cache
//! opens and on request. (Its own test binary: the hook is process-wide.)
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use esf_cache::ObjectCache;

static CALLS: AtomicUsize = AtomicUsize::new(0);

/// Stands in for the FFI layer's call to `mdb_reader_check`: proves that it
/// is handed the cache's live environment.
fn counting_check(env: &esf_cache::lmdb::Environment) -> Result<usize, esf_cache::lmdb::Error> {
    assert_eq!(env.info()?.max_readers(), 40);
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(0)
}

fn other_check(_: &esf_cache::lmdb::Environment) -> Result<usize, esf_cache::lmdb::Error> {
    Ok(99)
}

#[test]
fn the_hook_runs_at_open_and_on_request() {
    let dir = tempfile::tempdir().unwrap();
    // No hook yet: nothing to run.
    let cache = ObjectCache::open(&dir.path().join("a"), 1 << 24, 40).unwrap();
    assert_eq!(cache.clear_stale_readers().unwrap(), None);

    assert!(esf_cache::set_stale_reader_check(counting_check));
    assert!(!esf_cache::set_stale_reader_check(other_check), "the first hook stays");
    let cache = ObjectCache::open(&dir.path().join("b"), 1 << 24, 40).unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(cache.clear_stale_readers().unwrap(), Some(0));
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}
