//! Clearing LMDB reader slots left by killed processes.
//!
//! A child killed in the middle of a read leaves its slot in the object
//! cache's reader table taken, and that slot stops the pages freed since
//! from being reused until the map is full. `mdb_reader_check` clears such
//! slots; lmdb-rkv's safe API does not offer it, so it is installed here,
//! with the module's other foreign calls, and esf-cache runs it when it
//! opens the cache, when the map is full and when reader slots run out.

/// Installs the check (once per loaded copy of the module).
pub fn install() {
    esf_cache::set_stale_reader_check(|env| {
        let mut dead: libc::c_int = 0;
        // SAFETY: `env.env()` is the live MDB_env of an open Environment
        // (borrowed for the call); `dead` is a valid out-parameter.
        match unsafe { lmdb_sys::mdb_reader_check(env.env(), &mut dead) } {
            0 => Ok(usize::try_from(dead).unwrap_or(0)),
            rc => Err(esf_cache::lmdb::Error::from_err_code(rc)),
        }
    });
}
