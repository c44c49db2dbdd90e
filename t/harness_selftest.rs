//! Checks of the harness itself: httpd instances come up under each MPM,
//! serve static files, survive a graceful restart and leave no process
//! behind; configtest reports errors; the HTTP client frames responses and
//! tells a closed connection from a truncated response.
use crate::harness::{alive, request, Client, HttpError, Httpd, Mpm};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

const PAGE: &str = "<!doctype html><p>static page</p>\n";

fn static_site(mpm: Mpm) -> Httpd {
    Httpd::builder(mpm).file("htdocs/x.html", PAGE).start()
}

#[test]
fn serves_static_files_under_each_mpm() {
    for mpm in Mpm::ALL {
        let httpd = static_site(mpm);
        let response = httpd.get("/x.html");
        assert_eq!(response.status, 200, "{mpm:?}");
        assert_eq!(response.text(), PAGE, "{mpm:?}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html"),
            "{mpm:?}"
        );
        assert_eq!(httpd.get("/missing.html").status, 404, "{mpm:?}");
    }
}

#[test]
fn stop_leaves_no_process_behind() {
    for mpm in Mpm::ALL {
        let httpd = static_site(mpm);
        let parent = httpd.parent_pid();
        let children = httpd.child_pids();
        assert!(!children.is_empty(), "{mpm:?}: no children of {parent}");
        httpd.stop();
        assert!(!alive(parent), "{mpm:?}: parent {parent} still running");
        for child in children {
            assert!(!alive(child), "{mpm:?}: child {child} still running");
        }
    }
}

#[test]
fn drop_stops_the_server() {
    let parent = static_site(Mpm::Event).parent_pid();
    assert!(!alive(parent));
}

#[test]
fn graceful_restart_keeps_serving() {
    for mpm in Mpm::ALL {
        let httpd = static_site(mpm);
        let parent = httpd.parent_pid();
        httpd.graceful();
        httpd.graceful();
        assert_eq!(httpd.parent_pid(), parent, "{mpm:?}");
        assert_eq!(httpd.get("/x.html").text(), PAGE, "{mpm:?}");
    }
}

#[test]
fn root_placeholder_is_replaced_in_conf_and_files() {
    let httpd = Httpd::builder(Mpm::Prefork)
        .file("docs/where.html", "root={root}")
        .conf("Alias /where {root}/docs/where.html")
        .conf("LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so")
        .start();
    let response = httpd.get("/where");
    assert_eq!(response.status, 200, "{}", httpd.error_log());
    assert_eq!(response.text(), format!("root={}", httpd.root.display()));
}

#[test]
fn configtest_accepts_the_base_configuration() {
    let (ok, output) = Httpd::builder(Mpm::Event).configtest();
    assert!(ok, "{output}");
    assert!(output.contains("Syntax OK"), "{output}");
}

#[test]
fn configtest_rejects_an_unknown_directive() {
    let (ok, output) = Httpd::builder(Mpm::Prefork)
        .conf("NoSuchDirective 1")
        .configtest();
    assert!(!ok, "{output}");
    assert!(output.contains("NoSuchDirective"), "{output}");
}

#[test]
fn keep_alive_client_reuses_its_connection() {
    let httpd = static_site(Mpm::Event);
    let mut client = httpd.client();
    for _ in 0..3 {
        assert_eq!(client.get("/x.html").unwrap().text(), PAGE);
    }
    let head = client.send("HEAD", "/x.html", &[], None).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("Content-Length"),
        Some(PAGE.len().to_string().as_str())
    );
    assert_eq!(client.get("/x.html").unwrap().text(), PAGE);
    assert_eq!(client.connects(), 1);

    let closing = client
        .send("GET", "/x.html", &[("Connection", "close")], None)
        .unwrap();
    assert_eq!(closing.header("connection"), Some("close"));
    assert_eq!(client.get("/x.html").unwrap().text(), PAGE);
    assert_eq!(client.connects(), 2);
}

#[test]
fn request_bodies_are_framed() {
    let httpd = static_site(Mpm::Prefork);
    let once = request(httpd.port, "POST", "/x.html", &[], Some(b"a=1")).unwrap();
    assert_eq!(
        (once.status, once.header("Connection")),
        (200, Some("close"))
    );
    // A badly framed body would be read as the next request on the connection.
    let mut client = httpd.client();
    let posted = client
        .send(
            "POST",
            "/x.html",
            &[("Content-Type", "text/plain")],
            Some(b"a=1"),
        )
        .unwrap();
    assert_eq!(posted.text(), PAGE);
    assert_eq!(client.get("/x.html").unwrap().status, 200);
    assert_eq!(client.connects(), 1);
}

/// A one-connection server that reads the request head, writes `reply`
/// verbatim and closes.
fn canned_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        stream.write_all(reply).unwrap();
    });
    port
}

fn canned(reply: &'static [u8]) -> Result<crate::harness::HttpResponse, HttpError> {
    Client::new(canned_server(reply)).get("/")
}

#[test]
fn client_reads_chunked_and_close_delimited_bodies() {
    let chunked = canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n");
    assert_eq!(chunked.unwrap().text(), "abcde");
    let to_eof = canned(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\n\r\nuntil close",
    );
    let to_eof = to_eof.unwrap();
    assert_eq!(to_eof.text(), "until close");
    assert_eq!(to_eof.headers_named("x-a"), ["1", "2"]);
}

#[test]
fn client_tells_closed_from_truncated() {
    assert_eq!(canned(b"").unwrap_err(), HttpError::ClosedBeforeResponse);
    for partial in [
        &b"HTTP/1.1 200"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
    ] {
        let result = canned(partial);
        assert!(
            matches!(result, Err(HttpError::Truncated(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(partial)
        );
    }
}
