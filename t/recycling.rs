//! `EsfMaxRequestsPerChild` and `EsfMaxChildMemory`: past its limit a child
//! finishes its request and exits gracefully, under prefork and event, while
//! clients keep going without a failed request.
use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{alive, request, Client, HttpError, Httpd, Mpm};
use crate::status::{Reading, STATUS_LOCATION};
use crate::store_conf::minimal;

/// Logs the pid of the child that served each request.
const PID_LOG: &str = "LogFormat \"%P %U %>s %{msec}t\" esf_pids\nCustomLog \"{root}/pids.log\" esf_pids";

/// What a client loop saw.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    failed: Vec<String>,
    /// Keep-alive requests sent again after their connection was closed
    /// before any byte of the response (the keep-alive race browsers retry).
    retried: usize,
}

/// `count` GETs of /store/hello, on one keep-alive connection (reopened
/// when the server closes it) or each on its own connection.
fn client_loop(port: u16, keep_alive: bool, count: usize) -> Tally {
    let mut client = Client::new(port);
    let mut tally = Tally::default();
    for _ in 0..count {
        let result = if keep_alive {
            match client.get("/store/hello") {
                Err(HttpError::ClosedBeforeResponse) => {
                    tally.retried += 1;
                    client.get("/store/hello")
                }
                other => other,
            }
        } else {
            request(port, "GET", "/store/hello", &[], None)
        };
        match result {
            Ok(r) if r.status == 200 && r.text().contains("</html>") => tally.ok += 1,
            Ok(r) => tally.failed.push(format!("status {}: {}", r.status, r.text())),
            Err(e) => tally.failed.push(e.to_string()),
        }
    }
    tally
}

/// Requests for `/store/hello` per serving child, from pids.log.
fn served_per_child(httpd: &Httpd) -> HashMap<i32, usize> {
    let log = std::fs::read_to_string(httpd.root.join("pids.log")).unwrap_or_default();
    let mut served = HashMap::new();
    for line in log.lines().filter(|l| l.contains(" /store/hello ")) {
        *served.entry(line.split(' ').next().unwrap().parse().unwrap()).or_insert(0) += 1;
    }
    served
}

/// Pids named by the recycle notices (ESF00021) of the error log.
fn recycled_pids(log: &str) -> Vec<i32> {
    log.lines()
        .filter_map(|l| l.split("ESF00021: child ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

fn wait_until_gone(pids: &[i32], mpm: Mpm) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "{mpm:?}: recycled children still running: {:?}", pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>());
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn children_recycle_after_max_requests_without_a_failed_request() {
    const LIMIT: usize = 20;
    for mpm in Mpm::ALL {
        let httpd = minimal(mpm).conf(&format!("EsfMaxRequestsPerChild {LIMIT}")).conf(STATUS_LOCATION).conf(PID_LOG).start();
        let first_children = httpd.child_pids();
        let port = httpd.port;
        let loops: Vec<_> = [true, false].into_iter().map(|keep_alive| thread::spawn(move || client_loop(port, keep_alive, 100))).collect();
        let tallies: Vec<Tally> = loops.into_iter().map(|t| t.join().unwrap()).collect();
        let failed: Vec<&String> = tallies.iter().flat_map(|t| &t.failed).collect();
        let retried: usize = tallies.iter().map(|t| t.retried).sum();
        assert!(failed.is_empty(), "{mpm:?}: {} failed ({retried} retried): {:?}", failed.len(), &failed[..failed.len().min(5)]);
        assert_eq!(tallies.iter().map(|t| t.ok).sum::<usize>(), 200);

        let log = httpd.error_log();
        let recycled = recycled_pids(&log);
        assert!(recycled.len() >= 5, "{mpm:?}: 200 requests at {LIMIT} per child recycle children:\n{log}");
        assert!(log.contains(&format!("recycled after {LIMIT} requests (EsfMaxRequestsPerChild {LIMIT})")), "{mpm:?}:\n{log}");
        assert!(!log.contains("exit signal") && !log.contains("ESF00022") && !log.contains("ESF00023"), "{mpm:?}:\n{log}");
        wait_until_gone(&recycled, mpm);
        assert!(first_children.iter().any(|pid| recycled.contains(pid)), "{mpm:?}: the first children were among those recycled");

        // A prefork child stops at its limit. An event child's listener
        // thread goes on accepting until the main thread has read the pipe
        // of death and stopped it: the connections it took meanwhile are
        // served there too, so only prefork's count is exact.
        let served = served_per_child(&httpd);
        if mpm == Mpm::Prefork {
            assert!(served.values().all(|&count| count <= LIMIT), "{mpm:?}: a child served past its limit: {served:?}");
        }
        for pid in &recycled {
            assert!(served.get(pid).is_some_and(|&n| n >= LIMIT), "{mpm:?}: {pid} recycled before its limit: {served:?}");
        }
        assert!(served.len() > recycled.len(), "{mpm:?}: new children took over: {served:?}");

        let reading = Reading::take(&httpd);
        assert_eq!(reading.number("ChildrenRecycled") as usize, recycled.len(), "{mpm:?}:\n{}", reading.text);
        assert_eq!(reading.number("Total Requests"), 200, "{mpm:?}: exited children still count:\n{}", reading.text);
        assert!(reading.child_pids().iter().all(|pid| !recycled.contains(pid)), "{mpm:?}: no row for an exited child:\n{}", reading.text);
    }
}

#[test]
fn a_child_past_max_child_memory_recycles() {
    for mpm in Mpm::ALL {
        // Any child is bigger than 1M: each recycles after its first request.
        let httpd = minimal(mpm).conf("EsfMaxChildMemory 1M").conf(PID_LOG).start();
        let mut keep_alive = httpd.client();
        for _ in 0..3 {
            let r = keep_alive.get("/store/hello").unwrap_or_else(|e| panic!("{mpm:?}: {e}"));
            assert_eq!(r.status, 200);
            assert_eq!(r.header("Connection"), Some("close"), "{mpm:?}: the last response of a child closes its connection");
        }
        assert_eq!(keep_alive.connects(), 3, "{mpm:?}");
        let log = httpd.error_log();
        let recycled = recycled_pids(&log);
        assert!(log.contains("recycled after 1 request: private RSS ") && log.contains(" over EsfMaxChildMemory 1M"), "{mpm:?}:\n{log}");
        wait_until_gone(&recycled, mpm);
        let served = served_per_child(&httpd);
        if mpm == Mpm::Prefork {
            assert_eq!(recycled.len(), 3, "{mpm:?}:\n{log}");
            assert_eq!(served.len(), 3, "{mpm:?}: three children served one request each: {served:?}");
        } else {
            // An event child that is stopping may still take a connection
            // it had accepted: it then serves it and closes it too.
            assert!(!recycled.is_empty() && recycled.len() == served.len(), "{mpm:?}: every child that served recycled: {served:?}\n{log}");
        }
    }
}

#[test]
fn bad_recycling_values_fail_the_config_test() {
    let cases: &[(&str, &str, &str)] = &[
        ("EsfMaxChildMemory lots", "lots", "at least 1M"),
        ("EsfMaxChildMemory 100K", "100K", "at least 1M"),
        ("EsfMaxRequestsPerChild -5", "-5", "whole number"),
        ("<VirtualHost 127.0.0.1:*>\n    EsfMaxChildMemory 512M\n</VirtualHost>", "512M", "not in <VirtualHost>"),
        ("<VirtualHost 127.0.0.1:*>\n    EsfMaxRequestsPerChild 100\n</VirtualHost>", "100", "not in <VirtualHost>"),
    ];
    for (conf, value, expected) in cases {
        let (ok, out) = Httpd::builder(Mpm::Event).conf(conf).configtest();
        let directive = conf.split_whitespace().find(|w| w.starts_with("EsfMax")).unwrap();
        assert!(!ok, "{conf} must fail the config test:\n{out}");
        assert!(out.contains(&format!("{directive}: invalid value '{value}'")), "{conf}: names directive and value:\n{out}");
        assert!(out.contains(expected), "{conf}: says what was expected ({expected}):\n{out}");
    }
    let (ok, out) = Httpd::builder(Mpm::Prefork).conf("EsfMaxChildMemory 512M\nEsfMaxRequestsPerChild 1000").configtest();
    assert!(ok, "{out}");
}
