//! `GET /category/{id}?page=N`: 24 products a page ordered by name (then
//! id), the total, links to the neighbouring pages and subcategories. A
//! department lists the products of all its leaves.
use esf_data::category::CategoryTree;
use esf_data::listing::CategoryListing;
use esf_data::part::Freshness;
use esf_data::DataLayer;

use super::product::parse_id;
use super::{data_error, page_param, products, public};
use crate::http::{Request, Response};
use crate::pages::Pages;
use crate::view::View;

pub fn show(id: &str, req: &dyn Request, data: &DataLayer, pages: &Pages) -> Response {
    let Some(id) = parse_id(id) else {
        return pages.error(404, "There is no such category.");
    };
    let Some(page) = page_param(req.query()) else {
        return pages.error(400, "The page number must be a whole number from 1.");
    };
    let tree = match CategoryTree::load(data) {
        Ok(tree) => tree,
        Err(e) => return data_error(pages, &e),
    };
    let Some(category) = tree.value.get(id) else {
        return pages.error(404, "There is no such category.");
    };
    let listing = match CategoryListing::load(data, &tree.value, id, page) {
        Ok(Some(listing)) => listing,
        Ok(None) => return pages.error(404, "There is no such category."),
        Err(e) => return data_error(pages, &e),
    };
    if listing.value.product_ids.is_empty() && page > 1 {
        return pages.error(404, "There is no such page of this category.");
    }
    let (items, freshness) = match products(data, &listing.value.product_ids, Freshness::of(&listing).and(Freshness::of(&tree))) {
        Ok(found) => found,
        Err(e) => return data_error(pages, &e),
    };
    let total = listing.value.total;
    let per_page = i64::from(listing.value.per_page);
    let pages_total = ((total + per_page - 1) / per_page).max(1);
    let mut view = View::new();
    view.object("category", category)
        .object("breadcrumb", &tree.value.breadcrumb(id))
        .object("subcategories", &tree.value.children(id).collect::<Vec<_>>())
        .object("products", &items)
        .number("total", total)
        .number("page", i64::from(page))
        .number("pages", pages_total)
        .number("previous_page", i64::from(page) - 1)
        .number("next_page", if i64::from(page) < pages_total { i64::from(page) + 1 } else { 0 });
    public(pages.render(200, "category", &category.name, view), freshness)
}
