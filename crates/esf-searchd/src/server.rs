//! Serving clients: the listening socket, a pool of connection threads fed
//! through a crossbeam channel, and the protocol (esf_search::protocol).
//!
//! App servers keep their connections open for their whole life and send
//! one request at a time on each, so a connection has a thread of its own
//! while it is open: a search is tens of microseconds of CPU, and a thread
//! blocked in `read` costs nothing but its stack. Threads are reused for
//! later connections, started when none is idle, and leave after a minute
//! without one; past `max_clients` connections, a new one is told so and
//! closed.
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use esf_search::protocol::{self, Request, MAX_REQUEST};
use esf_search::Address;

use crate::updater::Shared;

/// An idle connection thread leaves after this long.
const IDLE_THREAD: Duration = Duration::from_secs(60);
/// A reply that cannot be written in this long ends its connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub enum Listener {
    Unix { listener: UnixListener, path: PathBuf },
    Tcp(TcpListener),
}

pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// Binds `address`. A Unix socket file left by a daemon that is gone is
/// replaced; one that answers is another daemon's, and an error. The
/// socket is made connectable by every user (httpd's children run as
/// another one); the directory it is in decides who reaches it.
pub fn bind(address: &Address) -> io::Result<Listener> {
    match address {
        Address::Unix(path) => {
            if path.exists() {
                if UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("another daemon answers on {}", path.display())));
                }
                fs::remove_file(path)?;
            }
            let listener = UnixListener::bind(path)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o666))?;
            Ok(Listener::Unix { listener, path: path.clone() })
        }
        Address::Tcp { host, port } => Ok(Listener::Tcp(TcpListener::bind((host.as_str(), *port))?)),
    }
}

impl Listener {
    /// The socket file to remove at exit, if any.
    pub fn socket_path(&self) -> Option<&Path> {
        match self {
            Listener::Unix { path, .. } => Some(path),
            Listener::Tcp(_) => None,
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix { listener, .. } => listener.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                // One small reply per request: never wait to batch it.
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }
}

/// The pool's counts: threads alive, and those waiting for a connection.
struct Pool {
    threads: AtomicUsize,
    idle: AtomicUsize,
}

/// Accepts connections for ever, each served by a pooled thread.
pub fn serve(listener: Listener, shared: Arc<Shared>, max_clients: usize) -> io::Result<()> {
    let (hand_over, connections) = unbounded::<Stream>();
    let pool = Arc::new(Pool { threads: AtomicUsize::new(0), idle: AtomicUsize::new(0) });
    loop {
        let stream = match listener.accept() {
            Ok(stream) => stream,
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                log::error!("accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // Claim an idle thread, or start one, or refuse.
        if pool.idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_err() {
            if pool.threads.load(Ordering::Acquire) >= max_clients {
                refuse(stream, max_clients);
                continue;
            }
            pool.threads.fetch_add(1, Ordering::AcqRel);
            let (connections, own_pool, shared) = (connections.clone(), pool.clone(), shared.clone());
            let spawned = thread::Builder::new().name("esf-search-conn".into()).spawn(move || work(&connections, &own_pool, &shared));
            if let Err(e) = spawned {
                pool.threads.fetch_sub(1, Ordering::AcqRel);
                log::error!("cannot start a connection thread: {e}");
                refuse(stream, max_clients);
                continue;
            }
        }
        hand_over.send(stream).expect("the pool's receiver lives as long as this loop");
    }
}

fn refuse(stream: Stream, max_clients: usize) {
    log::warn!("refused a connection: {max_clients} clients are connected (--max-clients)");
    let reply = protocol::error_reply(&format!("too many clients (at most {max_clients})"));
    let _ = match stream {
        Stream::Unix(mut s) => s.write_all(reply.as_bytes()),
        Stream::Tcp(mut s) => s.write_all(reply.as_bytes()),
    };
}

/// A pooled thread: serves connections one after another; leaves after
/// [`IDLE_THREAD`] without one.
fn work(connections: &Receiver<Stream>, pool: &Pool, shared: &Shared) {
    loop {
        match connections.recv_timeout(IDLE_THREAD) {
            Ok(stream) => {
                if let Err(e) = serve_connection(stream, shared) {
                    log::warn!("a connection failed: {e}");
                }
                pool.idle.fetch_add(1, Ordering::AcqRel);
            }
            Err(RecvTimeoutError::Timeout) => {
                // Leave only if no connection was handed to this idle slot
                // meanwhile (the acceptor takes the slot before sending).
                if pool.idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok() {
                    pool.threads.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn serve_connection(stream: Stream, shared: &Shared) -> io::Result<()> {
    match stream {
        Stream::Unix(s) => {
            s.set_write_timeout(Some(WRITE_TIMEOUT))?;
            converse(s.try_clone()?, s, shared);
        }
        Stream::Tcp(s) => {
            s.set_write_timeout(Some(WRITE_TIMEOUT))?;
            converse(s.try_clone()?, s, shared);
        }
    }
    Ok(())
}

/// Answers requests on one connection until the client closes it, sends a
/// request too long to read, or cannot be written to.
fn converse(reader: impl Read, mut writer: impl Write, shared: &Shared) {
    let mut reader = BufReader::with_capacity(8192, reader);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        match (&mut reader).take(MAX_REQUEST as u64).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            if line.len() >= MAX_REQUEST {
                // Where this request ends cannot be known: say why, and close.
                let _ = writer.write_all(protocol::error_reply(&format!("request longer than {MAX_REQUEST} bytes")).as_bytes());
            }
            // Otherwise the client closed the connection in mid-request.
            return;
        }
        line.pop();
        let reply = catch_unwind(AssertUnwindSafe(|| answer(&line, shared))).unwrap_or_else(|_| {
            log::error!("a request panicked: {:?}", String::from_utf8_lossy(&line));
            protocol::error_reply("internal error")
        });
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// The reply to one request line.
pub fn answer(line: &[u8], shared: &Shared) -> String {
    match protocol::parse_request(line) {
        Ok(Request::Search { sort, page, words }) => protocol::found_reply(&shared.current().search(&words, sort, page)),
        Ok(Request::Ping) => "PONG\n".into(),
        Ok(Request::Stats) => {
            let stats = shared.current().stats();
            format!("STATS products={} tokens={} generation={}\n", stats.products, stats.tokens, shared.generation())
        }
        Err(reason) => protocol::error_reply(&reason),
    }
}
