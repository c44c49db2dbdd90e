//! The README's first command, as a new user runs it: `scripts/up.sh`
//! brings up the whole stack (PostgreSQL, esf-searchd, two app servers and
//! the front proxy), the store it prints shows in a real browser
//! (headless Chromium, with a screenshot), running it again does no harm,
//! and `scripts/down.sh` stops everything it started.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{alive, free_port, repo_root, request, state_dir};

/// The stack's state dir and ports; stops the stack when dropped.
struct Stack {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Stack {
    fn new() -> Stack {
        let dir = state_dir("bring-up");
        let env = vec![
            ("ESF_STACK", dir.display().to_string()),
            ("ESF_FRONT_PORT", free_port().to_string()),
            ("ESF_APP1_PORT", free_port().to_string()),
            ("ESF_APP2_PORT", free_port().to_string()),
            ("ESF_PG_PORT", free_port().to_string()),
        ];
        Stack { dir, env }
    }

    fn script(&self, name: &str, args: &[&str]) -> Output {
        let output = Command::new(repo_root().join("scripts").join(name))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
        assert!(
            output.status.success(),
            "scripts/{name} failed\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The pids the stack's pid files name.
    fn pids(&self) -> Vec<i32> {
        ["front/httpd.pid", "app1/httpd.pid", "app2/httpd.pid", "searchd/searchd.pid", "pg/data/postmaster.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .filter_map(|text| text.lines().next()?.trim().parse().ok())
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/down.sh")).envs(self.env.iter().map(|(k, v)| (*k, v.as_str()))).output();
    }
}

/// Headless Chromium as the machine's notes prescribe for root and a
/// closed network; `args` add what to do (dump the DOM, screenshot).
fn chromium(profile: &Path, args: &[String]) -> String {
    let output = Command::new("timeout")
        .args(["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,900"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium (scripts/install-deps.sh installs it)");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_bring_up_command_serves_the_store_to_a_browser_and_is_safe_to_run_twice() {
    let stack = Stack::new();
    let output = stack.script("up.sh", &["--scale", "tiny"]);
    let said = String::from_utf8_lossy(&output.stdout);
    let url = said
        .lines()
        .find_map(|line| line.strip_prefix("mod_esf is up: "))
        .unwrap_or_else(|| panic!("up.sh printed no URL:\n{said}"))
        .trim()
        .to_string();
    let front_port = &stack.env[1].1;
    assert_eq!(url, format!("http://127.0.0.1:{front_port}/store/"));

    // In a browser: the home page with its featured products, rendered.
    let profile = stack.dir.join("chromium-profile");
    let dom = chromium(&profile, &["--dump-dom".into(), url.clone()]);
    assert!(dom.contains("mod_esf store"), "the store's header: {dom}");
    assert!(dom.contains("/store/product/"), "featured products: {dom}");
    // Search, answered by esf-searchd (the app servers' error logs would
    // say if it were not).
    let dom = chromium(&profile, &["--dump-dom".into(), format!("{url}search?q=train")]);
    assert!(dom.contains("results for"), "a search results page: {dom}");
    assert!(dom.contains("/store/product/"), "with products: {dom}");
    let screenshot = stack.dir.join("store.png");
    chromium(&profile, &[format!("--screenshot={}", screenshot.display()), url.clone()]);
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000, "a real screenshot ({} bytes)", png.len());

    // The app servers' status pages count what the browser asked for.
    let served: u64 = [&stack.env[2].1, &stack.env[3].1]
        .iter()
        .map(|port| {
            let auto = request(port.parse().unwrap(), "GET", "/esf-status?auto", &[], None).expect("status page").text();
            let line = auto.lines().find_map(|l| l.strip_prefix("Total Requests: ")).unwrap_or_else(|| panic!("no Total Requests in:\n{auto}"));
            line.trim().parse::<u64>().unwrap()
        })
        .sum();
    assert!(served >= 2, "the home and search pages were counted ({served})");

    // Again: no harm, the same database, the store still there.
    let before = stack.pids();
    assert_eq!(before.len(), 5, "pid files of the proxy, two app servers, esf-searchd and PostgreSQL");
    stack.script("up.sh", &["--scale", "tiny"]);
    assert_eq!(stack.pids(), before, "a second run keeps what runs (graceful restarts)");
    let dom = chromium(&profile, &["--dump-dom".into(), url]);
    assert!(dom.contains("mod_esf store"));

    stack.script("down.sh", &[]);
    for pid in before {
        assert!(!alive(pid), "pid {pid} outlived down.sh");
    }
}
