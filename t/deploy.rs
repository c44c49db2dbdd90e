//! The deploy INSTALL.md describes, end to end on the tier under a
//! christmas-like load: a new mod_esf.so, new templates and a changed
//! directive (`EsfTemplates` pointing at the new templates), rolled out
//! with a graceful restart of each app server and then the proxy, with no
//! failed request.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::harness::{repo_root, Client, HttpError};
use crate::tier_fixture::{CookieJar, Tier};

/// What one shopper saw.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    failed: Vec<String>,
}

/// A shopper on a keep-alive connection: product and category pages, cart
/// adds and cart views, keeping its cookies, until `stop`. A connection
/// closed before any byte of its response is retried once (browsers do);
/// anything else that is not a whole answer below 400 is a failure.
fn shop(port: u16, seed: u64, stop: &AtomicBool) -> Tally {
    let mut client = Client::new(port);
    let mut cookies = CookieJar::default();
    let mut tally = Tally::default();
    let origin = format!("http://127.0.0.1:{port}");
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let product = 1 + (n >> 33) % 200;
        let (method, path, body) = match (n >> 20) % 10 {
            0..=5 => ("GET", format!("/store/product/{product}"), None),
            6 | 7 => ("GET", format!("/store/category/{}", 1 + (n >> 40) % 12), None),
            8 => ("POST", "/store/cart/add".to_string(), Some(format!("product_id={product}&qty=1"))),
            _ => ("GET", "/store/cart".to_string(), None),
        };
        let jar = cookies.header();
        let mut headers = vec![("Cookie", jar.as_str())];
        if body.is_some() {
            headers.extend([("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str())]);
        }
        let mut send = || client.send(method, &path, &headers, body.as_deref().map(str::as_bytes));
        let result = match send() {
            Err(HttpError::ClosedBeforeResponse) => send(),
            other => other,
        };
        match result {
            Ok(r) if r.status < 400 && (r.status != 200 || r.text().contains("</html>")) => {
                cookies.keep(&r);
                tally.ok += 1;
            }
            Ok(r) => tally.failed.push(format!("{method} {path}: status {}: {}", r.status, r.text())),
            Err(e) => tally.failed.push(format!("{method} {path}: {e}")),
        }
    }
    tally
}

/// Copies the repository's templates to `dir`, with `marker` in the footer.
fn templates_with_marker(dir: &std::path::Path, marker: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(repo_root().join("templates")).unwrap().flatten() {
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        if entry.file_name() == "layout_foot.liquid" {
            text = text.replace("</body>", &format!("<!-- {marker} --></body>"));
            assert!(text.contains(marker), "layout_foot.liquid has a </body>");
        }
        std::fs::write(dir.join(entry.file_name()), text).unwrap();
    }
}

#[test]
fn a_graceful_deploy_under_christmas_load_fails_no_request() {
    let tier = Tier::start();
    let stop = Arc::new(AtomicBool::new(false));
    let shoppers: Vec<_> = (0..6)
        .map(|i| {
            let stop = stop.clone();
            let port = tier.front.port;
            thread::spawn(move || shop(port, i, &stop))
        })
        .collect();
    thread::sleep(Duration::from_millis(500));

    // The release: new templates in a new directory, and the directive
    // that names them changed; a new module file on every server.
    for app in &tier.apps {
        let release = app.root.join("templates-release-2");
        templates_with_marker(&release, "release 2");
        let conf_path = app.root.join("httpd.conf");
        let conf = std::fs::read_to_string(&conf_path).unwrap();
        let old = conf.lines().find(|l| l.starts_with("Define ESF_TEMPLATES")).expect("ESF_TEMPLATES define").to_string();
        std::fs::write(&conf_path, conf.replace(&old, &format!("Define ESF_TEMPLATES \"{}\"", release.display()))).unwrap();
        app.reinstall_module();
    }
    tier.front.reinstall_module();

    // Rolled out one server at a time, as INSTALL.md says.
    for app in &tier.apps {
        app.graceful();
        thread::sleep(Duration::from_millis(500));
    }
    tier.front.graceful();
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);

    let tallies: Vec<Tally> = shoppers.into_iter().map(|t| t.join().unwrap()).collect();
    let ok: usize = tallies.iter().map(|t| t.ok).sum();
    let failed: Vec<&String> = tallies.iter().flat_map(|t| &t.failed).collect();
    assert!(failed.is_empty(), "{} failed of {}: {:?}", failed.len(), ok + failed.len(), &failed[..failed.len().min(5)]);
    assert!(ok > 200, "the shoppers kept shopping ({ok} requests)");

    // The release is what runs: the new templates on uncached pages, and
    // no process maps a replaced (deleted) module file.
    let cart = tier.get("/store/cart", &[]);
    assert!(cart.text().contains("<!-- release 2 -->"), "{}", cart.text());
    for server in tier.apps.iter().chain([&tier.front]) {
        for pid in server.child_pids().into_iter().chain([server.parent_pid()]) {
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            assert!(maps.contains("mod_esf.so"), "pid {pid} has mod_esf loaded");
            assert!(!maps.contains("mod_esf.so (deleted)"), "pid {pid} still maps the old module");
        }
    }
}
