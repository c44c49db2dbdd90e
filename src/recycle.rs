//! `EsfMaxRequestsPerChild` and `EsfMaxChildMemory` in a child: after each
//! request `SetHandler esf` served, the child counts it and, with a memory
//! limit, reads its resident size. Past a limit, that request's response
//! closes its connection and the child asks the MPM to stop it gracefully
//! (`apache::stop_child_gracefully`): no request in flight on any thread
//! is cut short, and every later response of the child closes its
//! connection too, so keep-alive clients move to another child.
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use esf_core::config::ServerConfig;
use esf_core::recycle::{Limits, Reason};
use parking_lot::Mutex;

use crate::apache::log::{self, Level, MessageId};
use crate::apache::StopError;
use crate::procfs;

const RECYCLED: MessageId = MessageId(21);
const CANNOT_RECYCLE: MessageId = MessageId(22);
const STILL_SERVING: MessageId = MessageId(23);

/// How long a child asked to stop may go on serving before that is logged.
const STOP_EXPECTED_WITHIN_SECS: u64 = 30;

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
/// The MPM cannot be asked: the limits are not enforced in this child.
const UNABLE: u8 = 2;

static SERVED: AtomicU64 = AtomicU64::new(0);
static STATE: AtomicU8 = AtomicU8::new(RUNNING);
static STOP_ASKED: Mutex<Option<Instant>> = Mutex::new(None);

/// What to do about the response that is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// The child is stopping: this response closes its connection.
    Close,
    /// This request reached a limit: close its connection, send it, then
    /// call [`stop_child`].
    Recycle(Reason),
}

impl Decision {
    pub fn closes_connection(&self) -> bool {
        !matches!(self, Decision::Continue)
    }
}

/// Counts the request whose response is ready and checks the limits.
pub fn after_response_ready(config: &ServerConfig) -> Decision {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    match STATE.load(Ordering::Relaxed) {
        STOPPING => {
            warn_if_still_serving();
            return Decision::Close;
        }
        UNABLE => return Decision::Continue,
        _ => {}
    }
    let limits = Limits::of(config);
    let rss = if limits.watches_memory() { procfs::own_private_rss_bytes() } else { None };
    match limits.exceeded(served, rss) {
        // One thread gets to stop the child.
        Some(reason) if STATE.compare_exchange(RUNNING, STOPPING, Ordering::Relaxed, Ordering::Relaxed).is_ok() => Decision::Recycle(reason),
        Some(_) => Decision::Close,
        None => Decision::Continue,
    }
}

/// Asks the MPM to stop this child gracefully, once the response of the
/// request that reached the limit has been handed to httpd.
pub fn stop_child(reason: Reason) {
    let pid = std::process::id();
    match crate::apache::stop_child_gracefully() {
        Ok(()) => {
            *STOP_ASKED.lock() = Some(Instant::now());
            crate::status::count_recycled();
            log::server(Level::Notice, RECYCLED, &format!("child {pid} recycled {reason}; it exits once its requests in flight are done"));
        }
        // The child is still starting: the next request asks again.
        Err(StopError::NotYet) => STATE.store(RUNNING, Ordering::Relaxed),
        Err(StopError::Unable(why)) => {
            STATE.store(UNABLE, Ordering::Relaxed);
            log::server(
                Level::Warn,
                CANNOT_RECYCLE,
                &format!("child {pid} reached its limit ({reason}) but cannot be stopped gracefully: {why}; it keeps serving"),
            );
        }
    }
}

/// A child that was asked to stop long ago and still gets requests has
/// not been stopped by its MPM: say so, once.
fn warn_if_still_serving() {
    let mut asked = STOP_ASKED.lock();
    if let Some(when) = *asked {
        if when.elapsed().as_secs() >= STOP_EXPECTED_WITHIN_SECS {
            *asked = None;
            let message = format!(
                "child {} was asked to stop {STOP_EXPECTED_WITHIN_SECS} s ago and still serves requests: its MPM did not act on the graceful stop",
                std::process::id()
            );
            log::server(Level::Warn, STILL_SERVING, &message);
        }
    }
}
