//! Memory shared by every child: made in the parent (post_config), before
//! the children fork, so each inherits the same mapping.
use std::sync::atomic::AtomicU64;

use super::ffi;
use super::pool::Pool;

/// A zeroed anonymous shared segment of `bytes` bytes owned by `pool`,
/// as its APR handle and base address (page-aligned).
pub fn segment(pool: Pool<'_>, bytes: usize) -> Result<(*mut ffi::apr_shm_t, *mut u8), String> {
    let mut shm: *mut ffi::apr_shm_t = std::ptr::null_mut();
    // SAFETY: anonymous segment (NULL filename) of `bytes`, owned by a live pool.
    let status = unsafe { ffi::apr_shm_create(&mut shm, bytes, std::ptr::null(), pool.as_raw()) };
    if status != ffi::APR_SUCCESS as i32 || shm.is_null() {
        return Err(format!("apr_shm_create of {bytes} bytes failed (status {status})"));
    }
    // SAFETY: `shm` was just created; its base address is mapped for
    // `bytes` bytes, which are zeroed here (mmap gives zeroes already;
    // this does not rely on it).
    unsafe {
        let base = ffi::apr_shm_baseaddr_get(shm).cast::<u8>();
        if base.is_null() {
            return Err("apr_shm_baseaddr_get returned NULL".into());
        }
        std::ptr::write_bytes(base, 0, bytes);
        Ok((shm, base))
    }
}

/// `slots` zeroed 64-bit counters in an anonymous shared segment owned by
/// `pool` (the configuration pool: it lives as long as the generation, and
/// children keep their mapping after the parent drops it at a restart).
pub fn counters(pool: Pool<'_>, slots: usize) -> Result<&'static [AtomicU64], String> {
    let (_, base) = segment(pool, slots * std::mem::size_of::<AtomicU64>())?;
    // SAFETY: the segment is `slots` AtomicU64s long, page-aligned (so
    // aligned for AtomicU64), zeroed (a valid AtomicU64 is any bit
    // pattern), and mapped for as long as any request of this generation
    // can run in this process: the parent unmaps it only when the
    // generation's pool is destroyed, and a child never does. AtomicU64
    // may be shared between processes.
    Ok(unsafe { std::slice::from_raw_parts(base.cast::<AtomicU64>(), slots) })
}
