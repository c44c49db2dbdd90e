//! The controllers and the table that routes a path to them.
//!
//! A controller parses and checks its input, asks the models for data and
//! picks a template; it returns a [`Response`] and never sees SQL.
use once_cell::sync::Lazy;

use crate::config::DirConfig;
use crate::http::{form_value, Request, Response};
use crate::pages::Pages;
use crate::templates::TemplateSet;
use crate::view::View;

/// Sections without `EsfTemplates` render with the built-in templates.
static BUILT_IN_TEMPLATES: Lazy<TemplateSet> = Lazy::new(TemplateSet::built_in);

/// The route of `_panic`, which panics on purpose when `EsfPanicTest On`.
pub const PANIC_ROUTE: &str = "/_panic";

fn pages<'a>(config: &'a DirConfig, mount: &'a str) -> Pages<'a> {
    Pages { templates: config.templates.as_deref().unwrap_or(&BUILT_IN_TEMPLATES), mount }
}

/// The friendly error page of the section configured by `config`.
pub fn error_page(config: &DirConfig, mount: &str, status: u16, message: &str) -> Response {
    pages(config, mount).error(status, message)
}

/// Answers one request for the application mounted at `mount` (see
/// [`DirConfig::mount_for`]) in a section configured by `config`.
pub fn handle(config: &DirConfig, mount: &str, req: &mut dyn Request) -> Response {
    let pages = pages(config, mount);
    let Some(route) = route_of(req.path(), pages.mount) else {
        return pages.error(404, "There is no page at this address.");
    };
    match route {
        "/hello" => only_get(req, &pages).unwrap_or_else(|| hello(req, &pages)),
        PANIC_ROUTE if config.panic_test() => panic!("EsfPanicTest: this request panics on purpose"),
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

/// `None` for GET and HEAD, else the 405 page.
fn only_get(req: &dyn Request, pages: &Pages) -> Option<Response> {
    match req.method() {
        "GET" | "HEAD" => None,
        _ => Some(pages.error(405, "This page can only be read.").with_header("Allow", "GET, HEAD")),
    }
}

/// `GET /hello?name=X`: the smallest page through the whole stack.
fn hello(req: &dyn Request, pages: &Pages) -> Response {
    let name = form_value(req.query(), "name");
    let name = name.as_deref().filter(|n| !n.is_empty()).unwrap_or("World");
    let mut view = View::new();
    view.text("name", name);
    pages.render(200, "hello", "Hello", view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::FakeRequest;

    fn store() -> DirConfig {
        DirConfig::for_section(Some("/store"))
    }

    fn handle(config: &DirConfig, req: &mut FakeRequest) -> Response {
        super::handle(config, "/store", req)
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
    fn panic_route_is_off_by_default() {
        let r = handle(&store(), &mut FakeRequest::get("/store/_panic"));
        assert_eq!(r.status, 404);
        let on = DirConfig { panic_test: Some(true), ..store() };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(&on, &mut FakeRequest::get("/store/_panic"))));
        assert!(caught.is_err());
    }
}
