//! esf-searchd for the tests: the daemon binary, built once per test
//! process from the current sources, started on a free loopback port or a
//! Unix socket in a state dir, waited for until it answers, and killed by
//! pid when dropped.
use super::free_port;
use super::paths::{binary_path, state_dir};
use super::process::{alive, signal, wait_or_kill};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Building the index of the small catalog takes about a second in a
/// debug build.
const STARTUP: Duration = Duration::from_secs(60);
const PORT_ATTEMPTS: usize = 5;

/// The esf-searchd binary of this test run's profile, built on first use.
pub fn searchd_path() -> PathBuf {
    binary_path("esf-searchd", "esf-searchd")
}

/// A running daemon.
pub struct Searchd {
    /// As `EsfSearch` takes it: `127.0.0.1:PORT` or `unix:/path`.
    pub address: String,
    conninfo: String,
    dir: PathBuf,
    process: Option<Child>,
}

impl Searchd {
    /// A daemon over `conninfo` listening on a free loopback port.
    pub fn start_tcp(conninfo: &str) -> Searchd {
        let dir = state_dir("searchd");
        for _ in 0..PORT_ATTEMPTS {
            let mut searchd = Searchd { address: format!("127.0.0.1:{}", free_port()), conninfo: conninfo.into(), dir: dir.clone(), process: None };
            if searchd.launch() {
                return searchd;
            }
        }
        panic!("esf-searchd found no free port in {PORT_ATTEMPTS} attempts");
    }

    /// A daemon over `conninfo` listening on a Unix socket in a state dir.
    pub fn start_unix(conninfo: &str) -> Searchd {
        let dir = state_dir("searchd");
        let address = format!("unix:{}", dir.join("searchd.sock").display());
        let mut searchd = Searchd { address, conninfo: conninfo.into(), dir, process: None };
        assert!(searchd.launch(), "esf-searchd did not start:\n{}", searchd.log());
        searchd
    }

    pub fn pid(&self) -> Option<i32> {
        self.process.as_ref().map(|p| p.id() as i32)
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("searchd.pid")
    }

    pub fn socket_path(&self) -> Option<PathBuf> {
        self.address.strip_prefix("unix:").map(PathBuf::from)
    }

    /// Everything the daemon logged so far (all its runs).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("searchd.log")).unwrap_or_default()
    }

    /// Starts the daemon at this address again (after [`Searchd::kill`]
    /// or [`Searchd::terminate`]).
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "the daemon is still running");
        assert!(self.launch(), "esf-searchd did not start again:\n{}", self.log());
    }

    /// SIGKILL, as a crash: nothing is cleaned up.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            signal(process.id() as i32, libc::SIGKILL);
            let _ = process.wait();
        }
    }

    /// SIGTERM, and waits for the exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let Some(mut process) = self.process.take() else {
            return false;
        };
        signal(process.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = process.try_wait().expect("wait for esf-searchd") {
                return status.success();
            }
            if Instant::now() > deadline {
                wait_or_kill(&[process.id() as i32], Duration::ZERO);
                let _ = process.wait();
                return false;
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Sends `request` (a line, without its newline) on a new connection
    /// and returns the reply line without its newline.
    pub fn request(&self, request: &str) -> String {
        let mut connection = self.connect().unwrap_or_else(|e| panic!("connect to {}: {e}", self.address));
        connection.write_all(format!("{request}\n").as_bytes()).expect("send");
        let mut reply = String::new();
        BufReader::new(connection).read_line(&mut reply).expect("read reply");
        reply.trim_end_matches('\n').to_string()
    }

    /// A raw connection to the daemon.
    pub fn connect(&self) -> std::io::Result<Connection> {
        let connection = match self.socket_path() {
            Some(path) => Connection::Unix(UnixStream::connect(path)?),
            None => Connection::Tcp(TcpStream::connect(&self.address)?),
        };
        connection.set_timeout(Duration::from_secs(10))?;
        Ok(connection)
    }

    /// Spawns the daemon and waits until it answers a PING; false when it
    /// exited because its port was taken.
    fn launch(&mut self) -> bool {
        let log = File::options().create(true).append(true).open(self.dir.join("searchd.log")).expect("open searchd.log");
        let process = Command::new(searchd_path())
            .args(["--database", &self.conninfo, "--listen", &self.address, "--threads", "2", "--verbose"])
            .arg("--pidfile")
            .arg(self.pidfile())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup searchd.log"))
            .stderr(log)
            .spawn()
            .expect("spawn esf-searchd");
        let pid = process.id() as i32;
        self.process = Some(process);
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if !alive(pid) {
                let status = self.process.take().map(|mut p| p.wait());
                let log = self.log();
                if log.contains("cannot listen") && self.socket_path().is_none() {
                    return false;
                }
                panic!("esf-searchd exited ({status:?}):\n{log}");
            }
            if self.connect().is_ok_and(|mut c| ping(&mut c)) {
                return true;
            }
            sleep(Duration::from_millis(20));
        }
        panic!("esf-searchd did not answer within {STARTUP:?}:\n{}", self.log());
    }
}

fn ping(connection: &mut Connection) -> bool {
    if connection.write_all(b"PING\n").is_err() {
        return false;
    }
    let mut reply = String::new();
    BufReader::new(connection).read_line(&mut reply).is_ok() && reply == "PONG\n"
}

impl Drop for Searchd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A connection to the daemon, Unix or TCP.
pub enum Connection {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Connection {
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        match self {
            Connection::Unix(s) => s.set_read_timeout(Some(timeout)).and_then(|()| s.set_write_timeout(Some(timeout))),
            Connection::Tcp(s) => s.set_read_timeout(Some(timeout)).and_then(|()| s.set_write_timeout(Some(timeout))),
        }
    }
}

impl std::io::Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Connection::Unix(s) => s.read(buf),
            Connection::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Connection::Unix(s) => s.write(buf),
            Connection::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `path` exists (the socket file, the pidfile).
pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
