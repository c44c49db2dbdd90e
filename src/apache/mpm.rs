//! What the running MPM says about itself.
use std::ffi::c_int;

use super::ffi;
use crate::site::MpmLimits;

fn query(what: u32) -> Option<usize> {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int for these codes.
    let status = unsafe { ffi::ap_mpm_query(what as c_int, &mut value) };
    (status == ffi::APR_SUCCESS as i32 && value > 0).then_some(value as usize)
}

/// Threads per child and workers in all (prefork: 1 thread per child).
pub fn limits() -> MpmLimits {
    let threads_per_child = query(ffi::AP_MPMQ_MAX_THREADS).unwrap_or(1);
    let children = query(ffi::AP_MPMQ_MAX_DAEMONS).unwrap_or(1);
    MpmLimits { threads_per_child, max_workers: threads_per_child * children }
}

/// The running MPM's name (`prefork`, `event`, `worker`, ...).
pub fn name() -> &'static str {
    // SAFETY: ap_show_mpm returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ffi::ap_show_mpm()) }.to_str().unwrap_or("unknown")
}

/// ServerLimit: the most children that can hold a scoreboard slot at once.
pub fn hard_limit_daemons() -> usize {
    query(ffi::AP_MPMQ_HARD_LIMIT_DAEMONS).unwrap_or(1)
}

/// The configuration generation (0 at start, +1 per restart).
pub fn generation() -> c_int {
    let mut generation: c_int = 0;
    // SAFETY: AP_MPMQ_GENERATION writes one int.
    unsafe { ffi::ap_mpm_query(ffi::AP_MPMQ_GENERATION as c_int, &mut generation) };
    generation
}
