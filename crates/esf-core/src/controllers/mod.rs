//! One controller per route: it parses and checks its input, asks the
//! models for data and picks a template. No SQL here, no HTTP in the models.
pub mod cart;
pub mod category;
pub mod checkout;
pub mod hello;
pub mod home;
pub mod order;
pub mod product;
pub mod search;

use std::time::SystemTime;

use esf_data::part::Freshness;
use esf_data::product::{Product, ProductSummary};
use esf_data::{DataLayer, DbError};

use crate::http::{form_value, Response};
use crate::pages::Pages;

/// The page for a data-layer failure: 503 when the database cannot be
/// reached (the next request may succeed), 500 otherwise; details to the log.
pub fn data_error(pages: &Pages, error: &DbError) -> Response {
    if error.is_unavailable() {
        log::warn!("{error}");
        pages.error(503, "The store is busy or briefly unavailable. Please try again in a moment.").with_header("Retry-After", "5")
    } else {
        log::error!("{error}");
        pages.error(500, "Something went wrong on our side. Please try again in a moment.")
    }
}

/// The products of a listing, in order, with the freshness of them all
/// (ids that vanished since the listing was cached are skipped).
pub fn products(data: &DataLayer, ids: &[i32], mut freshness: Freshness) -> Result<(Vec<ProductSummary>, Freshness), DbError> {
    let mut views = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(product) = Product::load(data, *id)? {
            freshness = freshness.and(product.freshness());
            views.push(product.summary());
        }
    }
    Ok((views, freshness))
}

/// The `page` query parameter: 1 when absent; `None` (400) unless a whole
/// number from 1 to [`MAX_PAGE`].
pub fn page_param(query: Option<&str>) -> Option<u32> {
    match form_value(query, "page") {
        None => Some(1),
        Some(text) => text.parse::<u32>().ok().filter(|p| (1..=MAX_PAGE).contains(p)),
    }
}

/// Deeper pages are refused (400): nobody reads page 10,001 of anything.
pub const MAX_PAGE: u32 = 10_000;

/// Cacheable by shared caches for as long as its data is fresh.
pub fn public(response: Response, freshness: Freshness) -> Response {
    response.cacheable(freshness, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::page_param;

    #[test]
    fn page_numbers() {
        assert_eq!(page_param(None), Some(1));
        assert_eq!(page_param(Some("page=3")), Some(3));
        for bad in ["page=0", "page=x", "page=-1", "page=10001", "page="] {
            assert_eq!(page_param(Some(bad)), None, "{bad}");
        }
    }
}
