//! A store database for tests: the schema migrated and the `tiny` catalog
//! imported, plus an object-cache directory httpd's children can write.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::harness::{give_to_www_data, repo_root, state_dir, PgCluster};

/// The `tiny` catalog (200 products).
pub fn tiny_catalog() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated_catalog("tiny"))
}

/// The `small` catalog (10,000 products).
pub fn small_catalog() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated_catalog("small"))
}

/// target/t/catalog-SCALE, generated on first use and kept across runs
/// (the generator is deterministic).
fn generated_catalog(scale: &str) -> PathBuf {
    // The test executable is target/<profile>/deps/httpd-HASH.
    let exe = std::env::current_exe().expect("current_exe");
    let base = exe.ancestors().nth(3).expect("target dir").join("t");
    let dir = base.join(format!("catalog-{scale}"));
    if dir.join("inventory.tsv").is_file() {
        return dir;
    }
    // Generated beside it and renamed into place, so that a run that died
    // halfway leaves no partial catalog to be reused.
    let partial = base.join(format!("catalog-{scale}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&partial).expect("create catalog dir");
    let status = Command::new("python3")
        .arg(repo_root().join("../shared/workload/gen_catalog.py"))
        .args(["--scale", scale, "--out"])
        .arg(&partial)
        .status()
        .expect("run gen_catalog.py");
    assert!(status.success(), "gen_catalog.py failed");
    if std::fs::rename(&partial, &dir).is_err() {
        std::fs::remove_dir_all(&partial).ok(); // another test process won
    }
    dir
}

/// A fresh database on `cluster` holding the store's schema and the tiny
/// catalog; returns its name.
pub fn store_database(cluster: &PgCluster, prefix: &str) -> String {
    let db = cluster.create_database(prefix);
    let mut client = esf_schema::postgres::Client::connect(&cluster.conninfo(&db), esf_schema::postgres::NoTls).expect("connect");
    esf_schema::migrate(&mut client).expect("migrate");
    esf_schema::import_catalog(&mut client, tiny_catalog()).expect("import tiny catalog");
    db
}

/// An empty directory for an LMDB cache, owned by the user httpd's
/// children run as.
pub fn cache_dir() -> PathBuf {
    let dir = state_dir("cache");
    give_to_www_data(&dir);
    dir
}

/// One line of TSV from the catalog: the fields of product `id`.
pub fn catalog_product(id: i32) -> Vec<String> {
    let text = std::fs::read_to_string(tiny_catalog().join("products.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f[0] == id.to_string())
        .unwrap_or_else(|| panic!("product {id} not in the catalog"))
}

/// How the store escapes text in HTML (to find catalog text in pages).
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The store as an app server serves it: database, cache, session secret,
/// mounted at /store, plus `extra` configuration.
pub fn store_httpd(mpm: crate::harness::Mpm, db: &str, extra: &str) -> crate::harness::Httpd {
    let cluster = PgCluster::shared();
    crate::harness::Httpd::builder(mpm)
        .file("session.secret", "test-secret-0123456789abcdef\n")
        .conf(&format!(
            "EsfTemplates {}\nEsfDatabase \"{}\"\nEsfCacheDir {}\nEsfSessionSecret session.secret\n\
             <Location /store>\n    SetHandler esf\n</Location>\n{extra}",
            repo_root().join("templates").display(),
            cluster.conninfo(db),
            cache_dir().display()
        ))
        .start()
}
