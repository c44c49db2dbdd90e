//! `GET /`: the 12 featured products (the lowest ids) and the departments.
use esf_data::category::CategoryTree;
use esf_data::part::Freshness;
use esf_data::product::Featured;
use esf_data::DataLayer;

use super::{data_error, products, public};
use crate::http::Response;
use crate::pages::Pages;
use crate::view::View;

pub fn show(data: &DataLayer, pages: &Pages) -> Response {
    let loaded = Featured::load(data).and_then(|featured| Ok((featured, CategoryTree::load(data)?)));
    let (featured, tree) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return data_error(pages, &e),
    };
    let (items, freshness) = match products(data, &featured.value.ids, Freshness::of(&featured).and(Freshness::of(&tree))) {
        Ok(found) => found,
        Err(e) => return data_error(pages, &e),
    };
    let departments: Vec<_> = tree.value.top_level().collect();
    let mut view = View::new();
    view.object("products", &items).object("departments", &departments);
    public(pages.render(200, "home", "The store", view), freshness)
}
