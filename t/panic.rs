//! A panic in a handler answers the friendly 500 page, logs its message and
//! location, and the child lives on (a panic unwinding into C would abort
//! it, dropping every connection an event child holds).
use crate::harness::{alive, Mpm};
use crate::store_conf::with_panic_route;

#[test]
fn a_panic_is_a_500_page_and_the_child_lives_on() {
    for mpm in Mpm::ALL {
        let httpd = with_panic_route(mpm).start();
        let children = httpd.child_pids();
        assert!(!children.is_empty());

        // In flight on the same child while another request panics: under
        // event this keep-alive connection must survive the panic.
        let mut bystander = httpd.client();
        assert_eq!(bystander.get("/store/hello").unwrap().status, 200);

        for _ in 0..5 {
            let r = httpd.get("/store/_panic");
            assert_eq!(r.status, 500, "{mpm:?}");
            let body = r.text();
            assert!(body.contains("500 Internal Server Error") && body.contains("Something went wrong"), "{mpm:?}: {body}");
            assert!(!body.contains("panic") && !body.contains(".rs"), "no details for the visitor: {body}");
            assert_eq!(httpd.get("/store/hello").status, 200, "{mpm:?}: the next request is served");
        }

        let r = bystander.get("/store/hello").unwrap();
        assert_eq!(r.status, 200, "{mpm:?}");
        assert_eq!(bystander.connects(), 1, "{mpm:?}: the bystander's connection survived");
        for pid in &children {
            assert!(alive(*pid), "{mpm:?}: child {pid} died");
        }

        let log = httpd.error_log();
        assert!(log.contains("ESF00002: panic at crates/esf-core/src/app.rs:"), "{mpm:?}: location logged:\n{log}");
        assert!(log.contains("EsfPanicTest: this request panics on purpose"), "message logged:\n{log}");
        assert_eq!(log.matches("ESF00005").count(), 5, "each panic logged against its request:\n{log}");
        assert!(!log.contains("exit signal"), "{mpm:?}: a child crashed:\n{log}");
    }
}

#[test]
fn the_panic_route_is_off_by_default() {
    let httpd = crate::store_conf::minimal(Mpm::Event).start();
    assert_eq!(httpd.get("/store/_panic").status, 404);
}
