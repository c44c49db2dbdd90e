//! The hooks mod_esf registers, in the order httpd runs them:
//! `open_logs` (in the parent; see [`super::child_stop`]), `post_config`
//! (in the parent, once per configuration generation), `child_init` (in
//! each child after fork), `post_read_request` and the content `handler`
//! (`SetHandler esf`, and `SetHandler esf-status` for the status page).
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};

use super::child_stop;
use super::config;
use super::ffi;
use super::guard;
use super::log::{self, Level, MessageId};
use super::lmdb_readers;
use super::mpm;
use super::pool::Pool;
use super::shm;
use super::status_shm;
use super::request::Request;

const CONFIGURED: MessageId = MessageId(3);
const CHILD_STARTED: MessageId = MessageId(4);
const PANIC_ANSWERED: MessageId = MessageId(5);
const HANDLER_FAILED: MessageId = MessageId(6);
const NOT_UNLOADED: MessageId = MessageId(7);
const THROTTLE_UNAVAILABLE: MessageId = MessageId(8);
const SESSION_COOKIE_REJECTED: MessageId = MessageId(9);
const SESSION_ISSUER_WITHOUT_SECRET: MessageId = MessageId(10);
const PURGE_WITHOUT_DATABASE: MessageId = MessageId(11);
const STATUS_UNAVAILABLE: MessageId = MessageId(20);
const STATUS_SLOTS_FULL: MessageId = MessageId(24);

/// How often httpd registered this copy of the module's hooks. httpd
/// unloads the .so at every restart, which resets this to 0; above 1 means
/// something (a thread-local destructor run in the parent, say) kept glibc
/// from unloading it, and a new mod_esf.so would be silently ignored.
static REGISTRATIONS: AtomicU32 = AtomicU32::new(0);

/// The handler name: `SetHandler esf`.
pub const HANDLER_NAME: &str = "esf";
/// The status page's: `SetHandler esf-status`.
pub const STATUS_HANDLER_NAME: &str = "esf-status";

const OK: c_int = ffi::OK as c_int;
const DECLINED: c_int = ffi::DECLINED as c_int;
const SERVER_ERROR: c_int = ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;

pub unsafe extern "C" fn register_hooks(_pool: *mut ffi::apr_pool_t) {
    guard::catch(
        || {
            REGISTRATIONS.fetch_add(1, Ordering::Relaxed);
            log::install_log_crate_logger();
            guard::install_panic_hook();
            lmdb_readers::install();
            // SAFETY: called from register_hooks, where httpd expects hook
            // registration; the functions live as long as the module.
            unsafe {
                // Before mod_cache's quick handler, so cache hits get a
                // session too.
                ffi::ap_hook_post_read_request(Some(post_read_request), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
                ffi::ap_hook_post_config(Some(post_config), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
                ffi::ap_hook_child_init(Some(child_init), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
                ffi::ap_hook_handler(Some(handler), std::ptr::null(), std::ptr::null(), ffi::APR_HOOK_MIDDLE as c_int);
                child_stop::register_hooks();
            }
        },
        || (),
    )
}

/// Marks the first startup pass, which httpd runs only to check the
/// configuration before it reads it again for real. Kept in the process
/// pool, which survives reloads of the module.
fn is_first_startup_pass(s: *mut ffi::server_rec) -> bool {
    const KEY: &[u8] = b"esf_module/post_config_seen\0";
    // SAFETY: s->process->pool lives for the whole process; the key is
    // NUL-terminated (APR copies it); the stored pointer is only a marker
    // and is never dereferenced.
    unsafe {
        let pool = (*(*s).process).pool;
        let mut seen: *mut c_void = std::ptr::null_mut();
        ffi::apr_pool_userdata_get(&mut seen, KEY.as_ptr().cast(), pool);
        if !seen.is_null() {
            return false;
        }
        ffi::apr_pool_userdata_set(std::ptr::dangling_mut::<u8>().cast(), KEY.as_ptr().cast(), Some(ffi::apr_pool_cleanup_null), pool);
        true
    }
}

unsafe extern "C" fn post_config(pconf: *mut ffi::apr_pool_t, _plog: *mut ffi::apr_pool_t, _ptemp: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) -> c_int {
    guard::catch(
        || {
            if is_first_startup_pass(s) {
                return OK;
            }
            if REGISTRATIONS.load(Ordering::Relaxed) > 1 {
                log::server(
                    Level::Warn,
                    NOT_UNLOADED,
                    "mod_esf.so was not unloaded by the restart: a newly installed mod_esf.so takes effect only after a full stop and start",
                );
            }
            // One throttle table for the generation, shared by every child.
            // SAFETY: pconf is the live configuration pool.
            match shm::counters(unsafe { Pool::from_raw(pconf) }, crate::site::THROTTLE_SLOTS) {
                // SAFETY: httpd passes the main server; its vhost chain is live.
                Ok(slots) => unsafe { config::all_servers(s) }.iter().for_each(|server| server.set_throttle_slots(slots)),
                Err(e) => log::server(Level::Error, THROTTLE_UNAVAILABLE, &format!("EsfThrottle is not enforced: {e}")),
            }
            // The status table: made once, kept across restarts. Room for
            // twice ServerLimit children: those of an old generation still
            // finishing their requests after a graceful restart, and their
            // replacements.
            // SAFETY: httpd passes the main server; this is the parent.
            match unsafe { status_shm::table(s, 2 * mpm::hard_limit_daemons() + 8) } {
                Ok(table) => crate::status::set_table(table),
                Err(e) => log::server(Level::Error, STATUS_UNAVAILABLE, &format!("the esf-status page has no figures: {e}")),
            }
            // SAFETY: httpd passes the main server; its vhost chain is live.
            for server in unsafe { config::all_servers(s) } {
                if server.config.issues_sessions() && server.keys().is_none() {
                    log::server(Level::Error, SESSION_ISSUER_WITHOUT_SECRET, "EsfSessionIssuer On without EsfSessionSecret: no sessions are issued");
                }
                if server.config.purge_pages.is_some() && server.config.database.is_none() {
                    log::server(Level::Error, PURGE_WITHOUT_DATABASE, "EsfPurgePages without EsfDatabase: pages are not purged when data changes");
                }
            }
            // SAFETY: httpd passes the main server, live for the generation.
            let main = unsafe { &config::server(s).config };
            log::server(
                Level::Notice,
                CONFIGURED,
                &format!(
                    "mod_esf {} configured (generation {}, database {}, object cache {})",
                    env!("CARGO_PKG_VERSION"),
                    mpm::generation(),
                    if main.database.is_some() { "set" } else { "not set" },
                    main.cache_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "not set".into()),
                ),
            );
            OK
        },
        || SERVER_ERROR,
    )
}

unsafe extern "C" fn child_init(pchild: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard::catch(
        || {
            guard::install_panic_hook();
            child_stop::note_child_start();
            match crate::status::claim_slot(mpm::generation().into()) {
                // The slot is freed when the child's pool goes, as it exits.
                // SAFETY: httpd passes the child's pool, live until it exits.
                Ok(lease) => {
                    let _ = unsafe { Pool::from_raw(pchild) }.adopt(lease);
                }
                Err(e) => log::server(Level::Warn, STATUS_SLOTS_FULL, &e),
            }
            // Open each server's data layer now, in the child, so a cache
            // that cannot open is reported at child start.
            // SAFETY: httpd passes the main server; its vhost chain is live.
            for server in unsafe { config::all_servers(s) } {
                server.data(mpm::limits);
                server.start_page_purger();
            }
            log::server(Level::Debug, CHILD_STARTED, &format!("child {} started (generation {})", std::process::id(), mpm::generation()));
        },
        || (),
    )
}

/// `EsfSessionIssuer On`: a request without a valid `ESF_SESSION` gets
/// one, on the response (whatever answers it, the cache included) and on
/// the request itself, so the app server behind sees it at once.
unsafe extern "C" fn post_read_request(r: *mut ffi::request_rec) -> c_int {
    // SAFETY: httpd passes the live request for the duration of the hook.
    let mut req = unsafe { Request::from_raw(r) };
    guard::catch(
        || {
            // SAFETY: the request's server carries our Server record.
            let server = unsafe { config::server((*r).server) };
            let Some((keys, _)) = server.keys().filter(|_| server.config.issues_sessions()) else {
                return DECLINED;
            };
            use esf_core::http::Request as _;
            if let Some(issued) = esf_core::session::issue_if_missing(keys, req.header("Cookie")) {
                if issued.rejected.is_some() {
                    let message = format!("ignored an ESF_SESSION cookie that does not verify, from {}; issued a new session", req.client_ip());
                    req.log(Level::Warn, SESSION_COOKIE_REJECTED, &message);
                }
                req.set_request_header("Cookie", &issued.cookie_header);
                req.add_lasting_response_header("Set-Cookie", &issued.set_cookie);
            }
            DECLINED
        },
        || DECLINED,
    )
}

/// The content handler for `SetHandler esf`.
unsafe extern "C" fn handler(r: *mut ffi::request_rec) -> c_int {
    // SAFETY: httpd passes the live request for the duration of the hook.
    let mut req = unsafe { Request::from_raw(r) };
    match req.handler() {
        Some(HANDLER_NAME) => {}
        Some(STATUS_HANDLER_NAME) => return status_handler(&mut req),
        _ => return DECLINED,
    }
    // SAFETY: the request's per-dir config holds our merged DirConfig, and
    // its server our Server record.
    let (config, server) = unsafe { (config::dir_config(r), config::server((*r).server)) };
    let served = guard::catch(
        || {
            let response = match guard::catch_panic(|| crate::handler::respond(config, server, mpm::limits, &mut req)) {
                Ok(response) => response,
                Err(()) => {
                    req.log(Level::Error, PANIC_ANSWERED, "the handler panicked (see the panic line above); answered with the 500 page");
                    crate::handler::panic_page(config, &req)
                }
            };
            // Counted before sending, so a client that has its response
            // sees it counted on the status page.
            crate::status::record(response.status, req.micros_since_arrival());
            let recycle = crate::recycle::after_response_ready(&server.config);
            if recycle.closes_connection() {
                req.close_connection();
            }
            req.send(&response);
            if let crate::recycle::Decision::Recycle(reason) = recycle {
                crate::recycle::stop_child(reason);
            }
            OK
        },
        || SERVER_ERROR,
    );
    if served != OK {
        log::request(r, Level::Error, HANDLER_FAILED, "the module failed while sending the response; httpd answers 500");
    }
    served
}

/// `SetHandler esf-status`: the status page (`?auto` for machines).
fn status_handler(req: &mut Request) -> c_int {
    use esf_core::http::Request as _;
    guard::catch(
        || {
            let response = crate::status::page(req.query(), mpm::generation().into(), mpm::name());
            req.send(&response);
            OK
        },
        || SERVER_ERROR,
    )
}
