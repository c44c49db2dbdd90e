//! Migrating from mod_perl (INSTALL.md): mod_perl and mod_esf in one
//! prefork httpd sharing sessions. mod_esf serves /store; the example Perl
//! handler (perl/lib/ESF/Example/CartSummary.pm, through perl/lib/ESF/Session.pm)
//! serves /legacy and reads mod_esf's sessions and carts; old CGI URLs are
//! redirected to the new ones with the guide's RewriteRule.
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::harness::{repo_root, request, state_dir, HttpResponse, Httpd, Mpm, PgCluster};
use crate::store_fixture::{cache_dir, store_database};

const MOD_PERL: &str = "/usr/lib/apache2/modules/mod_perl.so";
const MOD_REWRITE: &str = "/usr/lib/apache2/modules/mod_rewrite.so";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// mod_perl and DBD::Pg come from Debian packages that
/// scripts/install-deps.sh installs; say so rather than fail obscurely.
fn require_perl_packages() {
    let perl_ok = Command::new("perl").args(["-MDBI", "-MDBD::Pg", "-MDigest::SHA", "-e1"]).status().is_ok_and(|s| s.success());
    assert!(
        Path::new(MOD_PERL).is_file() && perl_ok,
        "this test needs mod_perl ({MOD_PERL}) and DBD::Pg: run scripts/install-deps.sh \
         (it installs libapache2-mod-perl2 and libdbd-pg-perl)"
    );
}

/// A secret file readable by its owner only, as INSTALL.md asks: under
/// root, httpd's children (www-data) cannot read it, so the Perl side only
/// works if it read the file in the parent at startup, as mod_esf does.
fn private_secret(contents: &str) -> std::path::PathBuf {
    let path = state_dir("mod-perl-secret").join("session.secret");
    fs::write(&path, contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn start(db: &str, secret: &Path) -> Httpd {
    let conninfo = PgCluster::shared().conninfo(db);
    Httpd::builder(Mpm::Prefork)
        .file("other.secret", "another-secret-0123456789abcdef\n")
        .conf(&format!(
            r#"EsfTemplates {templates}
EsfDatabase "{conninfo}"
EsfCacheDir {cache}
EsfSessionSecret {secret}
<Location /store>
    SetHandler esf
</Location>

LoadModule perl_module {MOD_PERL}
PerlSwitches -I{perl_lib}
PerlSetVar EsfSessionSecret {secret}
PerlSetVar EsfDatabase "{conninfo}"
PerlModule ESF::Session
PerlPostConfigHandler ESF::Session::post_config
<Location /legacy/cart-summary>
    SetHandler modperl
    PerlResponseHandler ESF::Example::CartSummary
</Location>
# The same page verifying with another secret (read by the child, on first use).
<Location /legacy-other/cart-summary>
    SetHandler modperl
    PerlResponseHandler ESF::Example::CartSummary
    PerlSetVar EsfSessionSecret other.secret
</Location>

LoadModule rewrite_module {MOD_REWRITE}
RewriteEngine On
RewriteCond %{{QUERY_STRING}} (?:^|&)id=([0-9]+)(?:&|$)
RewriteRule ^/cgi-bin/product\.cgi$ /store/product/%1? [R=301,L]
RewriteCond %{{QUERY_STRING}} (?:^|&)id=([0-9]+)(?:&|$)
RewriteCond %1&%{{QUERY_STRING}} ^([0-9]+)&(?:.*&)?page=([0-9]+)(?:&|$)
RewriteRule ^/cgi-bin/category\.cgi$ /store/category/%1?page=%2 [R=301,L]
RewriteCond %{{QUERY_STRING}} (?:^|&)id=([0-9]+)(?:&|$)
RewriteRule ^/cgi-bin/category\.cgi$ /store/category/%1? [R=301,L]
RewriteRule ^/cgi-bin/search\.cgi$ /store/search [PT,L]
RewriteRule ^/cgi-bin/index\.cgi$ /store/ [R=301,L,QSD]
"#,
            templates = repo_root().join("templates").display(),
            cache = cache_dir().display(),
            secret = secret.display(),
            perl_lib = repo_root().join("perl/lib").display(),
        ))
        .start()
}

fn get(httpd: &Httpd, path: &str, cookie: Option<&str>) -> HttpResponse {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    request(httpd.port, "GET", path, &headers, None).unwrap()
}

/// `ESF_SESSION=<id>.<mac>` from a Set-Cookie header: (the pair, the id).
fn session_cookie(r: &HttpResponse) -> (String, String) {
    let set = r.header("Set-Cookie").unwrap_or_else(|| panic!("no Set-Cookie in {r:?}"));
    let pair = set.split(';').next().unwrap().to_string();
    let id = pair.strip_prefix("ESF_SESSION=").and_then(|v| v.split_once('.')).unwrap_or_else(|| panic!("{set}")).0.to_string();
    (pair, id)
}

/// The value after `key ` on the summary's line that starts with it.
fn summary_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
}

#[test]
fn mod_perl_and_mod_esf_share_sessions_and_carts() {
    require_perl_packages();
    let db = store_database(PgCluster::shared(), "mod_perl");
    let secret = private_secret("shared-secret-0123456789abcdef\n");
    let httpd = start(&db, &secret);
    let origin = httpd.url("");
    let psql = |sql: &str| PgCluster::shared().psql(&db, sql);

    // mod_esf starts the session and keeps the cart...
    let add = request(httpd.port, "POST", "/store/cart/add", &[FORM, ("Origin", &origin)], Some(b"product_id=5&qty=3")).unwrap();
    assert_eq!(add.status, 303, "{}", add.text());
    let (cookie, id) = session_cookie(&add);

    // ...and the Perl page, verifying the cookie, reads the same session.
    let page = get(&httpd, "/legacy/cart-summary", Some(&cookie));
    let text = page.text();
    assert_eq!(page.status, 200, "{text}\n{}", httpd.error_log());
    assert_eq!(summary_field(&text, "session"), Some(id.as_str()), "{text}");
    let (name, price) = (psql("SELECT name FROM products WHERE id = 5"), psql("SELECT price_cents FROM products WHERE id = 5"));
    assert_eq!(summary_field(&text, "line 5"), Some(format!("qty 3 unit_cents {price} name {name}").as_str()), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("line ")).count(), 1, "{text}");
    let total: i64 = price.parse::<i64>().unwrap() * 3;
    assert_eq!(summary_field(&text, "total_cents"), Some(total.to_string().as_str()));
    assert_eq!(page.header("Set-Cookie"), None, "a valid session is kept");

    // A cookie that does not verify names no session: 403, logged.
    let (value, mac) = cookie.split_once('.').unwrap();
    let last = if mac.ends_with('0') { '1' } else { '0' };
    let flipped = format!("{value}.{}{last}", &mac[..mac.len() - 1]);
    let other_id = format!("ESF_SESSION={}.{mac}", "0".repeat(32));
    for forged in [flipped.as_str(), &other_id, &cookie.to_uppercase(), &format!("{cookie}0")] {
        let r = get(&httpd, "/legacy/cart-summary", Some(forged));
        assert_eq!(r.status, 403, "{forged}: {}", r.text());
        assert!(!r.text().contains(&id), "{}", r.text());
    }
    assert!(httpd.error_log().contains("ESF::Session: ignored an ESF_SESSION cookie that does not verify"));
    // The same page with another secret refuses mod_esf's genuine cookie.
    assert_eq!(get(&httpd, "/legacy-other/cart-summary", Some(&cookie)).status, 403);
    assert_eq!(get(&httpd, "/legacy/cart-summary", None).text(), "no session\n");

    // A session the Perl side starts is mod_esf's too, and the csrf it
    // computes is the one mod_esf's cart forms take.
    let started = get(&httpd, "/legacy/cart-summary?start=1", None);
    assert_eq!(started.status, 200, "{}", started.text());
    let (perl_cookie, perl_id) = session_cookie(&started);
    assert!(started.header("Set-Cookie").unwrap().ends_with("; Path=/; HttpOnly; SameSite=Lax"));
    assert_ne!(perl_id, id);
    let csrf = summary_field(&started.text(), "csrf").expect("a csrf line").to_string();
    let cart = get(&httpd, "/store/cart", Some(&perl_cookie));
    assert_eq!(cart.status, 200);
    assert_eq!(cart.header("Set-Cookie"), None, "mod_esf accepts the Perl-issued cookie");
    let update = request(
        httpd.port,
        "POST",
        "/store/cart/update",
        &[FORM, ("Cookie", &perl_cookie)],
        Some(format!("product_id=6&qty=2&csrf={csrf}").as_bytes()),
    )
    .unwrap();
    assert_eq!(update.status, 303, "mod_esf takes the Perl csrf: {}", update.text());
    assert_eq!(update.header("Set-Cookie"), None);
    assert!(get(&httpd, "/store/cart", Some(&perl_cookie)).text().contains(&csrf), "the csrf of mod_esf's cart forms");
    assert_eq!(psql(&format!("SELECT product_id || ' ' || qty FROM cart_lines WHERE session_id = '{perl_id}'")), "6 2");
    let text = get(&httpd, "/legacy/cart-summary", Some(&perl_cookie)).text();
    assert_eq!(summary_field(&text, "session"), Some(perl_id.as_str()), "{text}");
    assert!(summary_field(&text, "line 6").is_some_and(|l| l.starts_with("qty 2 ")), "{text}");

    // Old CGI URLs move to the new ones (INSTALL.md's RewriteRule).
    let moved = get(&httpd, "/cgi-bin/product.cgi?session=x&id=42", None);
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("Location"), Some(httpd.url("/store/product/42").as_str()));
    for (old, new) in [
        ("/cgi-bin/category.cgi?page=2&id=7", "/store/category/7?page=2"),
        ("/cgi-bin/category.cgi?id=7", "/store/category/7"),
        ("/cgi-bin/index.cgi?from=mail", "/store/"),
    ] {
        let r = get(&httpd, old, None);
        assert_eq!((r.status, r.header("Location")), (301, Some(httpd.url(new).as_str())), "{old}");
    }
    // Or served in place: mod_esf answers the old URL itself.
    let search = get(&httpd, "/cgi-bin/search.cgi?q=train", None);
    let direct = get(&httpd, "/store/search?q=train", None);
    assert_eq!((search.status, direct.status), (200, 200));
    assert_eq!(search.text(), direct.text());
}
