//! Per-child PostgreSQL handles, the way Apache::DBI kept them: connections
//! opened in the child (never in the parent: a socket must not cross a
//! fork), kept for the child's life and shared by its threads through a
//! bounded pool, each with its own cache of prepared statements.
//!
//! SQL is `&'static str` only, so no statement can be built by pasting
//! input into a string: values travel as bind parameters.
//!
//! A connection that breaks (PostgreSQL restarted, socket cut) is dropped
//! instead of going back to the pool, and so are the idle ones, which
//! talked to the same server. A statement outside a transaction, or a
//! transaction that could not begin, is retried once on a new connection;
//! otherwise the request gets [`DbError::Unavailable`] (a 503 page) and
//! the next one connects afresh.
//! A connection never returns to the pool inside a transaction: a
//! transaction that is not committed rolls back, and a handle dropped
//! while its thread panics is closed, not reused.
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

/// How long a request waits for a free connection before a 503.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum DbError {
    /// No connection could be had: the database is down, unreachable,
    /// restarting, or every connection stayed busy (503).
    Unavailable(String),
    /// The database refused the statement (a constraint, a bug): 500,
    /// unless the caller expects it (see [`DbError::is_unique_violation`]).
    Query(postgres::Error),
}

impl DbError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }

    /// A unique constraint refused the row (e.g. the same cart ordered twice).
    pub fn is_unique_violation(&self) -> bool {
        self.sql_state() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
    }

    /// A CHECK constraint refused the row (e.g. stock below zero).
    pub fn is_check_violation(&self) -> bool {
        self.sql_state() == Some(&postgres::error::SqlState::CHECK_VIOLATION)
    }

    fn sql_state(&self) -> Option<&postgres::error::SqlState> {
        match self {
            DbError::Query(e) => e.code(),
            DbError::Unavailable(_) => None,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable(why) => write!(f, "database unavailable: {why}"),
            DbError::Query(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for DbError {}

/// A connection and its prepared statements.
struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Connection {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// Figures for the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Connections open now (idle or in use).
    pub open: usize,
    pub in_use: usize,
    pub capacity: usize,
    /// Connections made since the child started (reconnects included).
    pub connects: u64,
    /// Connections dropped because they broke.
    pub broken: u64,
}

/// The pool of one child: at most `capacity` connections to one database.
pub struct Database {
    conninfo: String,
    capacity: usize,
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
    open: AtomicUsize,
    in_use: AtomicUsize,
    connects: AtomicU64,
    broken: AtomicU64,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The conninfo may hold a password: not shown.
        f.debug_struct("Database").field("capacity", &self.capacity).field("stats", &self.stats()).finish()
    }
}

impl Database {
    /// A pool that connects lazily, on first use, in the calling process.
    pub fn new(conninfo: &str, capacity: usize) -> Database {
        Database {
            conninfo: conninfo.to_string(),
            capacity: capacity.max(1),
            idle: Mutex::new(Vec::new()),
            freed: Condvar::new(),
            open: AtomicUsize::new(0),
            in_use: AtomicUsize::new(0),
            connects: AtomicU64::new(0),
            broken: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> DbStats {
        DbStats {
            open: self.open.load(Ordering::Relaxed),
            in_use: self.in_use.load(Ordering::Relaxed),
            capacity: self.capacity,
            connects: self.connects.load(Ordering::Relaxed),
            broken: self.broken.load(Ordering::Relaxed),
        }
    }

    /// A connection for the caller's exclusive use until the handle drops.
    pub fn handle(&self) -> Result<Handle<'_>, DbError> {
        let connection = self.checkout()?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Ok(Handle { db: self, connection: Some(connection) })
    }

    fn checkout(&self) -> Result<Connection, DbError> {
        let mut idle = self.idle.lock();
        loop {
            if let Some(connection) = idle.pop() {
                return Ok(connection);
            }
            if self.open.load(Ordering::Relaxed) < self.capacity {
                self.open.fetch_add(1, Ordering::Relaxed);
                drop(idle); // never hold the lock while connecting
                return self.connect().inspect_err(|_| {
                    self.open.fetch_sub(1, Ordering::Relaxed);
                    self.freed.notify_one();
                });
            }
            let timed_out = self.freed.wait_for(&mut idle, CHECKOUT_TIMEOUT).timed_out();
            if timed_out && idle.is_empty() && self.open.load(Ordering::Relaxed) >= self.capacity {
                return Err(DbError::Unavailable(format!("all {} connections stayed busy for {CHECKOUT_TIMEOUT:?}", self.capacity)));
            }
        }
    }

    fn connect(&self) -> Result<Connection, DbError> {
        let client = Client::connect(&self.conninfo, NoTls).map_err(|e| DbError::Unavailable(e.to_string()))?;
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Connection { client, statements: HashMap::new() })
    }

    /// Closes the idle connections (after one of them was found broken).
    fn discard_idle(&self) {
        let dropped = std::mem::take(&mut *self.idle.lock());
        self.open.fetch_sub(dropped.len(), Ordering::Relaxed);
        self.broken.fetch_add(dropped.len() as u64, Ordering::Relaxed);
        // Room for new connections: every waiter may take one.
        self.freed.notify_all();
    }

    fn give_back(&self, connection: Connection, reusable: bool) {
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        if reusable && !connection.client.is_closed() {
            self.idle.lock().push(connection);
        } else {
            self.open.fetch_sub(1, Ordering::Relaxed);
            if !reusable {
                self.broken.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.freed.notify_one();
    }
}

/// Sorts a driver error: the connection's fault (Unavailable: drop the
/// connection, answer 503) or the statement's (Query). A server shutting
/// down sends a FATAL with an SQLSTATE of its own before it closes.
fn db_error(error: postgres::Error) -> DbError {
    let lost_server = error.code().is_some_and(|code| {
        let code = code.code();
        code.starts_with("08") // connection exception
            || matches!(code, "57P01" | "57P02" | "57P03" | "53300") // shutdown, crash, starting up, too many connections
    });
    if lost_server || error.is_closed() || (error.code().is_none() && error.as_db_error().is_none()) {
        DbError::Unavailable(error.to_string())
    } else {
        DbError::Query(error)
    }
}

/// Running statements: what a [`Handle`] and a [`Tx`] both offer, so a
/// model reads the same way inside a transaction and outside one.
pub trait Queries {
    fn query(&mut self, sql: &'static str, params: Params) -> Result<Vec<Row>, DbError>;
    fn query_opt(&mut self, sql: &'static str, params: Params) -> Result<Option<Row>, DbError>;
}

impl Queries for Handle<'_> {
    fn query(&mut self, sql: &'static str, params: Params) -> Result<Vec<Row>, DbError> {
        Handle::query(self, sql, params)
    }
    fn query_opt(&mut self, sql: &'static str, params: Params) -> Result<Option<Row>, DbError> {
        Handle::query_opt(self, sql, params)
    }
}

impl Queries for Tx<'_> {
    fn query(&mut self, sql: &'static str, params: Params) -> Result<Vec<Row>, DbError> {
        Tx::query(self, sql, params)
    }
    fn query_opt(&mut self, sql: &'static str, params: Params) -> Result<Option<Row>, DbError> {
        Tx::query_opt(self, sql, params)
    }
}

/// One checked-out connection.
pub struct Handle<'a> {
    db: &'a Database,
    connection: Option<Connection>,
}

pub type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Handle<'_> {
    /// The handle's connection; a handle whose connection was closed after
    /// an error checks out another.
    fn connection(&mut self) -> Result<&mut Connection, DbError> {
        if self.connection.is_none() {
            self.connection = Some(self.db.checkout()?);
            self.db.in_use.fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.connection.as_mut().expect("just set"))
    }

    /// Runs `op` with a prepared statement. If the connection turns out to
    /// be broken, it and the idle ones are closed and `op` runs once more
    /// on a new connection (a single statement outside a transaction either
    /// ran whole or not at all).
    fn run<T>(&mut self, sql: &'static str, op: impl Fn(&mut Client, &Statement) -> Result<T, postgres::Error>) -> Result<T, DbError> {
        let attempt = |connection: &mut Connection| connection.statement(sql).and_then(|statement| op(&mut connection.client, &statement)).map_err(db_error);
        match attempt(self.connection()?) {
            Err(DbError::Unavailable(_)) => {
                self.replace_broken()?;
                let result = attempt(self.connection()?);
                if matches!(result, Err(DbError::Unavailable(_))) {
                    self.close_connection();
                }
                result
            }
            result => result,
        }
    }

    /// After a connection error: closes the connection and the idle ones
    /// (they talked to the same server) and checks out a fresh one.
    fn replace_broken(&mut self) -> Result<(), DbError> {
        self.close_connection();
        self.db.discard_idle();
        self.connection().map(drop)
    }

    /// Closes the handle's connection instead of pooling it.
    fn close_connection(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.db.give_back(connection, false);
        }
    }

    pub fn query(&mut self, sql: &'static str, params: Params) -> Result<Vec<Row>, DbError> {
        self.run(sql, |client, statement| client.query(statement, params))
    }

    pub fn query_opt(&mut self, sql: &'static str, params: Params) -> Result<Option<Row>, DbError> {
        self.run(sql, |client, statement| client.query_opt(statement, params))
    }

    pub fn execute(&mut self, sql: &'static str, params: Params) -> Result<u64, DbError> {
        self.run(sql, |client, statement| client.execute(statement, params))
    }

    /// Runs `body` in a transaction: committed if it returns `Ok`, rolled
    /// back if it returns `Err` (of any error type that a [`DbError`]
    /// converts into, so a refusal such as "out of stock" rolls back too) or
    /// panics. A connection lost on the way is closed, never pooled.
    pub fn transaction<T, E: From<DbError>>(&mut self, body: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        // A transaction that cannot even begin on a broken connection
        // begins again on a new one: nothing has run yet.
        if let Err(e) = self.connection()?.client.batch_execute("") {
            match db_error(e) {
                DbError::Unavailable(_) => self.replace_broken()?,
                query_error => return Err(E::from(query_error)),
            }
        }
        let Connection { client, statements } = self.connection()?;
        let mut lost = false;
        let result = match client.transaction() {
            Err(e) => Err(E::from(tx_error(e, &mut lost))),
            Ok(transaction) => {
                let mut tx = Tx { transaction: Some(transaction), statements, lost: false };
                let outcome = match body(&mut tx) {
                    Ok(value) => {
                        let commit = tx.transaction.take().expect("open until commit").commit();
                        commit.map(|()| value).map_err(|e| E::from(tx_error(e, &mut tx.lost)))
                    }
                    Err(e) => Err(e), // dropping `tx` rolls the transaction back
                };
                lost = tx.lost;
                outcome
            }
        };
        if lost {
            self.close_connection();
        }
        result
    }
}

/// [`db_error`], noting in `lost` whether the connection is gone.
fn tx_error(error: postgres::Error, lost: &mut bool) -> DbError {
    let error = db_error(error);
    *lost |= error.is_unavailable();
    error
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // After a panic the connection's state is unknown: close it.
            self.db.give_back(connection, !std::thread::panicking());
        }
    }
}

/// An open transaction on a handle's connection, with its statement cache.
pub struct Tx<'c> {
    transaction: Option<postgres::Transaction<'c>>,
    statements: &'c mut HashMap<&'static str, Statement>,
    /// A statement lost the connection: it must not be pooled again.
    lost: bool,
}

impl Tx<'_> {
    fn run<T>(&mut self, sql: &'static str, op: impl FnOnce(&mut postgres::Transaction<'_>, &Statement) -> Result<T, postgres::Error>) -> Result<T, DbError> {
        let transaction = self.transaction.as_mut().expect("open until commit");
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = transaction.prepare(sql).map_err(|e| tx_error(e, &mut self.lost))?;
                self.statements.insert(sql, statement.clone());
                statement
            }
        };
        op(transaction, &statement).map_err(|e| tx_error(e, &mut self.lost))
    }

    pub fn query(&mut self, sql: &'static str, params: Params) -> Result<Vec<Row>, DbError> {
        self.run(sql, |t, s| t.query(s, params))
    }

    pub fn query_opt(&mut self, sql: &'static str, params: Params) -> Result<Option<Row>, DbError> {
        self.run(sql, |t, s| t.query_opt(s, params))
    }

    pub fn query_one(&mut self, sql: &'static str, params: Params) -> Result<Row, DbError> {
        self.run(sql, |t, s| t.query_one(s, params))
    }

    pub fn execute(&mut self, sql: &'static str, params: Params) -> Result<u64, DbError> {
        self.run(sql, |t, s| t.execute(s, params))
    }
}
