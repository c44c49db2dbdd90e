//! Every `Esf…` directive: its name, where it may appear, and the function
//! that reads it. The values are parsed and checked by
//! `esf_core::config`; an error names the directive, the value and what
//! was expected, and fails `apachectl -t`.
//!
//! | directive | context | default |
//! |---|---|---|
//! | `EsfTemplates DIR…` | server, vhost, section | built-in templates |
//! | `EsfMount PATH` | server, vhost, section | the `<Location>` path |
//! | `EsfDatabase "conninfo"` | server, vhost | none |
//! | `EsfDatabasePool N` | server, vhost | threads per child |
//! | `EsfCacheDir DIR` | server, vhost | none |
//! | `EsfCacheSize SIZE` | server, vhost | 256M |
//! | `EsfSessionSecret FILE` | server, vhost | none |
//! | `EsfThrottle N/SECONDS` | server, vhost, section | no limit |
//! | `EsfMaxRequestsPerChild N` | server | 0 (no limit) |
//! | `EsfMaxChildMemory SIZE` | server | 0 (no limit) |
//! | `EsfOrigin URL` | server, vhost, section | the request's own |
//! | `EsfPanicTest On\|Off` | server, vhost, section | Off |
//! | `EsfSessionIssuer On\|Off` | server, vhost | Off |
//! | `EsfSearch ADDRESS` | server, vhost | none (search in PostgreSQL) |
//! | `EsfPurgePages CACHE_ROOT STORE_URL` | server, vhost | none |
use std::sync::Arc;

use esf_core::config::{self as values, DirectiveError, DirectiveResult};
use esf_core::templates::TemplateSet;

use crate::apache::{take1, take_argv, Command, Context, DirectiveCx, END};

/// The table httpd reads (see `apache::module`).
pub static COMMANDS: [Command; 16] = [
    take_argv(c"EsfTemplates", esf_templates, Context::Anywhere, c"DIR... - template directories, searched in order before the built-in templates"),
    take1(c"EsfMount", esf_mount, Context::Anywhere, c"PATH - the URL prefix the application's routes are under (default: the <Location> path)"),
    take1(c"EsfDatabase", esf_database, Context::Server, c"\"conninfo\" - the PostgreSQL database, as a libpq connection string"),
    take1(c"EsfDatabasePool", esf_database_pool, Context::Server, c"N - PostgreSQL connections per child (default: the child's threads)"),
    take1(c"EsfCacheDir", esf_cache_dir, Context::Server, c"DIR - directory of the shared LMDB object cache"),
    take1(c"EsfCacheSize", esf_cache_size, Context::Server, c"SIZE - maximum size of the object cache, e.g. 512M"),
    take1(c"EsfSessionSecret", esf_session_secret, Context::Server, c"FILE - file holding the secret that signs session cookies"),
    take1(c"EsfThrottle", esf_throttle, Context::Anywhere, c"N/SECONDS - at most N requests per session (or client address) in SECONDS"),
    take1(c"EsfMaxRequestsPerChild", esf_max_requests_per_child, Context::Server, c"N - requests a child serves before it exits gracefully (0 = no limit)"),
    take1(c"EsfMaxChildMemory", esf_max_child_memory, Context::Server, c"SIZE - resident size past which a child exits gracefully after its request, e.g. 512M (0 = no limit)"),
    take1(c"EsfOrigin", esf_origin, Context::Anywhere, c"URL - the store's public origin (scheme://host) when it is behind a proxy"),
    take1(c"EsfPanicTest", esf_panic_test, Context::Anywhere, c"On|Off - make the _panic route panic on purpose (for testing the error trap)"),
    take1(c"EsfSessionIssuer", esf_session_issuer, Context::Server, c"On|Off - give every request without a valid ESF_SESSION cookie a new session (the front proxy's role)"),
    take1(c"EsfSearch", esf_search, Context::Server, c"ADDRESS - the search daemon esf-searchd, unix:/path or host:port (default: search in PostgreSQL)"),
    take_argv(c"EsfPurgePages", esf_purge_pages, Context::Server, c"CACHE_ROOT STORE_URL - (front proxy, with EsfDatabase) remove the pages of changed products from the page cache; STORE_URL is CacheKeyBaseURL plus the store's path"),
    END,
];

fn esf_templates(cx: &mut DirectiveCx, dirs: &[&str]) -> DirectiveResult<()> {
    if dirs.is_empty() {
        return Err(DirectiveError::new("EsfTemplates", "", "expected one or more template directories"));
    }
    let paths = dirs.iter().map(|d| cx.server_root_relative(d)).collect();
    let set = TemplateSet::load(paths).map_err(|e| DirectiveError::new("EsfTemplates", dirs.join(" "), format!("expected template directories whose templates parse: {e}")))?;
    cx.dir_config().templates = Some(Arc::new(set));
    Ok(())
}

fn esf_mount(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    let config = cx.dir_config();
    config.mount = Some(values::parse_mount(value)?);
    config.mount_explicit = true;
    Ok(())
}

fn esf_database(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.server_config().database = Some(values::parse_database(value)?);
    Ok(())
}

fn esf_database_pool(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.server_config().database_pool = Some(values::parse_database_pool(value)?);
    Ok(())
}

fn esf_cache_dir(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    let full = cx.server_root_relative(value);
    cx.server_config().cache_dir = Some(values::parse_cache_dir(&full.to_string_lossy()).map_err(|e| DirectiveError { value: value.into(), ..e })?);
    Ok(())
}

fn esf_cache_size(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.server_config().cache_size = Some(values::parse_cache_size(value)?);
    Ok(())
}

fn esf_session_secret(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    let full = cx.server_root_relative(value);
    cx.server_config().session_secret = Some(values::parse_session_secret(&full.to_string_lossy()).map_err(|e| DirectiveError { value: value.into(), ..e })?);
    Ok(())
}

fn esf_throttle(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.dir_config().throttle = Some(values::parse_throttle(value)?);
    Ok(())
}

fn esf_max_requests_per_child(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    main_server_only(cx, "EsfMaxRequestsPerChild", value)?;
    cx.server_config().max_requests_per_child = Some(values::parse_max_requests(value)?);
    Ok(())
}

fn esf_max_child_memory(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    main_server_only(cx, "EsfMaxChildMemory", value)?;
    cx.server_config().max_child_memory = Some(values::parse_max_child_memory(value)?);
    Ok(())
}

/// A child's limits cannot differ per `<VirtualHost>`: one child serves them all.
fn main_server_only(cx: &DirectiveCx, directive: &'static str, value: &str) -> DirectiveResult<()> {
    if cx.in_virtual_host() {
        return Err(DirectiveError::new(directive, value, "allowed in the main server configuration only, not in <VirtualHost> (a child serves every virtual host)"));
    }
    Ok(())
}

fn esf_origin(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.dir_config().origin = Some(values::parse_origin(value)?);
    Ok(())
}

fn esf_panic_test(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.dir_config().panic_test = Some(values::parse_on_off("EsfPanicTest", value)?);
    Ok(())
}

fn esf_session_issuer(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.server_config().session_issuer = Some(values::parse_on_off("EsfSessionIssuer", value)?);
    Ok(())
}

fn esf_search(cx: &mut DirectiveCx, value: &str) -> DirectiveResult<()> {
    cx.server_config().search = Some(values::parse_search(value)?);
    Ok(())
}

fn esf_purge_pages(cx: &mut DirectiveCx, args: &[&str]) -> DirectiveResult<()> {
    let [cache_root, store_url] = args else {
        return Err(DirectiveError::new("EsfPurgePages", args.join(" "), "expected two values: the proxy's CacheRoot and the store's URL in cache keys"));
    };
    let cache_root = cx.server_root_relative(cache_root);
    cx.server_config().purge_pages = Some(values::parse_purge_pages(&cache_root, store_url)?);
    Ok(())
}
