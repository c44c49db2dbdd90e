//! Where the status page's figures live: one shared segment for the life of
//! the parent process (see `esf_core::status` for what is in it).
//!
//! Unlike the throttle's table, which is made per generation, this one is
//! made once, in the process pool, and found again by every later
//! generation through the pool's user data: totals then count since the
//! server started, across graceful restarts, and children of an old
//! generation that are still finishing keep counting into the same table.
use std::ffi::c_void;
use std::mem::{align_of, size_of};

use esf_core::status::{ChildSlot, StatusHeader, StatusTable};

use super::ffi;
use super::pool::Pool;
use super::shm;

const KEY: &[u8] = b"esf_module/status_table\0";

/// Where the slots start: after the header, aligned for them.
const SLOTS_OFFSET: usize = size_of::<StatusHeader>().next_multiple_of(align_of::<ChildSlot>());

/// The status table of this server, made with room for `slots` children
/// the first time and found again afterwards (`slots` is then ignored:
/// ServerLimit cannot change without a full stop either).
///
/// # Safety
/// `s` is the live main server_rec, and the call is made in the parent
/// (post_config), before the children that use the table fork.
pub unsafe fn table(s: *mut ffi::server_rec, slots: usize) -> Result<StatusTable<'static>, String> {
    // SAFETY: s->process->pool lives for the whole process; KEY is
    // NUL-terminated; the stored value is the apr_shm_t made below in the
    // same pool, so it lives as long as the pool does.
    let (shm, base) = unsafe {
        let pool = (*(*s).process).pool;
        let mut found: *mut c_void = std::ptr::null_mut();
        ffi::apr_pool_userdata_get(&mut found, KEY.as_ptr().cast(), pool);
        if found.is_null() {
            let bytes = SLOTS_OFFSET + slots * size_of::<ChildSlot>();
            let (shm, base) = shm::segment(Pool::from_raw(pool), bytes)?;
            ffi::apr_pool_userdata_set(shm.cast(), KEY.as_ptr().cast(), Some(ffi::apr_pool_cleanup_null), pool);
            (shm, base)
        } else {
            let shm = found.cast::<ffi::apr_shm_t>();
            (shm, ffi::apr_shm_baseaddr_get(shm).cast::<u8>())
        }
    };
    // SAFETY: `shm` is a live segment of the process pool.
    let bytes = unsafe { ffi::apr_shm_size_get(shm) };
    let slots = bytes.saturating_sub(SLOTS_OFFSET) / size_of::<ChildSlot>();
    if base.is_null() || slots == 0 {
        return Err(format!("the status segment of {bytes} bytes has no room for a child"));
    }
    // SAFETY: the segment is `bytes` long and page-aligned; the header sits
    // at its start and `slots` ChildSlots at SLOTS_OFFSET, aligned for them.
    // Both types are repr(C) structs made only of AtomicU64, for which the
    // zeroed bytes the segment started as are valid values, and which may
    // be shared between threads and processes. The mapping lasts as long
    // as the process pool, i.e. the whole life of the parent and of every
    // child (a child never destroys it before exiting), hence 'static.
    unsafe {
        Ok(StatusTable {
            header: &*base.cast::<StatusHeader>(),
            slots: std::slice::from_raw_parts(base.add(SLOTS_OFFSET).cast::<ChildSlot>(), slots),
        })
    }
}
