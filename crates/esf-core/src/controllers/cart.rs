//! The cart: `GET /cart`, `POST /cart/add`, `POST /cart/update`. Session
//! pages: never cached, and they issue `ESF_SESSION` to a new visitor.
use esf_data::product::{format_price, Product, ProductId};
use esf_data::session::{Session, MAX_QTY};
use serde::Serialize;

use super::data_error;
use super::product::parse_id;
use crate::context::{Context, SessionPost};
use crate::http::{form_value, Request, Response};
use crate::view::View;

#[derive(Serialize)]
struct LineView {
    product_id: ProductId,
    name: String,
    qty: i32,
    unit_price: String,
    line_total: String,
}

pub fn show(req: &dyn Request, cx: &Context) -> Response {
    let (data, visit) = match (cx.data(), cx.visit(req)) {
        (Ok(data), Ok(visit)) => (data, visit),
        (Err(page), _) | (_, Err(page)) => return page,
    };
    let session = match Session::load(data, &visit.id) {
        Ok(session) => session,
        Err(e) => return data_error(&cx.pages, &e),
    };
    let (lines, cart_version) = session.map(|s| (s.lines, s.cart_version)).unwrap_or_default();
    let mut views = Vec::with_capacity(lines.len());
    let mut total: i64 = 0;
    for line in &lines {
        let product = match Product::load(data, line.product_id) {
            Ok(Some(product)) => product,
            Ok(None) => continue, // gone from the catalog
            Err(e) => return data_error(&cx.pages, &e),
        };
        let unit = i64::from(product.info.value.price_cents);
        total += unit * i64::from(line.qty);
        views.push(LineView {
            product_id: line.product_id,
            name: product.info.value.name.clone(),
            qty: line.qty,
            unit_price: format_price(unit),
            line_total: format_price(unit * i64::from(line.qty)),
        });
    }
    let mut view = View::new();
    view.object("lines", &views)
        .text("total", &format_price(total))
        .number("items", views.iter().map(|l| i64::from(l.qty)).sum())
        .text("csrf", &cx.csrf(&visit.id))
        .text("checkout_token", &cx.sealer.map(|s| s.seal(&visit.id, cart_version.to_string().as_bytes())).unwrap_or_default());
    visit.respond(cx.pages.render(200, "cart", "Your cart", view))
}

/// `POST /cart/add`: with the session's csrf, or without one from the
/// store's own pages (cached product pages carry no csrf).
pub fn add(req: &mut dyn Request, cx: &Context) -> Response {
    let form = match cx.form(req) {
        Ok(form) => form,
        Err(page) => return page.private(),
    };
    let (data, visit) = match (cx.data(), cx.visit(req)) {
        (Ok(data), Ok(visit)) => (data, visit),
        (Err(page), _) | (_, Err(page)) => return page,
    };
    let allowed = match form_value(Some(&form), "csrf") {
        Some(_) => cx.csrf_ok(&visit.id, &form),
        None => cx.same_origin(req),
    };
    if !allowed {
        return cx.pages.error(403, "This form did not come from the store. Please add the product from its page.").private();
    }
    let Some(product_id) = form_value(Some(&form), "product_id").and_then(|v| parse_id(&v)) else {
        return cx.pages.error(404, "There is no such product.").private();
    };
    let Some(qty) = quantity(&form, 1) else {
        return cx.pages.error(400, "The quantity must be a whole number from 1 to 99.").private();
    };
    match Product::load(data, product_id) {
        Ok(Some(_)) => {}
        Ok(None) => return cx.pages.error(404, "There is no such product.").private(),
        Err(e) => return data_error(&cx.pages, &e).private(),
    }
    match Session::add_to_cart(data, &visit.id, product_id, qty) {
        Ok(_) => visit.respond(Response::see_other(format!("{}/cart", cx.pages.mount))),
        Err(e) => data_error(&cx.pages, &e).private(),
    }
}

/// `POST /cart/update`: sets a line's quantity (0 removes it); needs the
/// session's csrf.
pub fn update(req: &mut dyn Request, cx: &Context) -> Response {
    let SessionPost { form, data, session_id } = match cx.csrf_post(req) {
        Ok(post) => post,
        Err(page) => return page,
    };
    let Some(product_id) = form_value(Some(&form), "product_id").and_then(|v| parse_id(&v)) else {
        return cx.pages.error(404, "There is no such product.").private();
    };
    let Some(qty) = quantity(&form, 0) else {
        return cx.pages.error(400, "The quantity must be a whole number from 0 to 99.").private();
    };
    if qty > 0 {
        match Product::load(data, product_id) {
            Ok(Some(_)) => {}
            Ok(None) => return cx.pages.error(404, "There is no such product.").private(),
            Err(e) => return data_error(&cx.pages, &e).private(),
        }
    }
    match Session::set_quantity(data, &session_id, product_id, qty) {
        Ok(_) => Response::see_other(format!("{}/cart", cx.pages.mount)).private(),
        Err(e) => data_error(&cx.pages, &e).private(),
    }
}

/// The form's `qty`, from `min` to 99 (absent: 1).
fn quantity(form: &str, min: i32) -> Option<i32> {
    match form_value(Some(form), "qty") {
        None => Some(1),
        Some(text) => text.trim().parse::<i32>().ok().filter(|q| (min..=MAX_QTY).contains(q)),
    }
}

#[cfg(test)]
mod tests {
    use super::quantity;

    #[test]
    fn quantities() {
        assert_eq!(quantity("qty=3", 1), Some(3));
        assert_eq!(quantity("", 1), Some(1));
        assert_eq!(quantity("qty=0", 1), None);
        assert_eq!(quantity("qty=0", 0), Some(0));
        for bad in ["qty=100", "qty=-1", "qty=x", "qty=1.5"] {
            assert_eq!(quantity(bad, 0), None, "{bad}");
        }
    }
}
