//! The inverted word index: which products hold each token, and in which
//! fields, in a form that answers the SPEC's search (every word, four
//! sorts, a page and the total) without looking at every match.
//!
//! A product is keyed by its id mapped to a `u32` in the same order
//! ([`key`]), so every bitmap iterates in id order: the "ties by id" of
//! every sort come for free. Per token:
//!
//! - `all`: the products holding it anywhere (a Roaring bitmap: compact,
//!   and intersections of common words are word-wide ANDs);
//! - `by_score`: the same products split by what the token adds to a
//!   product's relevance (3 in the name + 2 in the brand + 1 in the
//!   description: 1 to 6).
//!
//! Relevance, highest first, is then a walk down the possible scores: the
//! products scoring exactly `s` are the union, over the ways the query's
//! words can add up to `s`, of the intersections of their classes; the
//! walk stops once the page is filled, so a popular one-word query costs a
//! few bitmap lengths, not a pass over its hundreds of thousands of
//! matches. Price and newest keep one bitmap per price and per day
//! created: a page walks the values in the sort's order, intersecting
//! each with the matches (within one value, ties go by id: the bitmap's
//! own order), and stops when the page is full; a query with few matches
//! sorts them instead.
//!
//! The index is a value made of persistent structures (`imbl`) and shared
//! bitmaps: cloning it is cheap, and a clone changed with [`Index::apply`]
//! shares everything it did not touch. The daemon answers queries from one
//! snapshot while it prepares the next (see esf-searchd).
use std::cmp::Reverse;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use imbl::{HashMap as PersistentMap, OrdMap, Vector};
use roaring::RoaringBitmap;

use crate::text::{tokens, Sort, PER_PAGE};

/// Field bits of a token's presence in a product.
const IN_NAME: u8 = 4;
const IN_BRAND: u8 = 2;
const IN_DESCRIPTION: u8 = 1;

/// What a token adds to a product's relevance when it is a query word.
fn score(fields: u8) -> u32 {
    3 * u32::from(fields & IN_NAME != 0) + 2 * u32::from(fields & IN_BRAND != 0) + u32::from(fields & IN_DESCRIPTION != 0)
}

/// The highest [`score`] of one word.
const MAX_WORD_SCORE: usize = 6;

/// Relevance with more words than this scores each match one by one: the
/// ways a score can be made grow as 6^words (such queries are rare, and
/// their matches few).
const MAX_WALKED_WORDS: usize = 4;

/// A product id as a bitmap key: the sign bit flipped, so keys sort as ids do.
pub fn key(id: i32) -> u32 {
    (id as u32) ^ 0x8000_0000
}

/// The product id of a [`key`].
pub fn id_of(key: u32) -> i32 {
    (key ^ 0x8000_0000) as i32
}

/// A product as the index reads it from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductText {
    pub id: i32,
    pub price_cents: i32,
    /// Days since 1970-01-01 (only the order matters).
    pub created_days: i32,
    pub name: String,
    pub brand: String,
    pub description: String,
}

/// A product cut into its distinct tokens, each with the fields it is in:
/// the expensive part of indexing, which callers may spread over threads.
#[derive(Debug, Clone)]
pub struct Tokenized {
    pub id: i32,
    pub price_cents: i32,
    pub created_days: i32,
    tokens: Vec<(String, u8)>,
}

impl Tokenized {
    pub fn new(product: &ProductText) -> Tokenized {
        let mut all: Vec<(String, u8)> = Vec::new();
        for (text, field) in [(&product.name, IN_NAME), (&product.brand, IN_BRAND), (&product.description, IN_DESCRIPTION)] {
            all.extend(tokens(text).into_iter().map(|t| (t, field)));
        }
        all.sort_unstable();
        let mut merged: Vec<(String, u8)> = Vec::with_capacity(all.len());
        for (token, field) in all {
            match merged.last_mut() {
                Some((last, fields)) if *last == token => *fields |= field,
                _ => merged.push((token, field)),
            }
        }
        Tokenized { id: product.id, price_cents: product.price_cents, created_days: product.created_days, tokens: merged }
    }
}

/// One change to the index.
#[derive(Debug, Clone)]
pub enum Change {
    /// Adds the product, or replaces what the index holds for its id.
    Upsert(Tokenized),
    /// Removes the product with this id, if the index holds it.
    Remove(i32),
}

/// The products holding one token.
#[derive(Debug, Clone, Default)]
struct Postings {
    all: RoaringBitmap,
    /// `by_score[s - 1]`: the products to which this token adds `s`.
    by_score: [RoaringBitmap; MAX_WORD_SCORE],
}

impl Postings {
    fn insert(&mut self, key: u32, fields: u8) {
        self.all.insert(key);
        self.by_score[score(fields) as usize - 1].insert(key);
    }

    fn remove(&mut self, key: u32) {
        if self.all.remove(key) {
            for class in &mut self.by_score {
                class.remove(key);
            }
        }
    }

    /// What this token adds to `key`'s relevance (0: not there).
    fn score_of(&self, key: u32) -> u32 {
        self.by_score.iter().position(|class| class.contains(key)).map_or(0, |i| i as u32 + 1)
    }
}

/// What the index keeps of a product besides its postings: its sort
/// values, and its tokens, to find its postings again when it changes.
#[derive(Debug, Clone)]
struct Entry {
    price_cents: i32,
    created_days: i32,
    tokens: Arc<[u32]>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Matching products, all pages together.
    pub total: u64,
    /// This page's product ids, in order; empty past the last page.
    pub ids: Vec<i32>,
}

/// Figures for logs and `STATS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub products: usize,
    /// Distinct tokens seen (some may no longer be in any product until
    /// the next full build).
    pub tokens: usize,
}

/// How a price or newest page is found (tests force each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ordering {
    /// Walk the sort's values in order, intersecting each with the matches.
    Walk,
    /// Sort the matches.
    Collect,
}

/// Products by one sort value (a price, a day), each value's products a
/// bitmap in id order.
type ByValue = OrdMap<i32, Arc<RoaringBitmap>>;

fn add_to(by_value: &mut ByValue, value: i32, key: u32) {
    Arc::make_mut(by_value.entry(value).or_default()).insert(key);
}

fn remove_from(by_value: &mut ByValue, value: i32, key: u32) {
    if let Some(products) = by_value.get_mut(&value) {
        let products = Arc::make_mut(products);
        products.remove(key);
        if products.is_empty() {
            by_value.remove(&value);
        }
    }
}

/// A searchable snapshot of the catalog. Cheap to clone (see the module doc).
#[derive(Clone, Default)]
pub struct Index {
    vocabulary: PersistentMap<Arc<str>, u32>,
    /// By token number (the vocabulary's values).
    postings: Vector<Arc<Postings>>,
    products: PersistentMap<u32, Entry>,
    by_price: ByValue,
    by_created: ByValue,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("stats", &self.stats()).finish()
    }
}

impl Index {
    /// An index of `products` (ids are unique: the first of a repeated id
    /// is kept).
    pub fn build(products: impl IntoIterator<Item = Tokenized>) -> Index {
        let mut builder = Builder::default();
        for product in products {
            builder.add(product);
        }
        builder.finish()
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats { products: self.products.len(), tokens: self.postings.len() }
    }

    /// Bytes the bitmaps take serialized (about what they take in memory):
    /// the postings, and the products by price and by day.
    pub fn bitmap_bytes(&self) -> (usize, usize) {
        let postings = self.postings.iter().map(|p| p.all.serialized_size() + p.by_score.iter().map(RoaringBitmap::serialized_size).sum::<usize>()).sum();
        let orders = self.by_price.values().chain(self.by_created.values()).map(|b| b.serialized_size()).sum();
        (postings, orders)
    }

    /// Applies `changes` in order. Call it on a clone to leave the
    /// original (the snapshot being searched) as it was.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = Change>) {
        for change in changes {
            match change {
                Change::Upsert(product) => self.upsert(product),
                Change::Remove(id) => self.remove(key(id)),
            }
        }
    }

    fn remove(&mut self, key: u32) {
        let Some(entry) = self.products.remove(&key) else {
            return;
        };
        for &token in entry.tokens.iter() {
            if let Some(postings) = self.postings.get_mut(token as usize) {
                Arc::make_mut(postings).remove(key);
            }
        }
        remove_from(&mut self.by_price, entry.price_cents, key);
        remove_from(&mut self.by_created, entry.created_days, key);
    }

    fn upsert(&mut self, product: Tokenized) {
        let key = key(product.id);
        self.remove(key);
        let mut numbers = Vec::with_capacity(product.tokens.len());
        for (token, fields) in product.tokens {
            let number = match self.vocabulary.get(token.as_str()) {
                Some(&number) => number,
                None => {
                    let number = self.postings.len() as u32;
                    self.vocabulary.insert(Arc::from(token), number);
                    self.postings.push_back(Arc::new(Postings::default()));
                    number
                }
            };
            Arc::make_mut(&mut self.postings[number as usize]).insert(key, fields);
            numbers.push(number);
        }
        add_to(&mut self.by_price, product.price_cents, key);
        add_to(&mut self.by_created, product.created_days, key);
        self.products.insert(key, Entry { price_cents: product.price_cents, created_days: product.created_days, tokens: numbers.into() });
    }

    /// Page `page` (from 1; 0 reads as 1) of the products holding every
    /// one of `words` (already tokens: see [`crate::query_words`]; repeats
    /// count once), in `sort` order, with the total.
    pub fn search(&self, words: &[String], sort: Sort, page: u32) -> Found {
        self.search_with(words, sort, page, None)
    }

    fn search_with(&self, words: &[String], sort: Sort, page: u32, forced: Option<Ordering>) -> Found {
        let nothing = Found { total: 0, ids: Vec::new() };
        let mut postings: Vec<&Postings> = Vec::with_capacity(words.len());
        let mut seen: Vec<&str> = Vec::with_capacity(words.len());
        for word in words {
            if seen.contains(&word.as_str()) {
                continue;
            }
            seen.push(word);
            match self.vocabulary.get(word.as_str()) {
                Some(&number) => postings.push(&self.postings[number as usize]),
                None => return nothing,
            }
        }
        if postings.is_empty() {
            return nothing;
        }
        // Smallest first: every intersection is then as small as it gets.
        postings.sort_by_key(|p| p.all.len());
        let offset = u64::from(page.max(1) - 1) * u64::from(PER_PAGE);

        // The matches, as a bitmap of their own unless one word has them all.
        let intersection;
        let matches: &RoaringBitmap = if postings.len() == 1 {
            &postings[0].all
        } else if postings.len() == 2 && sort == Sort::Relevance {
            // Relevance only needs the count of the two-word intersection.
            let total = postings[0].all.intersection_len(&postings[1].all);
            return self.relevance_page(&postings, total, offset);
        } else {
            let mut all = &postings[0].all & &postings[1].all;
            for p in &postings[2..] {
                if all.is_empty() {
                    break;
                }
                all &= &p.all;
            }
            intersection = all;
            &intersection
        };
        let total = matches.len();
        if offset >= total {
            return Found { total, ids: Vec::new() };
        }
        match sort {
            Sort::Relevance if postings.len() > MAX_WALKED_WORDS => self.relevance_by_scoring(&postings, matches, offset),
            Sort::Relevance => self.relevance_page(&postings, total, offset),
            _ => self.ordered_page(sort, matches, offset, forced),
        }
    }

    /// Relevance by walking down the scores (see the module doc).
    fn relevance_page(&self, postings: &[&Postings], total: u64, offset: u64) -> Found {
        if offset >= total {
            return Found { total, ids: Vec::new() };
        }
        let end = (offset + u64::from(PER_PAGE)).min(total);
        // Each word's non-empty score classes, best first.
        let words: Vec<Vec<(u32, &RoaringBitmap)>> = postings
            .iter()
            .map(|p| (1..=MAX_WORD_SCORE as u32).rev().map(|s| (s, &p.by_score[s as usize - 1])).filter(|(_, b)| !b.is_empty()).collect())
            .collect();
        // The least and most the words from j on can add.
        let mut least = vec![0; words.len() + 1];
        let mut most = vec![0; words.len() + 1];
        for j in (0..words.len()).rev() {
            least[j] = least[j + 1] + words[j].last().map_or(0, |c| c.0);
            most[j] = most[j + 1] + words[j].first().map_or(0, |c| c.0);
        }
        let mut walk = ScoreWalk { words: &words, least: &least, most: &most, prefixes: HashMap::new(), path: Vec::new() };
        let mut ids = Vec::with_capacity(PER_PAGE as usize);
        let mut before = 0u64;
        for target in (least[0]..=most[0]).rev() {
            let mut parts: Vec<Part> = Vec::new();
            walk.collect(0, None, 0, target, &mut parts);
            let group = match parts.len() {
                0 => continue,
                1 => parts.pop().expect("one part"),
                _ => Part::Owned(Rc::new(parts.iter().fold(RoaringBitmap::new(), |mut union, part| {
                    union |= part.bitmap();
                    union
                }))),
            };
            let size = group.bitmap().len();
            if before + size > offset {
                let skip = offset.saturating_sub(before);
                let take = end - offset.max(before);
                ids.extend(group.bitmap().iter().skip(skip as usize).take(take as usize).map(id_of));
            }
            before += size;
            if before >= end {
                break;
            }
        }
        Found { total, ids }
    }

    /// Relevance by scoring every match (many words, so few matches).
    fn relevance_by_scoring(&self, postings: &[&Postings], matches: &RoaringBitmap, offset: u64) -> Found {
        let scored: Vec<(Reverse<u32>, u32)> = matches.iter().map(|key| (Reverse(postings.iter().map(|p| p.score_of(key)).sum()), key)).collect();
        Found { total: matches.len(), ids: page_of_sorted(scored, offset) }
    }

    /// A price or newest page: walk the sort's values, or sort the
    /// matches, whichever should cost less.
    fn ordered_page(&self, sort: Sort, matches: &RoaringBitmap, offset: u64, forced: Option<Ordering>) -> Found {
        let total = matches.len();
        let end = (offset + u64::from(PER_PAGE)).min(total);
        let catalog = self.products.len() as u64;
        // A walk intersects about end / total of the catalog's products
        // with the matches (a few nanoseconds each, in bulk); sorting the
        // matches looks each one up (tens of times dearer).
        let walk_cost = end.saturating_mul(catalog) / total.max(1);
        let ordering = forced.unwrap_or(if walk_cost <= total.saturating_mul(50) { Ordering::Walk } else { Ordering::Collect });
        let ids = match ordering {
            Ordering::Walk => {
                let values: Box<dyn Iterator<Item = &Arc<RoaringBitmap>>> = match sort {
                    Sort::PriceAsc => Box::new(self.by_price.values()),
                    Sort::PriceDesc => Box::new(self.by_price.values().rev()),
                    _ => Box::new(self.by_created.values().rev()),
                };
                let mut ids = Vec::with_capacity((end - offset) as usize);
                let mut before = 0u64;
                for products in values {
                    let size = matches.intersection_len(products);
                    if size == 0 {
                        continue;
                    }
                    if before + size > offset {
                        let skip = offset.saturating_sub(before);
                        let take = end - offset.max(before);
                        ids.extend((matches & products.as_ref()).iter().skip(skip as usize).take(take as usize).map(id_of));
                    }
                    before += size;
                    if before >= end {
                        break;
                    }
                }
                ids
            }
            Ordering::Collect => {
                let order = |entry: &Entry| -> i64 {
                    match sort {
                        Sort::PriceAsc => i64::from(entry.price_cents),
                        Sort::PriceDesc => -i64::from(entry.price_cents),
                        _ => -i64::from(entry.created_days),
                    }
                };
                let keyed: Vec<(i64, u32)> = matches.iter().filter_map(|key| self.products.get(&key).map(|entry| (order(entry), key))).collect();
                page_of_sorted(keyed, offset)
            }
        };
        Found { total, ids }
    }
}

/// Ids of rows `offset..offset + PER_PAGE` of `rows` in their order (a
/// sort key, then the product key), sorting only as far as needed.
fn page_of_sorted<K: Ord + Copy>(mut rows: Vec<(K, u32)>, offset: u64) -> Vec<i32> {
    let end = (offset as usize).saturating_add(PER_PAGE as usize).min(rows.len());
    let start = (offset as usize).min(end);
    if end == 0 {
        return Vec::new();
    }
    if end < rows.len() {
        rows.select_nth_unstable(end - 1);
        rows.truncate(end);
    }
    rows.sort_unstable();
    rows[start..end].iter().map(|&(_, key)| id_of(key)).collect()
}

/// A set of products scoring one value: a word's class as it is, or an
/// intersection made for this query.
enum Part<'a> {
    Borrowed(&'a RoaringBitmap),
    Owned(Rc<RoaringBitmap>),
}

impl Part<'_> {
    fn bitmap(&self) -> &RoaringBitmap {
        match self {
            Part::Borrowed(bitmap) => bitmap,
            Part::Owned(bitmap) => bitmap,
        }
    }
}

/// The walk down the scores of one query.
struct ScoreWalk<'a> {
    /// Per word, its non-empty classes (score, products), best first.
    words: &'a [Vec<(u32, &'a RoaringBitmap)>],
    least: &'a [u32],
    most: &'a [u32],
    /// Intersections of the first few words' chosen classes, by the
    /// classes' positions: each target score reuses those of the last.
    prefixes: HashMap<Vec<u8>, Rc<RoaringBitmap>>,
    path: Vec<u8>,
}

impl<'a> ScoreWalk<'a> {
    /// Adds to `parts` the products in which words `j..` add up to
    /// `target - sum`, among `partial` (the products of the classes chosen
    /// for words `..j`; `None` before the first word).
    fn collect(&mut self, j: usize, partial: Option<Part<'a>>, sum: u32, target: u32, parts: &mut Vec<Part<'a>>) {
        let words = self.words;
        let last = j + 1 == words.len();
        for (position, &(score, class)) in words[j].iter().enumerate() {
            let reached = sum + score;
            if reached + self.least[j + 1] > target || reached + self.most[j + 1] < target {
                continue;
            }
            self.path.push(position as u8);
            let next = match &partial {
                None => Part::Borrowed(class),
                Some(partial) => {
                    let prefix = match self.prefixes.get(&self.path) {
                        Some(known) => known.clone(),
                        None => {
                            let made = Rc::new(partial.bitmap() & class);
                            self.prefixes.insert(self.path.clone(), made.clone());
                            made
                        }
                    };
                    Part::Owned(prefix)
                }
            };
            if !next.bitmap().is_empty() {
                if last {
                    parts.push(next);
                } else {
                    self.collect(j + 1, Some(next), reached, target, parts);
                }
            }
            self.path.pop();
        }
    }
}

/// Accumulates a full build: postings as sorted key lists, made into
/// bitmaps at the end (much faster than inserting one key at a time).
#[derive(Default)]
struct Builder {
    vocabulary: std::collections::HashMap<Arc<str>, u32>,
    /// By token number, by score class: the keys, in the order added.
    classes: Vec<[Vec<u32>; MAX_WORD_SCORE]>,
    products: Vec<(u32, Entry)>,
}

impl Builder {
    fn add(&mut self, product: Tokenized) {
        let key = key(product.id);
        let mut numbers = Vec::with_capacity(product.tokens.len());
        for (token, fields) in product.tokens {
            let number = match self.vocabulary.get(token.as_str()) {
                Some(&number) => number,
                None => {
                    let number = self.classes.len() as u32;
                    self.vocabulary.insert(Arc::from(token), number);
                    self.classes.push(Default::default());
                    number
                }
            };
            self.classes[number as usize][score(fields) as usize - 1].push(key);
            numbers.push(number);
        }
        self.products.push((key, Entry { price_cents: product.price_cents, created_days: product.created_days, tokens: numbers.into() }));
    }

    fn finish(mut self) -> Index {
        // A repeated id keeps its first row (ids are a primary key: this
        // only guards the index against a bad feed).
        self.products.sort_by_key(|(key, _)| *key);
        let before = self.products.len();
        self.products.dedup_by_key(|(key, _)| *key);
        if self.products.len() != before {
            let kept: std::collections::HashMap<u32, Arc<[u32]>> = self.products.iter().map(|(k, e)| (*k, e.tokens.clone())).collect();
            for (number, classes) in self.classes.iter_mut().enumerate() {
                for class in classes.iter_mut() {
                    class.retain(|k| kept.get(k).is_some_and(|tokens| tokens.contains(&(number as u32))));
                }
            }
        }
        let postings: Vector<Arc<Postings>> = self
            .classes
            .into_iter()
            .map(|classes| {
                let mut postings = Postings::default();
                for (i, mut keys) in classes.into_iter().enumerate() {
                    keys.sort_unstable();
                    keys.dedup();
                    postings.by_score[i] = RoaringBitmap::from_sorted_iter(keys).expect("sorted keys");
                    postings.all |= &postings.by_score[i];
                }
                Arc::new(postings)
            })
            .collect();
        // Products are in key order: each value's keys arrive sorted.
        let by_value = |value: fn(&Entry) -> i32| -> ByValue {
            let mut keys: std::collections::BTreeMap<i32, Vec<u32>> = std::collections::BTreeMap::new();
            for (key, entry) in &self.products {
                keys.entry(value(entry)).or_default().push(*key);
            }
            keys.into_iter().map(|(v, keys)| (v, Arc::new(RoaringBitmap::from_sorted_iter(keys).expect("sorted keys")))).collect()
        };
        let by_price = by_value(|e| e.price_cents);
        let by_created = by_value(|e| e.created_days);
        Index {
            vocabulary: self.vocabulary.into_iter().collect(),
            postings,
            products: self.products.into_iter().collect(),
            by_price,
            by_created,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::query_words;
    use std::collections::BTreeMap;

    /// xorshift64*: deterministic, and enough for shuffling test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Skewed towards the first words, as real text is.
        fn word<'a>(&mut self, words: &[&'a str]) -> &'a str {
            let a = self.below(words.len());
            let b = self.below(words.len());
            words[a.min(b)]
        }
    }

    const WORDS: &[&str] = &["train", "Wooden", "zebra", "crossing", "café", "ΟΔΟΣ", "x86", "r2", "blue", "red", "kit", "set", "toy", "a", "b", "c", "d", "e", "f", "g"];

    fn random_product(rng: &mut Rng, id: i32) -> ProductText {
        let mut text = |n: usize| (0..n).map(|_| rng.word(WORDS)).collect::<Vec<_>>().join(" ");
        let (name, brand, description) = (text(3), text(2), text(8));
        ProductText { id, price_cents: rng.below(20) as i32 * 100, created_days: 19_000 + rng.below(30) as i32, name, brand, description }
    }

    /// The SPEC, by brute force over every product.
    fn reference(products: &BTreeMap<i32, ProductText>, query: &str, sort: Sort) -> Vec<i32> {
        let words = query_words(query);
        if words.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<(i64, &ProductText)> = Vec::new();
        for p in products.values() {
            let (n, b, d) = (tokens(&p.name), tokens(&p.brand), tokens(&p.description));
            let mut score = 0;
            let mut all = true;
            for w in &words {
                let (in_n, in_b, in_d) = (n.contains(w), b.contains(w), d.contains(w));
                all &= in_n || in_b || in_d;
                score += 3 * i64::from(in_n) + 2 * i64::from(in_b) + i64::from(in_d);
            }
            if all {
                found.push((score, p));
            }
        }
        match sort {
            Sort::Relevance => found.sort_by_key(|&(score, p)| (-score, p.id)),
            Sort::PriceAsc => found.sort_by_key(|&(_, p)| (p.price_cents, p.id)),
            Sort::PriceDesc => found.sort_by_key(|&(_, p)| (-p.price_cents, p.id)),
            Sort::Newest => found.sort_by_key(|&(_, p)| (-p.created_days, p.id)),
        }
        found.into_iter().map(|(_, p)| p.id).collect()
    }

    fn check(index: &Index, products: &BTreeMap<i32, ProductText>, query: &str) {
        for sort in Sort::ALL {
            let all = reference(products, query, sort);
            let last_page = all.len().div_ceil(PER_PAGE as usize) as u32;
            for page in [1, 2, last_page, last_page + 1].into_iter().filter(|p| *p >= 1) {
                let expected: Vec<i32> = all.iter().skip((page as usize - 1) * PER_PAGE as usize).take(PER_PAGE as usize).copied().collect();
                let orderings: &[Option<Ordering>] = if sort == Sort::Relevance { &[None] } else { &[None, Some(Ordering::Walk), Some(Ordering::Collect)] };
                for &forced in orderings {
                    let found = index.search_with(&query_words(query), sort, page, forced);
                    assert_eq!(found.total, all.len() as u64, "{query:?} {sort} page {page} {forced:?}: total");
                    assert_eq!(found.ids, expected, "{query:?} {sort} page {page} {forced:?}: ids");
                }
            }
        }
    }

    fn random_query(rng: &mut Rng) -> String {
        let n = 1 + rng.below(6);
        (0..n).map(|_| rng.word(WORDS)).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_built_index_answers_as_the_brute_force_reference() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // Negative and sparse ids too: keys must sort as ids do.
        let products: BTreeMap<i32, ProductText> = (0..600).map(|i| if i % 50 == 0 { -i - 7 } else { i * 3 + 1 }).map(|id| (id, random_product(&mut rng, id))).collect();
        let index = Index::build(products.values().map(Tokenized::new));
        assert_eq!(index.stats().products, products.len());
        for _ in 0..150 {
            check(&index, &products, &random_query(&mut rng));
        }
        for query in ["train", "TRAIN, train!", "zebra crossing", "ΟΔΟΣ", "οδος", "nothing", "train nothing", "", "  ", "a b c d e f g"] {
            check(&index, &products, query);
        }
    }

    #[test]
    fn changes_applied_to_a_clone_leave_the_snapshot_alone() {
        let mut rng = Rng(42);
        let mut products: BTreeMap<i32, ProductText> = (1..=300).map(|id| (id, random_product(&mut rng, id))).collect();
        let mut index = Index::build(products.values().map(Tokenized::new));
        for round in 0..30 {
            let before = index.clone();
            let before_products = products.clone();
            let mut changes = Vec::new();
            for _ in 0..1 + rng.below(20) {
                let id = 1 + rng.below(340) as i32;
                if rng.below(4) == 0 {
                    products.remove(&id);
                    changes.push(Change::Remove(id));
                } else {
                    let product = random_product(&mut rng, id);
                    changes.push(Change::Upsert(Tokenized::new(&product)));
                    products.insert(id, product);
                }
            }
            index.apply(changes);
            for _ in 0..10 {
                let query = random_query(&mut rng);
                check(&index, &products, &query);
                check(&before, &before_products, &query);
            }
            assert_eq!(index.stats().products, products.len(), "round {round}");
        }
        // The applied index and a fresh build agree.
        let fresh = Index::build(products.values().map(Tokenized::new));
        for _ in 0..50 {
            let query = random_query(&mut rng);
            for sort in Sort::ALL {
                assert_eq!(index.search(&query_words(&query), sort, 1), fresh.search(&query_words(&query), sort, 1), "{query:?} {sort}");
            }
        }
    }

    #[test]
    fn relevance_ranks_name_over_brand_over_description() {
        let product = |id, name: &str, brand: &str, description: &str| ProductText {
            id,
            price_cents: 100,
            created_days: 1,
            name: name.into(),
            brand: brand.into(),
            description: description.into(),
        };
        let products = [
            product(1, "Plain", "Zebra", "Crossing ZEBRA crossing"),
            product(2, "Zebras", "Crossing Co.", "zebra"),
            product(3, "Zebra-Crossing Café", "Toys", "A tiny zebra; crossing the road!"),
            product(4, "Other", "Other", "zebra crossing"),
        ];
        let index = Index::build(products.iter().map(Tokenized::new));
        let found = index.search(&query_words("zebra crossing"), Sort::Relevance, 1);
        assert_eq!(found, Found { total: 4, ids: vec![3, 1, 2, 4] });
        assert_eq!(index.search(&query_words("zebra"), Sort::Relevance, 1).ids, [3, 1, 2, 4]);
        assert_eq!(index.search(&query_words("zebras"), Sort::Relevance, 1).ids, [2]);
        assert_eq!(index.search(&query_words("zeb"), Sort::Relevance, 1).total, 0);
        assert_eq!(index.search(&query_words("zebra"), Sort::Relevance, u32::MAX), Found { total: 4, ids: vec![] });
        assert_eq!(index.search(&query_words("zebra"), Sort::Newest, 0).ids, [1, 2, 3, 4], "page 0 reads as 1");
    }

    #[test]
    fn keys_sort_as_ids() {
        let ids = [i32::MIN, -5, -1, 0, 1, 2, 1000, i32::MAX];
        for pair in ids.windows(2) {
            assert!(key(pair[0]) < key(pair[1]));
        }
        for id in ids {
            assert_eq!(id_of(key(id)), id);
        }
    }
}
