//! `esf purge`: removes pages from the front proxy's mod_cache_disk cache
//! at once, with httpd's own `htcacheclean -p ROOT URL…`.
//!
//! mod_cache keys a page as `CacheKeyBaseURL` + path + `?` + query (the
//! `?` is there even without a query); apache-conf/front-proxy.conf sets
//! the base so that a key does not depend on the Host a visitor sent.
use std::path::Path;
use std::process::Command;

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
#[derive(Debug, Default)]
pub struct Purged {
    pub removed: Vec<String>,
    pub not_cached: Vec<String>,
}

/// Removes `keys` from the disk cache under `cache_root`.
pub fn purge(cache_root: &Path, keys: &[String]) -> Result<Purged, String> {
    if !cache_root.is_dir() {
        return Err(format!("{} is not a directory (expected the proxy's CacheRoot)", cache_root.display()));
    }
    let output = Command::new("htcacheclean")
        .arg("-v")
        .arg("-p")
        .arg(cache_root)
        .args(keys)
        .output()
        .map_err(|e| format!("cannot run htcacheclean (package apache2-utils): {e}"))?;
    if !output.status.success() {
        return Err(format!("htcacheclean failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    // htcacheclean -v says "Removed: KEY" or "Not cached: KEY", on stderr.
    let said = String::from_utf8_lossy(&output.stderr);
    let removed: Vec<&str> = said.lines().filter_map(|line| line.strip_prefix("Removed: ")).map(str::trim).collect();
    let mut purged = Purged::default();
    for key in keys {
        if removed.contains(&key.as_str()) {
            purged.removed.push(key.clone());
        } else {
            purged.not_cached.push(key.clone());
        }
    }
    Ok(purged)
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
}
