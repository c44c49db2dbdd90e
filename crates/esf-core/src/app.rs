//! The controllers and the table that routes a path to them.
//!
//! A controller parses and checks its input, asks the models for data and
//! picks a template; it returns a [`Response`] and never sees SQL.
use once_cell::sync::Lazy;

use esf_data::DataLayer;

use crate::config::DirConfig;
use crate::context::Context;
use crate::controllers::{cart, category, checkout, hello, home, order, product, search};
use crate::http::{Request, Response};
use crate::pages::Pages;
use crate::templates::TemplateSet;

/// Sections without `EsfTemplates` render with the built-in templates.
static BUILT_IN_TEMPLATES: Lazy<TemplateSet> = Lazy::new(TemplateSet::built_in);

/// The route of `_panic`, which panics on purpose when `EsfPanicTest On`.
pub const PANIC_ROUTE: &str = "/_panic";

/// The friendly error page of the section configured by `config`.
pub fn error_page(config: &DirConfig, mount: &str, status: u16, message: &str) -> Response {
    pages(config, mount).error(status, message)
}

/// The pages of a section: its templates (or the built-in ones) under `mount`.
pub fn pages<'a>(config: &'a DirConfig, mount: &'a str) -> Pages<'a> {
    Pages { templates: config.templates.as_deref().unwrap_or(&BUILT_IN_TEMPLATES), mount }
}

/// Answers one request for the application of a section configured by
/// `config`, in the context `cx` (its pages, data, session keys, throttle).
pub fn handle(config: &DirConfig, cx: &Context, req: &mut dyn Request) -> Response {
    let pages = &cx.pages;
    let Some(route) = route_of(req.path(), pages.mount) else {
        return pages.error(404, "There is no page at this address.");
    };
    if route == PANIC_ROUTE && config.panic_test() {
        panic!("EsfPanicTest: this request panics on purpose");
    }
    if let Err(page) = cx.throttle(req) {
        return page;
    }
    let segments: Vec<&str> = route[1..].split('/').collect();
    let reading = matches!(req.method(), "GET" | "HEAD");
    let posting = req.method() == "POST";
    let with_data = |controller: &dyn Fn(&DataLayer) -> Response| match cx.data() {
        Ok(data) => controller(data),
        Err(page) => page,
    };
    match segments.as_slice() {
        [""] if reading => with_data(&|data| home::show(data, pages)),
        ["hello"] if reading => hello::show(req, pages),
        ["product", id] if reading => with_data(&|data| product::show(id, data, pages)),
        ["category", id] if reading => with_data(&|data| category::show(id, req, data, pages)),
        ["search"] if reading => with_data(&|data| search::show(req, data, pages)),
        ["cart"] if reading => cart::show(req, cx),
        ["order", id] if reading => order::show(id, req, cx),
        ["cart", "add"] if posting => cart::add(req, cx),
        ["cart", "update"] if posting => cart::update(req, cx),
        ["checkout"] if posting => checkout::place(req, cx),
        [""] | ["hello"] | ["product", _] | ["category", _] | ["search"] | ["cart"] | ["order", _] => {
            pages.error(405, "This page can only be read.").with_header("Allow", "GET, HEAD")
        }
        ["cart", "add"] | ["cart", "update"] | ["checkout"] => {
            pages.error(405, "This address takes a form (POST).").with_header("Allow", "POST")
        }
        _ => pages.error(404, "There is no page at this address."),
    }
}

/// The path below the mount point: `/store/hello` under `/store` is `/hello`.
fn route_of<'p>(path: &'p str, mount: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(mount)?;
    match rest {
        "" => Some("/"),
        r if r.starts_with('/') => Some(r),
        _ => None, // `/storefront` is not under `/store`
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::FakeRequest;

    fn store() -> DirConfig {
        DirConfig::for_section(Some("/store"))
    }

    fn handle(config: &DirConfig, req: &mut FakeRequest) -> Response {
        let cx = Context { pages: pages(config, "/store"), data: None, keys: None, sealer: None, throttle: None, origin: None };
        super::handle(config, &cx, req)
    }

    #[test]
    fn hello_greets_by_name_escaped() {
        let r = handle(&store(), &mut FakeRequest::get("/store/hello?name=%3Cb%3EZo%C3%AB%3C%2Fb%3E"));
        assert_eq!(r.status, 200);
        assert!(r.body.contains("Hello &lt;b&gt;Zoë&lt;/b&gt;!"), "{}", r.body);
        assert!(!r.body.contains("<b>"));
        let r = handle(&store(), &mut FakeRequest::get("/store/hello"));
        assert!(r.body.contains("Hello World!"));
    }

    #[test]
    fn hello_refuses_other_methods() {
        let mut req = FakeRequest::get("/store/hello");
        req.method = "POST".into();
        let r = handle(&store(), &mut req);
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    }

    #[test]
    fn unknown_paths_get_the_404_page() {
        for path in ["/store/nope", "/storefront/hello", "/other"] {
            let r = handle(&store(), &mut FakeRequest::get(path));
            assert_eq!(r.status, 404, "{path}");
            assert!(r.body.contains("404 Not Found"));
        }
    }

    #[test]
    fn data_pages_without_a_data_layer_are_503() {
        let r = handle(&store(), &mut FakeRequest::get("/store/product/1"));
        assert_eq!(r.status, 503);
    }

    #[test]
    fn panic_route_is_off_by_default() {
        let r = handle(&store(), &mut FakeRequest::get("/store/_panic"));
        assert_eq!(r.status, 404);
        let on = DirConfig { panic_test: Some(true), ..store() };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(&on, &mut FakeRequest::get("/store/_panic"))));
        assert!(caught.is_err());
    }
}
