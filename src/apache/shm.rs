//! Memory shared by every child of a configuration generation: made in the
//! parent (post_config), before the children fork, so each inherits the
//! same mapping.
use std::sync::atomic::AtomicU64;

use super::ffi;
use super::pool::Pool;

/// `slots` zeroed 64-bit counters in an anonymous shared segment owned by
/// `pool` (the configuration pool: it lives as long as the generation, and
/// children keep their mapping after the parent drops it at a restart).
pub fn counters(pool: Pool<'_>, slots: usize) -> Result<&'static [AtomicU64], String> {
    let bytes = slots * std::mem::size_of::<AtomicU64>();
    let mut shm: *mut ffi::apr_shm_t = std::ptr::null_mut();
    // SAFETY: anonymous segment (NULL filename) of `bytes`, owned by a live pool.
    let status = unsafe { ffi::apr_shm_create(&mut shm, bytes, std::ptr::null(), pool.as_raw()) };
    if status != ffi::APR_SUCCESS as i32 || shm.is_null() {
        return Err(format!("apr_shm_create of {bytes} bytes failed (status {status})"));
    }
    // SAFETY: the segment is `bytes` long, page-aligned (so aligned for
    // AtomicU64), zeroed by mmap of anonymous memory, and mapped for as
    // long as any request of this generation can run in this process: the
    // parent unmaps it only when the generation's pool is destroyed, and a
    // child never does. AtomicU64 may be shared between processes.
    unsafe {
        let base = ffi::apr_shm_baseaddr_get(shm).cast::<AtomicU64>();
        if base.is_null() {
            return Err("apr_shm_baseaddr_get returned NULL".into());
        }
        std::ptr::write_bytes(base, 0, slots);
        Ok(std::slice::from_raw_parts(base, slots))
    }
}
