//! The store's session side through a real httpd: the ESF_SESSION cookie,
//! CSRF and same-origin rules, the cart, checkout (409 with nothing
//! changed, never twice), order privacy, body limits and throttling.
use crate::harness::{request, HttpResponse, Mpm, PgCluster};
use crate::store_fixture::{store_database, store_httpd};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// A browser: keeps the session cookie and the latest csrf it saw.
struct Shopper {
    port: u16,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Shopper {
    fn new(port: u16) -> Shopper {
        Shopper { port, cookie: None, csrf: None }
    }

    fn send(&mut self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<&str>) -> HttpResponse {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        let cookie = self.cookie.clone();
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        let r = request(self.port, method, path, &headers, body.map(str::as_bytes)).unwrap();
        if let Some(set) = r.header("Set-Cookie") {
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        if let Some(pos) = r.text().find("name=\"csrf\" value=\"") {
            let rest = &r.text()[pos + 19..];
            self.csrf = Some(rest[..rest.find('"').unwrap()].to_string());
        }
        r
    }

    fn get(&mut self, path: &str) -> HttpResponse {
        self.send("GET", path, &[], None)
    }

    fn post(&mut self, path: &str, body: &str) -> HttpResponse {
        let body = match &self.csrf {
            Some(csrf) => format!("{body}&csrf={csrf}"),
            None => body.to_string(),
        };
        self.send("POST", path, &[FORM], Some(&body))
    }

    /// As the public product page's form posts: no csrf, same origin.
    fn add_from_product_page(&mut self, product: i32, qty: i32) -> HttpResponse {
        let origin = format!("http://127.0.0.1:{}", self.port);
        let referer = format!("{origin}/store/product/{product}");
        self.send("POST", "/store/cart/add", &[FORM, ("Origin", &origin), ("Referer", &referer)], Some(&format!("product_id={product}&qty={qty}")))
    }
}

fn on_hand(db: &str, product: i32) -> String {
    PgCluster::shared().psql(db, &format!("SELECT on_hand FROM inventory WHERE product_id = {product}"))
}

#[test]
fn sessions_carts_checkout_and_orders() {
    let db = store_database(PgCluster::shared(), "store");
    PgCluster::shared().psql(&db, "UPDATE inventory SET on_hand = 4 WHERE product_id = 5; UPDATE inventory SET on_hand = 50 WHERE product_id = 6");
    let httpd = store_httpd(Mpm::Event, &db, "");
    let mut ann = Shopper::new(httpd.port);

    // Public pages set no cookie; the cart page issues one.
    assert!(ann.get("/store/product/5").header("Set-Cookie").is_none());
    let r = ann.get("/store/cart");
    assert_eq!(r.status, 200);
    let set = r.header("Set-Cookie").expect("a session page issues ESF_SESSION").to_string();
    assert!(set.starts_with("ESF_SESSION=") && set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"), "{set}");
    assert_eq!(r.header("Cache-Control"), Some("private, no-store"));
    assert!(ann.get("/store/cart").header("Set-Cookie").is_none(), "a valid cookie is kept");

    // Adds: from the product page (no csrf, same origin), and with the csrf
    // that the cart page's forms carry.
    let r = ann.add_from_product_page(5, 3);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("Location"), Some("/store/cart"));
    ann.get("/store/cart");
    assert!(ann.csrf.is_some(), "the cart page's forms carry the csrf");
    assert_eq!(ann.post("/store/cart/add", "product_id=6&qty=2").status, 303);
    let cart = ann.get("/store/cart").text();
    assert!(cart.contains("value=\"3\"") && cart.contains("value=\"2\""), "{cart}");

    // Refused: another origin, a wrong csrf, bad input.
    let evil = ann.send("POST", "/store/cart/add", &[FORM, ("Origin", "http://evil.example")], Some("product_id=5&qty=1"));
    assert_eq!(evil.status, 403);
    let no_origin = ann.send("POST", "/store/cart/add", &[FORM], Some("product_id=5&qty=1"));
    assert_eq!(no_origin.status, 403, "neither csrf nor origin");
    assert_eq!(ann.send("POST", "/store/cart/update", &[FORM], Some("product_id=5&qty=1&csrf=deadbeef")).status, 403);
    assert_eq!(ann.send("POST", "/store/checkout", &[FORM], Some("name=A&email=a%40b.c&address=x")).status, 403, "checkout without csrf");
    assert_eq!(ann.post("/store/cart/add", "product_id=5&qty=100").status, 400);
    assert_eq!(ann.post("/store/cart/add", "product_id=999999&qty=1").status, 404);
    assert_eq!(ann.post("/store/cart/update", "product_id=5&qty=x").status, 400);

    // Not enough stock: 409 naming the product, nothing changed.
    assert_eq!(ann.post("/store/cart/update", "product_id=5&qty=9").status, 303);
    let r = ann.post("/store/checkout", "name=Ann&email=ann%40example.com&address=1+Main+St");
    assert_eq!(r.status, 409, "{}", r.text());
    let name = PgCluster::shared().psql(&db, "SELECT name FROM products WHERE id = 5");
    assert!(r.text().contains(&crate::store_fixture::escape_html(&name)), "the 409 names the product: {}", r.text());
    assert_eq!(on_hand(&db, 5), "4");
    assert_eq!(on_hand(&db, 6), "50");
    assert_eq!(PgCluster::shared().psql(&db, "SELECT count(*) FROM orders"), "0");

    // A good checkout, then the same form again: one order.
    assert_eq!(ann.post("/store/cart/update", "product_id=5&qty=4").status, 303);
    ann.get("/store/cart");
    let first = ann.post("/store/checkout", "name=Ann&email=ann%40example.com&address=1+Main+St");
    assert_eq!(first.status, 303, "{}", first.text());
    let order_url = first.header("Location").unwrap().to_string();
    assert!(order_url.starts_with("/store/order/"));
    let again = ann.post("/store/checkout", "name=Ann&email=ann%40example.com&address=1+Main+St");
    assert_eq!(again.status, 303);
    assert_eq!(again.header("Location"), Some(order_url.as_str()), "the double submit shows the same order");
    assert_eq!(PgCluster::shared().psql(&db, "SELECT count(*) FROM orders"), "1");
    assert_eq!(on_hand(&db, 5), "0");
    assert_eq!(on_hand(&db, 6), "48");

    let order = ann.get(&order_url);
    assert_eq!(order.status, 200);
    assert!(order.text().contains("Ann") && order.header("Cache-Control") == Some("private, no-store"));

    // Someone else, and nobody, get 404.
    let mut bob = Shopper::new(httpd.port);
    bob.get("/store/cart");
    assert_eq!(bob.get(&order_url).status, 404);
    assert_eq!(request(httpd.port, "GET", &order_url, &[], None).unwrap().status, 404);

    // A tampered cookie is no cookie: a new session, logged.
    let forged = format!("{}0", ann.cookie.clone().unwrap());
    let r = request(httpd.port, "GET", "/store/cart", &[("Cookie", &forged)], None).unwrap();
    assert!(r.header("Set-Cookie").is_some(), "a new session is issued");
    assert!(!r.text().contains("value=\"4\""), "not Ann's cart");
    assert_eq!(request(httpd.port, "GET", &order_url, &[("Cookie", &forged)], None).unwrap().status, 404);
    assert!(httpd.error_log().contains("does not verify"), "the tampering is logged");
}

#[test]
fn an_oversized_form_is_refused_before_it_is_read() {
    let db = store_database(PgCluster::shared(), "limits");
    let httpd = store_httpd(Mpm::Prefork, &db, "");
    let big = "x".repeat(64 * 1024);
    let r = request(httpd.port, "POST", "/store/cart/add", &[FORM], Some(big.as_bytes())).unwrap();
    assert_eq!(r.status, 413);
    assert!(r.text().contains("413"), "a friendly page");
    assert_eq!(request(httpd.port, "GET", "/store/cart/add", &[], None).unwrap().status, 405);
}

#[test]
fn throttling_limits_one_user_across_children_and_spares_the_others() {
    let db = store_database(PgCluster::shared(), "throttle");
    // Prefork: every request may land in another child; the count is shared.
    let httpd = store_httpd(Mpm::Prefork, &db, "<Location /store>\n    EsfThrottle 10/60\n</Location>");
    let mut ann = Shopper::new(httpd.port);
    ann.get("/store/cart");
    let statuses: Vec<u16> = (0..15).map(|_| ann.get("/store/product/1").status).collect();
    // The first visit, without a cookie yet, counted for the address.
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "10 in the window: {statuses:?}");
    let limited = ann.get("/store/product/1");
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let mut bob = Shopper::new(httpd.port);
    bob.get("/store/cart");
    assert_eq!(bob.get("/store/product/1").status, 200, "others carry on");
}
