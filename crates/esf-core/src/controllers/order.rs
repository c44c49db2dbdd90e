//! `GET /order/{id}`: an order, only to the session that placed it;
//! anyone else gets the 404 page.
use esf_data::order::Order;
use esf_data::product::format_price;
use serde::Serialize;

use super::data_error;
use crate::context::Context;
use crate::http::{Request, Response};
use crate::view::View;

#[derive(Serialize)]
struct LineView {
    product_id: i32,
    name: String,
    qty: i32,
    unit_price: String,
    line_total: String,
}

pub fn show(id: &str, req: &dyn Request, cx: &Context) -> Response {
    let not_found = || cx.pages.error(404, "There is no such order.").private();
    let digits = !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit());
    let Some(id) = digits.then(|| id.parse::<i64>().ok()).flatten().filter(|id| *id > 0) else {
        return not_found();
    };
    let data = match cx.data() {
        Ok(data) => data,
        Err(page) => return page,
    };
    let Some(session_id) = cx.session_id(req) else { return not_found() };
    let order = match Order::load_for(data, id, &session_id) {
        Ok(Some(order)) => order,
        Ok(None) => return not_found(),
        Err(e) => return data_error(&cx.pages, &e),
    };
    let lines: Vec<LineView> = order
        .lines
        .iter()
        .map(|l| LineView {
            product_id: l.product_id,
            name: l.name.clone(),
            qty: l.qty,
            unit_price: format_price(i64::from(l.unit_cents)),
            line_total: format_price(i64::from(l.unit_cents) * i64::from(l.qty)),
        })
        .collect();
    let mut view = View::new();
    view.number("id", order.id)
        .text("name", &order.name)
        .text("email", &order.email)
        .text("address", &order.address)
        .text("total", &format_price(order.total_cents))
        .object("lines", &lines);
    cx.pages.render(200, "order", &format!("Order {}", order.id), view).private()
}
