//! `SetHandler esf-status`: the figures move with the requests the store
//! serves, under both MPMs, in the HTML page and with `?auto`.
use std::collections::HashMap;

use crate::harness::{repo_root, state_dir, Httpd, Mpm, PgCluster};
use crate::store_conf::with_panic_route;
use crate::store_fixture::{store_database, store_httpd};

pub const STATUS_LOCATION: &str = "<Location /esf-status>\n    SetHandler esf-status\n</Location>";

/// A reading of `/esf-status?auto`.
#[derive(Debug)]
pub struct Reading {
    pub text: String,
    values: HashMap<String, String>,
    /// `Child:` lines, as name=value maps.
    pub children: Vec<HashMap<String, String>>,
}

impl Reading {
    pub fn take(httpd: &Httpd) -> Reading {
        let r = httpd.get("/esf-status?auto");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("Content-Type").is_some_and(|t| t.starts_with("text/plain")), "{:?}", r.headers);
        Reading::parse(&r.text())
    }

    fn parse(text: &str) -> Reading {
        let mut values = HashMap::new();
        let mut children = Vec::new();
        for line in text.lines() {
            let (key, value) = line.split_once(": ").unwrap_or_else(|| panic!("not `Key: value`: {line:?} in\n{text}"));
            if key == "Child" {
                let pairs = value.split(' ').map(|pair| pair.split_once('=').unwrap_or_else(|| panic!("not name=value: {pair:?}")));
                children.push(pairs.map(|(n, v)| (n.to_string(), v.to_string())).collect());
            } else {
                values.insert(key.to_string(), value.to_string());
            }
        }
        Reading { text: text.to_string(), values, children }
    }

    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).unwrap_or_else(|| panic!("no {key} in\n{}", self.text))
    }

    pub fn number(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap_or_else(|_| panic!("{key} is not a number in\n{}", self.text))
    }

    pub fn child_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.children.iter().map(|c| c["pid"].parse().unwrap()).collect();
        pids.sort();
        pids
    }
}

fn moved_since(before: &Reading, after: &Reading, key: &str) -> u64 {
    after.number(key) - before.number(key)
}

fn child_sum(reading: &Reading, field: &str) -> u64 {
    reading.children.iter().map(|c| c[field].parse::<u64>().unwrap()).sum()
}

#[test]
fn the_status_page_shows_live_figures() {
    for mpm in Mpm::ALL {
        let httpd = with_panic_route(mpm).conf(STATUS_LOCATION).conf("<Location /store/limited>\n    EsfThrottle 2/60\n</Location>").start();
        let first = Reading::take(&httpd);
        assert_eq!(first.get("MPM"), if mpm == Mpm::Prefork { "prefork" } else { "event" });
        assert_eq!(first.number("Generation"), 0);
        assert_eq!(first.number("Total Requests"), 0, "{mpm:?}: the status page does not count itself");
        let mut pids = httpd.child_pids();
        pids.sort();
        assert_eq!(first.child_pids(), pids, "{mpm:?}: a row per child");

        for _ in 0..10 {
            assert_eq!(httpd.get("/store/hello").status, 200);
        }
        assert_eq!(httpd.get("/store/_panic").status, 500);
        assert_eq!(httpd.get("/store/no-such-page").status, 404);
        let limited: Vec<u16> = (0..4).map(|_| httpd.get("/store/limited/hello").status).collect();
        assert_eq!(limited, [200, 200, 429, 429], "{mpm:?}");

        let second = Reading::take(&httpd);
        let moved = |key: &str| moved_since(&first, &second, key);
        assert_eq!(moved("Total Requests"), 16, "{mpm:?}:\n{}", second.text);
        assert_eq!(moved("Errors"), 1, "{mpm:?}: the panic's 500");
        assert_eq!(moved("ClientErrors"), 1, "{mpm:?}: the 404");
        assert_eq!(moved("Throttled"), 2, "{mpm:?}: the 429s");
        let (p50, p99) = (second.number("P50 Microseconds"), second.number("P99 Microseconds"));
        assert!(p50 > 0 && p99 >= p50, "{mpm:?}: p50 {p50}, p99 {p99}");
        assert_eq!(child_sum(&second, "requests"), 16, "{mpm:?}: the children's rows add up:\n{}", second.text);
        assert_eq!(child_sum(&second, "errors"), 1);
        assert!(second.children.iter().all(|c| c["private_rss_bytes"].parse::<u64>().unwrap() > 1 << 20), "{mpm:?}: sizes:\n{}", second.text);
        assert!(second.number("Uptime") < 60);
        assert_eq!((second.number("DbHandlesOpen"), second.number("CacheHits")), (0, 0), "{mpm:?}: no database, no cache");

        let page = httpd.get("/esf-status");
        assert_eq!(page.status, 200);
        let html = page.text();
        assert!(html.contains("<table>") && html.contains("<td>Total</td><td></td><td></td><td>16</td>"), "{mpm:?}:\n{html}");
        for pid in second.child_pids() {
            assert!(html.contains(&format!("<tr><td>{pid}</td>")), "{mpm:?}: child {pid} in\n{html}");
        }

        // A graceful restart keeps the totals; the new children start at 0.
        httpd.graceful();
        assert_eq!(httpd.get("/store/hello").status, 200);
        let third = Reading::take(&httpd);
        assert_eq!(third.number("Generation"), 1, "{mpm:?}");
        assert_eq!(moved_since(&second, &third, "Total Requests"), 1, "{mpm:?}:\n{}", third.text);
        assert_eq!(moved_since(&second, &third, "Errors"), 0);
        assert!(third.children.iter().any(|c| c["generation"] == "1"), "{mpm:?}: new children:\n{}", third.text);
    }
}

#[test]
fn the_status_page_shows_the_data_layer() {
    let db = store_database(PgCluster::shared(), "status");
    for mpm in Mpm::ALL {
        let httpd = store_httpd(mpm, &db, STATUS_LOCATION);
        for _ in 0..3 {
            assert_eq!(httpd.get("/store/product/7").status, 200);
        }
        let first = Reading::take(&httpd);
        assert!(first.number("CacheMisses") > 0, "{mpm:?}: the first load missed:\n{}", first.text);
        assert!(first.number("DbHandlesOpen") >= 1, "{mpm:?}: the child that loaded from the database keeps its connection:\n{}", first.text);
        assert_eq!(first.number("DbHandlesInUse"), 0, "{mpm:?}: none in use between requests");
        assert_eq!(first.number("SearchConnections"), 0, "{mpm:?}: no EsfSearch");

        for _ in 0..4 {
            assert_eq!(httpd.get("/store/product/7").status, 200);
        }
        let second = Reading::take(&httpd);
        assert!(second.number("CacheHits") > first.number("CacheHits"), "{mpm:?}: the cached product is hit:\n{}\n{}", first.text, second.text);
        let ratio: f64 = second.get("CacheHitRatio").parse().unwrap();
        assert!(ratio > 0.0 && ratio < 1.0, "{mpm:?}: {ratio}");
        assert_eq!(second.number("Total Requests"), 7);
    }
}

#[test]
fn the_shipped_app_server_shows_its_status_to_this_host() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "status-shipped");
    let secret = state_dir("status-secret").join("session.secret");
    std::fs::write(&secret, "status-test-secret-0123456789abcdef\n").unwrap();
    let httpd = Httpd::builder(Mpm::Event)
        .shipped("app-server.conf", "ESF_APP_LISTEN")
        .define("ESF_TEMPLATES", &repo_root().join("templates").display().to_string())
        .define("ESF_DATABASE", &cluster.conninfo(&db))
        .define("ESF_SECRET", &secret.display().to_string())
        .writable_dir("cache")
        .start();
    assert_eq!(httpd.get("/store/product/3").status, 200);
    let reading = Reading::take(&httpd);
    assert_eq!(reading.number("Total Requests"), 1, "{}", reading.text);
    assert!(reading.number("DbHandlesOpen") >= 1, "{}", reading.text);
}
