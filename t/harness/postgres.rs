//! One throwaway PostgreSQL cluster per test process, started on first use
//! and stopped at process exit: tests get their own databases in it. A test
//! that stops or restarts the server gets a private cluster instead.
//!
//! The data dir (which PostgreSQL wants 0700) and the unix socket dir (0755,
//! so httpd children running as www-data can connect) are siblings in a
//! state dir under target/t/. Durability is off: the data is thrown away.
use super::free_port;
use super::paths::state_dir;
use super::process::{running_as_root, wait_or_kill};
use std::fs;
use std::io::Write;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

const PSQL: &str = "/usr/bin/psql";
const SUPERUSER: &str = "postgres";
const PORT_ATTEMPTS: usize = 5;

static SHARED: OnceLock<PgCluster> = OnceLock::new();

/// A running cluster reachable over its unix socket and 127.0.0.1.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PgCluster {
    /// The process-wide cluster, started by the first caller.
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| {
            let cluster = PgCluster::launch();
            // SAFETY: registers a plain extern "C" fn; no other preconditions.
            unsafe { libc::atexit(stop_shared) };
            cluster
        })
    }

    /// A cluster of the caller's own, for tests that stop or restart the
    /// server; destroyed on drop.
    pub fn private() -> PgCluster {
        PgCluster::launch()
    }

    /// Fast shutdown (sessions are disconnected), keeping the data.
    pub fn stop(&self) {
        let out = run(self
            .command("pg_ctl")
            .arg("-w")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "stop"]));
        assert!(
            out.status.success(),
            "pg_ctl stop failed:\n{}",
            output_text(&out)
        );
    }

    /// Starts a stopped cluster again on the same port.
    pub fn start(&self) {
        assert!(
            self.pg_ctl_start(),
            "postgres could not start again: port {} is taken",
            self.port
        );
    }

    /// Fast shutdown and start on the same port; returns once the server
    /// accepts connections again. Existing connections are lost.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("socket")
    }

    /// Creates an empty database with a unique name starting with
    /// `name_prefix` and returns the name.
    pub fn create_database(&self, name_prefix: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let prefix: String = name_prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        name
    }

    /// libpq keyword/value connection string for `db` over the unix socket.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host={} port={} dbname={db} user={SUPERUSER}",
            self.socket_dir().display(),
            self.port
        )
    }

    /// Runs `sql` in `db` with psql (unaligned, tuples only, quiet, stop on
    /// the first error) and returns its output without the final newline.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut child = Command::new(PSQL)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                SUPERUSER,
            ])
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-d", db])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn psql");
        let mut stdin = child.stdin.take().expect("psql stdin");
        // Fed from another thread: psql may fill its stdout pipe first.
        let out = thread::scope(|scope| {
            scope.spawn(move || stdin.write_all(sql.as_bytes()).expect("write to psql"));
            child.wait_with_output().expect("wait for psql")
        });
        assert!(
            out.status.success(),
            "psql in {db} failed ({}):\n{sql}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.strip_suffix('\n').unwrap_or(&text).to_string()
    }

    /// initdb into a fresh state dir, then pg_ctl start on a free port.
    fn launch() -> PgCluster {
        let dir = state_dir("postgres");
        let socket = dir.join("socket");
        fs::create_dir(&socket).expect("create socket dir");
        hand_to_postgres(&dir);
        hand_to_postgres(&socket);
        let bin = newest_bin_dir();
        let mut cluster = PgCluster { dir, bin, port: 0 };
        cluster.initdb();
        for _ in 0..PORT_ATTEMPTS {
            cluster.port = free_port();
            if cluster.pg_ctl_start() {
                return cluster;
            }
        }
        panic!(
            "postgres in {} found no free port in {PORT_ATTEMPTS} attempts",
            cluster.dir.display()
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn initdb(&self) {
        let data = self.data_dir();
        let out = run(self.command("initdb").arg("-D").arg(&data).args([
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]));
        assert!(
            out.status.success(),
            "initdb failed:\n{}",
            output_text(&out)
        );
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n",
            self.socket_dir().display()
        );
        fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .expect("append to postgresql.conf");
    }

    /// True once the server accepts connections; false when the port was
    /// taken; panics with the server log otherwise.
    fn pg_ctl_start(&self) -> bool {
        fs::remove_file(self.log_path()).ok();
        let out = run(self
            .command("pg_ctl")
            .arg("-w")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-o", &format!("-p {}", self.port), "start"]));
        if out.status.success() {
            return true;
        }
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        if log.contains("could not bind") || log.contains("Address already in use") {
            return false;
        }
        panic!(
            "pg_ctl start failed:\n{}\n--- postgres.log\n{log}",
            output_text(&out)
        );
    }

    /// Immediate shutdown, SIGKILL if the postmaster lingers, then removes
    /// the state dir.
    fn destroy(&self) {
        let postmaster = self.postmaster_pid();
        run(self.command("pg_ctl").arg("-D").arg(self.data_dir()).args([
            "-m",
            "immediate",
            "stop",
        ]));
        if let Some(pid) = postmaster {
            wait_or_kill(&[pid], Duration::from_secs(5));
        }
        fs::remove_dir_all(&self.dir).ok();
    }

    /// The first line of postmaster.pid.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// A PostgreSQL server program, run as the postgres user.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", SUPERUSER, "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }
}

/// Ends a private cluster. The shared one lives in a static, which is never
/// dropped: atexit ends it.
impl Drop for PgCluster {
    fn drop(&mut self) {
        self.destroy();
    }
}

extern "C" fn stop_shared() {
    if let Some(cluster) = SHARED.get() {
        cluster.destroy();
    }
}

/// /usr/lib/postgresql/<newest version>/bin.
fn newest_bin_dir() -> PathBuf {
    let versions = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed in /usr/lib/postgresql");
    versions
        .filter_map(|e| {
            let entry = e.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .expect("no /usr/lib/postgresql/*/bin/postgres")
}

/// chown to the postgres user when running as root (the server refuses to
/// run as root, so it must own what it writes).
fn hand_to_postgres(path: &Path) {
    if !running_as_root() {
        return;
    }
    // SAFETY: the name is a valid C string; the result is read before any
    // other getpw* call on this thread.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(c"postgres".as_ptr());
        assert!(!pw.is_null(), "no postgres user");
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown postgres {}: {e}", path.display()));
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}

fn output_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
