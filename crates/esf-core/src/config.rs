//! The values of the `Esf…` directives: parsing, validation and merging.
//!
//! httpd calls the module once per directive; the module's FFI layer hands
//! the raw arguments to the `parse_*` functions here and reports any `Err`
//! as the configuration error, so `apachectl -t` names the directive, the
//! value and what was expected. Every field is an `Option`: `None` means "not
//! set in this section", which is how a nested `<Location>` overrides only
//! what it sets (the way mod_cache tracks its `*_set` flags).
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::templates::TemplateSet;

/// A directive's bad value: rendered as `Directive: 'value' ... expected ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveError {
    pub directive: &'static str,
    pub value: String,
    pub expected: String,
}

impl DirectiveError {
    pub fn new(directive: &'static str, value: impl Into<String>, expected: impl Into<String>) -> Self {
        DirectiveError { directive, value: value.into(), expected: expected.into() }
    }
}

impl fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: invalid value '{}': {}", self.directive, self.value, self.expected)
    }
}

impl std::error::Error for DirectiveError {}

pub type DirectiveResult<T> = Result<T, DirectiveError>;

/// Per-server settings (server config and `<VirtualHost>`).
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// `EsfDatabase "libpq conninfo"`
    pub database: Option<String>,
    /// `EsfDatabasePool N`: connections per child (default: its threads)
    pub database_pool: Option<usize>,
    /// `EsfCacheDir DIR`
    pub cache_dir: Option<PathBuf>,
    /// `EsfCacheSize SIZE`, bytes
    pub cache_size: Option<u64>,
    /// `EsfSessionSecret FILE`; the secret itself, never logged
    pub session_secret: Option<Secret>,
    /// `EsfMaxRequestsPerChild N` (0 = unlimited)
    pub max_requests_per_child: Option<u64>,
    /// `EsfMaxChildMemory SIZE`: resident bytes past which a child exits
    /// gracefully after its request (0 = unlimited)
    pub max_child_memory: Option<u64>,
    /// `EsfSessionIssuer On|Off`: hand out `ESF_SESSION` to every request
    /// that lacks a valid one (the front proxy's role)
    pub session_issuer: Option<bool>,
    /// `EsfSearch ADDRESS`: the search daemon (`unix:/path` or `host:port`)
    pub search: Option<esf_data::search::Address>,
    /// `EsfPurgePages CACHE_ROOT STORE_URL`: the front proxy removes the
    /// pages of changed data from its page cache
    pub purge_pages: Option<PurgePages>,
}

/// `EsfPurgePages`: where the proxy's page cache is and what its keys for
/// the store start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgePages {
    /// mod_cache_disk's `CacheRoot`.
    pub cache_root: PathBuf,
    /// `CacheKeyBaseURL` plus the store's path, e.g. `http://store.invalid/store`.
    pub store_url: String,
}

pub const DEFAULT_CACHE_SIZE: u64 = 256 * 1024 * 1024;

impl ServerConfig {
    /// A `<VirtualHost>`'s settings over the main server's.
    pub fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        ServerConfig {
            database: add.database.clone().or_else(|| base.database.clone()),
            database_pool: add.database_pool.or(base.database_pool),
            cache_dir: add.cache_dir.clone().or_else(|| base.cache_dir.clone()),
            cache_size: add.cache_size.or(base.cache_size),
            session_secret: add.session_secret.clone().or_else(|| base.session_secret.clone()),
            max_requests_per_child: add.max_requests_per_child.or(base.max_requests_per_child),
            max_child_memory: add.max_child_memory.or(base.max_child_memory),
            session_issuer: add.session_issuer.or(base.session_issuer),
            search: add.search.clone().or_else(|| base.search.clone()),
            purge_pages: add.purge_pages.clone().or_else(|| base.purge_pages.clone()),
        }
    }

    pub fn issues_sessions(&self) -> bool {
        self.session_issuer.unwrap_or(false)
    }

    pub fn cache_size(&self) -> u64 {
        self.cache_size.unwrap_or(DEFAULT_CACHE_SIZE)
    }
}

/// Per-directory settings (server config, `<VirtualHost>`, `<Location>`, `<Directory>`).
#[derive(Debug, Clone, Default)]
pub struct DirConfig {
    /// The URL prefix routes are matched under: `EsfMount PATH`, or else the
    /// path of the section this configuration came from (see [`DirConfig::mount_for`]).
    pub mount: Option<String>,
    /// Whether `mount` came from `EsfMount` (it then wins over section paths).
    pub mount_explicit: bool,
    /// `EsfTemplates DIR…`, compiled when the directive is read.
    pub templates: Option<Arc<TemplateSet>>,
    /// `EsfThrottle N/SECONDS`
    pub throttle: Option<Throttle>,
    /// `EsfPanicTest On|Off`: the `_panic` route panics on purpose (tests only).
    pub panic_test: Option<bool>,
    /// `EsfOrigin URL`: the store's public origin behind a proxy.
    pub origin: Option<String>,
}

impl DirConfig {
    /// The configuration httpd creates for one section; `section` is the
    /// section's path (`<Location /store>` gives `/store`), if any.
    pub fn for_section(section: Option<&str>) -> DirConfig {
        DirConfig {
            mount: section.filter(|p| p.starts_with('/')).map(normalize_mount),
            ..DirConfig::default()
        }
    }

    /// `add` (the inner section) over `base` (the outer one).
    pub fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        let (mount, mount_explicit) = if add.mount_explicit || (!base.mount_explicit && add.mount.is_some()) {
            (add.mount.clone(), add.mount_explicit)
        } else {
            (base.mount.clone(), base.mount_explicit)
        };
        DirConfig {
            mount,
            mount_explicit,
            templates: add.templates.clone().or_else(|| base.templates.clone()),
            throttle: add.throttle.or(base.throttle),
            panic_test: add.panic_test.or(base.panic_test),
            origin: add.origin.clone().or_else(|| base.origin.clone()),
        }
    }

    /// The mount point for a request to `path`. `EsfMount` wins; otherwise
    /// the innermost section: the longest of this configuration's section
    /// path and `section` (httpd's innermost section with any directive, e.g.
    /// the `<Location /store>` holding `SetHandler esf`) that is a prefix of
    /// `path`. Sections without a mod_esf directive leave no path of their
    /// own here, which is why httpd's is asked too.
    pub fn mount_for<'a>(&'a self, path: &str, section: Option<&'a str>) -> &'a str {
        if self.mount_explicit {
            return self.mount.as_deref().unwrap_or("");
        }
        let section = section.map(|s| s.trim_end_matches('/'));
        [self.mount.as_deref(), section]
            .into_iter()
            .flatten()
            .filter(|m| is_path_prefix(m, path))
            .max_by_key(|m| m.len())
            .unwrap_or("")
    }

    pub fn panic_test(&self) -> bool {
        self.panic_test.unwrap_or(false)
    }
}

/// `/store` is a path prefix of `/store` and `/store/x`, not of `/storefront`.
fn is_path_prefix(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn normalize_mount(path: &str) -> String {
    path.trim_end_matches('/').to_string()
}

/// A secret read from a file. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<Vec<u8>>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// `EsfThrottle N/SECONDS`: at most `requests` in any `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub requests: u32,
    pub seconds: u32,
}

pub const MIN_SECRET_BYTES: usize = 16;

/// `EsfMount PATH`
pub fn parse_mount(value: &str) -> DirectiveResult<String> {
    if !value.starts_with('/') || value.contains(['?', '#', ' ']) {
        return Err(DirectiveError::new("EsfMount", value, "expected a URL path starting with '/', e.g. /store"));
    }
    Ok(normalize_mount(value))
}

/// `EsfOrigin URL`: `scheme://host[:port]`, nothing after.
pub fn parse_origin(value: &str) -> DirectiveResult<String> {
    let err = || DirectiveError::new("EsfOrigin", value, "expected scheme://host[:port] with no path, e.g. https://shop.example.com");
    let (scheme, host) = value.split_once("://").ok_or_else(err)?;
    let host = host.strip_suffix('/').unwrap_or(host);
    if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains(['/', '?', '#', ' ']) {
        return Err(err());
    }
    Ok(format!("{scheme}://{host}"))
}

/// `EsfDatabase "conninfo"`: checked for shape only; the connection is made
/// in the children.
pub fn parse_database(value: &str) -> DirectiveResult<String> {
    let v = value.trim();
    let looks_like_uri = v.starts_with("postgresql://") || v.starts_with("postgres://");
    let looks_like_keywords = v.split_whitespace().all(|kv| kv.contains('=') && !kv.starts_with('='));
    if v.is_empty() || !(looks_like_uri || looks_like_keywords) {
        return Err(DirectiveError::new(
            "EsfDatabase",
            value,
            "expected a libpq connection string, e.g. \"host=/run/postgresql dbname=store\" or postgresql://user@host/db",
        ));
    }
    Ok(v.to_string())
}

/// `EsfPurgePages CACHE_ROOT STORE_URL` (`cache_root` already made
/// absolute): an existing directory and an http(s) URL.
pub fn parse_purge_pages(cache_root: &Path, store_url: &str) -> DirectiveResult<PurgePages> {
    let given = || format!("{} {store_url}", cache_root.display());
    if !cache_root.is_dir() {
        return Err(DirectiveError::new("EsfPurgePages", given(), "expected the front proxy's CacheRoot, an existing directory, first"));
    }
    let valid_url = ["http://", "https://"].iter().any(|scheme| store_url.strip_prefix(scheme).is_some_and(|rest| rest.contains('/') && !rest.starts_with('/')));
    if !valid_url {
        return Err(DirectiveError::new(
            "EsfPurgePages",
            given(),
            "expected CacheKeyBaseURL plus the store's path second, e.g. http://store.invalid/store",
        ));
    }
    Ok(PurgePages { cache_root: cache_root.to_path_buf(), store_url: store_url.trim_end_matches('/').to_string() })
}

/// `EsfSearch ADDRESS`: where esf-searchd listens, `unix:/absolute/path`
/// or `host:port`; checked for shape only (the daemon may start later).
pub fn parse_search(value: &str) -> DirectiveResult<esf_data::search::Address> {
    esf_data::search::Address::parse(value.trim()).map_err(|why| {
        DirectiveError::new("EsfSearch", value, format!("{why}, e.g. unix:/run/esf/searchd.sock or 127.0.0.1:7878"))
    })
}

/// `EsfDatabasePool N`: 1 to 1000 connections per child.
pub fn parse_database_pool(value: &str) -> DirectiveResult<usize> {
    parse_positive::<usize>(value)
        .filter(|n| *n <= 1000)
        .ok_or_else(|| DirectiveError::new("EsfDatabasePool", value, "expected a number of connections per child from 1 to 1000"))
}

/// `EsfCacheDir DIR`: must be an existing directory.
pub fn parse_cache_dir(value: &str) -> DirectiveResult<PathBuf> {
    let path = Path::new(value);
    if !path.is_absolute() {
        return Err(DirectiveError::new("EsfCacheDir", value, "expected an absolute directory path"));
    }
    if !path.is_dir() {
        return Err(DirectiveError::new("EsfCacheDir", value, "expected an existing directory (create it, writable by the server's User)"));
    }
    Ok(path.to_path_buf())
}

/// `EsfCacheSize SIZE`: bytes with an optional K, M, G or T suffix, 1M at least.
pub fn parse_cache_size(value: &str) -> DirectiveResult<u64> {
    let err = || DirectiveError::new("EsfCacheSize", value, "expected a size of at least 1M, a number with an optional K, M, G or T suffix (e.g. 512M)");
    let size = parse_size(value).ok_or_else(err)?;
    if size < 1024 * 1024 {
        return Err(err());
    }
    Ok(size)
}

/// A byte count: `4096`, `64K`, `512M`, `2G`, `1T` (binary multiples).
pub fn parse_size(value: &str) -> Option<u64> {
    let v = value.trim();
    let (digits, multiplier) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return None,
            };
            (&v[..i], m)
        }
        _ => (v, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// `EsfSessionSecret FILE`: the file must hold at least 16 bytes; trailing
/// newlines are not part of the secret. Errors never quote the contents.
pub fn parse_session_secret(value: &str) -> DirectiveResult<Secret> {
    let bytes = std::fs::read(value).map_err(|e| {
        DirectiveError::new("EsfSessionSecret", value, format!("expected a readable file holding the secret ({e})"))
    })?;
    let mut bytes = bytes;
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(DirectiveError::new(
            "EsfSessionSecret",
            value,
            format!("expected a file holding a secret of at least {MIN_SECRET_BYTES} bytes (it has {})", bytes.len()),
        ));
    }
    Ok(Secret(Arc::new(bytes)))
}

/// `EsfThrottle N/SECONDS`, e.g. `20/1` or `600/60`.
pub fn parse_throttle(value: &str) -> DirectiveResult<Throttle> {
    let err = || DirectiveError::new("EsfThrottle", value, "expected REQUESTS/SECONDS with both whole numbers above 0, e.g. 20/1");
    let (n, s) = value.split_once('/').ok_or_else(err)?;
    let requests: u32 = parse_positive(n).ok_or_else(err)?;
    let seconds: u32 = parse_positive(s).ok_or_else(err)?;
    Ok(Throttle { requests, seconds })
}

/// `EsfMaxRequestsPerChild N`: 0 means unlimited.
pub fn parse_max_requests(value: &str) -> DirectiveResult<u64> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DirectiveError::new("EsfMaxRequestsPerChild", value, "expected a whole number of requests (0 = unlimited)"));
    }
    v.parse().map_err(|_| DirectiveError::new("EsfMaxRequestsPerChild", value, "expected a whole number below 2^64"))
}

/// `EsfMaxChildMemory SIZE`: a size as for `EsfCacheSize`, at least 1M, or
/// 0 for no limit.
pub fn parse_max_child_memory(value: &str) -> DirectiveResult<u64> {
    let err = || {
        DirectiveError::new(
            "EsfMaxChildMemory",
            value,
            "expected a resident size of at least 1M, a number with an optional K, M, G or T suffix (e.g. 512M), or 0 for no limit",
        )
    };
    match parse_size(value).ok_or_else(err)? {
        0 => Ok(0),
        size if size < 1024 * 1024 => Err(err()),
        size => Ok(size),
    }
}

/// `EsfPanicTest On|Off`
pub fn parse_on_off(directive: &'static str, value: &str) -> DirectiveResult<bool> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(DirectiveError::new(directive, value, "expected On or Off")),
    }
}

fn parse_positive<T: std::str::FromStr + PartialOrd + Default>(s: &str) -> Option<T> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<T>().ok().filter(|v| *v > T::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64K"), Some(65536));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("12QB"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1M"), None);
        assert_eq!(parse_size("99999999999999999999T"), None);
    }

    #[test]
    fn cache_size_error_names_directive_value_and_expectation() {
        let e = parse_cache_size("12QB").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("EsfCacheSize: invalid value '12QB'"), "{msg}");
        assert!(msg.contains("512M"), "{msg}");
        assert!(parse_cache_size("100K").is_err(), "below 1M");
        assert_eq!(parse_cache_size("1G").unwrap(), 1 << 30);
    }

    #[test]
    fn throttle_parses_requests_per_seconds() {
        assert_eq!(parse_throttle("20/1").unwrap(), Throttle { requests: 20, seconds: 1 });
        for bad in ["20", "0/1", "20/0", "a/b", "20/1/2", "-3/1", ""] {
            assert!(parse_throttle(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn purge_pages_take_a_cache_root_and_the_store_url() {
        let dir = tempfile::tempdir().unwrap();
        let ok = parse_purge_pages(dir.path(), "http://store.invalid/store/").unwrap();
        assert_eq!(ok.store_url, "http://store.invalid/store");
        for (root, url) in [(Path::new("/nonexistent/cache"), "http://store.invalid/store"), (dir.path(), "store.invalid/store"), (dir.path(), "http:///store"), (dir.path(), "http://store.invalid")] {
            let error = parse_purge_pages(root, url).unwrap_err();
            assert_eq!(error.directive, "EsfPurgePages");
            assert!(error.value.contains(url), "{error}");
        }
    }

    #[test]
    fn search_addresses() {
        assert_eq!(parse_search("127.0.0.1:7878").unwrap().to_string(), "127.0.0.1:7878");
        assert_eq!(parse_search("unix:/run/esf/searchd.sock").unwrap().to_string(), "unix:/run/esf/searchd.sock");
        for bad in ["", "7878", "unix:searchd.sock", "localhost:0", "/run/esf/searchd.sock"] {
            let error = parse_search(bad).unwrap_err();
            assert_eq!(error.directive, "EsfSearch");
            assert!(error.to_string().contains(&format!("'{bad}'")) && error.to_string().contains("e.g. unix:/"), "{error}");
        }
        let main = ServerConfig { search: Some(parse_search("127.0.0.1:1").unwrap()), ..Default::default() };
        let merged = ServerConfig::merge(&main, &ServerConfig::default());
        assert_eq!(merged.search, main.search);
    }

    #[test]
    fn database_conninfo_shapes() {
        assert!(parse_database("host=/tmp dbname=store").is_ok());
        assert!(parse_database("postgresql://u@localhost/store").is_ok());
        assert!(parse_database("store").is_err());
        assert!(parse_database("").is_err());
    }

    #[test]
    fn secret_file_is_read_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "short\n").unwrap();
        let err = parse_session_secret(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("at least 16 bytes") && !err.contains("short\n") && !err.contains("'short"), "{err}");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let secret = parse_session_secret(path.to_str().unwrap()).unwrap();
        assert_eq!(secret.bytes(), b"0123456789abcdef0123");
        assert_eq!(format!("{secret:?}"), "Secret(20 bytes)");
        assert!(parse_session_secret("/nonexistent/secret").is_err());
    }

    #[test]
    fn inner_section_overrides_only_what_it_sets() {
        let outer = DirConfig { throttle: Some(Throttle { requests: 5, seconds: 1 }), panic_test: Some(true), ..DirConfig::for_section(Some("/store")) };
        let inner = DirConfig { panic_test: Some(false), ..DirConfig::for_section(Some("/store/coop")) };
        let merged = DirConfig::merge(&outer, &inner);
        assert_eq!(merged.throttle, outer.throttle);
        assert!(!merged.panic_test());
        assert_eq!(merged.mount_for("/store/coop/hello", Some("/store")), "/store/coop", "innermost section is the mount");
        assert_eq!(merged.mount_for("/store/hello", Some("/store")), "/store", "only a prefix of the path counts");
    }

    #[test]
    fn explicit_mount_wins_over_section_paths() {
        let outer = DirConfig { mount: Some("/store".into()), mount_explicit: true, ..DirConfig::default() };
        let inner = DirConfig::for_section(Some("/store/sub"));
        assert_eq!(DirConfig::merge(&outer, &inner).mount_for("/store/sub/x", Some("/store/sub")), "/store");
        let server = DirConfig::for_section(None);
        assert_eq!(server.mount_for("/store/hello", Some("/store/")), "/store", "httpd's section path");
        assert_eq!(server.mount_for("/storefront/hello", Some("/store")), "");
        assert_eq!(server.mount_for("/store/hello", None), "");
    }

    #[test]
    fn vhost_overrides_only_what_it_sets() {
        let main = ServerConfig { database: Some("dbname=a".into()), cache_size: Some(1 << 20), ..Default::default() };
        let vhost = ServerConfig { database: Some("dbname=b".into()), ..Default::default() };
        let merged = ServerConfig::merge(&main, &vhost);
        assert_eq!(merged.database.as_deref(), Some("dbname=b"));
        assert_eq!(merged.cache_size(), 1 << 20);
        assert_eq!(ServerConfig::default().cache_size(), DEFAULT_CACHE_SIZE);
    }

    #[test]
    fn counts_and_flags() {
        assert_eq!(parse_database_pool("16").unwrap(), 16);
        assert!(parse_database_pool("0").is_err() && parse_database_pool("1001").is_err());
        assert_eq!(parse_max_requests("0").unwrap(), 0);
        assert_eq!(parse_max_requests("10000").unwrap(), 10000);
        assert!(parse_max_requests("ten").is_err());
        assert_eq!(parse_max_child_memory("512M").unwrap(), 512 << 20);
        assert_eq!(parse_max_child_memory("0").unwrap(), 0);
        for bad in ["100K", "lots", "-1M", ""] {
            let e = parse_max_child_memory(bad).unwrap_err();
            assert_eq!((e.directive, e.value.as_str()), ("EsfMaxChildMemory", bad));
        }
        assert!(parse_on_off("EsfPanicTest", "On").unwrap());
        assert!(!parse_on_off("EsfPanicTest", "off").unwrap());
        assert!(parse_on_off("EsfPanicTest", "yes").is_err());
        assert_eq!(parse_mount("/store/").unwrap(), "/store");
        assert_eq!(parse_origin("https://shop.example.com/").unwrap(), "https://shop.example.com");
        assert!(parse_origin("shop.example.com").is_err() && parse_origin("https://x/store").is_err());
        assert!(parse_mount("store").is_err());
    }
}
