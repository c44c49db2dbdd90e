//! `GET /hello?name=X`: the smallest page through the whole stack.
use crate::http::{form_value, Request, Response};
use crate::pages::Pages;
use crate::view::View;

pub fn show(req: &dyn Request, pages: &Pages) -> Response {
    let name = form_value(req.query(), "name");
    let name = name.as_deref().filter(|n| !n.is_empty()).unwrap_or("World");
    let mut view = View::new();
    view.text("name", name);
    pages.render(200, "hello", "Hello", view)
}
