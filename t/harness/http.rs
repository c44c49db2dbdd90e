//! A raw HTTP/1.1 client over std::net::TcpStream, so tests control the
//! connections themselves: one-shot requests, persistent keep-alive clients,
//! and errors that tell a connection closed before the response (the
//! keep-alive race browsers retry) from a truncated response.
use std::fmt;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A complete response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every header called `name` (case-insensitive), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why no complete response was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The connection closed or was reset before any byte of the response.
    ClosedBeforeResponse,
    /// Part of the response arrived, then the connection ended.
    Truncated(String),
    /// Anything else: connect failure, timeout, malformed response.
    Io(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::ClosedBeforeResponse => f.write_str("connection closed before the response"),
            HttpError::Truncated(what) => write!(f, "truncated response: {what}"),
            HttpError::Io(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// One request on a fresh connection with `Connection: close`.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, HttpError> {
    let mut headers = headers.to_vec();
    if !has_header(&headers, "Connection") {
        headers.push(("Connection", "close"));
    }
    Connection::open(port)?
        .exchange(port, method, path, &headers, body)
        .map(|(r, _)| r)
}

/// A persistent keep-alive connection to 127.0.0.1:port, reopened when the
/// server said `Connection: close` or closed it while idle.
pub struct Client {
    port: u16,
    conn: Option<Connection>,
    connects: usize,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client {
            port,
            conn: None,
            connects: 0,
        }
    }

    pub fn get(&mut self, path: &str) -> Result<HttpResponse, HttpError> {
        self.send("GET", path, &[], None)
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, HttpError> {
        let mut conn = match self.conn.take().filter(Connection::is_idle_open) {
            Some(conn) => conn,
            None => {
                self.connects += 1;
                Connection::open(self.port)?
            }
        };
        let (response, reusable) = conn.exchange(self.port, method, path, headers, body)?;
        if reusable {
            self.conn = Some(conn);
        }
        Ok(response)
    }

    /// How many TCP connections this client has opened so far.
    pub fn connects(&self) -> usize {
        self.connects
    }
}

struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(port: u16) -> Result<Connection, HttpError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .map_err(|e| HttpError::Io(format!("connect {addr}: {e}")))?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io_err)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io_err)?;
        stream.set_nodelay(true).map_err(io_err)?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    /// False when the server has closed the idle connection (or sent
    /// something unsolicited), checked with a non-blocking peek.
    fn is_idle_open(&self) -> bool {
        let stream = self.reader.get_ref();
        if !self.reader.buffer().is_empty() || stream.set_nonblocking(true).is_err() {
            return false;
        }
        let open = matches!(stream.peek(&mut [0u8]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        open && stream.set_nonblocking(false).is_ok()
    }

    /// Sends one request and reads its response; the flag tells whether the
    /// connection can carry another request.
    fn exchange(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(HttpResponse, bool), HttpError> {
        let bytes = encode_request(port, method, path, headers, body);
        let stream = self.reader.get_mut();
        stream
            .write_all(&bytes)
            .and_then(|_| stream.flush())
            .map_err(|e| fail(e, false))?;
        read_response(&mut self.reader, method.eq_ignore_ascii_case("HEAD"))
    }
}

fn encode_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has_header(headers, "Host") {
        head += &format!("Host: 127.0.0.1:{port}\r\n");
    }
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    if let Some(body) = body.filter(|_| !has_header(headers, "Content-Length")) {
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    head += "\r\n";
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

fn has_header(headers: &[(&str, &str)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Reads a final response (skipping 1xx interim ones) and whether the
/// connection stays usable after it.
fn read_response(r: &mut impl BufRead, head: bool) -> Result<(HttpResponse, bool), HttpError> {
    let mut received = false;
    loop {
        let status_line = read_line(r, received)?;
        received = true;
        let (http10, status) = parse_status_line(&status_line)?;
        let headers = read_headers(r)?;
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) {
            continue;
        }
        let bodiless = head || status == 204 || status == 304;
        let framed = bodiless || read_body(r, &mut response)?;
        let keep_alive = if http10 {
            response.has_token("Connection", "keep-alive")
        } else {
            !response.has_token("Connection", "close")
        };
        return Ok((response, framed && keep_alive));
    }
}

/// Returns (is HTTP/1.0, status code).
fn parse_status_line(line: &str) -> Result<(bool, u16), HttpError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse().ok());
    match status {
        Some(status) if version.starts_with("HTTP/1.") => Ok((version == "HTTP/1.0", status)),
        _ => Err(HttpError::Io(format!("bad status line {line:?}"))),
    }
}

fn read_headers(r: &mut impl BufRead) -> Result<Vec<(String, String)>, HttpError> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, true)?;
        if line.is_empty() {
            return Ok(headers);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Io(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// Fills the body; returns false when it was delimited by the connection
/// closing (so the connection cannot be reused).
fn read_body(r: &mut impl BufRead, response: &mut HttpResponse) -> Result<bool, HttpError> {
    if response.has_token("Transfer-Encoding", "chunked") {
        response.body = read_chunked(r)?;
        return Ok(true);
    }
    if let Some(length) = response.header("Content-Length") {
        let length: usize = length
            .parse()
            .map_err(|_| HttpError::Io(format!("bad Content-Length {length:?}")))?;
        response.body = read_exact(r, length)?;
        return Ok(true);
    }
    r.read_to_end(&mut response.body)
        .map_err(|e| fail(e, true))?;
    Ok(false)
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r, true)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| HttpError::Io(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            read_headers(r)?; // trailers
            return Ok(body);
        }
        body.extend(read_exact(r, size)?);
        if !read_line(r, true)?.is_empty() {
            return Err(HttpError::Io("chunk not followed by CRLF".into()));
        }
    }
}

fn read_exact(r: &mut impl BufRead, length: usize) -> Result<Vec<u8>, HttpError> {
    let mut buf = Vec::with_capacity(length);
    r.take(length as u64)
        .read_to_end(&mut buf)
        .map_err(|e| fail(e, true))?;
    if buf.len() < length {
        return Err(HttpError::Truncated(format!(
            "{} of {length} body bytes",
            buf.len()
        )));
    }
    Ok(buf)
}

/// One CRLF- (or LF-) terminated line without its terminator. `received`
/// says whether response bytes were already read, which decides between
/// `ClosedBeforeResponse` and `Truncated` when the connection ends.
fn read_line(r: &mut impl BufRead, received: bool) -> Result<String, HttpError> {
    let mut line = Vec::new();
    match r.read_until(b'\n', &mut line) {
        Err(e) => return Err(fail(e, received || !line.is_empty())),
        Ok(0) if !received => return Err(HttpError::ClosedBeforeResponse),
        Ok(_) if line.last() != Some(&b'\n') => {
            return Err(HttpError::Truncated(format!(
                "connection ended in line {:?}",
                String::from_utf8_lossy(&line)
            )))
        }
        Ok(_) => {}
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Classifies an I/O error by whether any response byte had arrived.
fn fail(e: io::Error, received: bool) -> HttpError {
    let closed = matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    );
    match (closed, received) {
        (true, false) => HttpError::ClosedBeforeResponse,
        (true, true) => HttpError::Truncated(e.to_string()),
        _ => HttpError::Io(e.to_string()),
    }
}

fn io_err(e: io::Error) -> HttpError {
    HttpError::Io(e.to_string())
}
