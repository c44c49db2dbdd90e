//! The `ESF_SESSION` cookie and what is derived from it (SPEC, Sessions).
//!
//! The cookie is `<id>.<mac>`: `id` is 32 random hex digits, `mac` the
//! lowercase hex HMAC-SHA1 of the id under the server-side secret
//! (`EsfSessionSecret`). The front proxy, other app servers and mod_perl
//! (see `perl/`) compute the same MAC with the same secret. A cookie whose
//! MAC does not verify is treated as no cookie. The CSRF token of a session
//! is the HMAC-SHA1 of `csrf:<id>` under the same secret.
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::config::Secret;

pub const COOKIE_NAME: &str = "ESF_SESSION";
const ID_BYTES: usize = 16;

type HmacSha1 = Hmac<Sha1>;

/// What a request's cookie said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieState {
    /// A cookie whose MAC verifies: the session id.
    Valid(String),
    /// A cookie that is malformed or whose MAC does not verify (logged).
    Tampered(String),
}

/// Signs and checks session cookies and CSRF tokens with one secret.
#[derive(Clone)]
pub struct SessionKeys {
    secret: Secret,
}

impl SessionKeys {
    pub fn new(secret: Secret) -> SessionKeys {
        SessionKeys { secret }
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha1 {
        let mut mac = HmacSha1::new_from_slice(self.secret.bytes()).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac
    }

    fn hex_mac(&self, parts: &[&[u8]]) -> String {
        hex(&self.mac(parts).finalize().into_bytes())
    }

    /// The cookie value for a session id: `<id>.<mac>`.
    pub fn cookie_value(&self, id: &str) -> String {
        format!("{id}.{}", self.hex_mac(&[id.as_bytes()]))
    }

    /// Checks a cookie value; the MAC comparison takes constant time.
    pub fn verify(&self, value: &str) -> CookieState {
        let Some((id, mac_hex)) = value.split_once('.') else {
            return CookieState::Tampered(value.to_string());
        };
        let well_formed = is_session_id(id) && mac_hex.len() == 40 && mac_hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        let Some(mac) = well_formed.then(|| unhex(mac_hex)).flatten() else {
            return CookieState::Tampered(value.to_string());
        };
        match self.mac(&[id.as_bytes()]).verify_slice(&mac) {
            Ok(()) => CookieState::Valid(id.to_string()),
            Err(_) => CookieState::Tampered(value.to_string()),
        }
    }

    /// The session's CSRF token.
    pub fn csrf(&self, id: &str) -> String {
        self.hex_mac(&[b"csrf:", id.as_bytes()])
    }

    /// Whether `token` is the session's CSRF token (constant time).
    pub fn csrf_matches(&self, id: &str, token: &str) -> bool {
        unhex(token).is_some_and(|bytes| self.mac(&[b"csrf:", id.as_bytes()]).verify_slice(&bytes).is_ok())
    }

    /// Key material for other purposes (sealed tokens), bound to a label.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"mod_esf"), self.secret.bytes());
        let mut key = [0u8; 32];
        hk.expand(label.as_bytes(), &mut key).expect("32 bytes is a valid HKDF length");
        key
    }
}

/// A fresh random session id: 32 lowercase hex digits.
pub fn new_session_id() -> String {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).expect("the system's random source");
    hex(&bytes)
}

fn is_session_id(id: &str) -> bool {
    id.len() == 2 * ID_BYTES && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `Set-Cookie` value that gives the browser this session.
pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Lax")
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim_matches('"'))
}

/// A session handed out by the front proxy (`EsfSessionIssuer On`) to a
/// request that came without a valid cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSession {
    /// For the response: the `Set-Cookie` value.
    pub set_cookie: String,
    /// For the request as it goes on to the cache or the app server: its
    /// `Cookie` header with the new session in place of any bad one, so
    /// the app server sees the session from the first request on.
    pub cookie_header: String,
    /// The cookie value that failed to verify, to be logged.
    pub rejected: Option<String>,
}

/// A new session for a request whose `Cookie` header (if any) holds no
/// valid `ESF_SESSION`; `None` when it already holds one.
pub fn issue_if_missing(keys: &SessionKeys, cookie_header: Option<&str>) -> Option<IssuedSession> {
    let header = cookie_header.unwrap_or("");
    let rejected = match cookie(header, COOKIE_NAME).map(|value| keys.verify(value)) {
        Some(CookieState::Valid(_)) => return None,
        Some(CookieState::Tampered(value)) => Some(value),
        None => None,
    };
    let value = keys.cookie_value(&new_session_id());
    let mut cookie_header: String = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').is_none_or(|(name, _)| name.trim() != COOKIE_NAME))
        .flat_map(|pair| [pair, "; "])
        .collect();
    cookie_header.push_str(COOKIE_NAME);
    cookie_header.push('=');
    cookie_header.push_str(&value);
    Some(IssuedSession { set_cookie: set_cookie(&value), cookie_header, rejected })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "a-secret-of-enough-bytes").unwrap();
        SessionKeys::new(crate::config::parse_session_secret(path.to_str().unwrap()).unwrap())
    }

    #[test]
    fn cookie_is_id_dot_hmac_sha1_hex() {
        let k = keys();
        let id = "0123456789abcdef0123456789abcdef";
        let value = k.cookie_value(id);
        // Independently: HMAC-SHA1("a-secret-of-enough-bytes", id).
        let mut mac = HmacSha1::new_from_slice(b"a-secret-of-enough-bytes").unwrap();
        mac.update(id.as_bytes());
        assert_eq!(value, format!("{id}.{}", hex(&mac.finalize().into_bytes())));
        assert_eq!(k.verify(&value), CookieState::Valid(id.into()));
    }

    #[test]
    fn tampered_cookies_do_not_verify() {
        let k = keys();
        let id = new_session_id();
        let good = k.cookie_value(&id);
        let other = new_session_id();
        let swapped = format!("{other}.{}", good.split_once('.').unwrap().1);
        for bad in [swapped.as_str(), "nodot", "abc.def", &good.to_uppercase(), &format!("{good}0")] {
            assert!(matches!(k.verify(bad), CookieState::Tampered(_)), "{bad}");
        }
    }

    #[test]
    fn csrf_is_per_session() {
        let k = keys();
        let (a, b) = (new_session_id(), new_session_id());
        assert!(k.csrf_matches(&a, &k.csrf(&a)));
        assert!(!k.csrf_matches(&b, &k.csrf(&a)));
        assert!(!k.csrf_matches(&a, "") && !k.csrf_matches(&a, "zz"));
        assert_ne!(k.csrf(&a), k.cookie_value(&a).split_once('.').unwrap().1, "csrf is not the cookie mac");
    }

    #[test]
    fn ids_are_random_hex() {
        let (a, b) = (new_session_id(), new_session_id());
        assert!(is_session_id(&a) && a != b);
    }

    #[test]
    fn the_issuer_leaves_valid_sessions_alone() {
        let k = keys();
        let good = k.cookie_value(&new_session_id());
        assert_eq!(issue_if_missing(&k, Some(&format!("a=1; ESF_SESSION={good}"))), None);
    }

    #[test]
    fn the_issuer_gives_a_verifiable_cookie_to_the_browser_and_the_request() {
        let k = keys();
        for header in [None, Some(""), Some("ROUTEID=.a; theme=dark")] {
            let issued = issue_if_missing(&k, header).expect("a new session");
            let value = cookie(&issued.cookie_header, COOKIE_NAME).unwrap();
            assert!(matches!(k.verify(value), CookieState::Valid(_)));
            assert_eq!(issued.set_cookie, set_cookie(value));
            assert_eq!(issued.rejected, None);
            if let Some(h) = header.filter(|h| !h.is_empty()) {
                assert!(issued.cookie_header.starts_with(&format!("{h}; ")), "{}", issued.cookie_header);
            }
        }
    }

    #[test]
    fn the_issuer_replaces_a_forged_cookie() {
        let k = keys();
        let forged = format!("{}.{}", new_session_id(), "0".repeat(40));
        let issued = issue_if_missing(&k, Some(&format!("a=1; ESF_SESSION={forged}; b=2"))).unwrap();
        assert_eq!(issued.rejected.as_deref(), Some(forged.as_str()));
        assert!(!issued.cookie_header.contains(&forged));
        assert!(issued.cookie_header.starts_with("a=1; b=2; ESF_SESSION="), "{}", issued.cookie_header);
    }

    #[test]
    fn cookie_header_parsing() {
        assert_eq!(cookie("a=1; ESF_SESSION=x.y; b=2", COOKIE_NAME), Some("x.y"));
        assert_eq!(cookie("ESF_SESSIONX=1", COOKIE_NAME), None);
        assert_eq!(set_cookie("v"), "ESF_SESSION=v; Path=/; HttpOnly; SameSite=Lax");
    }
}
