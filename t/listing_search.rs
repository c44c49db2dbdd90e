//! Category listings (esf_data::listing) and search (esf_data::search)
//! against the real PostgreSQL, compared page by page with brute-force
//! references computed from the catalog's TSV files; the SQL tokenizer
//! (sql/005_search.sql) against the Rust one; and the search table kept in
//! step with products whoever writes them. The reference serves the
//! search daemon's tests too (t/searchd.rs).
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use esf_data::category::CategoryTree;
use esf_data::listing::CategoryListing;
use esf_data::search::{self, SearchResults, Sort};
use esf_data::{DataLayer, DataSettings};
use esf_schema::postgres::{Client, NoTls};

use crate::harness::PgCluster;
use crate::store_fixture::{cache_dir, small_catalog, store_database, tiny_catalog};

const PER_PAGE: usize = 24;
pub const SORTS: [Sort; 4] = [Sort::Relevance, Sort::PriceAsc, Sort::PriceDesc, Sort::Newest];


fn connect(cluster: &PgCluster, db: &str) -> Client {
    Client::connect(&cluster.conninfo(db), NoTls).expect("connect")
}

/// A migrated database holding the `small` catalog.
pub fn small_database(cluster: &PgCluster, prefix: &str) -> String {
    let db = cluster.create_database(prefix);
    let mut client = connect(cluster, &db);
    esf_schema::migrate(&mut client).expect("migrate");
    esf_schema::import_catalog(&mut client, small_catalog()).expect("import small catalog");
    db
}

fn layer(cluster: &PgCluster, db: &str, cache: Option<PathBuf>) -> DataLayer {
    DataLayer::open(&DataSettings {
        database: Some(cluster.conninfo(db)),
        pool_size: 4,
        cache_dir: cache,
        cache_size: 64 << 20,
        cache_readers: 64,
        search: None,
    })
    .expect("open data layer")
}

// ---- The reference: the catalog files, read and searched by brute force.

pub struct Product {
    id: i32,
    category_id: i32,
    name: String,
    price_cents: i32,
    /// YYYY-MM-DD, which sorts as the date does.
    created: String,
    name_tokens: HashSet<String>,
    brand_tokens: HashSet<String>,
    description_tokens: HashSet<String>,
}

pub struct Catalog {
    /// (id, parent_id)
    categories: Vec<(i32, i32)>,
    products: Vec<Product>,
}

pub fn tsv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().skip(1).map(|line| line.split('\t').map(str::to_string).collect()).collect()
}

/// The SPEC's tokens, written out again here rather than taken from the
/// code under test: runs of letters/digits, lowercased.
fn reference_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() {
            run.push(c);
        } else if !run.is_empty() {
            tokens.push(run.to_lowercase());
            run.clear();
        }
    }
    tokens
}

impl Product {
    #[allow(clippy::too_many_arguments)]
    fn new(id: i32, category_id: i32, name: &str, brand: &str, price_cents: i32, description: &str, created: &str) -> Product {
        let set = |text: &str| reference_tokens(text).into_iter().collect::<HashSet<_>>();
        Product {
            id,
            category_id,
            name: name.to_string(),
            price_cents,
            created: created.to_string(),
            name_tokens: set(name),
            brand_tokens: set(brand),
            description_tokens: set(description),
        }
    }
}

impl Catalog {
    pub fn read(dir: &Path) -> Catalog {
        let categories = tsv_rows(&dir.join("categories.tsv")).iter().map(|c| (c[0].parse().unwrap(), c[1].parse().unwrap())).collect();
        let products = tsv_rows(&dir.join("products.tsv"))
            .iter()
            .map(|p| Product::new(p[0].parse().unwrap(), p[1].parse().unwrap(), &p[3], &p[4], p[7].parse().unwrap(), &p[8], &p[9]))
            .collect();
        Catalog { categories, products }
    }

    /// `id` and every category below it.
    fn subtree(&self, id: i32) -> HashSet<i32> {
        let mut ids = HashSet::from([id]);
        loop {
            let before = ids.len();
            for &(child, parent) in &self.categories {
                if ids.contains(&parent) {
                    ids.insert(child);
                }
            }
            if ids.len() == before {
                return ids;
            }
        }
    }

    /// Every product id of a category listing, in order: (name by code
    /// point, which is Rust's byte order on UTF-8, then id).
    fn listing(&self, category_id: i32) -> Vec<i32> {
        let categories = self.subtree(category_id);
        let mut listed: Vec<(&str, i32)> = self.products.iter().filter(|p| categories.contains(&p.category_id)).map(|p| (p.name.as_str(), p.id)).collect();
        listed.sort();
        listed.into_iter().map(|(_, id)| id).collect()
    }

    /// The products a search finds, with their relevance scores.
    pub fn matches(&self, query: &str) -> Vec<(i64, &Product)> {
        let mut words: Vec<String> = Vec::new();
        for word in reference_tokens(query) {
            if !words.contains(&word) {
                words.push(word);
            }
        }
        if words.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for p in &self.products {
            let mut score = 0;
            let mut all = true;
            for w in &words {
                let (n, b, d) = (p.name_tokens.contains(w), p.brand_tokens.contains(w), p.description_tokens.contains(w));
                all &= n || b || d;
                score += 3 * i64::from(n) + 2 * i64::from(b) + i64::from(d);
            }
            if all {
                found.push((score, p));
            }
        }
        found
    }

    /// Every product id a search finds, in order.
    fn search(&self, query: &str, sort: Sort) -> Vec<i32> {
        sorted(self.matches(query), sort)
    }
}

/// Matches in `sort` order.
pub fn sorted(mut found: Vec<(i64, &Product)>, sort: Sort) -> Vec<i32> {
    match sort {
        Sort::Relevance => found.sort_by_key(|&(score, p)| (-score, p.id)),
        Sort::PriceAsc => found.sort_by_key(|&(_, p)| (i64::from(p.price_cents), p.id)),
        Sort::PriceDesc => found.sort_by_key(|&(_, p)| (-i64::from(p.price_cents), p.id)),
        Sort::Newest => found.sort_by(|(_, a), (_, b)| b.created.cmp(&a.created).then(a.id.cmp(&b.id))),
    }
    found.into_iter().map(|(_, p)| p.id).collect()
}

/// Page `page` (from 1) of `all`.
pub fn page_of(all: &[i32], page: u32) -> Vec<i32> {
    all.iter().skip((page as usize - 1) * PER_PAGE).take(PER_PAGE).copied().collect()
}

pub fn pages_of(n: usize) -> u32 {
    n.div_ceil(PER_PAGE).max(1) as u32
}

// ---- Listings

/// Every page of `category_id` (and the one after the last) as the
/// reference has it.
fn check_listing(data: &DataLayer, tree: &CategoryTree, catalog: &Catalog, category_id: i32, pages: &[u32]) {
    let all = catalog.listing(category_id);
    for &page in pages {
        let listing = CategoryListing::load(data, tree, category_id, page).unwrap().expect("a known category").value;
        let what = format!("category {category_id} page {page}");
        assert_eq!(listing.category_id, category_id, "{what}");
        assert_eq!(listing.page, page, "{what}");
        assert_eq!(listing.per_page, PER_PAGE as u32, "{what}");
        assert_eq!(listing.total, all.len() as i64, "{what}: total");
        assert_eq!(listing.product_ids, page_of(&all, page), "{what}: ids");
    }
}

#[test]
fn every_tiny_listing_page_matches_the_catalog() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "listing_tiny");
    let data = layer(cluster, &db, None);
    let catalog = Catalog::read(tiny_catalog());
    let tree = CategoryTree::load(&data).unwrap().value;
    let departments: Vec<i32> = catalog.categories.iter().filter(|c| c.1 == 0).map(|c| c.0).collect();
    assert!(!departments.is_empty());
    for &(id, _) in &catalog.categories {
        let last = pages_of(catalog.listing(id).len());
        let pages: Vec<u32> = (1..=last + 1).collect();
        check_listing(&data, &tree, &catalog, id, &pages);
    }
    // A department lists exactly its leaves' products.
    for &department in &departments {
        let leaves: Vec<i32> = catalog.categories.iter().filter(|c| c.1 == department).map(|c| c.0).collect();
        let mut from_leaves: Vec<i32> = leaves.iter().flat_map(|&leaf| catalog.listing(leaf)).collect();
        from_leaves.sort();
        let mut listed = catalog.listing(department);
        listed.sort();
        assert_eq!(listed, from_leaves, "department {department}");
        let total = CategoryListing::load(&data, &tree, department, 1).unwrap().unwrap().value.total;
        assert_eq!(total, from_leaves.len() as i64, "department {department}");
        assert!(total > 0, "department {department} is empty");
    }
    // Unknown categories are None, whatever the page; page 0 reads as 1.
    assert!(CategoryListing::load(&data, &tree, 0, 1).unwrap().is_none());
    assert!(CategoryListing::load(&data, &tree, 99_999, 1).unwrap().is_none());
    let first = CategoryListing::load(&data, &tree, departments[0], 1).unwrap().unwrap().value;
    let zero = CategoryListing::load(&data, &tree, departments[0], 0).unwrap().unwrap().value;
    assert_eq!((zero.page, &zero.product_ids), (1, &first.product_ids));
    let far = CategoryListing::load(&data, &tree, departments[0], u32::MAX).unwrap().unwrap().value;
    assert!(far.product_ids.is_empty());
    assert_eq!(far.total, first.total);
}

#[test]
fn small_listings_match_the_catalog() {
    let cluster = PgCluster::shared();
    let db = small_database(cluster, "listing_small");
    let data = layer(cluster, &db, None);
    let catalog = Catalog::read(small_catalog());
    let tree = CategoryTree::load(&data).unwrap().value;
    for &(id, parent) in &catalog.categories {
        // Every department; a sample of leaves.
        if parent != 0 && id % 7 != 0 {
            continue;
        }
        let last = pages_of(catalog.listing(id).len());
        let pages: BTreeSet<u32> = [1, 2, 3, last / 2 + 1, last, last + 1].into_iter().collect();
        check_listing(&data, &tree, &catalog, id, &pages.into_iter().collect::<Vec<_>>());
    }
}

#[test]
fn listings_are_cached_under_catlist_keys_for_a_minute() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "listing_cache");
    let data = layer(cluster, &db, Some(cache_dir()));
    let catalog = Catalog::read(tiny_catalog());
    let tree = CategoryTree::load(&data).unwrap().value;
    let department = catalog.categories.iter().find(|c| c.1 == 0).unwrap().0;

    let before = SystemTime::now();
    let first = CategoryListing::load(&data, &tree, department, 1).unwrap().unwrap();
    let ttl = first.expires_at.duration_since(before).unwrap();
    assert!(ttl <= Duration::from_secs(61) && ttl >= Duration::from_secs(58), "{ttl:?}");
    let cache = data.cache().unwrap();
    let cached = cache.get::<CategoryListing>(&format!("catlist:{department}:1"), 1).expect("catlist entry");
    assert_eq!(cached.value, first.value);

    // A second load is the cache's.
    let again = CategoryListing::load(&data, &tree, department, 1).unwrap().unwrap();
    assert_eq!(again.value, first.value);
    let stored = first.expires_at.duration_since(again.expires_at).unwrap();
    assert!(stored < Duration::from_millis(1), "the cache keeps the expiry to the millisecond: {stored:?}");

    // Deleting a listed product (plain SQL): the triggers name the leaf's
    // and the department's listings, the data layer's listener drops them,
    // and the next load reads the database.
    let gone = first.value.product_ids[0];
    cluster.psql(&db, &format!("DELETE FROM inventory WHERE product_id = {gone}; DELETE FROM products WHERE id = {gone}"));
    let key = format!("catlist:{department}:1");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.get::<CategoryListing>(&key, 1).is_some() {
        assert!(std::time::Instant::now() < deadline, "{key} was not dropped");
        std::thread::sleep(Duration::from_millis(20));
    }
    let fresh = CategoryListing::load(&data, &tree, department, 1).unwrap().unwrap().value;
    assert_eq!(fresh.total, first.value.total - 1);
    assert_eq!(fresh.product_ids[..23], first.value.product_ids[1..24]);
    assert!(fresh.read_at >= first.value.read_at);
}

// ---- Search

/// Pages 1 and 2 of `query` in every sort, as the reference has them.
fn check_search(data: &DataLayer, catalog: &Catalog, query: &str) -> usize {
    let found = catalog.matches(query);
    for sort in SORTS {
        let all = sorted(found.clone(), sort);
        for page in [1, 2] {
            let results = search::search(data, query, sort, page).unwrap_or_else(|e| panic!("{query:?} {sort}: {e}"));
            let what = format!("{query:?} sort={sort} page={page}");
            assert_eq!(results.total, all.len() as i64, "{what}: total");
            assert_eq!(results.product_ids, page_of(&all, page), "{what}: ids");
            assert_eq!((results.page, results.per_page), (page, PER_PAGE as u32), "{what}");
        }
    }
    found.len()
}

#[test]
fn every_logged_query_finds_what_the_reference_finds() {
    let cluster = PgCluster::shared();
    let db = small_database(cluster, "search_small");
    let data = layer(cluster, &db, None);
    let catalog = Catalog::read(small_catalog());
    let queries: BTreeSet<String> = tsv_rows(&small_catalog().join("queries.tsv")).into_iter().map(|row| row[0].clone()).collect();
    assert!(queries.len() > 500, "{} distinct queries", queries.len());
    let queries: Vec<&String> = queries.iter().collect();
    let matched = std::sync::atomic::AtomicUsize::new(0);
    // Two threads: the database and the reference share the work.
    std::thread::scope(|scope| {
        for half in queries.chunks(queries.len().div_ceil(2)) {
            let (data, catalog, matched) = (&data, &catalog, &matched);
            scope.spawn(move || {
                for query in half {
                    if check_search(data, catalog, query) > 0 {
                        matched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    // The log holds both kinds: phrases that match and typos that do not.
    let matched = matched.into_inner();
    assert!(matched > queries.len() / 2 && matched < queries.len(), "{matched} of {} queries match", queries.len());
}

/// Products with known text added to the tiny catalog, in the database
/// and in the reference.
const EXTRA: &[(i32, &str, &str, &str)] = &[
    (900_001, "Zebra-Crossing Café", "Ünïcode Toys", "A tiny zebra; crossing the road!"),
    (900_002, "Zebras", "Crossing Co.", "zebra"),
    (900_003, "ΟΔΟΣ Map", "İSTANBUL Press", "Ο δρόμος ΣΑΣ."),
    (900_004, "Plain", "Zebra", "Crossing ZEBRA crossing"),
    (900_005, "R2-D2 x86_64", "Ünïcode Toys", "Wooden trains, 3 pieces: zebra-crossing not included"),
];

fn edge_case_store(cluster: &PgCluster) -> (String, Catalog) {
    let db = store_database(cluster, "search_edges");
    let mut catalog = Catalog::read(tiny_catalog());
    let leaf = catalog.categories.iter().find(|c| c.1 != 0).unwrap().0;
    let mut client = connect(cluster, &db);
    for (i, &(id, name, brand, description)) in EXTRA.iter().enumerate() {
        let price = 1000 + i as i32;
        client
            .execute(
                "INSERT INTO products (id, category_id, sku, name, brand, age_min, age_max, price_cents, description, created)
                 VALUES ($1, $2, $3, $4, $5, 3, 9, $6, $7, '2030-01-01')",
                &[&id, &leaf, &format!("EDGE-{id}"), &name, &brand, &price, &description],
            )
            .unwrap();
        catalog.products.push(Product::new(id, leaf, name, brand, price, description, "2030-01-01"));
    }
    (db, catalog)
}

fn ids(data: &DataLayer, query: &str, sort: Sort) -> (i64, Vec<i32>) {
    let results = search::search(data, query, sort, 1).unwrap();
    (results.total, results.product_ids)
}

#[test]
fn search_edge_cases() {
    let cluster = PgCluster::shared();
    let (db, catalog) = edge_case_store(cluster);
    let data = layer(cluster, &db, None);

    // Case, punctuation and repeats change nothing; relevance ranks a word
    // in the name (3) over the brand (2) over the description (1).
    let zebra_crossing = ids(&data, "zebra crossing", Sort::Relevance);
    assert_eq!(zebra_crossing.1[..4], [900_001, 900_004, 900_002, 900_005], "{zebra_crossing:?}");
    for same in ["ZEBRA Crossing", "zebra!!!,crossing", "  Zebra -- ZEBRA crossing zebra.", "crossing zebra"] {
        assert_eq!(ids(&data, same, Sort::Relevance), zebra_crossing, "{same:?}");
        let results = search::search(&data, same, Sort::Relevance, 1).unwrap();
        let mut words = results.words.clone();
        words.sort();
        assert_eq!(words, ["crossing", "zebra"], "{same:?}");
    }
    // Whole tokens only: no substrings, no stemming; and unicode,
    // lowercased with the full mappings on both sides (İ is i + a
    // combining dot, so `istanbul` is another word).
    let extras = |query: &str| -> Vec<i32> { ids(&data, query, Sort::Relevance).1.into_iter().filter(|id| *id > 900_000).collect() };
    for (query, expected) in [
        ("zeb", vec![]),
        ("crossin", vec![]),
        ("zebras", vec![900_002]),
        ("r2", vec![900_005]),
        ("x86", vec![900_005]),
        ("x86_64", vec![900_005]),
        ("r2d2", vec![]),
        ("café", vec![900_001]),
        ("CAFÉ", vec![900_001]),
        ("cafe", vec![]),
        ("ünïcode", vec![900_001, 900_005]),
        ("\u{3bf}\u{3b4}\u{3bf}\u{3c2}", vec![900_003]),
        ("ΟΔΟΣ", vec![900_003]),
        ("\u{3bf}\u{3b4}\u{3bf}\u{3c3}", vec![]),
        ("σας δρόμος", vec![900_003]),
        ("İstanbul", vec![900_003]),
        ("istanbul", vec![]),
    ] {
        assert_eq!(extras(query), expected, "{query:?}");
    }
    // No words: no results, no database needed.
    for nothing in ["", "   ", "!?,.-", "\u{2014}"] {
        let results = search::search(&data, nothing, Sort::Relevance, 1).unwrap();
        assert_eq!((results.total, results.product_ids.len(), results.words.len()), (0, 0, 0), "{nothing:?}");
    }
    // Past the last page: no ids, the right total.
    let last = search::search(&data, "zebra", Sort::PriceAsc, 1000).unwrap();
    assert!(last.product_ids.is_empty());
    assert_eq!(last.total, catalog.search("zebra", Sort::PriceAsc).len() as i64);

    // Everything above, and then some, agrees with the reference in every
    // sort; more than three words take the general relevance statement.
    for query in [
        "zebra crossing", "ZEBRA, crossing!", "zebra", "Café", "ünïcode toys", "οδος", "İstanbul", "wooden trains 3 pieces", "wooden trains 3 pieces included",
        "zebra crossing tiny road the", "crossing", "toys", "x86_64 r2",
    ] {
        check_search(&data, &catalog, query);
    }
    // And so do the tiny catalog's own words, one and two at a time.
    let mut vocabulary: Vec<String> = catalog.products.iter().flat_map(|p| p.name_tokens.iter().chain(&p.brand_tokens).cloned()).collect::<BTreeSet<_>>().into_iter().collect();
    vocabulary.truncate(120);
    for pair in vocabulary.chunks(2) {
        check_search(&data, &catalog, &pair[0]);
        check_search(&data, &catalog, &pair.join(" "));
    }
}

#[test]
fn search_results_are_cached_by_normalized_query() {
    let cluster = PgCluster::shared();
    let (db, _) = edge_case_store(cluster);
    let data = layer(cluster, &db, Some(cache_dir()));
    let first = search::search(&data, "Zebra crossing", Sort::Relevance, 1).unwrap();
    let cache = data.cache().unwrap();
    let cached = cache.get::<SearchResults>("search:relevance:1:zebra crossing", 1).expect("search entry");
    assert_eq!(cached.value, first);
    // Another spelling of the same query reads the same entry.
    cluster.psql(&db, "UPDATE products SET name = 'Plain' WHERE id = 900001");
    assert_eq!(search::search(&data, "ZEBRA, crossing zebra", Sort::Relevance, 1).unwrap(), first);
    // A query too long for a cache key still gets its answer.
    let long: String = (0..100).map(|i| format!("zebra{i} ")).collect();
    assert!(long.len() > 600);
    assert_eq!(search::search(&data, &long, Sort::Relevance, 1).unwrap().total, 0);
    assert_eq!(search::search(&data, "zebra ZEBRA", Sort::Relevance, 1).unwrap().words, ["zebra"]);
}

// ---- The search table and the SQL tokenizer

/// esf_tokens() of each text, in order.
fn sql_tokens(client: &mut Client, texts: &[String]) -> Vec<Vec<String>> {
    client
        .query("SELECT esf_tokens(t) FROM unnest($1::text[]) WITH ORDINALITY AS x (t, n) ORDER BY n", &[&texts])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn sql_and_rust_tokenize_alike() {
    let cluster = PgCluster::shared();
    let db = cluster.create_database("tokens");
    let mut client = connect(cluster, &db);
    esf_schema::migrate(&mut client).unwrap();

    // Every character of the catalog's files, alone and inside words.
    let mut chars = BTreeSet::new();
    for file in ["categories.tsv", "products.tsv", "queries.tsv"] {
        chars.extend(fs::read_to_string(small_catalog().join(file)).unwrap().chars().filter(|c| *c != '\t' && *c != '\n'));
    }
    let texts: Vec<String> = chars.iter().map(|c| format!("{c} a{c}b Ab{c}{c}B {c}Σ{c} ΣA{c}")).collect();
    for (text, sql) in texts.iter().zip(sql_tokens(&mut client, &texts)) {
        assert_eq!(sql, search::tokens(text), "{text:?}");
    }
    for text in ["", "  ", "Zebra-Crossing Café", "ΟΔΟΣ ΣΑΣ Σ", "İSTANBUL", "x86_64 R2-D2", "東京タワー ＡＢＣ", "naïve\u{301} cafe\u{301}"] {
        assert_eq!(sql_tokens(&mut client, &[text.to_string()])[0], search::tokens(text), "{text:?}");
    }

    // Every code point: ICU's [[:alnum:]] (letters and decimal digits) is a
    // subset of Rust's is_alphanumeric; where they differ, SQL splits a
    // word that Rust keeps whole. These blocks agree exactly.
    let agree = [
        (0x20, 0xB1),
        (0xB4, 0xB8),
        (0xBF, 0x2FF),
        (0x370, 0x4FF),
        (0x1E00, 0x206F),
        (0x20A0, 0x20CF),
        (0x2100, 0x214F),
        (0x2190, 0x22FF),
        (0x3040, 0x30FF),
        (0x4E00, 0x9FFF),
        (0xAC00, 0xD7A3),
        (0xFF00, 0xFFEF),
        (0x1F300, 0x1FAFF),
        (0x20000, 0x2A6DF),
    ];
    let all: Vec<char> = (1..=0x10FFFF).filter_map(char::from_u32).collect();
    let mut differ = 0;
    for chunk in all.chunks(1 << 16) {
        let texts: Vec<String> = chunk.iter().map(|c| format!("x{c}y")).collect();
        for ((c, text), sql) in chunk.iter().zip(&texts).zip(sql_tokens(&mut client, &texts)) {
            let rust = search::tokens(text);
            if sql == rust {
                continue;
            }
            differ += 1;
            let code = *c as u32;
            assert!(!agree.iter().any(|&(from, to)| (from..=to).contains(&code)), "U+{code:04X} {text:?}: SQL {sql:?}, Rust {rust:?}");
            assert!(c.is_alphanumeric() && sql == ["x", "y"], "U+{code:04X} {text:?}: SQL {sql:?}, Rust {rust:?}");
        }
    }
    assert!(differ < 20_000, "{differ} code points tokenize differently");
}

#[test]
fn the_search_table_follows_every_change_to_products() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "search_table");
    let mut client = connect(cluster, &db);
    let data = layer(cluster, &db, None);
    let in_step = |client: &mut Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM products p FULL JOIN product_search s ON s.product_id = p.id
                 WHERE s.product_id IS NULL OR p.id IS NULL
                    OR (p.price_cents, p.created, esf_tokens(p.name), esf_tokens(p.brand), esf_tokens(p.description))
                       IS DISTINCT FROM (s.price_cents, s.created, s.name_tokens, s.brand_tokens, s.description_tokens)",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(in_step(&mut client), 0, "after the import");
    let total: i64 = client.query_one("SELECT count(*) FROM product_search", &[]).unwrap().get(0);
    assert_eq!(total, 200);

    // One row renamed: the old word goes, the new one comes.
    client.execute("UPDATE products SET name = 'Quokka Express', price_cents = 1 WHERE id = 5", &[]).unwrap();
    assert_eq!(ids(&data, "quokka", Sort::Relevance), (1, vec![5]));
    assert_eq!(ids(&data, "quokka express", Sort::PriceAsc), (1, vec![5]));
    // A no-op UPDATE still leaves updated_at alone (no generated columns
    // on products to upset its trigger).
    let stamp = |client: &mut Client| -> String { client.query_one("SELECT updated_at::text FROM products WHERE id = 5", &[]).unwrap().get(0) };
    let before = stamp(&mut client);
    client.execute("UPDATE products SET name = name WHERE id = 5", &[]).unwrap();
    assert_eq!(stamp(&mut client), before);
    // Every row at once, ids moved, rows deleted and inserted.
    client.batch_execute("UPDATE products SET description = description || ' Quokka'").unwrap();
    assert_eq!(ids(&data, "quokka", Sort::Relevance).0, 200);
    client.batch_execute("UPDATE products SET age_max = age_max + 1").unwrap();
    client
        .batch_execute(
            "DELETE FROM inventory WHERE product_id IN (7, 8);
             UPDATE products SET id = 1000 + id WHERE id IN (7, 8);
             DELETE FROM cart_lines WHERE product_id = 9;
             DELETE FROM inventory WHERE product_id = 9;
             DELETE FROM products WHERE id = 9;
             INSERT INTO products (id, category_id, sku, name, brand, age_min, age_max, price_cents, description, created)
             SELECT 2000 + id, category_id, sku || '-b', 'Wombat ' || name, brand, age_min, age_max, price_cents, description, created
             FROM products WHERE id <= 3",
        )
        .unwrap();
    assert_eq!(in_step(&mut client), 0, "after updates, deletes and inserts");
    assert_eq!(ids(&data, "wombat", Sort::Relevance), (3, vec![2001, 2002, 2003]));
    // A new import (TRUNCATE, COPY) starts the table over.
    esf_schema::import_catalog(&mut client, tiny_catalog()).unwrap();
    assert_eq!(in_step(&mut client), 0, "after a second import");
    assert_eq!(ids(&data, "wombat", Sort::Relevance).0, 0);
    assert_eq!(ids(&data, "quokka", Sort::Relevance).0, 0);
}
