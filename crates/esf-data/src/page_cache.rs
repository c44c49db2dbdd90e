//! The front proxy's page cache (mod_cache_disk): removing pages from it,
//! by hand (`esf purge`) or when the data they show changes
//! ([`PagePurger`], run by mod_esf in the proxy with `EsfPurgePages`).
//!
//! Removal is httpd's own `htcacheclean -p ROOT KEY…`. mod_cache keys a
//! page as `CacheKeyBaseURL` + path + `?` + query (the `?` is there even
//! without a query); apache-conf/front-proxy.conf sets the base so that a
//! key does not depend on the Host a visitor sent.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::coherence::ChangeSink;

/// The base apache-conf/front-proxy.conf gives `CacheKeyBaseURL`.
pub const DEFAULT_KEY_BASE: &str = "http://store.invalid/";

/// The cache key of `target`: a path (`/store/product/12`) or a whole URL
/// (`http://shop.example/store/product/12?x=1`), whose scheme and host are
/// replaced by `base`, as mod_cache does.
pub fn cache_key(base: &str, target: &str) -> Result<String, String> {
    let path_and_query = if target.starts_with('/') {
        target
    } else if let Some((_, rest)) = target.split_once("://") {
        rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
    } else {
        return Err(format!("{target:?} is neither a path (/store/...) nor a URL (http://host/...)"));
    };
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let path = path.split('#').next().unwrap_or(path);
    Ok(format!("{}{path}?{query}", base.trim_end_matches('/')))
}

/// What a purge did, per key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub removed: Vec<String>,
    pub not_cached: Vec<String>,
}

/// Removes `keys` from the disk cache under `cache_root`.
pub fn purge(cache_root: &Path, keys: &[String]) -> Result<Purged, String> {
    let said = htcacheclean(cache_root, keys.iter().map(String::as_str))?;
    // htcacheclean -v says "Removed: KEY" or "Not cached: KEY", on stderr.
    let removed: Vec<&str> = said.lines().filter_map(|line| line.strip_prefix("Removed: ")).map(str::trim).collect();
    let (removed, not_cached) = keys.iter().cloned().partition(|key| removed.contains(&key.as_str()));
    Ok(Purged { removed, not_cached })
}

/// Empties the disk cache under `cache_root`.
pub fn purge_all(cache_root: &Path) -> Result<(), String> {
    // A size limit of one byte leaves nothing.
    htcacheclean(cache_root, ["-l", "1"]).map(drop)
}

/// Runs `htcacheclean -v -p ROOT ARGS…`; returns what it said on stderr.
fn htcacheclean<'a>(cache_root: &Path, args: impl IntoIterator<Item = &'a str>) -> Result<String, String> {
    if !cache_root.is_dir() {
        return Err(format!("{} is not a directory (expected the proxy's CacheRoot)", cache_root.display()));
    }
    let output = Command::new("htcacheclean")
        .arg("-v")
        .arg("-p")
        .arg(cache_root)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run htcacheclean (package apache2-utils): {e}"))?;
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    // It exits with 2 when a key was not cached, which is no failure.
    let only_reports = said.lines().all(|line| line.starts_with("Removed: ") || line.starts_with("Not cached: "));
    if !output.status.success() && !only_reports {
        return Err(format!("htcacheclean failed: {}", said.trim()));
    }
    Ok(said)
}

/// Pages to remove for one change notification.
#[derive(Debug, PartialEq, Eq)]
pub enum Pages {
    /// These cache keys.
    Keys(Vec<String>),
    /// A prefix token (a bulk change): everything.
    All,
}

/// The store's pages that show what `tokens` (docs/DATA.md) name, under
/// `store_url` (`CacheKeyBaseURL` + the store's mount, e.g.
/// `http://store.invalid/store`): a product's page for `product:N` and
/// `inventory:N`, a category's first page for `category:N` and
/// `catlist:N:*`, the home page for `featured` and `categories`. Listings
/// that merely include a product are left to expire (60 s at most).
pub fn pages_for_change(store_url: &str, tokens: &str) -> Pages {
    let store = store_url.trim_end_matches('/');
    let mut keys = Vec::new();
    for token in tokens.split_whitespace() {
        let (kind, rest) = token.split_once(':').unwrap_or((token, ""));
        match (kind, rest.split(':').next().unwrap_or("")) {
            ("product" | "inventory", id) if is_id(id) => keys.push(format!("{store}/product/{id}?")),
            ("category" | "catlist", id) if is_id(id) => {
                keys.push(format!("{store}/category/{id}?"));
                keys.push(format!("{store}/category/{id}?page=1"));
            }
            ("featured" | "categories", "") => keys.push(format!("{store}/?")),
            _ if token.ends_with('*') => return Pages::All,
            _ => {}
        }
    }
    keys.sort();
    keys.dedup();
    Pages::Keys(keys)
}

fn is_id(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// How long after a change its pages are removed a second time: an app
/// server's own listener may not have dropped its cached data yet when the
/// proxy first removes the page, and a request in between would cache the
/// old page again.
pub const SECOND_PURGE: Duration = Duration::from_secs(2);

/// Removes from the proxy's page cache the pages of what changes (a
/// [`ChangeSink`] for the coherence listener, in the proxy's children).
pub struct PagePurger {
    cache_root: PathBuf,
    store_url: String,
    /// `i64::MIN`: nothing applied yet (a new proxy: its cache is empty or
    /// holds pages that expire on their own).
    last: AtomicI64,
    again: Mutex<Vec<(Instant, Pages)>>,
}

impl PagePurger {
    pub fn new(cache_root: PathBuf, store_url: String) -> PagePurger {
        PagePurger { cache_root, store_url, last: AtomicI64::new(i64::MIN), again: Mutex::new(Vec::new()) }
    }

    fn remove(&self, pages: &Pages) {
        let result = match pages {
            Pages::All => purge_all(&self.cache_root),
            Pages::Keys(keys) if keys.is_empty() => Ok(()),
            Pages::Keys(keys) => purge(&self.cache_root, keys).map(drop),
        };
        if let Err(e) = result {
            log::error!("page purge: {e}");
        }
    }
}

impl ChangeSink for PagePurger {
    fn name(&self) -> &'static str {
        "page purge"
    }

    fn apply(&self, tokens: &str) {
        let pages = pages_for_change(&self.store_url, tokens);
        self.remove(&pages);
        self.again.lock().push((Instant::now() + SECOND_PURGE, pages));
    }

    fn last_applied(&self) -> Option<i64> {
        Some(self.last.load(Ordering::Relaxed)).filter(|seq| *seq != i64::MIN)
    }

    fn remember(&self, seq: i64) {
        self.last.store(seq, Ordering::Relaxed);
    }

    fn tick(&self) {
        let now = Instant::now();
        let due: Vec<Pages> = {
            let mut again = self.again.lock();
            let (due, later) = std::mem::take(&mut *again).into_iter().partition(|(at, _)| *at <= now);
            *again = later;
            due.into_iter().map(|(_, pages)| pages).collect()
        };
        due.iter().for_each(|pages| self.remove(pages));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls_become_keys() {
        let base = DEFAULT_KEY_BASE;
        assert_eq!(cache_key(base, "/store/product/12").unwrap(), "http://store.invalid/store/product/12?");
        assert_eq!(cache_key(base, "/store/search?q=train").unwrap(), "http://store.invalid/store/search?q=train");
        assert_eq!(cache_key(base, "https://shop.example:8443/store/?").unwrap(), "http://store.invalid/store/?");
        assert_eq!(cache_key(base, "http://shop.example").unwrap(), "http://store.invalid/?");
        assert_eq!(cache_key("http://b.example:81", "/x#frag").unwrap(), "http://b.example:81/x?");
        assert!(cache_key(base, "store/product/12").is_err());
    }

    #[test]
    fn a_missing_cache_root_is_an_error() {
        let err = purge(Path::new("/nonexistent/cache"), &["http://store.invalid/x?".into()]).unwrap_err();
        assert!(err.contains("/nonexistent/cache"), "{err}");
    }

    #[test]
    fn a_page_that_is_not_cached_is_no_failure() {
        let root = tempfile::tempdir().unwrap();
        let keys = vec!["http://store.invalid/store/product/1?".to_string()];
        let purged = purge(root.path(), &keys).expect("htcacheclean (apache2-utils) says it was not cached");
        assert_eq!(purged, Purged { removed: Vec::new(), not_cached: keys });
    }

    #[test]
    fn changes_name_the_pages_that_show_them() {
        let store = "http://store.invalid/store";
        let keys = |tokens| match pages_for_change(store, tokens) {
            Pages::Keys(keys) => keys,
            Pages::All => panic!("{tokens}: all"),
        };
        assert_eq!(keys("product:12 inventory:12"), ["http://store.invalid/store/product/12?"]);
        assert_eq!(keys("catlist:4:* category:4"), ["http://store.invalid/store/category/4?", "http://store.invalid/store/category/4?page=1"]);
        assert_eq!(keys("featured"), ["http://store.invalid/store/?"]);
        assert_eq!(keys("order:9 session:abc product:x"), Vec::<String>::new());
        assert_eq!(pages_for_change(store, "product:* inventory:*"), Pages::All);
        assert_eq!(pages_for_change("http://s/store/", "*"), Pages::All);
    }

    #[test]
    fn the_purger_remembers_what_it_applied() {
        let purger = PagePurger::new("/nonexistent".into(), "http://s/store".into());
        assert_eq!(purger.last_applied(), None);
        purger.remember(41);
        assert_eq!(purger.last_applied(), Some(41));
    }
}
