//! The app server's side of esf-searchd: a blocking client with a small
//! pool of persistent connections per process (a child of httpd), opened
//! lazily in that process, never before a fork.
//!
//! A request on a pooled connection that turns out to be broken (the
//! daemon restarted since) is sent once more on a new connection, after
//! the other idle connections, which talked to the same daemon, are
//! closed. A daemon that cannot be reached, or does not answer within the
//! timeout, is [`SearchError::Unavailable`]: the page says search is
//! unavailable and the rest of the store carries on.
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::index::Found;
use crate::protocol::{self, MAX_REPLY, MAX_REQUEST};
use crate::text::Sort;

/// How long a request waits to connect, and then for its reply, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where esf-searchd listens: `unix:/absolute/path` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl Address {
    /// Reads `unix:/absolute/path`, `host:port` or `[v6 address]:port`.
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err("expected unix:/absolute/path/to/socket".into());
            }
            // The kernel's limit for a socket path (sun_path, with its NUL).
            if path.len() > 107 {
                return Err("a unix socket path is at most 107 bytes".into());
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        let (host, port) = text.rsplit_once(':').ok_or("expected unix:/path or host:port")?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') || (host.contains(':') && !text.starts_with('[')) {
            return Err("expected unix:/path or host:port (an IPv6 address in brackets)".into());
        }
        let port = port.parse::<u16>().ok().filter(|p| *p != 0).ok_or("expected a port from 1 to 65535")?;
        Ok(Address::Tcp { host: host.to_string(), port })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchError {
    /// The daemon could not be reached or did not answer in time.
    Unavailable(String),
    /// The query is longer than a request may be.
    TooLong,
    /// The daemon refused the request (`ERR reason`), or answered nonsense.
    Refused(String),
}

impl SearchError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SearchError::Unavailable(_))
    }
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchError::Unavailable(why) => write!(f, "search daemon unavailable: {why}"),
            SearchError::TooLong => write!(f, "search query longer than a request may be ({MAX_REQUEST} bytes)"),
            SearchError::Refused(why) => write!(f, "search daemon refused the request: {why}"),
        }
    }
}

impl std::error::Error for SearchError {}

/// Figures for a status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub idle: usize,
    /// Connections made (reconnects included).
    pub connects: u64,
    /// Connections dropped because they broke.
    pub broken: u64,
}

enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.write(buf),
            Socket::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One connection, with what it has read past the last reply (nothing,
/// unless the daemon misbehaves).
struct Connection {
    reader: BufReader<Socket>,
}

impl Connection {
    /// Sends `request` and reads one reply line.
    fn exchange(&mut self, request: &str) -> io::Result<String> {
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut reply = Vec::with_capacity(256);
        let read = (&mut self.reader).take(MAX_REPLY as u64).read_until(b'\n', &mut reply)?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the daemon closed the connection"));
        }
        if reply.last() != Some(&b'\n') {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a reply without its end"));
        }
        String::from_utf8(reply).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a reply that is not UTF-8"))
    }
}

/// A process's connections to one daemon.
pub struct Client {
    address: Address,
    timeout: Duration,
    /// Idle connections kept at most (more may be open at once; the extra
    /// ones close after use).
    keep: usize,
    idle: Mutex<Vec<Connection>>,
    connects: AtomicU64,
    broken: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("address", &self.address).field("timeout", &self.timeout).field("stats", &self.stats()).finish()
    }
}

impl Client {
    /// A client that connects on first use; keeps up to `keep` idle
    /// connections; waits `timeout` to connect and for each reply.
    pub fn new(address: Address, keep: usize, timeout: Duration) -> Client {
        Client { address, timeout, keep: keep.max(1), idle: Mutex::new(Vec::new()), connects: AtomicU64::new(0), broken: AtomicU64::new(0) }
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    pub fn stats(&self) -> ClientStats {
        ClientStats { idle: self.idle.lock().len(), connects: self.connects.load(Ordering::Relaxed), broken: self.broken.load(Ordering::Relaxed) }
    }

    /// Page `page` of the products holding every one of `words` (tokens,
    /// as [`crate::query_words`] gives them), in `sort` order.
    pub fn search(&self, words: &[String], sort: Sort, page: u32) -> Result<Found, SearchError> {
        let request = protocol::search_request(words, sort, page.max(1));
        if request.len() > MAX_REQUEST {
            return Err(SearchError::TooLong);
        }
        let reply = self.request(&request)?;
        match protocol::parse_search_reply(&reply) {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(reason)) => Err(SearchError::Refused(reason)),
            Err(nonsense) => Err(SearchError::Refused(nonsense)),
        }
    }

    /// Whether the daemon answers a PING.
    pub fn ping(&self) -> Result<(), SearchError> {
        match self.request("PING\n")?.as_str() {
            "PONG\n" => Ok(()),
            other => Err(SearchError::Refused(format!("unexpected reply to PING: {other:?}"))),
        }
    }

    /// Sends `request` on a pooled connection, or a new one; a pooled one
    /// that fails (other than by timing out) is replaced and the request
    /// sent once more.
    fn request(&self, request: &str) -> Result<String, SearchError> {
        let pooled = self.idle.lock().pop();
        if let Some(mut connection) = pooled {
            match connection.exchange(request) {
                Ok(reply) => {
                    self.give_back(connection);
                    return Ok(reply);
                }
                Err(e) => {
                    self.broken.fetch_add(1, Ordering::Relaxed);
                    // The other idle connections talked to the same daemon.
                    let dropped = std::mem::take(&mut *self.idle.lock());
                    self.broken.fetch_add(dropped.len() as u64, Ordering::Relaxed);
                    if is_timeout(&e) {
                        return Err(SearchError::Unavailable(format!("no reply from {} within {:?}", self.address, self.timeout)));
                    }
                }
            }
        }
        let mut connection = self.connect().map_err(|e| SearchError::Unavailable(format!("cannot connect to {}: {e}", self.address)))?;
        match connection.exchange(request) {
            Ok(reply) => {
                self.give_back(connection);
                Ok(reply)
            }
            Err(e) => {
                self.broken.fetch_add(1, Ordering::Relaxed);
                Err(SearchError::Unavailable(if is_timeout(&e) { format!("no reply from {} within {:?}", self.address, self.timeout) } else { format!("{}: {e}", self.address) }))
            }
        }
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < self.keep {
            idle.push(connection);
        }
    }

    fn connect(&self) -> io::Result<Connection> {
        let socket = match &self.address {
            Address::Unix(path) => {
                // A local connect either succeeds or fails at once.
                let stream = UnixStream::connect(path)?;
                stream.set_read_timeout(Some(self.timeout))?;
                stream.set_write_timeout(Some(self.timeout))?;
                Socket::Unix(stream)
            }
            Address::Tcp { host, port } => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
                let mut connected = None;
                for address in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&address, self.timeout) {
                        Ok(stream) => {
                            connected = Some(stream);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let stream = connected.ok_or(last)?;
                // Requests are one small write each: never wait to batch them.
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(self.timeout))?;
                stream.set_write_timeout(Some(self.timeout))?;
                Socket::Tcp(stream)
            }
        };
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Connection { reader: BufReader::with_capacity(MAX_REPLY, socket) })
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn addresses_parse_and_print_back() {
        for text in ["unix:/run/esf/searchd.sock", "127.0.0.1:7878", "localhost:1", "[::1]:7878", "search.internal:65535"] {
            assert_eq!(Address::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "unix:", "unix:relative.sock", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":7878", "::1:7878", "host:port", "a b:1", "/tmp/x.sock"] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Address::parse(&format!("unix:/{}", "x".repeat(120))).is_err());
    }

    /// A daemon stand-in that answers each connection's requests with
    /// `reply`, for `connections` connections, then stops listening.
    fn fake_daemon(reply: &'static str, connections: usize) -> (Address, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    stream.write_all(reply.as_bytes()).unwrap();
                    line.clear();
                }
            }
        });
        (Address::Tcp { host: "127.0.0.1".into(), port }, thread)
    }

    #[test]
    fn a_connection_is_reused_and_a_dead_daemon_is_unavailable() {
        let (address, daemon) = fake_daemon("OK 2 7 9\n", 1);
        let client = Client::new(address.clone(), 2, Duration::from_millis(500));
        for _ in 0..5 {
            assert_eq!(client.search(&["x".into()], Sort::Relevance, 1), Ok(Found { total: 2, ids: vec![7, 9] }));
        }
        assert_eq!(client.stats().connects, 1, "one persistent connection");
        // The daemon goes away (its thread ends, closing the connection,
        // and nothing listens any more): one retry, then unavailable.
        drop(client.idle.lock().pop().map(|c| c.reader.into_inner()));
        daemon.join().unwrap();
        let error = client.search(&["x".into()], Sort::Relevance, 1).unwrap_err();
        assert!(error.is_unavailable(), "{error}");
    }

    #[test]
    fn a_broken_pooled_connection_is_replaced_once() {
        let (address, _daemon) = fake_daemon("OK 1 5\n", 2);
        let client = Client::new(address, 2, Duration::from_millis(500));
        assert!(client.search(&["x".into()], Sort::Newest, 1).is_ok());
        // Break the pooled connection from our side: the next request
        // finds it dead, and a new connection answers.
        if let Some(Connection { reader }) = client.idle.lock().last_mut() {
            if let Socket::Tcp(stream) = reader.get_mut() {
                stream.shutdown(std::net::Shutdown::Both).unwrap();
            }
        }
        assert_eq!(client.search(&["x".into()], Sort::Newest, 1), Ok(Found { total: 1, ids: vec![5] }));
        let stats = client.stats();
        assert_eq!((stats.connects, stats.broken), (2, 1));
    }

    #[test]
    fn a_silent_daemon_times_out_and_refusals_are_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = Client::new(Address::Tcp { host: "127.0.0.1".into(), port }, 1, Duration::from_millis(200));
        let started = std::time::Instant::now();
        // Accepted by the kernel's backlog, never answered.
        let error = client.search(&["x".into()], Sort::Relevance, 1).unwrap_err();
        assert!(error.is_unavailable() && error.to_string().contains("within"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let (address, _daemon) = fake_daemon("ERR unknown sort\n", 1);
        let client = Client::new(address, 1, Duration::from_millis(500));
        assert_eq!(client.search(&["x".into()], Sort::Relevance, 1), Err(SearchError::Refused("unknown sort".into())));
        let long: Vec<String> = (0..3000).map(|i| format!("word{i}")).collect();
        assert_eq!(client.search(&long, Sort::Relevance, 1), Err(SearchError::TooLong));
    }
}
