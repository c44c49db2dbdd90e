//! What a controller works with besides the request: where pages render,
//! the data layer, the session keys, the throttle, and the checks that
//! decide who a visitor is and whether a form may be accepted.
use std::time::{SystemTime, UNIX_EPOCH};

use esf_data::DataLayer;

use crate::config::Throttle;
use crate::http::{form_value, BodyError, Request, Response};
use crate::pages::Pages;
use crate::sealed::Sealer;
use crate::session::{self, CookieState, SessionKeys};
use crate::throttle::{Counters, Verdict};

/// Largest form body the store accepts (413 beyond, before it is read).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

pub struct Context<'a> {
    pub pages: Pages<'a>,
    pub data: Option<&'a DataLayer>,
    /// `None` without `EsfSessionSecret`: session pages then answer 503.
    pub keys: Option<&'a SessionKeys>,
    pub sealer: Option<&'a Sealer>,
    pub throttle: Option<(Throttle, Counters<'a>)>,
    /// `EsfOrigin`: the store's public origin when it is behind a proxy.
    pub origin: Option<&'a str>,
}

/// A form posted in a session and proven by the session's csrf.
pub struct SessionPost<'a> {
    pub form: String,
    pub data: &'a DataLayer,
    pub session_id: String,
}

/// The session a session page or POST works in.
pub struct Visit {
    pub id: String,
    /// A new session's `Set-Cookie`, to send with the response.
    pub set_cookie: Option<String>,
}

impl Visit {
    /// Adds the new session's cookie, if any, and `Cache-Control: private`.
    pub fn respond(&self, response: Response) -> Response {
        let response = response.private();
        match &self.set_cookie {
            Some(cookie) => response.with_header("Set-Cookie", cookie.clone()),
            None => response,
        }
    }
}

impl<'a> Context<'a> {
    /// The data layer, or the 503 page when this server has none.
    pub fn data(&self) -> Result<&'a DataLayer, Response> {
        self.data.ok_or_else(|| {
            log::error!("a store page needs EsfDatabase (and EsfCacheDir) on this server");
            self.pages.error(503, "The store is not available right now. Please try again later.")
        })
    }

    fn keys(&self) -> Result<&'a SessionKeys, Response> {
        self.keys.ok_or_else(|| {
            log::error!("session pages need EsfSessionSecret on this server");
            self.pages.error(503, "The store is not available right now. Please try again later.")
        })
    }

    /// The visitor's session id from a cookie that verifies, if any; a
    /// cookie that does not verify is logged and ignored.
    pub fn session_id(&self, req: &dyn Request) -> Option<String> {
        let keys = self.keys?;
        let value = session::cookie(req.header("Cookie")?, session::COOKIE_NAME)?;
        match keys.verify(value) {
            CookieState::Valid(id) => Some(id),
            CookieState::Tampered(_) => {
                log::warn!("ignored an ESF_SESSION cookie that does not verify, from {}", req.client_ip());
                None
            }
        }
    }

    /// The visitor's session, or a new one with its cookie.
    pub fn visit(&self, req: &dyn Request) -> Result<Visit, Response> {
        let keys = self.keys()?;
        Ok(match self.session_id(req) {
            Some(id) => Visit { id, set_cookie: None },
            None => {
                let id = session::new_session_id();
                let set_cookie = Some(session::set_cookie(&keys.cookie_value(&id)));
                Visit { id, set_cookie }
            }
        })
    }

    /// The session's CSRF token for forms.
    pub fn csrf(&self, session_id: &str) -> String {
        self.keys.map(|k| k.csrf(session_id)).unwrap_or_default()
    }

    /// Whether the form carries the session's CSRF token.
    pub fn csrf_ok(&self, session_id: &str, form: &str) -> bool {
        let token = form_value(Some(form), "csrf");
        self.keys.zip(token).is_some_and(|(k, t)| k.csrf_matches(session_id, &t))
    }

    /// Whether the request comes from the store's own pages: its `Origin`
    /// (or, lacking one, its `Referer`) is the origin the request was made
    /// to (scheme and Host) or the configured `EsfOrigin`.
    pub fn same_origin(&self, req: &dyn Request) -> bool {
        let claimed = match req.header("Origin") {
            Some(origin) => origin.trim_end_matches('/').to_string(),
            None => match req.header("Referer").and_then(origin_of) {
                Some(origin) => origin,
                None => return false,
            },
        };
        let own = req.header("Host").map(|host| format!("{}://{}", req.scheme(), host));
        own.is_some_and(|own| claimed.eq_ignore_ascii_case(&own)) || self.origin.is_some_and(|o| claimed.eq_ignore_ascii_case(o.trim_end_matches('/')))
    }

    /// A POST that must carry the session's csrf (`cart/update`,
    /// `checkout`): the form, the data layer and the session, or the page
    /// that refuses it (413, 400, 503, or 403 without the right csrf).
    pub fn csrf_post(&self, req: &mut dyn Request) -> Result<SessionPost<'a>, Response> {
        let form = self.form(req).map_err(Response::private)?;
        let data = self.data()?;
        match self.session_id(req).filter(|id| self.csrf_ok(id, &form)) {
            Some(session_id) => Ok(SessionPost { form, data, session_id }),
            None => Err(self.pages.error(403, "This form has expired. Please reload your cart and try again.").private()),
        }
    }

    /// Reads a form body: 413 past [`MAX_FORM_BYTES`], 400 if unreadable.
    pub fn form(&self, req: &mut dyn Request) -> Result<String, Response> {
        match req.read_body(MAX_FORM_BYTES) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| self.pages.error(400, "The form could not be read.")),
            Err(BodyError::TooLarge) => Err(self.pages.error(413, "That form is too large.")),
            Err(BodyError::Unreadable(why)) => {
                log::info!("unreadable request body: {why}");
                Err(self.pages.error(400, "The form could not be read."))
            }
        }
    }

    /// Counts the request against `EsfThrottle`; the 429 page when over.
    pub fn throttle(&self, req: &dyn Request) -> Result<(), Response> {
        let Some((rule, counters)) = &self.throttle else { return Ok(()) };
        let user = self.session_id(req).unwrap_or_else(|| req.client_ip().to_string());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        match counters.hit(*rule, &user, now) {
            Verdict::Allowed => Ok(()),
            Verdict::Limited { retry_after } => Err(self
                .pages
                .error(429, "You are going a little fast. Please wait a moment and try again.")
                .private()
                .with_header("Retry-After", retry_after.to_string())),
        }
    }
}

/// `https://host:port` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_of_urls() {
        assert_eq!(origin_of("http://shop.test:8080/store/product/1?x").as_deref(), Some("http://shop.test:8080"));
        assert_eq!(origin_of("https://a.b").as_deref(), Some("https://a.b"));
        assert_eq!(origin_of("/relative"), None);
    }
}
