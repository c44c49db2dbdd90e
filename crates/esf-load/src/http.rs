//! A minimal HTTP/1.1 client over one keep-alive TcpStream: what a browser
//! does with one connection, request after request. Content-Length, chunked
//! and read-to-close bodies; a request that finds its reused connection
//! closed by the server (keep-alive timeout, MaxKeepAliveRequests) is sent
//! again once on a new connection, as browsers do.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A base URL: `http://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Base {
    pub host: String,
    pub port: u16,
    /// The Host header and the origin's authority: `host` or `host:port`, as the URL spelt it.
    pub authority: String,
    /// The path prefix without a trailing slash ("" or "/store").
    pub prefix: String,
}

impl Base {
    pub fn parse(url: &str) -> Result<Base, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority.ends_with(']') => {
                let port = authority[i + 1..].parse().map_err(|_| format!("{url}: bad port"))?;
                (&authority[..i], port)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let path = path.split(['?', '#']).next().unwrap_or("");
        Ok(Base {
            host,
            port,
            authority: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.authority)
    }

    pub fn addr(&self) -> io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Every value of a header, case-insensitively.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }
}

/// Why an exchange failed, counted as wrk counts them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    Connect,
    Write,
    Read,
    Timeout,
}

pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Connections opened (the first and every reconnect).
    pub connects: u64,
}

enum ReadErr {
    /// The connection ended before any byte of the response.
    ClosedEarly,
    Timeout,
    Other,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None, buf: Vec::with_capacity(64 * 1024), connects: 0 }
    }

    /// Sends `req` and reads the response, by `deadline`.
    pub fn exchange(&mut self, req: &[u8], deadline: Instant) -> Result<Response, Failure> {
        for attempt in 0..2 {
            let fresh = self.stream.is_none();
            if fresh {
                let left = remaining(deadline).ok_or(Failure::Timeout)?;
                let s = TcpStream::connect_timeout(&self.addr, left).map_err(|e| {
                    if is_timeout(&e) { Failure::Timeout } else { Failure::Connect }
                })?;
                let _ = s.set_nodelay(true);
                self.stream = Some(s);
                self.buf.clear();
                self.connects += 1;
            }
            let stream = self.stream.as_mut().unwrap();
            if let Err(e) = stream.write_all(req) {
                self.stream = None;
                if !fresh && attempt == 0 {
                    continue;
                }
                return Err(if is_timeout(&e) { Failure::Timeout } else { Failure::Write });
            }
            match self.read_response(deadline) {
                Ok((resp, close)) => {
                    if close {
                        self.stream = None;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    self.stream = None;
                    match e {
                        ReadErr::ClosedEarly if !fresh && attempt == 0 => continue,
                        ReadErr::Timeout => return Err(Failure::Timeout),
                        _ => return Err(Failure::Read),
                    }
                }
            }
        }
        Err(Failure::Read)
    }

    /// Reads more bytes into buf; Ok(0) at end of stream.
    fn fill(&mut self, deadline: Instant) -> Result<usize, ReadErr> {
        let left = remaining(deadline).ok_or(ReadErr::Timeout)?;
        let stream = self.stream.as_mut().unwrap();
        stream.set_read_timeout(Some(left)).map_err(|_| ReadErr::Other)?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(ReadErr::Timeout),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && self.buf.is_empty() => {
                    return Err(ReadErr::ClosedEarly)
                }
                Err(_) => return Err(ReadErr::Other),
            }
        }
    }

    fn read_response(&mut self, deadline: Instant) -> Result<(Response, bool), ReadErr> {
        // Status line and headers.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.fill(deadline)? == 0 {
                return Err(if self.buf.is_empty() { ReadErr::ClosedEarly } else { ReadErr::Other });
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| ReadErr::Other)?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.split(' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or(ReadErr::Other)?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        self.buf.drain(..head_end + 4);
        let mut resp = Response { status, headers, body: Vec::new() };
        let conn_hdr = resp.header("connection").map(|v| v.to_ascii_lowercase());
        let mut close = match version.as_str() {
            "HTTP/1.0" => conn_hdr.as_deref() != Some("keep-alive"),
            _ => conn_hdr.as_deref() == Some("close"),
        };
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = resp.header("content-length").and_then(|v| v.parse::<usize>().ok());
        if status == 204 || status == 304 || (100..200).contains(&status) {
            // no body
        } else if chunked {
            resp.body = self.read_chunked(deadline)?;
        } else if let Some(n) = length {
            while self.buf.len() < n {
                if self.fill(deadline)? == 0 {
                    return Err(ReadErr::Other);
                }
            }
            resp.body = self.buf.drain(..n).collect();
        } else {
            while self.fill(deadline)? > 0 {}
            resp.body = std::mem::take(&mut self.buf);
            close = true;
        }
        Ok((resp, close))
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String, ReadErr> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.fill(deadline)? == 0 {
                return Err(ReadErr::Other);
            }
        }
    }

    fn read_chunked(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadErr> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline)?;
            let size_str = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_str, 16).map_err(|_| ReadErr::Other)?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line(deadline)?.is_empty() {}
                return Ok(body);
            }
            while self.buf.len() < size + 2 {
                if self.fill(deadline)? == 0 {
                    return Err(ReadErr::Other);
                }
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request as a browser sends it.
pub fn format_request(
    method: &str,
    path: &str,
    authority: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        r.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
    } else {
        r.push_str("\r\n");
    }
    r.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn parses_base_urls() {
        let b = Base::parse("http://127.0.0.1:18180/store/").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.prefix.as_str()), ("127.0.0.1", 18180, "/store"));
        assert_eq!(b.origin(), "http://127.0.0.1:18180");
        let b = Base::parse("http://localhost").unwrap();
        assert_eq!((b.port, b.prefix.as_str(), b.authority.as_str()), (80, "", "localhost"));
        assert!(Base::parse("https://x/").is_err());
    }

    /// A server that answers each request with the next canned response,
    /// closing the connection where a canned response is None.
    fn serve(responses: Vec<Option<&'static str>>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let mut it = responses.into_iter();
            'conns: for s in l.incoming() {
                let mut s = s.unwrap();
                let mut buf = Vec::new();
                loop {
                    let mut b = [0u8; 4096];
                    while find(&buf, b"\r\n\r\n").is_none() {
                        let n = s.read(&mut b).unwrap_or(0);
                        if n == 0 {
                            continue 'conns;
                        }
                        buf.extend_from_slice(&b[..n]);
                    }
                    buf.clear();
                    match it.next() {
                        Some(Some(r)) => {
                            s.write_all(r.as_bytes()).unwrap();
                            if r.starts_with("HTTP/1.0") {
                                continue 'conns; // a body read to the end
                            }
                        }
                        Some(None) => continue 'conns, // drop: the client sees EOF
                        None => return,
                    }
                }
            }
        });
        addr
    }

    #[test]
    fn reads_lengths_chunks_and_reconnects() {
        let addr = serve(vec![
            Some("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: ESF_SESSION=x.y; Path=/\r\n\r\nhello"),
            Some("HTTP/1.1 303 See Other\r\nLocation: /store/order/7\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n"),
            None, // the server closed the kept-alive connection: sent again
            Some("HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"),
            Some("HTTP/1.0 200 OK\r\n\r\nto the end"),
        ]);
        let mut c = Conn::new(addr);
        let dl = || Instant::now() + Duration::from_secs(5);
        let req = format_request("GET", "/", "h", &[], None);
        let r = c.exchange(&req, dl()).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.all("set-cookie").count(), 2);
        let r = c.exchange(&req, dl()).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (303, &b"abcde"[..]));
        assert_eq!(r.header("LOCATION"), Some("/store/order/7"));
        let r = c.exchange(&req, dl()).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (409, &b"no"[..]));
        assert_eq!(c.connects, 2);
        let r = c.exchange(&req, dl()).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"to the end"[..]));
        assert_eq!(c.connects, 3);
    }

    #[test]
    fn times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = Conn::new(l.local_addr().unwrap());
        let req = format_request("GET", "/", "h", &[], None);
        let t = Instant::now();
        let e = c.exchange(&req, Instant::now() + Duration::from_millis(200)).unwrap_err();
        assert_eq!(e, Failure::Timeout);
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(l);
    }

    #[test]
    fn formats_posts() {
        let r = format_request("POST", "/a", "h:1", &[("Cookie", "c=1")], Some("x=1"));
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /a HTTP/1.1\r\nHost: h:1\r\nCookie: c=1\r\nContent-Length: 3\r\n\r\nx=1"
        );
    }
}
