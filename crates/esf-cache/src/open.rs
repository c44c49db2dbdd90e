//! Opening the LMDB environment of a cache directory: the flags, the
//! directory's permissions, and the resets that keep a broken or
//! out-of-date environment from becoming an outage.
//!
//! The directory holds LMDB's `data.mdb` and `lock.mdb`, plus two small
//! files of this crate:
//!
//! - `esf-cache.lock`, flock()ed while a process opens (or resets) the
//!   environment, so that a reset never races another process's open;
//! - `esf-cache.boot`, the boot id of the machine when the environment was
//!   created. The cache is written without fsync (`MDB_NOSYNC`), which is
//!   safe against killed processes but not against an OS crash, so after a
//!   reboot the environment is thrown away instead of trusted. (Its
//!   contents would be stale anyway: no change notification reached it
//!   while the server was down.)
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use lmdb::{Database, Environment, EnvironmentFlags};

use crate::error::CacheError;
use crate::readers::ReaderTable;

const GUARD_FILE: &str = "esf-cache.lock";
const BOOT_FILE: &str = "esf-cache.boot";
const LMDB_FILES: [&str; 2] = ["data.mdb", "lock.mdb"];
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The environment flags, and why:
///
/// - `NO_TLS`: a reader slot belongs to a read transaction, not to a thread.
///   The event MPM runs a request on whichever worker thread is free, and
///   with thread-bound slots every thread that ever read would hold a slot
///   for its whole life.
/// - `NO_SYNC` (which implies `NO_META_SYNC`): commits are written to the
///   page cache without fsync. A killed process loses nothing that was
///   committed, and an uncommitted transaction only ever wrote to free
///   pages; only an OS crash can lose or tear data, and the cache is reset
///   after a reboot.
/// - `NO_READAHEAD`: lookups are random single-page reads; readahead would
///   pull neighbouring pages of a large map into memory for nothing.
/// - not `WRITE_MAP`: the map stays read-only, so a stray write anywhere in
///   an httpd child (C modules included) faults instead of corrupting the
///   cache, and writes go through `pwrite`, which a killed process cannot
///   leave half-done within the one page of the meta record.
fn environment_flags() -> EnvironmentFlags {
    EnvironmentFlags::NO_TLS | EnvironmentFlags::NO_SYNC | EnvironmentFlags::NO_META_SYNC | EnvironmentFlags::NO_READAHEAD
}

/// Map sizes are rounded up to this (a multiple of every OS page size
/// Linux uses), as LMDB expects.
const MAP_GRANULE: u64 = 64 * 1024;

/// An environment opened for a cache, with its default database.
pub(crate) struct Opened {
    pub env: Environment,
    pub db: Database,
    pub readers: Option<ReaderTable>,
    pub dir: PathBuf,
}

/// Creates `dir` (owner-only: sessions are cached in it) unless it exists,
/// and returns its canonical path.
pub(crate) fn prepare_dir(dir: &Path) -> Result<PathBuf, CacheError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    Ok(fs::canonicalize(dir)?)
}

/// Opens (creating if needed) the environment in the canonical `dir`.
pub(crate) fn open_environment(dir: &Path, map_size: u64, max_readers: u32) -> Result<Opened, CacheError> {
    let guard = fs::File::options().create(true).truncate(false).write(true).open(dir.join(GUARD_FILE))?;
    // Held until the end of this function; released by the kernel if this
    // process is killed meanwhile.
    guard.lock()?;

    let boot_id = fs::read_to_string(BOOT_ID).ok().map(|id| id.trim().to_string());
    if let (Some(now), Ok(then)) = (&boot_id, fs::read_to_string(dir.join(BOOT_FILE))) {
        if then.trim() != now {
            log::warn!("object cache in {}: created before the last reboot; starting empty", dir.display());
            remove_lmdb_files(dir)?;
        }
    }

    let map_size = map_size.max(MAP_GRANULE).div_ceil(MAP_GRANULE) * MAP_GRANULE;
    let map_size = usize::try_from(map_size).map_err(|_| CacheError::Lmdb(lmdb::Error::Invalid))?;
    let env = match open_lmdb(dir, map_size, max_readers.max(1)) {
        // A data file that is not a valid environment (e.g. its creator was
        // killed before it wrote both meta pages): start again. No other
        // process can be using it: opening it fails for them the same way.
        Err(e @ (lmdb::Error::Invalid | lmdb::Error::Corrupted)) => {
            log::error!("object cache in {}: unusable environment ({e}); recreating it", dir.display());
            remove_lmdb_files(dir)?;
            open_lmdb(dir, map_size, max_readers.max(1))?
        }
        other => other?,
    };
    if let Some(now) = boot_id {
        if let Err(e) = write_boot_id(dir, &now) {
            log::warn!("object cache in {}: cannot record the boot id: {e}", dir.display());
        }
    }
    let db = env.open_db(None)?;
    let readers =
        ReaderTable::open(dir).inspect_err(|e| log::warn!("object cache in {}: cannot read the reader table: {e}", dir.display())).ok();
    drop(guard);
    Ok(Opened { env, db, readers, dir: dir.to_path_buf() })
}

fn open_lmdb(dir: &Path, map_size: usize, max_readers: u32) -> Result<Environment, lmdb::Error> {
    Environment::new().set_flags(environment_flags()).set_map_size(map_size).set_max_readers(max_readers).open_with_permissions(dir, 0o600)
}

fn remove_lmdb_files(dir: &Path) -> io::Result<()> {
    for name in LMDB_FILES {
        match fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn write_boot_id(dir: &Path, boot_id: &str) -> io::Result<()> {
    let path = dir.join(BOOT_FILE);
    if fs::read_to_string(&path).is_ok_and(|then| then.trim() == boot_id) {
        return Ok(());
    }
    // Written whole then renamed, so a killed writer leaves no torn id.
    let temporary = dir.join(format!("{BOOT_FILE}.{}", std::process::id()));
    let mut file = fs::File::create(&temporary)?;
    writeln!(file, "{boot_id}")?;
    drop(file);
    fs::rename(&temporary, &path)
}
