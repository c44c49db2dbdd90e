//! Template failures: the visitor gets the friendly 500 page, the error log
//! gets the template's name and what went wrong; a template changed to
//! something that no longer parses leaves the previous one serving.
use crate::harness::{repo_root, Httpd, Mpm};

#[test]
fn a_template_that_fails_to_render_is_a_500_page_and_a_log_line() {
    let shared = repo_root().join("templates");
    // One child: "the previous version" is per child, and a second child
    // that was never asked in between would still hold the first version.
    let httpd = Httpd::builder(Mpm::Event)
        .file("tpl/hello.liquid", "{% include \"layout_head\" %}Hello {{ no_such_variable }}!")
        .conf("ServerLimit 1\nStartServers 1\nThreadsPerChild 16\nMaxRequestWorkers 16\nMinSpareThreads 1\nMaxSpareThreads 16")
        .conf(&format!("EsfTemplates {{root}}/tpl {}\n<Location /store>\n    SetHandler esf\n</Location>", shared.display()))
        .start();
    let r = httpd.get("/store/hello");
    assert_eq!(r.status, 500);
    let body = r.text();
    assert!(body.contains("Something went wrong") && !body.contains("no_such_variable") && !body.contains("liquid"), "{body}");
    let log = httpd.error_log();
    assert!(log.contains("hello.liquid") && log.contains("no_such_variable"), "the log names the template and the problem:\n{log}");

    // Broken on disk while running: the last good version keeps serving.
    std::fs::write(httpd.root.join("tpl/hello.liquid"), "Hi {{ name }}!").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(httpd.get("/store/hello?name=Ann").text().contains("Hi Ann!"), "a fixed template is picked up without a restart");
    std::fs::write(httpd.root.join("tpl/hello.liquid"), "{% if %}").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = httpd.get("/store/hello?name=Ann");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Hi Ann!"), "the previous template keeps serving: {}", r.text());
    assert!(httpd.error_log().contains("were not reloaded"), "and the log says why");
}
