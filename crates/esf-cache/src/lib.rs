//! mod_esf's shared object cache: one LMDB environment per app server,
//! shared by all its httpd children (processes) and their threads.
//!
//! Each child opens the cache after fork with [`ObjectCache::open`] and
//! shares the handle between its threads. Entries are keyed by strings such
//! as `product:12` (docs/DATA.md lists the keys) and hold a small header
//! (the caller's format version, when the entry was stored and when it
//! expires) followed by the postcard-serialized value.
//!
//! What this cache promises, and why it is LMDB:
//!
//! - Reads never block on writers (MVCC): a reader sees the last committed
//!   snapshot.
//! - A process killed with SIGKILL at any moment leaves the environment
//!   consistent: LMDB's copy-on-write B-tree only switches to new pages when
//!   the meta page is written, and its writer lock is a robust,
//!   process-shared mutex that the next writer recovers.
//! - Anything that does not decode — an expired entry, another format
//!   version, foreign bytes — is a miss, never an error or a panic.
//! - A full map is not an outage: expired entries are swept, and as a last
//!   resort the whole cache is emptied. (Unless a process killed in the
//!   middle of a read pins old pages: see [`readers`].)
//!
//! There is no `unsafe` in this crate. LMDB's `mdb_reader_check` is not part
//! of lmdb-rkv's safe API, so clearing reader slots left by killed processes
//! is delegated to a hook the FFI layer can install
//! ([`set_stale_reader_check`]); see [`readers`] for what happens without it.
#![forbid(unsafe_code)]

mod cache;
mod entry;
mod error;
mod open;
pub mod readers;
mod stats;

pub use cache::{Cached, ObjectCache};
pub use error::CacheError;
pub use readers::{set_stale_reader_check, StaleReaderCheck};
pub use stats::CacheStats;

/// The LMDB binding this crate is built on, so that a stale-reader hook can
/// name `lmdb::Environment` from the very same version.
pub use lmdb;
