//! The front tier as it ships: a proxy Apache with mod_cache and mod_esf's
//! session issuer in front of two app servers. Cached pages are served
//! without an app server, with sessions issued even on hits and never a
//! cookie in the cache; purge works at once; a crashed app server is
//! routed around with the visitor's cart intact, and the health check
//! takes it out of rotation and back.
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use esf_core::session::{CookieState, SessionKeys, COOKIE_NAME};

use crate::harness::{binary_path, request, HttpResponse, PgCluster};
use crate::tier_fixture::{CookieJar, Tier, ROUTES};

fn keys(tier: &Tier) -> SessionKeys {
    SessionKeys::new(esf_core::config::parse_session_secret(tier.secret.to_str().unwrap()).unwrap())
}

/// The ESF_SESSION value a response sets, if any.
fn session_set_by(response: &HttpResponse) -> Option<String> {
    response
        .headers_named("Set-Cookie")
        .into_iter()
        .find_map(|c| c.split(';').next()?.strip_prefix(&format!("{COOKIE_NAME}=")).map(str::to_string))
}

#[test]
fn cached_pages_get_sessions_never_store_cookies_answer_304_and_purge_at_once() {
    let tier = Tier::start();
    let keys = keys(&tier);
    let page = "/store/product/7";

    let miss = tier.get(page, &[]);
    assert_eq!(miss.status, 200, "{}", miss.text());
    assert_eq!(miss.header("X-Cache").map(|h| h.starts_with("MISS")), Some(true), "{:?}", miss.headers);
    let first_session = session_set_by(&miss).expect("the proxy issues a session on a miss");
    assert!(matches!(keys.verify(&first_session), CookieState::Valid(_)), "{first_session}");
    // An app server logs a request just after it has answered it.
    wait_for("the app server logging the miss", Duration::from_secs(5), || tier.app_requests(page) == 1);

    // A hit, for a visitor who has a session: no cookie at all, and no
    // app server asked.
    let cookie = format!("{COOKIE_NAME}={first_session}");
    let hit = tier.get(page, &[("Cookie", &cookie)]);
    assert_eq!(hit.status, 200);
    assert_eq!(hit.header("X-Cache").map(|h| h.starts_with("HIT")), Some(true), "{:?}", hit.headers);
    assert_eq!(hit.headers_named("Set-Cookie"), Vec::<&str>::new(), "a cached page carries no cookie");
    assert_eq!(hit.body, miss.body);
    assert_eq!(tier.app_requests(page), 1, "the hit was served without an app server");

    // A hit for a new visitor: a new, valid session of its own.
    let new_visitor = tier.get(page, &[]);
    assert_eq!(new_visitor.header("X-Cache").map(|h| h.starts_with("HIT")), Some(true));
    let second_session = session_set_by(&new_visitor).expect("the proxy issues a session on a hit");
    assert!(matches!(keys.verify(&second_session), CookieState::Valid(_)));
    assert_ne!(second_session, first_session);
    assert_eq!(tier.app_requests(page), 1);

    // A forged cookie is replaced, on a hit too.
    let forged = format!("{COOKIE_NAME}={}.{}", "a".repeat(32), "0".repeat(40));
    let replaced = tier.get(page, &[("Cookie", &forged)]);
    assert!(matches!(keys.verify(&session_set_by(&replaced).expect("a forged session is replaced")), CookieState::Valid(_)));

    // If-Modified-Since the page's Last-Modified: 304 from the cache.
    let last_modified = miss.header("Last-Modified").expect("Last-Modified").to_string();
    let not_modified = tier.get(page, &[("Cookie", &cookie), ("If-Modified-Since", &last_modified)]);
    assert_eq!(not_modified.status, 304, "{:?}", not_modified.headers);
    assert!(not_modified.body.is_empty());
    assert_eq!(tier.app_requests(page), 1);

    // Nothing the cache stored holds a cookie.
    let stored = cache_header_files(&tier.front.root.join("page-cache"));
    assert!(!stored.is_empty(), "the page is in the disk cache");
    for (path, text) in &stored {
        assert!(!text.to_ascii_lowercase().contains("set-cookie"), "{path} holds a cookie: {text}");
    }

    // Purge: the next request goes to an app server.
    let out = Command::new(binary_path("esf-cli", "esf"))
        .args(["purge", "--cache-root"])
        .arg(tier.front.root.join("page-cache"))
        .arg(page)
        .output()
        .expect("run esf purge");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("purged http://store.invalid/store/product/7?"), "{said}{}", String::from_utf8_lossy(&out.stderr));
    let after = tier.get(page, &[("Cookie", &cookie)]);
    assert_eq!(after.header("X-Cache").map(|h| h.starts_with("MISS")), Some(true), "{:?}", after.headers);
    wait_for("an app server answering after the purge", Duration::from_secs(5), || tier.app_requests(page) == 2);

    // A change to the product in the database, by plain SQL: the proxy
    // drops the page by itself, and the next visitor sees the new price.
    let cached = tier.get(page, &[("Cookie", &cookie)]);
    assert!(cached.header("X-Cache").is_some_and(|h| h.starts_with("HIT")) && !cached.text().contains("$4321.00"));
    PgCluster::shared().psql(&tier.db, "UPDATE products SET price_cents = 432100 WHERE id = 7");
    wait_for("the changed product's page leaving the proxy cache", Duration::from_secs(5), || {
        let r = tier.get(page, &[("Cookie", &cookie)]);
        r.text().contains("$4321.00")
    });

    // Static files are the proxy's own.
    let file = tier.get("/static.html", &[]);
    assert_eq!((file.status, file.body.len()), (200, 1000));
    assert_eq!(tier.app_requests("/static.html"), 0);
}

/// The `.header` files of a mod_cache_disk cache: (path, contents).
fn cache_header_files(root: &std::path::Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "header") {
                found.push((path.display().to_string(), String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()));
            }
        }
    }
    found
}

/// A browser on the front proxy: keeps every cookie it is given.
struct Browser {
    port: u16,
    cookies: CookieJar,
}

impl Browser {
    fn send(&mut self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<&str>) -> HttpResponse {
        let jar = self.cookies.header();
        let mut headers = extra.to_vec();
        if !jar.is_empty() {
            headers.push(("Cookie", &jar));
        }
        let response = request(self.port, method, path, &headers, body.map(str::as_bytes)).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.cookies.keep(&response);
        response
    }

    fn add_to_cart(&mut self, product: i32, qty: i32) -> HttpResponse {
        let origin = format!("http://127.0.0.1:{}", self.port);
        let form = format!("product_id={product}&qty={qty}");
        self.send("POST", "/store/cart/add", &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", &origin)], Some(&form))
    }

    fn route(&self) -> Option<usize> {
        let route = self.cookies.get("ESF_ROUTE")?.trim_start_matches('.');
        ROUTES.iter().position(|r| *r == route)
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_crashed_app_server_is_routed_around_with_the_cart_intact_and_health_checked_back() {
    let mut tier = Tier::start();
    let mut shopper = Browser { port: tier.front.port, cookies: CookieJar::default() };
    assert_eq!(shopper.send("GET", "/store/product/3", &[], None).status, 200);
    let session = shopper.cookies.get(COOKIE_NAME).cloned().expect("a session from the proxy");
    assert_eq!(shopper.add_to_cart(3, 2).status, 303);
    let home = shopper.route().expect("a route cookie after a request an app server answered");
    let cart = shopper.send("GET", "/store/cart", &[], None);
    assert!(cart.text().contains("/store/product/3\""), "{}", cart.text());
    assert_eq!(shopper.route(), Some(home), "the session stays on its app server");

    wait_for("both app servers healthy", Duration::from_secs(10), || (0..2).all(|i| tier.member_status(i).ends_with("Ok")));

    // The health check alone (no visitor is sent there) takes a dead app
    // server out of rotation, and brings it back when it answers again.
    let other = 1 - home;
    tier.apps[other].crash();
    wait_for("the health check marking the dead app server", Duration::from_secs(10), || tier.member_status(other).contains("HcFl"));
    for _ in 0..6 {
        assert_eq!(tier.get("/store/cart", &[]).status, 200, "new visitors only reach the live app server");
    }
    tier.apps[other].revive();
    wait_for("the health check re-adding the app server", Duration::from_secs(10), || tier.member_status(other).ends_with("Ok"));
    let served_before = tier.apps[other].access_log_lines();
    wait_for("the revived app server getting new visitors", Duration::from_secs(10), || {
        tier.get("/store/cart", &[]);
        tier.apps[other].access_log_lines() > served_before
    });

    // The shopper's own app server dies: browsing carries on at once on
    // the other one, same session and the same cart (from PostgreSQL).
    tier.apps[home].crash();
    let cart = shopper.send("GET", "/store/cart", &[], None);
    assert_eq!(cart.status, 200, "{}", cart.text());
    assert!(cart.text().contains("/store/product/3\""), "the cart survived: {}", cart.text());
    assert!(cart.text().contains("value=\"2\""), "with its quantity: {}", cart.text());
    assert_eq!(shopper.cookies.get(COOKIE_NAME), Some(&session), "the session carried on");
    assert_eq!(shopper.route(), Some(other), "the visitor moved to the other app server");
    assert_eq!(shopper.add_to_cart(5, 1).status, 303);
    wait_for("the dead app server leaving rotation", Duration::from_secs(10), || !tier.member_status(home).ends_with("Ok"));
    tier.apps[home].revive();
    wait_for("the app server coming back", Duration::from_secs(10), || tier.member_status(home).ends_with("Ok"));
    let cart = shopper.send("GET", "/store/cart", &[], None);
    assert!(cart.text().contains("/store/product/3\"") && cart.text().contains("/store/product/5\""), "{}", cart.text());
}
