//! The Product model: a slow-changing part (name, price, description: 300 s
//! in the cache) and a volatile one (stock: 30 s), loaded separately and
//! put back together for the page.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{DbError, Handle};
use crate::layer::DataLayer;
use crate::part::{self, Fresh, Freshness, Part};

pub type ProductId = i32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub id: ProductId,
    pub category_id: i32,
    pub sku: String,
    pub name: String,
    pub brand: String,
    pub age_min: i32,
    pub age_max: i32,
    pub price_cents: i32,
    pub description: String,
    /// `YYYY-MM-DD`
    pub created: String,
    pub updated: i64,
}

impl Part for ProductInfo {
    const KIND: &'static str = "product";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(300);
    type Id = ProductId;

    fn fetch(db: &mut Handle<'_>, id: &ProductId) -> Result<Option<ProductInfo>, DbError> {
        let row = db.query_opt(
            "SELECT id, category_id, sku, name, brand, age_min, age_max, price_cents, description, \
                    to_char(created, 'YYYY-MM-DD'), extract(epoch FROM updated_at)::bigint \
             FROM products WHERE id = $1",
            &[id],
        )?;
        Ok(row.map(|r| ProductInfo {
            id: r.get(0),
            category_id: r.get(1),
            sku: r.get(2),
            name: r.get(3),
            brand: r.get(4),
            age_min: r.get(5),
            age_max: r.get(6),
            price_cents: r.get(7),
            description: r.get(8),
            created: r.get(9),
            updated: r.get(10),
        }))
    }

    fn modified(&self) -> i64 {
        self.updated
    }
}

/// A product's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub product_id: ProductId,
    pub on_hand: i32,
    pub updated: i64,
}

impl Part for Stock {
    const KIND: &'static str = "inventory";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(30);
    type Id = ProductId;

    fn fetch(db: &mut Handle<'_>, id: &ProductId) -> Result<Option<Stock>, DbError> {
        let row = db.query_opt("SELECT on_hand, extract(epoch FROM updated_at)::bigint FROM inventory WHERE product_id = $1", &[id])?;
        Ok(row.map(|r| Stock { product_id: *id, on_hand: r.get(0), updated: r.get(1) }))
    }

    fn modified(&self) -> i64 {
        self.updated
    }
}

impl Stock {
    /// What the product page says about stock (SPEC: `In stock` from 10,
    /// `Only N left` for 1..9, `Out of stock` at 0).
    pub fn line(&self) -> String {
        match self.on_hand {
            n if n >= 10 => "In stock".to_string(),
            n if n >= 1 => format!("Only {n} left"),
            _ => "Out of stock".to_string(),
        }
    }

    /// Sets the stock: the database first, then the cache (write-through).
    pub fn save(data: &DataLayer, product_id: ProductId, on_hand: i32) -> Result<Option<Stock>, DbError> {
        let row = data.db()?.handle()?.transaction(|tx| {
            tx.query_opt(
                "UPDATE inventory SET on_hand = $2 WHERE product_id = $1 RETURNING extract(epoch FROM updated_at)::bigint",
                &[&product_id, &on_hand],
            )
        })?;
        let stock = row.map(|r| Stock { product_id, on_hand, updated: r.get(0) });
        if let Some(stock) = &stock {
            part::store(data, &product_id, stock);
        }
        Ok(stock)
    }
}

/// A product as a page shows it: both parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub info: Fresh<ProductInfo>,
    pub stock: Fresh<Stock>,
}

/// The plain object templates get: no trace of how the model is split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductView {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub brand: String,
    pub age_min: i32,
    pub age_max: i32,
    pub price_cents: i32,
    /// `$12.34`
    pub price: String,
    pub description: String,
    pub created: String,
    pub category_id: i32,
    pub on_hand: i32,
    pub in_stock: bool,
    /// `In stock`, `Only 3 left`, `Out of stock`
    pub stock_line: String,
}

/// What a listing shows of a product (home, category, search): no
/// description, so a page of 24 carries only what its template prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductSummary {
    pub id: ProductId,
    pub name: String,
    pub brand: String,
    /// `$12.34`
    pub price: String,
    pub in_stock: bool,
    pub stock_line: String,
}

impl Product {
    /// Cache, then database, each part on its own. A product without an
    /// inventory row has none on hand.
    pub fn load(data: &DataLayer, id: ProductId) -> Result<Option<Product>, DbError> {
        let Some(info) = part::load::<ProductInfo>(data, &id)? else {
            return Ok(None);
        };
        let stock = part::load::<Stock>(data, &id)?.unwrap_or(Fresh {
            value: Stock { product_id: id, on_hand: 0, updated: info.value.updated },
            expires_at: info.expires_at,
        });
        Ok(Some(Product { info, stock }))
    }

    pub fn freshness(&self) -> Freshness {
        Freshness::of(&self.info).and(Freshness::of(&self.stock))
    }

    pub fn summary(&self) -> ProductSummary {
        let (info, stock) = (&self.info.value, &self.stock.value);
        ProductSummary {
            id: info.id,
            name: info.name.clone(),
            brand: info.brand.clone(),
            price: format_price(i64::from(info.price_cents)),
            in_stock: stock.on_hand > 0,
            stock_line: stock.line(),
        }
    }

    pub fn view(&self) -> ProductView {
        let (info, stock) = (&self.info.value, &self.stock.value);
        ProductView {
            id: info.id,
            sku: info.sku.clone(),
            name: info.name.clone(),
            brand: info.brand.clone(),
            age_min: info.age_min,
            age_max: info.age_max,
            price_cents: info.price_cents,
            price: format_price(i64::from(info.price_cents)),
            description: info.description.clone(),
            created: info.created.clone(),
            category_id: info.category_id,
            on_hand: stock.on_hand,
            in_stock: stock.on_hand > 0,
            stock_line: stock.line(),
        }
    }
}

/// The home page's featured products: the lowest ids (SPEC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Featured {
    pub ids: Vec<ProductId>,
}

/// How many products the home page features.
pub const FEATURED: i64 = 12;

impl Part for Featured {
    const KIND: &'static str = "featured";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(300);
    type Id = str;

    fn cache_key(_: &str) -> String {
        Self::KIND.to_string()
    }

    fn fetch(db: &mut Handle<'_>, _: &str) -> Result<Option<Featured>, DbError> {
        let rows = db.query("SELECT id FROM products ORDER BY id LIMIT $1", &[&FEATURED])?;
        Ok(Some(Featured { ids: rows.iter().map(|r| r.get(0)).collect() }))
    }

    fn modified(&self) -> i64 {
        0
    }
}

impl Featured {
    pub fn load(data: &DataLayer) -> Result<Fresh<Featured>, DbError> {
        Ok(part::load::<Featured>(data, "")?.expect("always present"))
    }
}

/// Integer cents as dollars: 1234 → `$12.34`.
pub fn format_price(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_dollars_and_cents() {
        assert_eq!(format_price(1234), "$12.34");
        assert_eq!(format_price(5), "$0.05");
        assert_eq!(format_price(100), "$1.00");
        assert_eq!(format_price(0), "$0.00");
        assert_eq!(format_price(-250), "-$2.50");
    }

    #[test]
    fn stock_lines_follow_the_spec() {
        let s = |n| Stock { product_id: 1, on_hand: n, updated: 0 }.line();
        assert_eq!(s(10), "In stock");
        assert_eq!(s(152), "In stock");
        assert_eq!(s(9), "Only 9 left");
        assert_eq!(s(1), "Only 1 left");
        assert_eq!(s(0), "Out of stock");
    }
}
