//! Writing to httpd's error log with the module's tag (`[esf:LEVEL]`).
//!
//! Messages carry numbers in the style of httpd's `AHnnnnn` (see
//! [`MessageId`]) so an admin can grep for one. The [`log`] crate's macros,
//! used by `esf-core`, end up here too, on the main server's log.
use std::ffi::{c_char, c_int};
use std::fmt;

use super::ffi;
use super::module::module_index;

/// `ESFnnnnn: ` in front of a message, like httpd's APLOGNO.
#[derive(Clone, Copy, Debug)]
pub struct MessageId(pub u16);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ESF{:05}: ", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

impl Level {
    fn raw(self) -> c_int {
        (match self {
            Level::Error => ffi::APLOG_ERR,
            Level::Warn => ffi::APLOG_WARNING,
            Level::Notice => ffi::APLOG_NOTICE,
            Level::Info => ffi::APLOG_INFO,
            Level::Debug => ffi::APLOG_DEBUG,
        }) as c_int
    }
}

const FILE: &[u8] = b"mod_esf\0";
const PERCENT_S: &[u8] = b"%s\0";

/// Builds the NUL-terminated line; interior NULs would cut the C string short,
/// so they are shown as `\0`.
fn c_line(id: Option<MessageId>, message: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(message.len() + 12);
    if let Some(id) = id {
        line.extend_from_slice(id.to_string().as_bytes());
    }
    for &b in message.as_bytes() {
        if b == 0 {
            line.extend_from_slice(b"\\0");
        } else {
            line.push(b);
        }
    }
    line.push(0);
    line
}

/// Logs on the main server (`ap_server_conf`): for messages with no request.
pub fn server(level: Level, id: MessageId, message: &str) {
    let line = c_line(Some(id), message);
    // SAFETY: ap_server_conf is set by httpd before any module code runs and
    // lives for the process; "%s" with a NUL-terminated buffer is a valid
    // variadic call; the buffer outlives the call.
    unsafe {
        ffi::ap_log_error_(
            FILE.as_ptr().cast(),
            0,
            module_index(),
            level.raw(),
            0,
            ffi::ap_server_conf,
            PERCENT_S.as_ptr().cast::<c_char>(),
            line.as_ptr().cast::<c_char>(),
        );
    }
}

/// Logs for a request: httpd adds the client address and, at some levels,
/// the request line.
pub(crate) fn request(r: *const ffi::request_rec, level: Level, id: MessageId, message: &str) {
    let line = c_line(Some(id), message);
    // SAFETY: `r` is the live request the caller is handling; see `server`.
    unsafe {
        ffi::ap_log_rerror_(
            FILE.as_ptr().cast(),
            0,
            module_index(),
            level.raw(),
            0,
            r,
            PERCENT_S.as_ptr().cast::<c_char>(),
            line.as_ptr().cast::<c_char>(),
        );
    }
}

/// Forwards the `log` crate (used by esf-core) to the error log.
struct ErrorLog;

static ERROR_LOG: ErrorLog = ErrorLog;

/// Message number for lines that come through the `log` crate.
const FROM_LOG_CRATE: MessageId = MessageId(1);

impl log::Log for ErrorLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true // httpd's LogLevel filters
    }

    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warn,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        };
        server(level, FROM_LOG_CRATE, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Routes the `log` crate here. Once per loaded copy of the module; a
/// second call (the module was not unloaded) keeps the first, which is
/// the same logger.
pub fn install_log_crate_logger() {
    if log::set_logger(&ERROR_LOG).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}
