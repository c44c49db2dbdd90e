//! Keeping panics out of C.
//!
//! Since Rust 1.81 a panic that unwinds into a C frame aborts the process: in
//! an event-MPM child that drops every connection the child holds. Every
//! function httpd calls runs its Rust under [`catch`]; the panic hook logs
//! the message and location first.
use std::panic::{self, AssertUnwindSafe};

use super::log::{self, Level, MessageId};

const PANIC: MessageId = MessageId(2);

/// Runs `body`; a panic becomes `on_panic`'s value instead of unwinding.
///
/// `AssertUnwindSafe` is sound here because nothing the closure touched is
/// used again after a panic except through `on_panic`, which builds fresh
/// values (an error page, an error string).
pub fn catch<T>(body: impl FnOnce() -> T, on_panic: impl FnOnce() -> T) -> T {
    catch_panic(body).unwrap_or_else(|()| on_panic())
}

/// Logs every panic with its message and location on the error log.
/// Replaces std's default hook, which would print to stderr without the
/// module's tag (and would look up the current thread, which registers a
/// thread-local destructor that keeps the module from unloading).
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        log::server(Level::Error, PANIC, &format!("panic at {location}: {message}"));
    }));
}

/// Runs `body`; `Err(())` if it panicked (the hook has logged it).
pub fn catch_panic<T>(body: impl FnOnce() -> T) -> Result<T, ()> {
    panic::catch_unwind(AssertUnwindSafe(body)).map_err(|_| ())
}
