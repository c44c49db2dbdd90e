//! The Order model and checkout: one transaction that takes the stock,
//! records the order and empties the cart, or changes nothing.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{DbError, Handle, Tx};
use crate::layer::DataLayer;
use crate::part::{self, Part};
use crate::product::{ProductId, Stock};
use crate::session::Session;

pub type OrderId = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub name: String,
    pub qty: i32,
    pub unit_cents: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    /// Only this session may see the order.
    pub session_id: String,
    pub name: String,
    pub email: String,
    pub address: String,
    pub total_cents: i64,
    pub created: i64,
    pub lines: Vec<OrderLine>,
}

impl Part for Order {
    const KIND: &'static str = "order";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(300);
    type Id = OrderId;

    fn fetch(db: &mut Handle<'_>, id: &OrderId) -> Result<Option<Order>, DbError> {
        let Some(row) = db.query_opt(
            "SELECT session_id, name, email, address, total_cents, extract(epoch FROM created_at)::bigint FROM orders WHERE id = $1",
            &[id],
        )?
        else {
            return Ok(None);
        };
        let lines = db.query("SELECT product_id, name, qty, unit_cents FROM order_lines WHERE order_id = $1 ORDER BY product_id", &[id])?;
        Ok(Some(Order {
            id: *id,
            session_id: row.get(0),
            name: row.get(1),
            email: row.get(2),
            address: row.get(3),
            total_cents: row.get(4),
            created: row.get(5),
            lines: lines.iter().map(|r| OrderLine { product_id: r.get(0), name: r.get(1), qty: r.get(2), unit_cents: r.get(3) }).collect(),
        }))
    }

    fn modified(&self) -> i64 {
        self.created
    }
}

/// Who the order is for (checked by the controller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub name: String,
    pub email: String,
    pub address: String,
}

/// How a checkout ended. Every outcome but `Placed` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    Placed(OrderId),
    /// This cart version was ordered already (a double submit): that order.
    AlreadyPlaced(OrderId),
    EmptyCart,
    /// The cart changed since the page the customer submitted.
    CartChanged,
    OutOfStock { product_id: ProductId, name: String },
}

/// Refusals roll the transaction back like errors do.
enum Refusal {
    Db(DbError),
    Refused(Checkout),
}

impl From<DbError> for Refusal {
    fn from(e: DbError) -> Refusal {
        Refusal::Db(e)
    }
}

impl Order {
    /// The order, for the session that placed it only; `None` for anyone else.
    pub fn load_for(data: &DataLayer, id: OrderId, session_id: &str) -> Result<Option<Order>, DbError> {
        Ok(part::load::<Order>(data, &id)?.map(|f| f.value).filter(|o| o.session_id == session_id))
    }

    /// Places the session's cart: as submitted at `expected` (the cart
    /// version the checkout form was rendered from), or as it is now.
    /// A cart already ordered is never ordered again: submitting it twice
    /// gives the first order back.
    pub fn place(data: &DataLayer, session_id: &str, expected: Option<i64>, customer: &Customer) -> Result<Checkout, DbError> {
        let result = data.db()?.handle()?.transaction(|tx| place_in(tx, session_id, expected, customer));
        let (order, stock) = match result {
            Ok(placed) => placed,
            Err(Refusal::Refused(outcome)) => return Ok(outcome),
            Err(Refusal::Db(e)) => return Err(e),
        };
        // Write-through: the emptied cart and the order; the stock that
        // changed is dropped here and, for the other app servers, by the
        // database's change notification.
        part::forget::<Session>(data, session_id);
        for product_id in stock {
            part::forget::<Stock>(data, &product_id);
        }
        part::store(data, &order.id, &order);
        Ok(Checkout::Placed(order.id))
    }
}

/// The order placed from this version of the session's cart, if any.
fn ordered_from(tx: &mut Tx<'_>, session_id: &str, cart_version: i64) -> Result<Option<OrderId>, DbError> {
    Ok(tx.query_opt("SELECT id FROM orders WHERE session_id = $1 AND cart_version = $2", &[&session_id, &cart_version])?.map(|r| r.get(0)))
}

fn place_in(tx: &mut Tx<'_>, session_id: &str, expected: Option<i64>, customer: &Customer) -> Result<(Order, Vec<ProductId>), Refusal> {
    // The session row lock serializes checkouts of one cart.
    let Some(row) = tx.query_opt("SELECT cart_version FROM sessions WHERE id = $1 FOR UPDATE", &[&session_id])? else {
        return Err(Refusal::Refused(Checkout::EmptyCart));
    };
    let current: i64 = row.get(0);
    let cart_version = expected.unwrap_or(current);
    if let Some(done) = ordered_from(tx, session_id, cart_version)? {
        return Err(Refusal::Refused(Checkout::AlreadyPlaced(done)));
    }
    if cart_version != current {
        return Err(Refusal::Refused(Checkout::CartChanged));
    }
    // By product id, so concurrent checkouts lock stock rows in one order.
    let lines = tx.query(
        "SELECT c.product_id, p.name, c.qty, p.price_cents FROM cart_lines c JOIN products p ON p.id = c.product_id \
         WHERE c.session_id = $1 ORDER BY c.product_id",
        &[&session_id],
    )?;
    if lines.is_empty() {
        // Placing empties the cart and bumps its version: a second submit
        // of the form that placed an order finds that order here.
        if let Some(done) = ordered_from(tx, session_id, current - 1)?.filter(|_| expected.is_none()) {
            return Err(Refusal::Refused(Checkout::AlreadyPlaced(done)));
        }
        return Err(Refusal::Refused(Checkout::EmptyCart));
    }
    let lines: Vec<OrderLine> = lines.iter().map(|r| OrderLine { product_id: r.get(0), name: r.get(1), qty: r.get(2), unit_cents: r.get(3) }).collect();
    for line in &lines {
        let taken = tx.execute(
            "UPDATE inventory SET on_hand = on_hand - $2 WHERE product_id = $1 AND on_hand >= $2",
            &[&line.product_id, &line.qty],
        )?;
        if taken == 0 {
            return Err(Refusal::Refused(Checkout::OutOfStock { product_id: line.product_id, name: line.name.clone() }));
        }
    }
    let total_cents: i64 = lines.iter().map(|l| i64::from(l.unit_cents) * i64::from(l.qty)).sum();
    let row = tx.query_one(
        "INSERT INTO orders (session_id, cart_version, name, email, address, total_cents) VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id, extract(epoch FROM created_at)::bigint",
        &[&session_id, &cart_version, &customer.name, &customer.email, &customer.address, &total_cents],
    )?;
    let id: OrderId = row.get(0);
    for line in &lines {
        tx.execute(
            "INSERT INTO order_lines (order_id, product_id, name, qty, unit_cents) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &line.product_id, &line.name, &line.qty, &line.unit_cents],
        )?;
    }
    tx.execute("DELETE FROM cart_lines WHERE session_id = $1", &[&session_id])?;
    tx.execute("UPDATE sessions SET cart_version = cart_version + 1, updated_at = now() WHERE id = $1", &[&session_id])?;
    let stock = lines.iter().map(|l| l.product_id).collect();
    let order = Order {
        id,
        session_id: session_id.to_string(),
        name: customer.name.clone(),
        email: customer.email.clone(),
        address: customer.address.clone(),
        total_cents,
        created: row.get(1),
        lines,
    };
    Ok((order, stock))
}
