//! The Session model and its cart. Every change goes to PostgreSQL first,
//! in a transaction, and then to the cache, so another app server (or this
//! one after a crash) reads the same cart back.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{DbError, Handle, Queries, Tx};
use crate::layer::DataLayer;
use crate::part::{self, Part};
use crate::product::ProductId;

/// Most of one product a cart line holds (SPEC: qty 1..99).
pub const MAX_QTY: i32 = 99;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: ProductId,
    pub qty: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    /// Bumped by every cart change; an order records the version it was
    /// placed from, so the same cart cannot be ordered twice.
    pub cart_version: i64,
    /// In the order they were added.
    pub lines: Vec<CartLine>,
    pub updated: i64,
}

impl Part for Session {
    const KIND: &'static str = "session";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(300);
    type Id = str;

    fn fetch(db: &mut Handle<'_>, id: &str) -> Result<Option<Session>, DbError> {
        read(db, id)
    }

    fn modified(&self) -> i64 {
        self.updated
    }
}

impl Session {
    /// The session, from the cache or the database.
    pub fn load(data: &DataLayer, id: &str) -> Result<Option<Session>, DbError> {
        Ok(part::load::<Session>(data, id)?.map(|fresh| fresh.value))
    }

    /// Records a new session (idempotent).
    pub fn create(data: &DataLayer, id: &str) -> Result<Session, DbError> {
        let session = data.db()?.handle()?.transaction(|tx| {
            tx.execute("INSERT INTO sessions (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", &[&id])?;
            read(tx, id)
        })?;
        let session = session.expect("the row was just inserted");
        part::store(data, id, &session);
        Ok(session)
    }

    /// Adds `qty` of a product; a product already in the cart adds up,
    /// capped at [`MAX_QTY`]. Creates the session row if needed.
    pub fn add_to_cart(data: &DataLayer, id: &str, product_id: ProductId, qty: i32) -> Result<Session, DbError> {
        let qty = qty.clamp(1, MAX_QTY);
        Self::change_cart(data, id, |tx| {
            tx.execute(
                "INSERT INTO cart_lines (session_id, product_id, qty) VALUES ($1, $2, $3) \
                 ON CONFLICT (session_id, product_id) DO UPDATE SET qty = least(cart_lines.qty + excluded.qty, $4)",
                &[&id, &product_id, &qty, &MAX_QTY],
            )
            .map(drop)
        })
    }

    /// Sets a line's quantity; 0 removes the line.
    pub fn set_quantity(data: &DataLayer, id: &str, product_id: ProductId, qty: i32) -> Result<Session, DbError> {
        let qty = qty.clamp(0, MAX_QTY);
        Self::change_cart(data, id, |tx| {
            if qty == 0 {
                tx.execute("DELETE FROM cart_lines WHERE session_id = $1 AND product_id = $2", &[&id, &product_id])
            } else {
                tx.execute(
                    "INSERT INTO cart_lines (session_id, product_id, qty) VALUES ($1, $2, $3) \
                     ON CONFLICT (session_id, product_id) DO UPDATE SET qty = excluded.qty",
                    &[&id, &product_id, &qty],
                )
            }
            .map(drop)
        })
    }

    fn change_cart(data: &DataLayer, id: &str, change: impl FnOnce(&mut Tx<'_>) -> Result<(), DbError>) -> Result<Session, DbError> {
        let session = data.db()?.handle()?.transaction(|tx| {
            tx.execute("INSERT INTO sessions (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", &[&id])?;
            change(tx)?;
            tx.execute("UPDATE sessions SET cart_version = cart_version + 1, updated_at = now() WHERE id = $1", &[&id])?;
            read(tx, id)
        })?;
        let session = session.expect("the row was just inserted");
        part::store(data, id, &session);
        Ok(session)
    }
}

/// The session and its cart as `db` sees them (inside a transaction or not).
fn read(db: &mut impl Queries, id: &str) -> Result<Option<Session>, DbError> {
    let Some(row) = db.query_opt("SELECT cart_version, extract(epoch FROM updated_at)::bigint FROM sessions WHERE id = $1", &[&id])? else {
        return Ok(None);
    };
    let lines = db.query("SELECT product_id, qty FROM cart_lines WHERE session_id = $1 ORDER BY added_at, product_id", &[&id])?;
    let lines = lines.iter().map(|r| CartLine { product_id: r.get(0), qty: r.get(1) }).collect();
    Ok(Some(Session { id: id.to_string(), cart_version: row.get(0), lines, updated: row.get(1) }))
}
