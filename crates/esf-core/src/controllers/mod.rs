//! One controller per route: it parses and checks its input, asks the
//! models for data and picks a template. No SQL here, no HTTP in the models.
pub mod hello;
pub mod product;

use esf_data::DbError;

use crate::http::Response;
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
