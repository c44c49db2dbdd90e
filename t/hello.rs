//! The SPEC's smallest page, `GET /store/hello?name=X`, served by the module
//! under each MPM with the minimal configuration.
use crate::harness::{request, Mpm};
use crate::store_conf::minimal;

#[test]
fn hello_greets_and_escapes_under_both_mpms() {
    for mpm in Mpm::ALL {
        let httpd = minimal(mpm).start();
        let r = httpd.get("/store/hello");
        assert_eq!(r.status, 200, "{mpm:?}");
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        assert!(r.text().contains("Hello World!"), "{mpm:?}: {}", r.text());

        let r = httpd.get("/store/hello?name=%3Cb%3EZo%C3%AB%3C%2Fb%3E");
        assert_eq!(r.status, 200);
        let body = r.text();
        assert!(body.contains("Hello &lt;b&gt;Zoë&lt;/b&gt;!"), "{mpm:?}: {body}");
        assert!(!body.contains("<b>"), "user markup must be escaped");
        assert!(r.header("Set-Cookie").is_none(), "a public page sets no cookie");

        let r = httpd.get("/store/hello?name=");
        assert!(r.text().contains("Hello World!"), "an empty name is the default");
    }
}

#[test]
fn head_post_and_unknown_paths() {
    let httpd = minimal(Mpm::Event).start();
    let r = request(httpd.port, "HEAD", "/store/hello", &[], None).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());

    let r = request(httpd.port, "POST", "/store/hello", &[("Content-Length", "0")], Some(b"")).unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));

    let r = httpd.get("/store/no-such-page");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("404 Not Found") && r.text().contains("href=\"/store/\""), "friendly page: {}", r.text());

    // Outside the <Location>, httpd itself answers: the module declines.
    assert_eq!(httpd.get("/storefront/hello").status, 404);
    assert!(!httpd.get("/storefront/hello").text().contains("mod_esf"));
}

#[test]
fn a_section_overrides_only_the_templates_it_has() {
    let shared = crate::harness::repo_root().join("templates");
    let httpd = minimal(Mpm::Event)
        .file("coop/layout_head.liquid", "<html><body><header>Co-op Toys</header>\n")
        .conf(&format!(
            "<Location /coop>\n    SetHandler esf\n    EsfTemplates {{root}}/coop {}\n</Location>",
            shared.display()
        ))
        .start();
    let coop = httpd.get("/coop/hello?name=Ann").text();
    assert!(coop.contains("Co-op Toys") && coop.contains("Hello Ann!"), "{coop}");
    assert!(coop.contains("Served by mod_esf"), "the footer falls back to the shared templates: {coop}");
    let store = httpd.get("/store/hello?name=Ann").text();
    assert!(!store.contains("Co-op Toys") && store.contains("Hello Ann!"), "{store}");
}
