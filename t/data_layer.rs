//! The data layer inside httpd: per-child PostgreSQL handles kept and
//! reused, the LMDB object cache, coherence with changes made by plain SQL,
//! and the product page's cache headers.
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::{Httpd, Mpm, PgCluster};
use crate::store_fixture::{cache_dir, catalog_product, escape_html, store_database};

fn backend_pids(cluster: &PgCluster, db: &str) -> BTreeSet<i32> {
    cluster
        .psql("postgres", &format!("SELECT pid FROM pg_stat_activity WHERE datname = '{db}' AND backend_type = 'client backend'"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn database_connections_are_kept_and_reused() {
    let cluster = PgCluster::shared();
    for (mpm, most) in [(Mpm::Event, 4 * 2), (Mpm::Prefork, 32)] {
        let db = store_database(cluster, "reuse");
        // No object cache: every page reads PostgreSQL.
        let httpd = Httpd::builder(mpm)
            .conf(&format!(
                "EsfDatabase \"{}\"\nEsfDatabasePool 2\n<Location /store>\n    SetHandler esf\n</Location>",
                cluster.conninfo(&db)
            ))
            .start();
        let mut client = httpd.client();
        for id in 1..=150 {
            assert_eq!(client.get(&format!("/store/product/{id}")).unwrap().status, 200, "{mpm:?} product {id}");
        }
        let first = backend_pids(cluster, &db);
        assert!(!first.is_empty() && first.len() <= most, "{mpm:?}: {} connections for 150 requests", first.len());
        for id in 1..=150 {
            assert_eq!(httpd.get(&format!("/store/product/{id}")).status, 200);
        }
        let second = backend_pids(cluster, &db);
        assert!(second.len() <= most, "{mpm:?}: {} connections", second.len());
        assert!(first.is_subset(&second) || first == second, "{mpm:?}: connections were replaced: {first:?} then {second:?}");
    }
}

#[test]
fn product_page_is_cacheable_for_its_shortest_ttl() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "headers");
    let httpd = Httpd::builder(Mpm::Event)
        .conf(&format!(
            "EsfDatabase \"{}\"\nEsfCacheDir {}\n<Location /store>\n    SetHandler esf\n</Location>",
            cluster.conninfo(&db),
            cache_dir().display()
        ))
        .start();
    let fields = catalog_product(7);
    for round in ["from the database", "from the cache"] {
        let r = httpd.get("/store/product/7");
        assert_eq!(r.status, 200, "{round}");
        let body = r.text();
        assert!(body.contains(&escape_html(&fields[3])), "{round}: the name: {body}");
        let cache_control = r.header("Cache-Control").unwrap_or_default().to_string();
        let max_age: u64 = cache_control.strip_prefix("public, max-age=").and_then(|s| s.parse().ok()).unwrap_or(999);
        assert!(max_age <= 30, "{round}: inventory's 30 s TTL bounds the page: {cache_control}");
        assert!(r.header("Expires").is_some() && r.header("Last-Modified").is_some(), "{round}");
        assert!(r.header("Set-Cookie").is_none());
    }
    assert_eq!(httpd.get("/store/product/999999").status, 404);
    assert_eq!(httpd.get("/store/product/abc").status, 404);
}

#[test]
fn a_row_changed_by_plain_sql_leaves_every_cache_within_a_second() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "coherence");
    // Two app servers, each with its own cache.
    let servers = [Mpm::Event, Mpm::Prefork].map(|mpm| {
        Httpd::builder(mpm)
            .conf(&format!(
                "EsfDatabase \"{}\"\nEsfCacheDir {}\n<Location /store>\n    SetHandler esf\n</Location>",
                cluster.conninfo(&db),
                cache_dir().display()
            ))
            .start()
    });
    for httpd in &servers {
        assert!(httpd.get("/store/product/9").text().contains("</html>"));
        // Served twice: the second from the cache.
        assert_eq!(httpd.get("/store/product/9").status, 200);
    }
    cluster.psql(&db, "UPDATE products SET name = 'Renamed By SQL' WHERE id = 9");
    cluster.psql(&db, "UPDATE inventory SET on_hand = 3 WHERE product_id = 9");
    let changed = Instant::now();
    for httpd in &servers {
        loop {
            let body = httpd.get("/store/product/9").text();
            if body.contains("Renamed By SQL") && body.contains("Only 3 left") {
                break;
            }
            assert!(changed.elapsed() < Duration::from_secs(1), "stale after {:?}: {body}", changed.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_postgres_restart_or_outage_is_survived_without_restarting_httpd() {
    let cluster = PgCluster::private();
    let db = store_database(&cluster, "restart");
    let httpd = Httpd::builder(Mpm::Event)
        .conf(&format!(
            "EsfDatabase \"{}\"\nEsfDatabasePool 4\n<Location /store>\n    SetHandler esf\n</Location>",
            cluster.conninfo(&db)
        ))
        .start();
    let children = httpd.child_pids().len();
    for id in 1..=60 {
        assert_eq!(httpd.get(&format!("/store/product/{id}")).status, 200);
    }

    cluster.restart();
    let statuses: Vec<u16> = (1..=40).map(|id| httpd.get(&format!("/store/product/{id}")).status).collect();
    let unavailable = statuses.iter().filter(|s| **s == 503).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(unavailable <= children, "at most the request in flight per child fails: {statuses:?}");
    assert!(statuses[statuses.len() - 10..].iter().all(|s| *s == 200), "{statuses:?}");

    cluster.stop();
    let r = httpd.get("/store/product/5");
    assert_eq!(r.status, 503, "the database is down");
    assert!(r.text().contains("briefly unavailable") && r.header("Retry-After").is_some(), "a friendly 503: {}", r.text());
    assert_eq!(httpd.get("/store/hello").status, 200, "pages without data still work");
    cluster.start();
    let recovered = (0..20).map(|_| httpd.get("/store/product/5").status).filter(|s| *s == 200).count();
    assert!(recovered >= 18, "serving again after the database came back ({recovered}/20)");
}
