//! `GET /product/{id}`: one product, cacheable by shared caches for as long
//! as the shortest TTL of the data it shows.
use std::time::SystemTime;

use esf_data::category::Category;
use esf_data::product::Product;
use esf_data::DataLayer;

use super::data_error;
use crate::http::Response;
use crate::pages::Pages;
use crate::view::View;

pub fn show(id: &str, data: &DataLayer, pages: &Pages) -> Response {
    let Some(id) = parse_id(id) else {
        return pages.error(404, "There is no such product.");
    };
    let product = match Product::load(data, id) {
        Ok(Some(product)) => product,
        Ok(None) => return pages.error(404, "There is no such product."),
        Err(e) => return data_error(pages, &e),
    };
    let item = product.view();
    let (breadcrumb, trail_freshness) = match Category::breadcrumb(data, item.category_id) {
        Ok(found) => found,
        Err(e) => return data_error(pages, &e),
    };
    let mut view = View::new();
    view.object("product", &item);
    view.object("breadcrumb", &breadcrumb);
    let freshness = trail_freshness.map_or(product.freshness(), |f| f.and(product.freshness()));
    pages.render(200, "product", &item.name, view).cacheable(freshness, SystemTime::now())
}

/// A product or category id: digits only, in range; anything else is 404.
pub fn parse_id(text: &str) -> Option<i32> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn ids_are_positive_digits() {
        assert_eq!(parse_id("12"), Some(12));
        for bad in ["", "0", "-1", "1e3", "12abc", "99999999999", " 1"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
