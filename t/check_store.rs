//! The shared SPEC checker (`../shared/bench/check_store.py`) against the
//! store served by the module under both MPMs, with the catalog TSVs as
//! its oracle: every SPEC row's content, statuses, headers and escaping.
use std::process::Command;

use crate::harness::{repo_root, Mpm, PgCluster};
use crate::store_fixture::{store_database, store_httpd, tiny_catalog};

#[test]
fn the_spec_checker_passes() {
    let checker = repo_root().join("../shared/bench/check_store.py");
    assert!(checker.is_file(), "{} is missing: the tests expect shared/ beside the repository", checker.display());
    for mpm in Mpm::ALL {
        let db = store_database(PgCluster::shared(), "spec");
        let httpd = store_httpd(mpm, &db, "");
        let out = Command::new("python3")
            .arg(&checker)
            .arg(httpd.url("/store"))
            .arg(tiny_catalog())
            .args(["--sample", "40"])
            .output()
            .expect("run check_store.py");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mpm:?}: check_store.py failed:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(report.lines().last().is_some_and(|l| l.ends_with(" 0 failed") && !l.starts_with("0 passed")), "{mpm:?}: {report}");
    }
}
