//! `apachectl -t` refuses a bad `Esf…` value with a message that names the
//! directive, the value and what was expected, and accepts good ones.
use crate::harness::{Httpd, Mpm};

fn configtest(conf: &str) -> (bool, String) {
    Httpd::builder(Mpm::Event).file("secret", "0123456789abcdef-secret\n").file("short-secret", "tiny\n").conf(conf).configtest()
}

#[test]
fn bad_values_fail_naming_directive_value_and_expectation() {
    let cases: &[(&str, &str, &str)] = &[
        ("EsfCacheSize 12QB", "12QB", "K, M, G or T"),
        ("EsfCacheSize 10K", "10K", "at least 1M"),
        ("EsfThrottle 20", "20", "REQUESTS/SECONDS"),
        ("EsfThrottle 0/1", "0/1", "REQUESTS/SECONDS"),
        ("EsfDatabase store", "store", "libpq connection string"),
        ("EsfMaxRequestsPerChild ten", "ten", "whole number"),
        ("EsfPanicTest maybe", "maybe", "On or Off"),
        ("EsfCacheDir /nonexistent/cache", "/nonexistent/cache", "existing directory"),
        ("EsfSessionSecret /nonexistent/secret", "/nonexistent/secret", "readable file"),
        ("EsfSessionSecret short-secret", "short-secret", "at least 16 bytes"),
        ("EsfPurgePages /nonexistent/pages http://store.invalid/store", "/nonexistent/pages http://store.invalid/store", "existing directory"),
        ("EsfPurgePages /tmp store.invalid/store", "/tmp store.invalid/store", "CacheKeyBaseURL plus the store's path"),
        ("EsfSessionIssuer sometimes", "sometimes", "On or Off"),
        ("EsfTemplates /nonexistent/templates", "/nonexistent/templates", "not a directory"),
        ("EsfMount store", "store", "starting with '/'"),
    ];
    for (line, value, expected) in cases {
        let (ok, out) = configtest(line);
        let directive = line.split_whitespace().next().unwrap();
        assert!(!ok, "{line} must fail the config test:\n{out}");
        assert!(out.contains(&format!("{directive}: invalid value '{value}'")), "{line}: names directive and value:\n{out}");
        assert!(out.contains(expected), "{line}: says what was expected ({expected}):\n{out}");
        assert!(out.contains("Syntax error on line"), "{line}: httpd points at the line:\n{out}");
    }
}

#[test]
fn a_template_that_does_not_parse_fails_the_config_test() {
    let (ok, out) = Httpd::builder(Mpm::Event)
        .file("tpl/hello.liquid", "{% if %}broken")
        .conf("EsfTemplates {root}/tpl")
        .configtest();
    assert!(!ok, "{out}");
    assert!(out.contains("EsfTemplates") && out.contains("hello.liquid"), "names the file: {out}");
}

#[test]
fn server_only_directives_are_refused_in_a_location() {
    let (ok, out) = configtest("<Location /store>\n    EsfDatabase \"dbname=store\"\n</Location>");
    assert!(!ok);
    assert!(out.contains("EsfDatabase not allowed in <Location> context"), "{out}");
}

#[test]
fn the_secret_never_appears_in_messages() {
    let (ok, out) = configtest("EsfSessionSecret short-secret");
    assert!(!ok);
    assert!(!out.contains("tiny"), "the secret's contents leaked: {out}");
}

#[test]
fn good_values_pass() {
    let (ok, out) = Httpd::builder(Mpm::Event)
        .file("tpl/hello.liquid", "Hi {{ name }}")
        .file("secret", "0123456789abcdef-secret\n")
        .conf(
            "EsfTemplates tpl\nEsfDatabase \"host=/tmp dbname=store\"\nEsfCacheDir {root}\nEsfCacheSize 512M\n\
             EsfSessionSecret secret\nEsfMaxRequestsPerChild 10000\nEsfThrottle 20/1\n\
             <Location /store>\n    SetHandler esf\n    EsfThrottle 100/10\n    EsfPanicTest Off\n</Location>\n\
             <Location /store/coop>\n    EsfMount /store/coop\n</Location>",
        )
        .configtest();
    assert!(ok, "relative paths are taken from ServerRoot: {out}");
    assert!(out.contains("Syntax OK"), "{out}");
}
