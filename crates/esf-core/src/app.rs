//! The controllers and the table that routes a path to them.
//!
//! A controller parses and checks its input, asks the models for data and
//! picks a template; it returns a [`Response`] and never sees SQL.
use once_cell::sync::Lazy;

use esf_data::DataLayer;

use crate::config::DirConfig;
use crate::controllers::{hello, product};
use crate::http::{Request, Response};
use crate::pages::Pages;
use crate::templates::TemplateSet;

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
/// [`DirConfig::mount_for`]) in a section configured by `config`, with the
/// server's data layer (`None` when it has no database or cache).
pub fn handle(config: &DirConfig, mount: &str, data: Option<&DataLayer>, req: &mut dyn Request) -> Response {
    let pages = pages(config, mount);
    let Some(route) = route_of(req.path(), pages.mount) else {
        return pages.error(404, "There is no page at this address.");
    };
    if route == PANIC_ROUTE && config.panic_test() {
        panic!("EsfPanicTest: this request panics on purpose");
    }
    let segments: Vec<&str> = route[1..].split('/').collect();
    match segments.as_slice() {
        ["hello"] => only_get(req, &pages).unwrap_or_else(|| hello::show(req, &pages)),
        ["product", id] => only_get(req, &pages).unwrap_or_else(|| with_data(data, &pages, |data| product::show(id, data, &pages))),
        _ => pages.error(404, "There is no page at this address."),
    }
}

/// Runs a controller that needs the data layer; 503 without one.
fn with_data(data: Option<&DataLayer>, pages: &Pages, controller: impl FnOnce(&DataLayer) -> Response) -> Response {
    match data {
        Some(data) => controller(data),
        None => {
            log::error!("a page needs data but this server has no working EsfDatabase/EsfCacheDir");
            pages.error(503, "The store is not available right now. Please try again later.")
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::FakeRequest;

    fn store() -> DirConfig {
        DirConfig::for_section(Some("/store"))
    }

    fn handle(config: &DirConfig, req: &mut FakeRequest) -> Response {
        super::handle(config, "/store", None, req)
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
