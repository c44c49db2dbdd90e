//! One HTTP request as httpd hands it to the handler: read it, answer it.
use std::ffi::{c_char, CStr};
use std::marker::PhantomData;

use esf_core::http::{BodyError, Request as HttpRequest, Response};

use super::ffi;
use super::log::{self, Level, MessageId};
use super::pool::Pool;

/// A borrowed `request_rec` for the duration of one handler call.
pub struct Request<'r> {
    raw: *mut ffi::request_rec,
    _life: PhantomData<&'r mut ffi::request_rec>,
}

/// Longest header name looked up without allocating.
const HEADER_NAME_MAX: usize = 128;

impl<'r> Request<'r> {
    /// # Safety
    /// `raw` is the live request httpd passed to a hook, used only during it.
    pub unsafe fn from_raw(raw: *mut ffi::request_rec) -> Request<'r> {
        Request { raw, _life: PhantomData }
    }

    fn rec(&self) -> &ffi::request_rec {
        // SAFETY: live for 'r (from_raw's contract).
        unsafe { &*self.raw }
    }

    fn pool(&self) -> Pool<'r> {
        // SAFETY: the request pool lives as long as the request.
        unsafe { Pool::from_raw(self.rec().pool) }
    }

    /// The handler named by `SetHandler`/`AddHandler`, if any.
    pub fn handler(&self) -> Option<&str> {
        c_field(self.rec().handler)
    }

    /// The path of the innermost configuration section that applies to the
    /// request (`/store` for `<Location /store>`), as mod_perl's
    /// `$r->location`: core's per-directory record keeps it.
    pub fn section_path(&self) -> Option<&'r str> {
        // SAFETY: core's per-dir record exists for every request and lives in
        // the configuration or request pool, both outliving the request.
        unsafe {
            let core = ffi::ap_get_core_module_config(self.rec().per_dir_config).cast::<ffi::core_dir_config>();
            if core.is_null() {
                return None;
            }
            c_field((*core).d)
        }
    }

    pub fn log(&self, level: Level, id: MessageId, message: &str) {
        log::request(self.raw, level, id, message);
    }

    /// Replaces request header `name` for the rest of the request's
    /// processing (the cache, a proxied backend, handlers).
    pub fn set_request_header(&mut self, name: &str, value: &str) {
        let pool = self.pool();
        // SAFETY: headers_in is the request's live table; both strings are
        // pool copies that live as long as the request.
        unsafe { ffi::apr_table_set(self.rec().headers_in, pool.c_str(name), pool.c_str(value)) }
    }

    /// Adds a response header that is sent whatever answers the request:
    /// a handler, a proxied backend, the cache or an error page
    /// (`err_headers_out`).
    pub fn add_lasting_response_header(&mut self, name: &str, value: &str) {
        let pool = self.pool();
        // SAFETY: err_headers_out is the request's live table; both strings
        // are pool copies that live as long as the request.
        unsafe { ffi::apr_table_add(self.rec().err_headers_out, pool.c_str(name), pool.c_str(value)) }
    }

    /// Ends the connection after this response (`Connection: close`), as
    /// a child about to exit does.
    pub fn close_connection(&mut self) {
        // SAFETY: r->connection is the request's live connection; httpd
        // reads `keepalive` when it writes the response headers.
        unsafe { (*self.rec().connection).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE }
    }

    /// Microseconds since httpd started reading the request.
    pub fn micros_since_arrival(&self) -> u64 {
        // SAFETY: apr_time_now has no preconditions.
        let now = unsafe { ffi::apr_time_now() };
        u64::try_from(now - self.rec().request_time).unwrap_or(0)
    }

    /// Sends `response`: status, headers, content type and body.
    pub fn send(&mut self, response: &Response) {
        let pool = self.pool();
        // SAFETY: the request is live and ours for this handler call; every
        // string handed to httpd is a pool copy that lives as long as it.
        unsafe {
            let r = &mut *self.raw;
            r.status = i32::from(response.status);
            for (name, value) in &response.headers {
                // add, not set: a response may carry several Set-Cookie.
                ffi::apr_table_add(r.headers_out, pool.c_str(name), pool.c_str(value));
            }
            ffi::ap_set_content_type(self.raw, pool.c_str(response.content_type));
            ffi::ap_set_content_length(self.raw, response.body.len() as ffi::apr_off_t);
            if r.header_only == 0 && !response.body.is_empty() {
                ffi::ap_rwrite(response.body.as_ptr().cast(), response.body.len() as i32, self.raw);
            }
        }
    }
}

fn c_field<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: request_rec string fields are NULL or NUL-terminated strings in
    // the request pool, which outlives the borrow.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().ok()).flatten()
}

impl HttpRequest for Request<'_> {
    fn method(&self) -> &str {
        c_field(self.rec().method).unwrap_or("")
    }

    fn path(&self) -> &str {
        // A path that is not UTF-8 cannot name any route: it gets the 404 page.
        c_field(self.rec().uri).unwrap_or("/\u{fffd}")
    }

    fn query(&self) -> Option<&str> {
        c_field(self.rec().args)
    }

    fn scheme(&self) -> &str {
        // SAFETY: the request is live; the hook returns a static or pool string.
        c_field(unsafe { ffi::ap_run_http_scheme(self.raw) }).unwrap_or("http")
    }

    fn client_ip(&self) -> &str {
        c_field(self.rec().useragent_ip).unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        let mut key = [0u8; HEADER_NAME_MAX + 1];
        if name.len() > HEADER_NAME_MAX || name.as_bytes().contains(&0) {
            return None;
        }
        key[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: headers_in is the request's live table; `key` is
        // NUL-terminated; the value lives in the request pool.
        c_field(unsafe { ffi::apr_table_get(self.rec().headers_in, key.as_ptr().cast()) })
    }

    fn read_body(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        if let Some(length) = self.header("Content-Length") {
            match length.trim().parse::<u64>() {
                Ok(n) if n > limit as u64 => return Err(BodyError::TooLarge),
                Ok(_) => {}
                Err(_) => return Err(BodyError::Unreadable(format!("bad Content-Length {length:?}"))),
            }
        }
        // SAFETY: the standard client-block protocol on the live request.
        unsafe {
            if ffi::ap_setup_client_block(self.raw, ffi::REQUEST_CHUNKED_DECHUNK as i32) != ffi::OK as i32 {
                return Err(BodyError::Unreadable("the body could not be set up for reading".into()));
            }
            if ffi::ap_should_client_block(self.raw) == 0 {
                return Ok(Vec::new());
            }
        }
        let mut body = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            // SAFETY: `chunk` is writable for its length.
            let n = unsafe { ffi::ap_get_client_block(self.raw, chunk.as_mut_ptr().cast(), chunk.len()) };
            match n {
                0 => return Ok(body),
                n if n < 0 => return Err(BodyError::Unreadable("the client stopped sending the body".into())),
                n => {
                    body.extend_from_slice(&chunk[..n as usize]);
                    if body.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                }
            }
        }
    }
}
