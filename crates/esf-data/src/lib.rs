//! mod_esf's data layer: per-child PostgreSQL handles ([`db`]), the shared
//! LMDB object cache (crate `esf-cache`) kept coherent with the database
//! ([`coherence`]), and the Models over them.
//!
//! Models load from the cache, then the database ([`part`]); they save to
//! the database in a transaction, then to the cache; they know nothing of
//! HTTP. Their `view()` gives templates a plain object.
pub mod category;
pub mod coherence;
pub mod page_cache;
pub mod db;
pub mod layer;
pub mod listing;
pub mod order;
pub mod part;
pub mod product;
pub mod search;
pub mod session;

pub use db::{Database, DbError, DbStats};
pub use layer::{DataLayer, DataSettings};
