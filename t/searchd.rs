//! esf-searchd, the search daemon (crates/esf-searchd), and the module's
//! client of it (`EsfSearch`): results identical to the brute-force
//! reference of t/listing_search.rs, product changes followed within a
//! second, a store that answers 503 for search alone while the daemon is
//! down and recovers without a restart of Apache, malformed requests
//! refused without harm, and many clients at once.
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use esf_data::search::{self, Address, Sort};
use esf_data::{DataLayer, DataSettings};

use crate::harness::{exists, request, Httpd, Mpm, PgCluster, Searchd, SearchdConnection};
use crate::listing_search::{page_of, pages_of, small_database, sorted, tsv_rows, Catalog, SORTS};
use crate::store_fixture::{small_catalog, store_database, store_httpd};

/// A data layer that searches through the daemon at `address`.
fn layer(cluster: &PgCluster, db: &str, address: &str) -> DataLayer {
    DataLayer::open(&DataSettings {
        database: Some(cluster.conninfo(db)),
        pool_size: 4,
        cache_dir: None,
        cache_size: 64 << 20,
        cache_readers: 64,
        search: Some(Address::parse(address).expect("daemon address")),
    })
    .expect("open data layer")
}

/// Pages 1, 2, the last and the one after it, in every sort, as the
/// reference has them; returns how many products match.
fn check(data: &DataLayer, catalog: &Catalog, query: &str) -> usize {
    let found = catalog.matches(query);
    for sort in SORTS {
        let all = sorted(found.clone(), sort);
        let last = pages_of(all.len());
        let pages: BTreeSet<u32> = [1, 2, last, last + 1].into_iter().collect();
        for page in pages {
            let what = format!("{query:?} sort={sort} page={page}");
            let results = search::search(data, query, sort, page).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(results.total, all.len() as i64, "{what}: total");
            assert_eq!(results.product_ids, page_of(&all, page), "{what}: ids");
        }
    }
    found.len()
}

#[test]
fn searchd_answers_as_the_reference_on_the_small_catalog() {
    let cluster = PgCluster::shared();
    let db = small_database(cluster, "searchd_small");
    let daemon = Searchd::start_unix(&cluster.conninfo(&db));
    let data = layer(cluster, &db, &daemon.address);
    let catalog = Catalog::read(small_catalog());
    let mut queries: BTreeSet<String> = tsv_rows(&small_catalog().join("queries.tsv")).into_iter().map(|row| row[0].clone()).collect();
    // Beyond the log: case and punctuation, repeats, four and more words
    // (another way of ranking), and nothing at all.
    for extra in ["HEDGEHOG", "hedgehog, Hedgehog!", "foldable speedy monkey spider", "foldable speedy monkey spider hedgehog characters", "zzzz", "hedgehog zzzz", "", "  --  "] {
        queries.insert(extra.to_string());
    }
    let queries: Vec<&String> = queries.iter().collect();
    let matched = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for half in queries.chunks(queries.len().div_ceil(2)) {
            let (data, catalog, matched) = (&data, &catalog, &matched);
            scope.spawn(move || {
                for query in half {
                    if check(data, catalog, query) > 0 {
                        matched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let matched = matched.into_inner();
    assert!(matched > queries.len() / 2 && matched < queries.len(), "{matched} of {} queries match", queries.len());
    // A handful of connections served everything, and no search was cached.
    let stats = data.search_stats().expect("a search client");
    assert!(stats.connects <= 4 && stats.broken == 0, "{stats:?}");
    assert!(data.cache().is_none());
}

/// The ids of the products a search page lists.
fn listed(page: &str) -> Vec<i32> {
    page.split("/store/product/").skip(1).filter_map(|rest| rest.split('"').next()?.parse().ok()).collect()
}

/// Polls the store's search for `query` until `done` holds of the listed
/// ids; returns how long that took.
fn wait_for(port: u16, query: &str, done: impl Fn(&[i32]) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let page = request(port, "GET", &format!("/store/search?q={query}"), &[], None).unwrap();
        assert_eq!(page.status, 200, "{}", page.text());
        if done(&listed(&page.text())) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{query}: never happened; last page:\n{}", page.text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the app server's object cache drops what changes: a
/// cached product renamed by SQL shows its new name.
fn cache_follows_changes(port: u16, db: &str) {
    let started = Instant::now();
    let page = || request(port, "GET", "/store/product/6", &[], None).unwrap().text();
    page();
    for round in 0.. {
        PgCluster::shared().psql(db, &format!("UPDATE products SET brand = 'Listener Check {round}' WHERE id = 6"));
        let tried = Instant::now();
        while tried.elapsed() < Duration::from_millis(500) {
            if page().contains(&format!("Listener Check {round}")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the object cache never followed a change");
    }
}

#[test]
fn a_product_change_shows_in_the_store_s_search_within_a_second() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "searchd_change");
    let daemon = Searchd::start_tcp(&cluster.conninfo(&db));
    let httpd = store_httpd(Mpm::Prefork, &db, &format!("EsfSearch {}", daemon.address));
    assert!(wait_for(httpd.port, "quokka", |ids| ids.is_empty()) < Duration::from_secs(1));
    // Product 5 loaded (and so cached) before it changes, once the
    // server's cache listener follows changes (it starts with the server).
    cache_follows_changes(httpd.port, &db);
    assert_eq!(request(httpd.port, "GET", "/store/product/5", &[], None).unwrap().status, 200);

    // Renamed by plain SQL: found by its new word, through the store.
    let changed = Instant::now();
    cluster.psql(&db, "UPDATE products SET name = 'Quokka Express' WHERE id = 5");
    wait_for(httpd.port, "quokka", |ids| ids == [5]);
    let took = changed.elapsed();
    assert!(took < Duration::from_secs(1), "the change showed after {took:?}");
    // The result's text comes from the object cache, which its listener
    // clears as the notification arrives (a quarter second after it).
    loop {
        let page = request(httpd.port, "GET", "/store/search?q=quokka+express", &[], None).unwrap().text();
        if page.contains("Quokka Express") {
            break;
        }
        assert!(changed.elapsed() < Duration::from_secs(1), "the product's own text is stale after a second:\n{page}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A new product, and a deleted one.
    let changed = Instant::now();
    cluster.psql(
        &db,
        "INSERT INTO products (id, category_id, sku, name, brand, age_min, age_max, price_cents, description, created)
         SELECT 9001, category_id, 'Q-9001', 'Quokka Deluxe', brand, 3, 9, 100, 'new', '2030-01-01' FROM products WHERE id = 5;
         DELETE FROM inventory WHERE product_id = 5; DELETE FROM cart_lines WHERE product_id = 5; DELETE FROM products WHERE id = 5",
    );
    wait_for(httpd.port, "quokka", |ids| ids == [9001]);
    assert!(changed.elapsed() < Duration::from_secs(1), "the insert and delete showed after {:?}", changed.elapsed());

    // A statement changing every product: one notification naming them
    // all, applied as one batch.
    cluster.psql(&db, "UPDATE products SET description = description || ' Wombat'");
    wait_for(httpd.port, "wombat", |ids| ids.len() == 24);
    // An import (TRUNCATE and COPY: the prefix form of the notification)
    // builds the index again.
    let mut client = esf_schema::postgres::Client::connect(&cluster.conninfo(&db), esf_schema::postgres::NoTls).unwrap();
    esf_schema::import_catalog(&mut client, crate::store_fixture::tiny_catalog()).unwrap();
    wait_for(httpd.port, "quokka", |ids| ids.is_empty());
    wait_for(httpd.port, "wombat", |ids| ids.is_empty());
    assert!(daemon.log().contains("rebuilt the index: 200 products"), "{}", daemon.log());
}

#[test]
fn the_store_survives_a_daemon_restart_without_restarting_apache() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "searchd_restart");
    let mut daemon = Searchd::start_unix(&cluster.conninfo(&db));
    let httpd = store_httpd(Mpm::Event, &db, &format!("EsfSearch {}", daemon.address));
    let search = |q: &str| request(httpd.port, "GET", &format!("/store/search?q={q}"), &[], None).unwrap();
    let word = tsv_rows(&crate::store_fixture::tiny_catalog().join("queries.tsv"))[0][0].clone().replace(' ', "+");
    let before = search(&word);
    assert_eq!(before.status, 200);
    let found = listed(&before.text());
    assert!(!found.is_empty(), "{word}: {}", before.text());
    // Every child's pool holds connections now (event MPM: several threads).
    for _ in 0..20 {
        assert_eq!(search(&word).status, 200);
    }

    // A crash: search alone is unavailable, with a friendly page.
    daemon.kill();
    for _ in 0..5 {
        let down = search(&word);
        assert_eq!(down.status, 503, "{}", down.text());
        assert!(down.text().to_lowercase().contains("search is unavailable"), "{}", down.text());
        assert_eq!(down.header("Retry-After"), Some("5"));
    }
    for path in ["/store/product/5", "/store/", "/store/category/1", "/store/search", "/store/cart"] {
        let page = request(httpd.port, "GET", path, &[], None).unwrap();
        assert_eq!(page.status, 200, "{path} while search is down: {}", page.text());
    }
    assert!(httpd.error_log().contains("search unavailable"), "logged");

    // Back at the same address: the same children search again.
    daemon.restart();
    let after = search(&word);
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(listed(&after.text()), found);
    for _ in 0..20 {
        assert_eq!(search(&word).status, 200);
    }

    // A clean stop removes the socket file and the pidfile.
    let socket = daemon.socket_path().unwrap();
    assert!(exists(&socket) && exists(&daemon.pidfile()));
    assert!(daemon.terminate(), "exit status of a SIGTERM");
    assert!(!exists(&socket) && !exists(&daemon.pidfile()), "{}", daemon.log());
    assert_eq!(search(&word).status, 503);
}

/// Reads one reply line from `reader`.
fn reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply");
    line
}

#[test]
fn malformed_requests_get_an_error_and_harm_nothing() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "searchd_malformed");
    let daemon = Searchd::start_tcp(&cluster.conninfo(&db));
    let good = daemon.request("SEARCH relevance 1 the");
    assert!(good.starts_with("OK "), "{good}");

    // A persistent client, interleaving nonsense with good requests: each
    // nonsense line gets an ERR, and the connection carries on.
    let mut connection = daemon.connect().unwrap();
    let mut reader = BufReader::new(connection_clone(&connection));
    for (line, reason) in [
        (&b"GET / HTTP/1.1\r\n"[..], "unknown command"),
        (b"\n", "empty request"),
        (b"SEARCH\n", "unknown sort"),
        (b"SEARCH cheapest 1 the\n", "unknown sort"),
        (b"SEARCH relevance 0 the\n", "bad page"),
        (b"SEARCH relevance lots the\n", "bad page"),
        (b"SEARCH relevance 1 \xff\xfe\xfd\n", "not UTF-8"),
        (b"PING PONG\n", "no arguments"),
        (b"\x00\x01\x02\x03\n", "unknown command"),
    ] {
        connection.write_all(line).unwrap();
        let answer = reply(&mut reader);
        assert!(answer.starts_with("ERR ") && answer.contains(reason), "{:?}: {answer:?}", String::from_utf8_lossy(line));
        connection.write_all(b"SEARCH relevance 1 the\n").unwrap();
        assert_eq!(reply(&mut reader).trim_end(), good);
    }

    // Too long: an ERR, then the connection is closed (its end cannot be
    // found), while other connections are served as before.
    let mut long = daemon.connect().unwrap();
    let mut long_reader = BufReader::new(connection_clone(&long));
    let _ = long.write_all(format!("SEARCH relevance 1 {}\n", "a".repeat(40_000)).as_bytes());
    let answer = reply(&mut long_reader);
    assert!(answer.starts_with("ERR request longer than"), "{answer:?}");
    let mut rest = Vec::new();
    let _ = long_reader.read_to_end(&mut rest);
    assert_eq!(daemon.request("SEARCH relevance 1 the"), good);

    // Half a request and a hang-up; binary junk without a newline.
    for junk in [&b"SEARCH relev"[..], &[0u8, 255, 10, 13, 0][..]] {
        let mut c = daemon.connect().unwrap();
        let _ = c.write_all(junk);
    }
    assert_eq!(daemon.request("PING"), "PONG");
    assert_eq!(daemon.request("SEARCH relevance 1 the"), good);
    let stats = daemon.request("STATS");
    assert!(stats.starts_with("STATS products=200 "), "{stats}");
}

/// A second handle on the same connection, for reading.
fn connection_clone(connection: &SearchdConnection) -> SearchdConnection {
    match connection {
        SearchdConnection::Unix(s) => SearchdConnection::Unix(s.try_clone().unwrap()),
        SearchdConnection::Tcp(s) => SearchdConnection::Tcp(s.try_clone().unwrap()),
    }
}

#[test]
fn many_clients_at_once_get_the_same_answers() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "searchd_clients");
    let daemon = Searchd::start_tcp(&cluster.conninfo(&db));
    let queries: Vec<String> = tsv_rows(&crate::store_fixture::tiny_catalog().join("queries.tsv")).into_iter().take(40).map(|r| r[0].clone()).collect();
    let one = |query: &str, sort: Sort| daemon.request(&format!("SEARCH {sort} 1 {}", esf_data::search::query_words(query).join(" ")));
    let expected: Vec<String> = queries.iter().flat_map(|q| SORTS.map(|s| one(q, s))).collect();
    // 64 clients, each with its own persistent connection, all at once.
    let address = Address::parse(&daemon.address).unwrap();
    std::thread::scope(|scope| {
        for client in 0..64 {
            let (address, queries, expected) = (address.clone(), &queries, &expected);
            scope.spawn(move || {
                let pool = esf_search_client(address);
                for round in 0..3 {
                    for (i, query) in queries.iter().enumerate() {
                        let sort = SORTS[(i + client + round) % 4];
                        let found = pool.search(&esf_data::search::query_words(query), sort, 1).unwrap_or_else(|e| panic!("client {client}: {e}"));
                        let line = format!("OK {}{}", found.total, found.ids.iter().map(|id| format!(" {id}")).collect::<String>());
                        assert_eq!(line, expected[i * 4 + SORTS.iter().position(|s| *s == sort).unwrap()], "client {client} {query:?} {sort}");
                    }
                }
                assert_eq!(pool.stats().connects, 1, "client {client} kept one connection");
            });
        }
    });
    assert_eq!(daemon.request("PING"), "PONG");
}

/// The module's client, on its own.
fn esf_search_client(address: Address) -> search::DaemonClient {
    search::DaemonClient::new(address, 1, Duration::from_secs(10))
}

#[test]
fn a_bad_esf_search_address_fails_the_config_test() {
    for (value, expected) in [("searchd.sock", "unix:/path or host:port"), ("unix:run/searchd.sock", "unix:/absolute/path"), ("127.0.0.1:0", "port from 1 to 65535")] {
        let (ok, out) = Httpd::builder(Mpm::Event).conf(&format!("EsfSearch {value}")).configtest();
        assert!(!ok, "EsfSearch {value} must fail:\n{out}");
        assert!(out.contains(&format!("EsfSearch: invalid value '{value}'")) && out.contains(expected), "{value}:\n{out}");
    }
    let (ok, out) = Httpd::builder(Mpm::Event).conf("EsfSearch unix:/run/esf/searchd.sock").configtest();
    assert!(ok, "{out}");
}
