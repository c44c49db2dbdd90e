//! Where things are: the built module, the repository, and fresh per-test
//! state directories under target/t/ that httpd children (www-data) and the
//! postgres user can traverse.
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root (the root crate's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>/, derived from the test executable
/// (target/<profile>/deps/httpd-HASH), so a custom CARGO_TARGET_DIR works.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(2)
        .unwrap_or_else(|| panic!("unexpected test executable path {}", exe.display()))
        .to_path_buf()
}

/// The libmod_esf.so for this test run, built from the current sources.
///
/// Cargo does not rebuild a cdylib-only library for an integration test
/// (the test does not link it), so a plain `cargo test` would load a stale
/// module: the first call runs `cargo build` for it, in the same profile.
pub fn module_path() -> PathBuf {
    built("mod_esf", &["-p", "mod_esf", "--lib"], "libmod_esf.so")
}

/// A fresh, empty directory target/t/<name>-<pid>-<n>, mode 0755, reachable
/// by other users (httpd children run as www-data).
pub fn state_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let target = profile_dir().parent().expect("target dir").to_path_buf();
    let base = target.join("t");
    fs::create_dir_all(&base).expect("create target/t");
    allow_traversal(&target);
    allow_traversal(&base);

    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{name}-{}-{n}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("remove stale state dir");
    }
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    set_mode(&dir, 0o755);
    dir
}

/// Sets the permission bits of `path`.
pub(super) fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Adds o+x to a directory so other users can reach what is below it.
fn allow_traversal(dir: &Path) {
    let mode = fs::metadata(dir).expect("stat").permissions().mode();
    if mode & 0o001 == 0 {
        set_mode(dir, mode | 0o001);
    }
}

/// Makes `dir` owned by www-data when running as root (httpd's children
/// run as www-data then), so they can write below it.
pub fn give_to_www_data(dir: &Path) {
    if !super::process::running_as_root() {
        return;
    }
    let www = std::process::Command::new("id").args(["-u", "www-data"]).output().expect("id");
    let uid: u32 = String::from_utf8_lossy(&www.stdout).trim().parse().expect("www-data uid");
    std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap_or_else(|e| panic!("chown www-data {}: {e}", dir.display()));
}

/// The executable `bin` of workspace package `package` for this test run,
/// built from the current sources (as [`module_path`] builds the module).
pub fn binary_path(package: &str, bin: &str) -> PathBuf {
    built(package, &["-p", package, "--bin", bin], bin)
}

/// target/<profile>/`output`, after `cargo build --quiet CARGO_ARGS` in
/// this test run's profile, run once per test process for each `what`.
fn built(what: &str, cargo_args: &[&str], output: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = profile_dir();
    let mut done = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !done.iter().any(|w| w == what) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet"]).args(cargo_args).current_dir(repo_root());
        if dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().unwrap_or_else(|e| panic!("run cargo build for {what}: {e}"));
        assert!(status.success(), "building {what} failed");
        done.push(what.to_string());
    }
    let path = dir.join(output);
    assert!(path.is_file(), "{} is missing after cargo build", path.display());
    path
}
