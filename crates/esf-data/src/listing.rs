//! A category listing: one page of a category's product ids, ordered by
//! (name, id) in code-point order, and how many products it has. A
//! department lists the products of all its leaves. One page is one cache
//! entry, `catlist:{category_id}:{page}`, for 60 s: the change triggers
//! drop `catlist:{category}:*` and its parent's when a product changes.
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::category::{CategoryId, CategoryTree};
use crate::db::{DbError, Handle};
use crate::layer::DataLayer;
use crate::part::{self, Fresh, Part};
use crate::product::ProductId;

/// Products on a listing page.
pub const PER_PAGE: u32 = 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryListing {
    pub category_id: CategoryId,
    /// From 1.
    pub page: u32,
    pub per_page: u32,
    /// Products in the category and every category below it.
    pub total: i64,
    /// This page's products in order; empty past the last page.
    pub product_ids: Vec<ProductId>,
    /// When the listing was read from the database (unix seconds). A
    /// listing has no row of its own whose `updated_at` could say when it
    /// last changed (a product deleted or moved away leaves nothing behind),
    /// so it claims to be as new as its reading.
    pub read_at: i64,
}

/// Which listing page to load: the category, the page and the categories
/// whose products it shows. The cache key names only the first two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPage {
    pub category_id: CategoryId,
    pub page: u32,
    /// `category_id` and every category below it.
    pub categories: Vec<CategoryId>,
}

impl fmt::Display for ListingPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.category_id, self.page)
    }
}

/// One statement, one round trip: the count is an index-only scan of
/// (category_id, name, id) over every category of the subtree; the page
/// takes the first offset+limit rows of each category from that index,
/// already in order, and merges them (a department's leaves are read a
/// page deep, not whole).
const LISTING_SQL: &str = "
    SELECT (SELECT count(*) FROM products WHERE category_id = ANY ($1)),
           ARRAY(SELECT p.id
                 FROM unnest($1::int[]) AS c (id)
                 CROSS JOIN LATERAL (SELECT id, name FROM products
                                     WHERE category_id = c.id
                                     ORDER BY name, id
                                     LIMIT $2::bigint + $3::bigint) AS p
                 ORDER BY p.name, p.id
                 LIMIT $2 OFFSET $3)";

impl Part for CategoryListing {
    const KIND: &'static str = "catlist";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(60);
    type Id = ListingPage;

    fn cache_key(id: &ListingPage) -> String {
        format!("{}:{id}", Self::KIND)
    }

    fn fetch(db: &mut Handle<'_>, id: &ListingPage) -> Result<Option<CategoryListing>, DbError> {
        let limit = i64::from(PER_PAGE);
        let offset = offset_of(id.page);
        let row = db.query_opt(LISTING_SQL, &[&id.categories, &limit, &offset])?;
        let (total, product_ids) = row.map(|r| (r.get(0), r.get(1))).unwrap_or_default();
        Ok(Some(CategoryListing { category_id: id.category_id, page: id.page, per_page: PER_PAGE, total, product_ids, read_at: unix_now() }))
    }

    fn modified(&self) -> i64 {
        self.read_at
    }
}

impl CategoryListing {
    /// Page `page` (from 1; 0 reads as 1) of a category, from the cache or
    /// the database; `None` when the tree has no such category. A page
    /// past the last one is an empty list with the right total.
    pub fn load(data: &DataLayer, tree: &CategoryTree, category_id: CategoryId, page: u32) -> Result<Option<Fresh<CategoryListing>>, DbError> {
        if tree.get(category_id).is_none() {
            return Ok(None);
        }
        let id = ListingPage { category_id, page: page.max(1), categories: tree.subtree(category_id) };
        part::load::<CategoryListing>(data, &id)
    }

    /// How many pages the listing has (at least 1, the empty first page).
    pub fn pages(&self) -> i64 {
        let per_page = i64::from(self.per_page.max(1));
        ((self.total + per_page - 1) / per_page).max(1)
    }
}

/// The rows before page `page` (from 1).
fn offset_of(page: u32) -> i64 {
    (i64::from(page.max(1)) - 1) * i64::from(PER_PAGE)
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_names_the_category_and_page() {
        let id = ListingPage { category_id: 4, page: 2, categories: vec![4, 17, 18] };
        assert_eq!(CategoryListing::cache_key(&id), "catlist:4:2");
    }

    #[test]
    fn offsets_and_page_counts() {
        assert_eq!(offset_of(1), 0);
        assert_eq!(offset_of(0), 0);
        assert_eq!(offset_of(3), 48);
        assert_eq!(offset_of(u32::MAX), (i64::from(u32::MAX) - 1) * 24);
        let listing = |total| CategoryListing { category_id: 1, page: 1, per_page: PER_PAGE, total, product_ids: vec![], read_at: 0 };
        assert_eq!(listing(0).pages(), 1);
        assert_eq!(listing(24).pages(), 1);
        assert_eq!(listing(25).pages(), 2);
        assert_eq!(listing(6790).pages(), 283);
    }
}
