//! Product search (SPEC.md, `GET /search`).
//!
//! The semantics live in crate `esf-search` (re-exported here: [`tokens`]
//! says what a word is, [`Sort`] the orders); [`SearchQuery`] normalizes a
//! query, [`search`] is the API the controller calls. It asks one of two
//! engines:
//!
//! - with `EsfSearch`, the search daemon (crates/esf-searchd) over the
//!   data layer's pooled connections; its index follows product changes
//!   within a second, so its answers are not cached here;
//! - without it, PostgreSQL ([`find`]: GIN over the token arrays that
//!   sql/005_search.sql keeps in step with products), its results cached
//!   a minute in the object cache. This is also the benchmarks' baseline.
//!
//! The rules, whichever engine:
//! - A word is a run of letters/digits (`char::is_alphanumeric`),
//!   lowercased; a query's repeated words count once.
//! - A product matches when every query word is a whole token of its name,
//!   brand or description (no stemming, no substrings).
//! - `relevance`: 3 x (query words in the name) + 2 x (in the brand) +
//!   1 x (in the description), highest first; ties, and the other sorts'
//!   ties, by id ascending. `newest`: created, newest first.
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use esf_search::{query_words, tokens, Address, Client as DaemonClient, SearchError as DaemonError, Sort, PER_PAGE};

use crate::db::{DbError, Handle};
use crate::layer::DataLayer;
use crate::part::{self, Part};
use crate::product::ProductId;

/// The longest cache key LMDB takes; longer queries are not cached.
const MAX_CACHE_KEY: usize = 511;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Matching products, all pages together.
    pub total: i64,
    /// This page's products in order; empty past the last page.
    pub product_ids: Vec<ProductId>,
    /// From 1.
    pub page: u32,
    pub per_page: u32,
    /// The query's words, as matched (see [`query_words`]).
    pub words: Vec<String>,
}

/// Why a search has no answer.
#[derive(Debug)]
pub enum SearchError {
    /// The database (PostgreSQL engine) failed.
    Db(DbError),
    /// The search daemon is down, unreachable or too slow (503: the rest
    /// of the store still works).
    Unavailable(String),
    /// The query is too long to send to the daemon (400).
    TooLong,
    /// The daemon refused the request or answered nonsense (500).
    Daemon(String),
}

impl SearchError {
    /// Search cannot answer now (a 503), whichever engine.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SearchError::Db(e) => e.is_unavailable(),
            SearchError::Unavailable(_) => true,
            SearchError::TooLong | SearchError::Daemon(_) => false,
        }
    }
}

impl From<DbError> for SearchError {
    fn from(error: DbError) -> SearchError {
        SearchError::Db(error)
    }
}

impl From<DaemonError> for SearchError {
    fn from(error: DaemonError) -> SearchError {
        match error {
            DaemonError::Unavailable(why) => SearchError::Unavailable(why),
            DaemonError::TooLong => SearchError::TooLong,
            DaemonError::Refused(why) => SearchError::Daemon(why),
        }
    }
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchError::Db(e) => e.fmt(f),
            SearchError::Unavailable(why) => write!(f, "search unavailable: {why}"),
            SearchError::TooLong => f.write_str("search query too long"),
            SearchError::Daemon(why) => write!(f, "search daemon error: {why}"),
        }
    }
}

impl std::error::Error for SearchError {}

/// A normalized query: what decides the results, and so the cache key
/// `search:{sort}:{page}:{words}` (words separated by spaces, which no
/// word holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub words: Vec<String>,
    pub sort: Sort,
    /// From 1.
    pub page: u32,
}

impl SearchQuery {
    /// `page` 0 reads as 1.
    pub fn new(query: &str, sort: Sort, page: u32) -> SearchQuery {
        SearchQuery { words: query_words(query), sort, page: page.max(1) }
    }

    fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(PER_PAGE)
    }

    fn results(&self, total: i64, product_ids: Vec<ProductId>) -> SearchResults {
        SearchResults { total, product_ids, page: self.page, per_page: PER_PAGE, words: self.words.clone() }
    }
}

impl fmt::Display for SearchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.sort, self.page, self.words.join(" "))
    }
}

/// PostgreSQL's results are cached a minute: popular queries repeat. Product changes do not drop these entries (no
/// trigger names them); a changed product shows in results within the
/// TTL, and ids that vanished are skipped by the page.
impl Part for SearchResults {
    const KIND: &'static str = "search";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(60);
    type Id = SearchQuery;

    fn fetch(db: &mut Handle<'_>, query: &SearchQuery) -> Result<Option<SearchResults>, DbError> {
        let (total, product_ids) = find(db, query)?;
        Ok(Some(query.results(total, product_ids)))
    }

    /// Results have no time of change of their own.
    fn modified(&self) -> i64 {
        0
    }
}

/// Page `page` (from 1) of the products matching every word of `query`,
/// in `sort` order, with the total. A query without words has no results
/// (and asks nothing of the database or the daemon).
pub fn search(data: &DataLayer, query: &str, sort: Sort, page: u32) -> Result<SearchResults, SearchError> {
    let query = SearchQuery::new(query, sort, page);
    if query.words.is_empty() {
        return Ok(query.results(0, Vec::new()));
    }
    if let Some(daemon) = data.search_daemon() {
        let found = daemon.search(&query.words, query.sort, query.page)?;
        let total = i64::try_from(found.total).unwrap_or(i64::MAX);
        return Ok(query.results(total, found.ids));
    }
    if SearchResults::cache_key(&query).len() > MAX_CACHE_KEY {
        let (total, product_ids) = find(&mut data.db()?.handle()?, &query)?;
        return Ok(query.results(total, product_ids));
    }
    Ok(part::load::<SearchResults>(data, &query)?.map(|fresh| fresh.value).unwrap_or_else(|| query.results(0, Vec::new())))
}

// The PostgreSQL implementation. Every statement filters with the GIN
// index on the three token arrays (`@>`: every word somewhere) and counts
// the matches in the same pass (`count(*) OVER ()`); $1 is the words, $2
// the page size, $3 the offset.

/// Relevance for up to [`UNROLLED_WORDS`] words (the common case): each
/// word's presence in each field is an array lookup in the row's own
/// expression; words past the query's end are NULL and add 0. The score is
/// computed below the window (OFFSET 0 keeps the planner from moving it
/// up), so only (id, score) pairs are buffered, not token arrays.
const RELEVANCE_SQL: &str = "
    SELECT product_id, count(*) OVER ()
    FROM (SELECT s.product_id,
                 3 * (coalesce((($1::text[])[1] = ANY (s.name_tokens))::int, 0)
                    + coalesce((($1::text[])[2] = ANY (s.name_tokens))::int, 0)
                    + coalesce((($1::text[])[3] = ANY (s.name_tokens))::int, 0))
               + 2 * (coalesce((($1::text[])[1] = ANY (s.brand_tokens))::int, 0)
                    + coalesce((($1::text[])[2] = ANY (s.brand_tokens))::int, 0)
                    + coalesce((($1::text[])[3] = ANY (s.brand_tokens))::int, 0))
               +     (coalesce((($1::text[])[1] = ANY (s.description_tokens))::int, 0)
                    + coalesce((($1::text[])[2] = ANY (s.description_tokens))::int, 0)
                    + coalesce((($1::text[])[3] = ANY (s.description_tokens))::int, 0)) AS score
          FROM product_search AS s
          WHERE (s.name_tokens || s.brand_tokens || s.description_tokens) @> $1::text[]
          OFFSET 0) AS matches
    ORDER BY score DESC, product_id
    LIMIT $2 OFFSET $3";

/// How many words [`RELEVANCE_SQL`] scores.
const UNROLLED_WORDS: usize = 3;

/// Relevance for any number of words: a subquery per matching row, about
/// twice the cost of [`RELEVANCE_SQL`].
const RELEVANCE_MANY_SQL: &str = "
    SELECT product_id, count(*) OVER ()
    FROM (SELECT s.product_id,
                 (SELECT sum(3 * (w = ANY (s.name_tokens))::int
                           + 2 * (w = ANY (s.brand_tokens))::int
                           +     (w = ANY (s.description_tokens))::int)
                  FROM unnest($1::text[]) AS w) AS score
          FROM product_search AS s
          WHERE (s.name_tokens || s.brand_tokens || s.description_tokens) @> $1::text[]
          OFFSET 0) AS matches
    ORDER BY score DESC, product_id
    LIMIT $2 OFFSET $3";

const PRICE_ASC_SQL: &str = "
    SELECT product_id, count(*) OVER ()
    FROM product_search AS s
    WHERE (s.name_tokens || s.brand_tokens || s.description_tokens) @> $1::text[]
    ORDER BY price_cents, product_id
    LIMIT $2 OFFSET $3";

const PRICE_DESC_SQL: &str = "
    SELECT product_id, count(*) OVER ()
    FROM product_search AS s
    WHERE (s.name_tokens || s.brand_tokens || s.description_tokens) @> $1::text[]
    ORDER BY price_cents DESC, product_id
    LIMIT $2 OFFSET $3";

const NEWEST_SQL: &str = "
    SELECT product_id, count(*) OVER ()
    FROM product_search AS s
    WHERE (s.name_tokens || s.brand_tokens || s.description_tokens) @> $1::text[]
    ORDER BY created DESC, product_id
    LIMIT $2 OFFSET $3";

/// For a page past the last, which has no row to carry the count.
const COUNT_SQL: &str = "
    SELECT count(*)
    FROM product_search AS s
    WHERE (s.name_tokens || s.brand_tokens || s.description_tokens) @> $1::text[]";

/// The PostgreSQL engine: the total and one page of product ids for a
/// query with at least one word (public for the benchmark that compares
/// it with the daemon).
pub fn find(db: &mut Handle<'_>, query: &SearchQuery) -> Result<(i64, Vec<ProductId>), DbError> {
    let sql = match query.sort {
        Sort::Relevance if query.words.len() <= UNROLLED_WORDS => RELEVANCE_SQL,
        Sort::Relevance => RELEVANCE_MANY_SQL,
        Sort::PriceAsc => PRICE_ASC_SQL,
        Sort::PriceDesc => PRICE_DESC_SQL,
        Sort::Newest => NEWEST_SQL,
    };
    let limit = i64::from(PER_PAGE);
    let rows = db.query(sql, &[&query.words, &limit, &query.offset()])?;
    if let Some(first) = rows.first() {
        let total: i64 = first.get(1);
        return Ok((total, rows.iter().map(|r| r.get(0)).collect()));
    }
    let total = if query.offset() == 0 { 0 } else { db.query_opt(COUNT_SQL, &[&query.words])?.map_or(0, |r| r.get(0)) };
    Ok((total, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_is_the_normalized_query() {
        let query = SearchQuery::new("Wooden, TRAIN wooden", Sort::PriceDesc, 2);
        assert_eq!(SearchResults::cache_key(&query), "search:price_desc:2:wooden train");
        assert_eq!(query.offset(), 24);
        assert_eq!(SearchQuery::new("x", Sort::Relevance, 0).page, 1);
        assert_eq!(SearchQuery::new("wooden train", Sort::Newest, 1), SearchQuery::new("WOODEN  train!", Sort::Newest, 1));
    }
}
