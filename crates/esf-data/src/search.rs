//! Product search (SPEC.md, `GET /search`).
//!
//! The semantics live here, on the Rust side: [`tokens`] says what a word
//! is, [`SearchQuery`] normalizes a query, [`search`] is the API the
//! controller calls. Matching and ranking are one function, `find`, over
//! PostgreSQL for now (sql/005_search.sql keeps a token table in step with
//! products); a search daemon replaces that function later and nothing
//! else has to change.
//!
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

use crate::db::{DbError, Handle};
use crate::layer::DataLayer;
use crate::part::{self, Part};
use crate::product::ProductId;

/// Results on a page.
pub const PER_PAGE: u32 = 24;

/// The longest cache key LMDB takes; longer queries are not cached.
const MAX_CACHE_KEY: usize = 511;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
}

impl Sort {
    /// `relevance`, `price_asc`, `price_desc` or `newest`.
    pub fn parse(name: &str) -> Option<Sort> {
        match name {
            "relevance" => Some(Sort::Relevance),
            "price_asc" => Some(Sort::PriceAsc),
            "price_desc" => Some(Sort::PriceDesc),
            "newest" => Some(Sort::Newest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Newest => "newest",
        }
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

/// The tokens of `text`, in order, repeats kept: its runs of letters and
/// digits, each lowercased. Query words and product text are cut the same
/// way (sql/005_search.sql's `esf_tokens` is the SQL twin).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|run| !run.is_empty()).map(str::to_lowercase).collect()
}

/// A query's words: its tokens, each once, in order of first appearance.
pub fn query_words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for token in tokens(query) {
        if !words.contains(&token) {
            words.push(token);
        }
    }
    words
}

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

/// Results are cached a minute: popular queries repeat, and the daemon
/// will cache them anyway. Product changes do not drop these entries (no
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
/// (and asks nothing of the database).
pub fn search(data: &DataLayer, query: &str, sort: Sort, page: u32) -> Result<SearchResults, DbError> {
    let query = SearchQuery::new(query, sort, page);
    if query.words.is_empty() {
        return Ok(query.results(0, Vec::new()));
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

/// The matching engine: the total and one page of product ids for a
/// query with at least one word.
fn find(db: &mut Handle<'_>, query: &SearchQuery) -> Result<(i64, Vec<ProductId>), DbError> {
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
    fn tokens_are_runs_of_letters_and_digits_lowercased() {
        assert_eq!(tokens("Wooden Train-Set, 3 pieces!"), ["wooden", "train", "set", "3", "pieces"]);
        assert_eq!(tokens("Collector's <Limited Edition>"), ["collector", "s", "limited", "edition"]);
        assert_eq!(tokens("Müller's Café & Co."), ["müller", "s", "café", "co"]);
        assert_eq!(tokens("R2D2 x86_64"), ["r2d2", "x86", "64"]);
        assert_eq!(tokens("  --  "), Vec::<String>::new());
        assert_eq!(tokens(""), Vec::<String>::new());
        assert_eq!(tokens("Train train TRAIN"), ["train", "train", "train"]);
    }

    #[test]
    fn unicode_lowercasing_is_full_and_per_token() {
        // İ becomes i + combining dot above, inside its token.
        assert_eq!(tokens("İSTANBUL"), ["i\u{307}stanbul"]);
        // Final sigma at the end of each token.
        assert_eq!(tokens("ΟΔΟΣ-ΣΑΣ"), ["οδος", "σας"]);
        assert_eq!(tokens("ПРИВЕТ мир"), ["привет", "мир"]);
        assert_eq!(tokens("東京タワー"), ["東京タワー"]);
    }

    #[test]
    fn query_words_count_once_in_order() {
        assert_eq!(query_words("Train wooden TRAIN train, wooden"), ["train", "wooden"]);
        assert!(query_words(" ,.; ").is_empty());
    }

    #[test]
    fn sorts_parse_by_name() {
        for sort in [Sort::Relevance, Sort::PriceAsc, Sort::PriceDesc, Sort::Newest] {
            assert_eq!(Sort::parse(sort.name()), Some(sort));
        }
        assert_eq!(Sort::parse("Relevance"), None);
        assert_eq!(Sort::parse(""), None);
    }

    #[test]
    fn the_cache_key_is_the_normalized_query() {
        let query = SearchQuery::new("Wooden, TRAIN wooden", Sort::PriceDesc, 2);
        assert_eq!(SearchResults::cache_key(&query), "search:price_desc:2:wooden train");
        assert_eq!(query.offset(), 24);
        assert_eq!(SearchQuery::new("x", Sort::Relevance, 0).page, 1);
        assert_eq!(SearchQuery::new("wooden train", Sort::Newest, 1), SearchQuery::new("WOODEN  train!", Sort::Newest, 1));
    }
}
