//! The whole front tier on loopback, from the shipped configuration files:
//! two app servers (apache-conf/app-server.conf) over one store database,
//! and the front proxy (apache-conf/front-proxy.conf) balancing over them.
use std::path::PathBuf;

use crate::harness::{repo_root, request, state_dir, Httpd, HttpResponse, Mpm, PgCluster};
use crate::store_fixture::store_database;

pub struct Tier {
    pub front: Httpd,
    /// app1 and app2, in the balancer's order.
    pub apps: Vec<Httpd>,
    pub db: String,
    pub secret: PathBuf,
}

/// The routes the front proxy gives the app servers, in `apps` order.
pub const ROUTES: [&str; 2] = ["app1", "app2"];

impl Tier {
    pub fn start() -> Tier {
        let cluster = PgCluster::shared();
        let db = store_database(cluster, "tier");
        let secret = state_dir("tier-secret").join("session.secret");
        std::fs::write(&secret, "tier-test-secret-0123456789abcdef\n").expect("write secret");
        let apps: Vec<Httpd> = (0..2)
            .map(|_| {
                Httpd::builder(Mpm::Event)
                    .installed_module()
                    .shipped("app-server.conf", "ESF_APP_LISTEN")
                    .define("ESF_TEMPLATES", &repo_root().join("templates").display().to_string())
                    .define("ESF_DATABASE", &cluster.conninfo(&db))
                    .define("ESF_SECRET", &secret.display().to_string())
                    .writable_dir("cache")
                    .start()
            })
            .collect();
        let front = Httpd::builder(Mpm::Event)
            .installed_module()
            .shipped("front-proxy.conf", "ESF_FRONT_LISTEN")
            .define("ESF_SECRET", &secret.display().to_string())
            .define("ESF_DATABASE", &cluster.conninfo(&db))
            .define("ESF_PAGE_CACHE", "{root}/page-cache")
            .define("ESF_APP1", &format!("127.0.0.1:{}", apps[0].port))
            .define("ESF_APP2", &format!("127.0.0.1:{}", apps[1].port))
            .writable_dir("page-cache")
            .writable_dir("cache-lock")
            .file("htdocs/static.html", &"x".repeat(1000))
            .start();
        Tier { front, apps, db, secret }
    }

    /// One request to the front proxy.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        request(self.front.port, "GET", path, headers, None).unwrap_or_else(|e| panic!("GET {path} through the proxy: {e}"))
    }

    /// How many `GET path` requests the app servers have answered.
    pub fn app_requests(&self, path: &str) -> usize {
        let line = format!("\"GET {path} HTTP/1.1\"");
        self.apps.iter().map(|app| std::fs::read_to_string(app.root.join("access.log")).unwrap_or_default().matches(&line).count()).sum()
    }

    /// The balancer's status for app server `index`: "Init Ok", "Init HcFl"...
    pub fn member_status(&self, index: usize) -> String {
        let page = self.get("/balancer-manager", &[]).text();
        let url = format!("http://127.0.0.1:{}", self.apps[index].port);
        let row = page.split("<tr>").find(|row| row.contains(&url)).unwrap_or_else(|| panic!("{url} is not in the balancer-manager page:\n{page}"));
        // The cells: URL, route, redirect, factor, set, status, ...
        let cells: Vec<String> = row.split("<td>").skip(1).map(|cell| strip_tags(cell).trim().to_string()).collect();
        cells.get(5).cloned().unwrap_or_else(|| panic!("no status cell in {row}"))
    }
}

fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// A browser's cookies: every `Set-Cookie` kept, all sent back.
#[derive(Debug, Default)]
pub struct CookieJar {
    cookies: std::collections::BTreeMap<String, String>,
}

impl CookieJar {
    /// The `Cookie` header to send ("" with no cookie).
    pub fn header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Keeps the cookies `response` sets; a malformed `Set-Cookie` fails
    /// the test.
    pub fn keep(&mut self, response: &HttpResponse) {
        for set in response.headers_named("Set-Cookie") {
            let (name, value) = set.split(';').next().and_then(|pair| pair.split_once('=')).unwrap_or_else(|| panic!("malformed Set-Cookie {set:?}"));
            self.cookies.insert(name.to_string(), value.to_string());
        }
    }

    pub fn get(&self, name: &str) -> Option<&String> {
        self.cookies.get(name)
    }
}
