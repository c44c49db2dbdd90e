//! mod_esf's search, the way eToys ran it: a daemon of its own holding an
//! inverted word index built from the database, answering a query with one
//! page of product ids and the total; the app servers keep persistent
//! connections to it and load the products through their own object cache.
//!
//! - [`text`]: what a word is, the sorts, the page size (the SPEC's rules,
//!   shared by everything that searches);
//! - [`index`]: the in-memory index and its snapshots;
//! - [`protocol`]: the daemon's line protocol;
//! - [`client`]: the app server's pooled, reconnecting client.
//!
//! The daemon itself is crates/esf-searchd.
pub mod client;
pub mod index;
pub mod protocol;
pub mod text;

pub use client::{Address, Client, ClientStats, SearchError};
pub use index::{Change, Found, Index, IndexStats, ProductText, Tokenized};
pub use text::{query_words, tokens, Sort, PER_PAGE};
