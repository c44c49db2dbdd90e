//! APR pools: memory that lives as long as a request, a configuration
//! generation or a child, and Rust values whose drop is tied to one.
use std::ffi::{c_char, c_void};
use std::marker::PhantomData;

use super::ffi;

/// A borrowed APR pool. `'p` is how long the pool is known to live.
#[derive(Clone, Copy)]
pub struct Pool<'p> {
    raw: *mut ffi::apr_pool_t,
    _life: PhantomData<&'p ffi::apr_pool_t>,
}

impl<'p> Pool<'p> {
    /// # Safety
    /// `raw` must be a live pool for all of `'p`.
    pub unsafe fn from_raw(raw: *mut ffi::apr_pool_t) -> Pool<'p> {
        Pool { raw, _life: PhantomData }
    }

    pub fn as_raw(&self) -> *mut ffi::apr_pool_t {
        self.raw
    }

    /// A NUL-terminated copy of `text` in the pool (for APIs that keep the
    /// pointer, such as `ap_set_content_type` and config error messages).
    /// Interior NULs end the string early, as C would read it.
    pub fn c_str(&self, text: &str) -> *const c_char {
        // SAFETY: the pool is live ('p); apr_pstrmemdup copies `len` bytes
        // from a valid slice and NUL-terminates the copy.
        unsafe { ffi::apr_pstrmemdup(self.raw, text.as_ptr().cast(), text.len()) }
    }

    /// Moves `value` into the pool: it is dropped when the pool is cleared
    /// or destroyed. The pointer stays valid until then.
    pub fn adopt<T>(&self, value: T) -> *mut T {
        let raw = Box::into_raw(Box::new(value));
        // SAFETY: the pool is live; the cleanup gets back exactly the
        // pointer Box::into_raw made and runs once, when the pool goes.
        unsafe {
            ffi::apr_pool_cleanup_register(self.raw, raw.cast(), Some(drop_adopted::<T>), Some(ffi::apr_pool_cleanup_null));
        }
        raw
    }
}

unsafe extern "C" fn drop_adopted<T>(data: *mut c_void) -> ffi::apr_status_t {
    // SAFETY: registered by `adopt` with a pointer from Box::into_raw,
    // and APR runs a cleanup exactly once. Dropping must not unwind into C.
    let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(data.cast::<T>()) }));
    ffi::APR_SUCCESS as ffi::apr_status_t
}
