//! `apachectl graceful` while requests keep coming: no request fails, the
//! module is unloaded and loaded again (so a newly installed mod_esf.so is
//! the one running), and a changed template is served after it.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crate::harness::{repo_root, Client, HttpError, Httpd, Mpm};

/// What a request loop saw.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    failed: Vec<String>,
    retried: usize,
}

/// GETs `path` on keep-alive connections until `stop`. A connection closed
/// before any byte of its response (the keep-alive close race a graceful
/// restart can hit) is retried once, as browsers do; anything else that is
/// not a whole 2xx response counts as failed.
fn request_loop(port: u16, path: &str, stop: &AtomicBool) -> Tally {
    let mut client = Client::new(port);
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let result = match client.get(path) {
            Err(HttpError::ClosedBeforeResponse) => {
                tally.retried += 1;
                client.get(path)
            }
            other => other,
        };
        match result {
            Ok(r) if r.status == 200 && r.text().contains("</html>") => tally.ok += 1,
            Ok(r) => tally.failed.push(format!("status {}: {}", r.status, r.text())),
            Err(e) => tally.failed.push(e.to_string()),
        }
    }
    tally
}

#[test]
fn graceful_under_load_loses_nothing_and_picks_up_templates() {
    for mpm in Mpm::ALL {
        let templates = repo_root().join("templates");
        let httpd = Httpd::builder(mpm)
            .installed_module()
            .file("tpl/hello.liquid", "{% include \"layout_head\" %}<p>Hello {{ name }}!</p>{% include \"layout_foot\" %}")
            .conf(&format!("EsfTemplates {{root}}/tpl {}\n<Location /store>\n    SetHandler esf\n</Location>", templates.display()))
            .start();
        let stop = Arc::new(AtomicBool::new(false));
        let loops: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                let port = httpd.port;
                thread::spawn(move || request_loop(port, "/store/hello", &stop))
            })
            .collect();

        thread::sleep(std::time::Duration::from_millis(300));
        httpd.graceful();
        let module = httpd.reinstall_module();
        std::fs::write(
            httpd.root.join("tpl/hello.liquid"),
            "{% include \"layout_head\" %}<p>Greetings {{ name }}!</p>{% include \"layout_foot\" %}",
        )
        .unwrap();
        httpd.graceful();
        thread::sleep(std::time::Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);

        let tallies: Vec<Tally> = loops.into_iter().map(|t| t.join().unwrap()).collect();
        let ok: usize = tallies.iter().map(|t| t.ok).sum();
        let failed: Vec<&String> = tallies.iter().flat_map(|t| &t.failed).collect();
        assert!(failed.is_empty(), "{mpm:?}: {} failed of {}: {:?}", failed.len(), ok + failed.len(), &failed[..failed.len().min(5)]);
        assert!(ok > 100, "{mpm:?}: the loop ran ({ok} requests)");

        let body = httpd.get("/store/hello?name=Ann").text();
        assert!(body.contains("Greetings Ann!"), "{mpm:?}: the changed template is served: {body}");
        let log = httpd.error_log();
        for generation in 0..3 {
            assert!(log.contains(&format!("configured (generation {generation},")), "{mpm:?}: generation {generation} configured:\n{log}");
        }
        assert!(!log.contains("exit signal"), "{mpm:?}:\n{log}");
        assert!(!log.contains("ESF00007"), "{mpm:?}: the module was not unloaded:\n{log}");
        for pid in std::iter::once(httpd.parent_pid()).chain(httpd.child_pids()) {
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            let mapped: Vec<&str> = maps.lines().filter(|l| l.contains("mod_esf.so")).collect();
            assert!(!mapped.is_empty(), "{mpm:?}: pid {pid} maps {}", module.display());
            assert!(mapped.iter().all(|l| !l.ends_with("(deleted)")), "{mpm:?}: pid {pid} still runs the replaced module: {mapped:?}");
        }
    }
}
