//! What a controller sees of HTTP: a request it can read and the response it
//! returns. The module's Apache layer implements [`Request`] over httpd's
//! `request_rec`; tests implement it over plain values.
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use esf_data::part::Freshness;

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (413); nothing more is read.
    TooLarge,
    /// The client sent something unreadable or went away (400).
    Unreadable(String),
}

pub trait Request {
    /// `GET`, `POST`, ...
    fn method(&self) -> &str;
    /// The decoded URL path (`/store/hello`).
    fn path(&self) -> &str;
    /// The raw query string, without the `?`.
    fn query(&self) -> Option<&str>;
    /// A request header, by case-insensitive name.
    fn header(&self, name: &str) -> Option<&str>;
    /// `http` or `https`, as the request reached this server.
    fn scheme(&self) -> &str;
    /// The client's address (for throttling visitors without a session).
    fn client_ip(&self) -> &str;
    /// The body, refused with [`BodyError::TooLarge`] past `limit` bytes
    /// (before reading it when the client announced its length).
    fn read_body(&mut self, limit: usize) -> Result<Vec<u8>, BodyError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

pub const HTML: &str = "text/html; charset=utf-8";

impl Response {
    pub fn html(status: u16, body: String) -> Response {
        Response { status, content_type: HTML, headers: Vec::new(), body }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Lets shared caches keep the page while its data is fresh:
    /// `Cache-Control: public, max-age`, `Expires` and `Last-Modified`.
    /// An error page is left as it is.
    pub fn cacheable(self, freshness: Freshness, now: SystemTime) -> Response {
        if self.status != 200 {
            return self;
        }
        let modified = UNIX_EPOCH + Duration::from_secs(u64::try_from(freshness.modified).unwrap_or(0));
        self.with_header("Cache-Control", format!("public, max-age={}", freshness.max_age(now)))
            .with_header("Expires", httpdate::fmt_http_date(freshness.expires_at.max(now)))
            .with_header("Last-Modified", httpdate::fmt_http_date(modified.min(now)))
    }

    /// `303 See Other` to `location` (after a POST).
    pub fn see_other(location: String) -> Response {
        Response::html(303, String::new()).with_header("Location", location)
    }

    /// A page that belongs to one session: never stored by any cache.
    pub fn private(self) -> Response {
        self.with_header("Cache-Control", "private, no-store")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The first value of `key` in a query string or form body, percent-decoded.
pub fn form_value<'a>(encoded: Option<&'a str>, key: &str) -> Option<Cow<'a, str>> {
    form_urlencoded::parse(encoded?.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The reason phrase for the statuses the store answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
pub mod testing {
    //! A [`Request`] made of plain values, for controller tests.
    use super::*;

    #[derive(Debug, Default, Clone)]
    pub struct FakeRequest {
        pub method: String,
        pub path: String,
        pub query: Option<String>,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl FakeRequest {
        pub fn get(path_and_query: &str) -> FakeRequest {
            let (path, query) = match path_and_query.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (path_and_query.to_string(), None),
            };
            FakeRequest { method: "GET".into(), path, query, headers: vec![("Host".into(), "shop.test".into())], ..Default::default() }
        }

        pub fn post(path: &str, body: &str) -> FakeRequest {
            FakeRequest { method: "POST".into(), body: body.as_bytes().to_vec(), ..FakeRequest::get(path) }
        }

        pub fn with_header(mut self, name: &str, value: &str) -> FakeRequest {
            self.headers.push((name.into(), value.into()));
            self
        }
    }

    impl Request for FakeRequest {
        fn method(&self) -> &str {
            &self.method
        }
        fn path(&self) -> &str {
            &self.path
        }
        fn query(&self) -> Option<&str> {
            self.query.as_deref()
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
        fn scheme(&self) -> &str {
            "http"
        }
        fn client_ip(&self) -> &str {
            "127.0.0.1"
        }
        fn read_body(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
            if self.body.len() > limit {
                return Err(BodyError::TooLarge);
            }
            Ok(self.body.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cacheable_pages_carry_the_shortest_ttl() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let freshness = Freshness { expires_at: now + Duration::from_secs(30), modified: 1_699_999_000 };
        let r = Response::html(200, String::new()).cacheable(freshness, now);
        assert_eq!(r.header("Cache-Control"), Some("public, max-age=30"));
        assert_eq!(r.header("Expires"), Some("Tue, 14 Nov 2023 22:13:50 GMT"));
        assert_eq!(r.header("Last-Modified"), Some("Tue, 14 Nov 2023 21:56:40 GMT"));
        let e = Response::html(404, String::new()).cacheable(freshness, now);
        assert_eq!(e.header("Cache-Control"), None);
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(form_value(Some("a=1&name=Zo%C3%AB+x"), "name").as_deref(), Some("Zoë x"));
        assert_eq!(form_value(Some("a=1"), "name"), None);
        assert_eq!(form_value(None, "name"), None);
    }
}
