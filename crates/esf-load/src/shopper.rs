//! The christmas mix's shopper, ported from ../shared/bench/christmas.lua
//! (read its header and the bench README): the same intents and shares,
//! prerequisites, cookie and csrf handling, session ends and counters, so a
//! run here and a run of `bench.sh URL christmas` load the store alike.

use crate::http::{format_request, Base, Response};
use crate::rng::{Rng, Zipf};
use std::collections::VecDeque;

const FORM: &str = "name=Chris+Kringle&email=chris%40example.com&address=1+Sleigh+Way%2C+North+Pole";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Product,
    Category,
    Search,
    Add,
    Cart,
    Checkout,
    Order,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Product, Kind::Category, Kind::Search, Kind::Add, Kind::Cart, Kind::Checkout, Kind::Order];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Product => "product",
            Kind::Category => "category",
            Kind::Search => "search",
            Kind::Add => "add",
            Kind::Cart => "cart",
            Kind::Checkout => "checkout",
            Kind::Order => "order",
        }
    }
}

/// What every shopper shares: the catalog's shape and the store's address.
pub struct Mix {
    pub base: Base,
    pub products: Zipf,
    pub categories: Zipf,
    pub queries: Vec<String>,
    pub session_len: f64,
}

/// Outcomes a shopper reports back for the counters.
#[derive(Debug, Default, PartialEq)]
pub struct Seen {
    pub new_session: bool,
    pub order: bool,
}

#[derive(Default)]
pub struct Shopper {
    cookie: Option<String>,
    csrf: Option<String>,
    cart_items: u32,
    todo: VecDeque<Kind>,
    viewing: u64,
    in_stock: Option<u64>,
    follow: Option<String>,
    leaving: bool,
    /// The kind of the request in flight.
    last: Option<Kind>,
}

impl Shopper {
    pub fn new() -> Shopper {
        Shopper::default()
    }

    fn draw(rng: &mut Rng) -> Kind {
        let r = rng.f64();
        if r < 0.60 {
            Kind::Product
        } else if r < 0.80 {
            Kind::Category
        } else if r < 0.90 {
            Kind::Search
        } else if r < 0.97 {
            Kind::Add
        } else if r < 0.99 {
            Kind::Cart
        } else {
            Kind::Checkout
        }
    }

    /// The next request's kind and bytes.
    pub fn request(&mut self, mix: &Mix, rng: &mut Rng) -> (Kind, Vec<u8>) {
        let p = &mix.base.prefix;
        if let Some(path) = self.follow.take() {
            return self.send(mix, "GET", &path, Kind::Order, None);
        }
        let mut action = self.todo.pop_front().unwrap_or_else(|| Self::draw(rng));
        if action == Kind::Checkout && self.cart_items == 0 {
            self.todo.push_front(action);
            action = Kind::Add;
        }
        if action == Kind::Add && self.in_stock.is_none() {
            self.todo.push_front(action);
            action = Kind::Product;
        }
        if action == Kind::Checkout && self.csrf.is_none() {
            self.todo.push_front(action);
            action = Kind::Cart;
        }
        match action {
            Kind::Product => {
                self.viewing = mix.products.draw(rng);
                let path = format!("{p}/product/{}", self.viewing);
                self.send(mix, "GET", &path, Kind::Product, None)
            }
            Kind::Category => {
                let path = format!("{p}/category/{}?page={}", mix.categories.draw(rng), rng.range(1, 3));
                self.send(mix, "GET", &path, Kind::Category, None)
            }
            Kind::Search => {
                let q = &mix.queries[rng.range(0, mix.queries.len() as u64 - 1) as usize];
                let path = format!("{p}/search?q={}", urlencode(q));
                self.send(mix, "GET", &path, Kind::Search, None)
            }
            Kind::Cart => self.send(mix, "GET", &format!("{p}/cart"), Kind::Cart, None),
            Kind::Add => {
                let body = format!("product_id={}&qty=1", self.in_stock.unwrap());
                self.send(mix, "POST", &format!("{p}/cart/add"), Kind::Add, Some(body))
            }
            Kind::Checkout | Kind::Order => {
                self.send(mix, "POST", &format!("{p}/checkout"), Kind::Checkout, Some(FORM.to_string()))
            }
        }
    }

    fn send(&mut self, mix: &Mix, method: &str, path: &str, kind: Kind, body: Option<String>) -> (Kind, Vec<u8>) {
        self.last = Some(kind);
        let origin = mix.base.origin();
        let referer;
        let mut h: Vec<(&str, &str)> = Vec::new();
        if let Some(c) = &self.cookie {
            h.push(("Cookie", c));
        }
        let mut body = body;
        if let Some(b) = body.as_mut() {
            h.push(("Content-Type", "application/x-www-form-urlencoded"));
            if kind == Kind::Add {
                // The product page's form: no csrf, same-origin headers.
                referer = format!("{origin}{}/product/{}", mix.base.prefix, self.in_stock.unwrap());
                h.push(("Origin", &origin));
                h.push(("Referer", &referer));
            } else {
                b.push_str("&csrf=");
                b.push_str(&urlencode(self.csrf.as_deref().unwrap_or("")));
            }
        }
        (kind, format_request(method, path, &mix.base.authority, &h, body.as_deref()))
    }

    /// Takes in the response to the request in flight.
    pub fn response(&mut self, resp: &Response, mix: &Mix, rng: &mut Rng) -> Seen {
        let mut seen = Seen::default();
        let kind = self.last.take();
        let status = resp.status;
        if let Some(v) = resp.all("set-cookie").find_map(session_cookie) {
            seen.new_session = self.cookie.is_none();
            self.cookie = Some(format!("ESF_SESSION={v}"));
        }
        if let Some(c) = csrf_of(&resp.body) {
            self.csrf = Some(c);
        }
        match kind {
            Some(Kind::Product) if status == 200 && crate::http::find(&resp.body, b"Out of stock").is_none() => {
                self.in_stock = Some(self.viewing);
            }
            Some(Kind::Add) | Some(Kind::Checkout) => {
                if status >= 400 {
                    *self = Shopper::new(); // gives up (409: out of stock)
                    return seen;
                }
                if kind == Some(Kind::Add) {
                    self.cart_items += 1;
                } else if status >= 300 {
                    seen.order = true;
                    let loc = resp.header("location").unwrap_or("");
                    let path = strip_origin(loc).to_string();
                    self.leaving = true;
                    if path.is_empty() {
                        *self = Shopper::new();
                    } else {
                        self.follow = Some(path);
                    }
                    return seen;
                }
            }
            Some(Kind::Order) if self.leaving => {
                *self = Shopper::new();
                return seen;
            }
            _ => {}
        }
        if self.todo.is_empty() && rng.f64() < 1.0 / mix.session_len {
            *self = Shopper::new();
        }
        seen
    }

    #[cfg(test)]
    fn has_cookie(&self) -> bool {
        self.cookie.is_some()
    }
}

fn session_cookie(set_cookie: &str) -> Option<&str> {
    let i = set_cookie.find("ESF_SESSION=")?;
    let v = &set_cookie[i + "ESF_SESSION=".len()..];
    Some(v.split(|c: char| c == ';' || c.is_whitespace()).next().unwrap_or(""))
}

/// The value of the first `<input name="csrf" value="...">` (christmas.lua's patterns).
fn csrf_of(body: &[u8]) -> Option<String> {
    crate::http::find(body, b"csrf")?;
    let text = String::from_utf8_lossy(body);
    let mut rest: &str = &text;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map(|j| i + j + 1)?;
        let tag = &rest[i..tag_end];
        if names_csrf(tag) {
            return attr_value(tag);
        }
        rest = &rest[tag_end..];
    }
    None
}

fn names_csrf(tag: &str) -> bool {
    tag.match_indices("name=").any(|(i, _)| {
        let after = &tag[i + 5..];
        let after = after.strip_prefix(['"', '\'']).unwrap_or(after);
        after.strip_prefix("csrf").is_some_and(|r| r.starts_with(['"', '\'', ' ', '\t', '\n', '\r', '/', '>']))
    })
}

fn attr_value(tag: &str) -> Option<String> {
    for q in ['"', '\''] {
        let pat = format!("value={q}");
        if let Some(i) = tag.find(&pat) {
            let v = &tag[i + pat.len()..];
            if let Some(j) = v.find(q) {
                return Some(v[..j].to_string());
            }
        }
    }
    None
}

fn strip_origin(loc: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = loc.strip_prefix(scheme) {
            return rest.find('/').map_or("", |i| &rest[i..]);
        }
    }
    loc
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix() -> Mix {
        Mix {
            base: Base::parse("http://127.0.0.1:18180/store").unwrap(),
            products: Zipf::new(50, 1.0),
            categories: Zipf::new(5, 1.0),
            queries: vec!["lego set".into()],
            session_len: 1e9,
        }
    }

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn text(req: &[u8]) -> String {
        String::from_utf8(req.to_vec()).unwrap()
    }

    #[test]
    fn helpers() {
        assert_eq!(urlencode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(session_cookie("ESF_SESSION=ab.cd; Path=/; HttpOnly"), Some("ab.cd"));
        assert_eq!(strip_origin("http://h:1/store/order/9"), "/store/order/9");
        assert_eq!(strip_origin("/store/order/9"), "/store/order/9");
        let page = r#"<form><input type="hidden" name="qty" value="1"><input type=hidden name="csrf" value="t0k"></form>"#;
        assert_eq!(csrf_of(page.as_bytes()).as_deref(), Some("t0k"));
        assert_eq!(csrf_of(b"<input name='csrfx' value='no'>"), None);
        assert_eq!(csrf_of(b"<input name=csrf value='yes'/>").as_deref(), Some("yes"));
    }

    /// A checkout intent walks through its prerequisites: a product view, an
    /// add (with same-origin headers, getting the cookie), the cart page for
    /// the csrf, the checkout, then the order page; then a new shopper.
    #[test]
    fn checkout_walks_its_prerequisites() {
        let m = mix();
        let mut rng = Rng::new(3);
        let mut s = Shopper::new();
        s.todo.push_back(Kind::Checkout);
        let (k, r) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Product);
        let id = s.viewing;
        assert!(text(&r).starts_with(&format!("GET /store/product/{id} HTTP/1.1\r\nHost: 127.0.0.1:18180\r\n")));
        s.response(&resp(200, &[], "In stock"), &m, &mut rng);
        let (k, r) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Add);
        let t = text(&r);
        assert!(t.starts_with("POST /store/cart/add HTTP/1.1"));
        assert!(t.contains("Origin: http://127.0.0.1:18180\r\n"));
        assert!(t.contains(&format!("Referer: http://127.0.0.1:18180/store/product/{id}\r\n")));
        assert!(t.ends_with(&format!("product_id={id}&qty=1")));
        assert!(!t.contains("Cookie"));
        let seen = s.response(&resp(303, &[("Set-Cookie", "ESF_SESSION=s.m; Path=/")], ""), &m, &mut rng);
        assert!(seen.new_session);
        let (k, r) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Cart);
        assert!(text(&r).contains("Cookie: ESF_SESSION=s.m\r\n"));
        s.response(&resp(200, &[], r#"<input name="csrf" value="c1">"#), &m, &mut rng);
        let (k, r) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Checkout);
        assert!(text(&r).ends_with("Pole&csrf=c1"));
        let seen = s.response(&resp(303, &[("Location", "http://127.0.0.1:18180/store/order/5")], ""), &m, &mut rng);
        assert!(seen.order && !seen.new_session);
        let (k, r) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Order);
        assert!(text(&r).starts_with("GET /store/order/5 HTTP/1.1"));
        s.response(&resp(200, &[], ""), &m, &mut rng);
        assert!(!s.has_cookie());
    }

    #[test]
    fn out_of_stock_is_not_added_and_409_ends_the_session() {
        let m = mix();
        let mut rng = Rng::new(5);
        let mut s = Shopper::new();
        s.todo.push_back(Kind::Add);
        let (k, _) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Product);
        s.response(&resp(200, &[], "Out of stock"), &m, &mut rng);
        let (k, _) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Product, "no in-stock page seen yet");
        s.response(&resp(200, &[], "Only 2 left"), &m, &mut rng);
        let (k, _) = s.request(&m, &mut rng);
        assert_eq!(k, Kind::Add);
        s.response(&resp(409, &[("Set-Cookie", "ESF_SESSION=a.b")], ""), &m, &mut rng);
        assert!(!s.has_cookie() && s.in_stock.is_none());
    }

    #[test]
    fn shares_are_the_nominal_ones() {
        let mut rng = Rng::new(9);
        let mut n = [0u32; 7];
        for _ in 0..100_000 {
            n[Shopper::draw(&mut rng) as usize] += 1;
        }
        let share = |k: Kind| n[k as usize] as f64 / 100_000.0;
        assert!((share(Kind::Product) - 0.60).abs() < 0.01);
        assert!((share(Kind::Add) - 0.07).abs() < 0.005);
        assert!((share(Kind::Checkout) - 0.01).abs() < 0.002);
    }
}
