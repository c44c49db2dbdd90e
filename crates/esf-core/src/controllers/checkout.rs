//! `POST /checkout`: the session's cart becomes one order in one database
//! transaction, or nothing changes.
use esf_data::order::{Checkout, Customer, Order};

use super::data_error;
use crate::context::{Context, SessionPost};
use crate::http::{form_value, Request, Response};

pub fn place(req: &mut dyn Request, cx: &Context) -> Response {
    let SessionPost { form, data, session_id } = match cx.csrf_post(req) {
        Ok(post) => post,
        Err(page) => return page,
    };
    let customer = match customer(&form) {
        Ok(customer) => customer,
        Err(problem) => return cx.pages.error(400, problem).private(),
    };
    // The cart version the form was rendered from, when it carries one.
    let expected = match form_value(Some(&form), "checkout_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => match cx.sealer.and_then(|s| s.open(&session_id, &token)).and_then(|v| String::from_utf8(v).ok()?.parse::<i64>().ok()) {
            Some(version) => Some(version),
            None => return cx.pages.error(400, "This checkout form is not valid. Please reload your cart.").private(),
        },
    };
    let order_page = |id: i64| Response::see_other(format!("{}/order/{id}", cx.pages.mount)).private();
    match Order::place(data, &session_id, expected, &customer) {
        Ok(Checkout::Placed(id)) | Ok(Checkout::AlreadyPlaced(id)) => order_page(id),
        Ok(Checkout::OutOfStock { name, .. }) => cx
            .pages
            .error(409, &format!("Sorry, there is not enough of “{name}” in stock for your order. Nothing was charged and your cart is unchanged."))
            .private(),
        Ok(Checkout::EmptyCart) => cx.pages.error(409, "Your cart is empty.").private(),
        Ok(Checkout::CartChanged) => cx.pages.error(409, "Your cart changed while you were checking out. Please review it and try again.").private(),
        Err(e) => data_error(&cx.pages, &e).private(),
    }
}

/// Checks the customer fields; the message says what is wrong.
fn customer(form: &str) -> Result<Customer, &'static str> {
    let field = |name: &str, max: usize| -> Option<String> {
        let value = form_value(Some(form), name)?.trim().to_string();
        (!value.is_empty() && value.chars().count() <= max).then_some(value)
    };
    let name = field("name", 200).ok_or("Please give your name (at most 200 characters).")?;
    let email = field("email", 254).filter(|e| e.contains('@') && !e.contains(char::is_whitespace)).ok_or("Please give a valid email address.")?;
    let address = field("address", 1000).ok_or("Please give a delivery address (at most 1000 characters).")?;
    Ok(Customer { name, email, address })
}

#[cfg(test)]
mod tests {
    use super::customer;

    #[test]
    fn customer_fields_are_checked() {
        assert!(customer("name=Ann&email=a%40b.c&address=1+Main+St").is_ok());
        assert!(customer("name=&email=a%40b.c&address=x").is_err());
        assert!(customer("name=Ann&email=nope&address=x").is_err());
        assert!(customer("name=Ann&email=a%40b.c").is_err());
    }
}
