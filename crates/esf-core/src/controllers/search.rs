//! `GET /search?q=…&page=N&sort=S`: products whose name, brand or
//! description hold every query word; with no words, the search form.
use std::time::{Duration, SystemTime};

use esf_data::part::Freshness;
use esf_data::search::{self as finder, SearchError, Sort};
use esf_data::DataLayer;

use super::{data_error, page_param, products, public};
use crate::http::{form_value, Request, Response};
use crate::pages::Pages;
use crate::view::View;

/// How long shared caches may keep a results page.
const RESULTS_TTL: Duration = Duration::from_secs(60);

pub fn show(req: &dyn Request, data: &DataLayer, pages: &Pages) -> Response {
    let query = form_value(req.query(), "q").map(|q| q.into_owned()).unwrap_or_default();
    let sort_name = form_value(req.query(), "sort").map(|s| s.into_owned()).unwrap_or_else(|| "relevance".into());
    let Some(sort) = Sort::parse(&sort_name) else {
        return pages.error(400, "Results can be sorted by relevance, price_asc, price_desc or newest.");
    };
    let Some(page) = page_param(req.query()) else {
        return pages.error(400, "The page number must be a whole number from 1.");
    };
    let fresh = Freshness { expires_at: SystemTime::now() + RESULTS_TTL, modified: 0 };
    let mut view = View::new();
    view.text("q", &query).text("sort", &sort_name).number("page", i64::from(page));
    if finder::query_words(&query).is_empty() {
        view.flag("searched", false).number("total", 0).object("products", &Vec::<()>::new());
        return public(pages.render(200, "search", "Search", view), fresh);
    }
    let results = match finder::search(data, &query, sort, page) {
        Ok(results) => results,
        Err(e) => return search_error(pages, e),
    };
    let (items, freshness) = match products(data, &results.product_ids, fresh) {
        Ok(found) => found,
        Err(e) => return data_error(pages, &e),
    };
    let per_page = i64::from(results.per_page);
    let pages_total = ((results.total + per_page - 1) / per_page).max(1);
    view.flag("searched", true)
        .number("total", results.total)
        .number("pages", pages_total)
        .number("previous_page", i64::from(page) - 1)
        .number("next_page", if i64::from(page) < pages_total { i64::from(page) + 1 } else { 0 })
        .text("q_url", &form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>())
        .object("products", &items);
    public(pages.render(200, "search", &format!("Search: {query}"), view), freshness)
}

/// A search that has no answer: the database's errors as every page has
/// them; a search daemon that is down is a 503 of its own, since only
/// search is missing and the rest of the store works on.
fn search_error(pages: &Pages, error: SearchError) -> Response {
    match error {
        SearchError::Db(e) => data_error(pages, &e),
        SearchError::Unavailable(why) => {
            log::warn!("search unavailable: {why}");
            pages
                .error(503, "Search is unavailable right now. The rest of the store is open: browse the departments, or try your search again in a moment.")
                .with_header("Retry-After", "5")
        }
        SearchError::TooLong => pages.error(400, "That search is too long. Please use fewer words."),
        SearchError::Daemon(why) => {
            log::error!("search daemon: {why}");
            pages.error(500, "Something went wrong on our side. Please try again in a moment.")
        }
    }
}
