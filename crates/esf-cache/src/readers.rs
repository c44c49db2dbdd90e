//! Reader slots: counting them, spotting the ones left by dead processes,
//! and the hook that clears those.
//!
//! LMDB records every read transaction in a slot of the lock file
//! (`lock.mdb`), with the reader's pid and the snapshot it reads. With
//! `MDB_NOTLS` (which this cache uses) a slot is taken when a read
//! transaction begins and freed when it ends. A process killed in the middle
//! of a read leaves its slot taken. Such a stale slot
//!
//! - uses up one of the `max_readers` slots, and
//! - pins its snapshot, so pages freed after it are never reused: every
//!   put frees the pages of the value it replaces, so the map fills up,
//!   and then neither sweeping nor emptying the cache frees room. Puts
//!   fail with `CacheError::Full` (reads go on), and so can removals,
//!   which need free pages too (a copy-on-write tree). The
//!   `processes` tests show both the pinning and its cure.
//!
//! LMDB clears stale slots in `mdb_reader_check`, and does so by itself
//! whenever a process dies holding the writer lock or the reader-table lock
//! (their robust-mutex recovery calls the same check), and when the first
//! process opens the environment after everyone closed it (the lock file is
//! then reinitialised). Neither can be relied on: a child that crashes or
//! is killed in the middle of a read is enough to pin the map until a
//! restart. `mdb_reader_check` is not part of lmdb-rkv's safe API, and this
//! crate has no `unsafe`, so a call to it is a hook the FFI layer installs
//! once, before the children fork (the cache runs it when it opens, and
//! when the map is full or the reader slots run out):
//!
//! ```ignore
//! esf_cache::set_stale_reader_check(|env| {
//!     let mut dead: libc::c_int = 0;
//!     // SAFETY: env.env() is a live MDB_env for the duration of the call.
//!     match unsafe { lmdb_sys::mdb_reader_check(env.env(), &mut dead) } {
//!         0 => Ok(dead as usize),
//!         rc => Err(esf_cache::lmdb::Error::from_err_code(rc)),
//!     }
//! });
//! ```
//!
//! Without the hook the cache still *detects* stale slots (reported by
//! `stats()`, logged at open) by reading the lock file's reader table, which
//! is plain data: pid and snapshot per 64-byte slot. It never writes to the
//! lock file: clearing a slot safely needs LMDB's reader-table mutex.
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// Clears the reader slots of dead processes in an environment and returns
/// how many it cleared: a call to LMDB's `mdb_reader_check`.
pub type StaleReaderCheck = fn(&lmdb::Environment) -> Result<usize, lmdb::Error>;

static STALE_READER_CHECK: OnceLock<StaleReaderCheck> = OnceLock::new();

/// Installs the stale-reader check used by every cache in this process
/// (when opened, and when the map is full or the reader slots run out).
/// Returns false if one was installed already (the first one stays).
pub fn set_stale_reader_check(check: StaleReaderCheck) -> bool {
    STALE_READER_CHECK.set(check).is_ok()
}

/// Runs the installed check; `None` when there is none.
pub(crate) fn run_stale_reader_check(env: &lmdb::Environment) -> Option<Result<usize, lmdb::Error>> {
    STALE_READER_CHECK.get().map(|check| check(env))
}

/// How the reader slots of an environment are used right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReaderCounts {
    /// Slots held by a reader (live or not).
    pub in_use: u32,
    /// Slots held by processes that no longer exist.
    pub stale: u32,
}

/// A read-only view of the reader table in `lock.mdb`.
///
/// The file stays open for as long as the environment is: closing *any*
/// descriptor of the lock file drops every POSIX record lock this process
/// holds on it, LMDB's included (which would let other processes think this
/// one dead and take its reader slots). So it is opened once, after the
/// environment, and must be dropped after the environment is closed.
#[derive(Debug)]
pub(crate) struct ReaderTable {
    file: File,
}

/// LMDB pads each reader slot (and the table header) to a cache line.
const SLOT_LEN: u64 = 64;
/// `MDB_MAGIC`, the first four bytes of an initialised lock file.
const LOCK_MAGIC: u32 = 0xBEEF_C0DE;

impl ReaderTable {
    pub fn open(dir: &Path) -> io::Result<ReaderTable> {
        Ok(ReaderTable { file: File::open(dir.join("lock.mdb"))? })
    }

    /// Counts the slots below LMDB's high-water mark `slots_used`, or `None`
    /// when the file does not have the layout this reader expects (the slot
    /// layout assumed here is that of 64-bit Linux).
    pub fn scan(&self, max_readers: u32, slots_used: u32) -> Option<ReaderCounts> {
        if !cfg!(all(target_os = "linux", target_pointer_width = "64")) {
            return None;
        }
        use std::os::unix::fs::FileExt;
        let len = self.file.metadata().ok()?.len();
        let table_len = u64::from(max_readers) * SLOT_LEN;
        // The file is the header followed by exactly max_readers slots.
        let table_start = len.checked_sub(table_len).filter(|start| *start >= SLOT_LEN && start % SLOT_LEN == 0)?;
        let mut magic = [0u8; 4];
        self.file.read_exact_at(&mut magic, 0).ok()?;
        if u32::from_ne_bytes(magic) != LOCK_MAGIC {
            return None;
        }
        let slots = slots_used.min(max_readers) as usize;
        let mut table = vec![0u8; slots * SLOT_LEN as usize];
        self.file.read_exact_at(&mut table, table_start).ok()?;

        let own_pid = std::process::id();
        let mut alive: HashMap<u32, bool> = HashMap::new();
        let mut counts = ReaderCounts::default();
        for slot in table.chunks_exact(SLOT_LEN as usize) {
            // A slot is { txnid: size_t, pid: pid_t, tid: pthread_t }.
            let pid = u32::from_ne_bytes(slot[8..12].try_into().ok()?);
            if pid == 0 {
                continue;
            }
            counts.in_use += 1;
            if pid != own_pid && !*alive.entry(pid).or_insert_with(|| process_alive(pid)) {
                counts.stale += 1;
            }
        }
        Some(counts)
    }
}

/// Whether a process exists and is not a zombie (a zombie has released its
/// locks, so LMDB counts it as dead). When in doubt: alive.
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat.rsplit_once(')').is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::process_alive;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // The pid could be reused in between, in theory; not in a test run.
        assert!(!process_alive(pid));
    }
}
