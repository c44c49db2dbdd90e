//! esf-searchd: mod_esf's search daemon.
//!
//! Builds an inverted word index of the catalog from PostgreSQL at start,
//! keeps it fresh from the database's change notifications
//! ([`updater`]), and answers searches from app servers over a Unix
//! socket or loopback TCP ([`server`], protocol in
//! `esf_search::protocol`). Runs in the foreground and logs to stderr (a
//! service manager keeps it: INSTALL.md, apache-conf/esf-searchd.service).
//!
//! ```text
//! esf-searchd --database "host=/run/postgresql dbname=store" --listen unix:/run/esf/searchd.sock
//! ```
//!
//! SIGTERM or SIGINT: removes the socket file and the pidfile, and exits.
mod load;
mod server;
mod updater;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use esf_search::Address;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Parser, Debug)]
#[command(name = "esf-searchd", version, about = "mod_esf's search daemon: an inverted word index of the catalog, kept fresh from PostgreSQL")]
struct Args {
    /// The store's database, as a libpq connection string.
    #[arg(long, env = "ESF_DATABASE")]
    database: String,
    /// Where to listen: unix:/absolute/path or host:port (e.g. 127.0.0.1:7878).
    #[arg(long, value_parser = Address::parse)]
    listen: Address,
    /// Threads that tokenize the catalog when the index is built (default: the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Connections served at once; more are refused.
    #[arg(long, default_value_t = 1024)]
    max_clients: usize,
    /// Writes the daemon's pid here once it is listening; removed at exit.
    #[arg(long)]
    pidfile: Option<PathBuf>,
    /// Logs every index update, not only builds.
    #[arg(long)]
    verbose: bool,
}

/// Log lines on stderr, which a service manager keeps with timestamps.
struct StderrLog;

impl log::Log for StderrLog {
    /// `--verbose` adds this daemon's debug lines, not its libraries'.
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level() && (metadata.level() <= log::Level::Info || metadata.target().starts_with("esf_searchd"))
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let _ = writeln!(std::io::stderr().lock(), "esf-searchd[{}]: {}: {}", std::process::id(), record.level().as_str().to_lowercase(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if args.verbose { log::LevelFilter::Debug } else { log::LevelFilter::Info });
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);

    let shared = match updater::start(&args.database, threads) {
        Ok(shared) => shared,
        Err(e) => {
            log::error!("cannot build the index from the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match server::bind(&args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            log::error!("cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut leftovers: Vec<PathBuf> = listener.socket_path().map(PathBuf::from).into_iter().collect();
    if let Some(pidfile) = &args.pidfile {
        if let Err(e) = std::fs::write(pidfile, format!("{}\n", std::process::id())) {
            log::error!("cannot write the pidfile {}: {e}", pidfile.display());
            return ExitCode::FAILURE;
        }
        leftovers.push(pidfile.clone());
    }
    if let Err(e) = stop_on_signals(leftovers) {
        log::error!("cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    log::info!("listening on {} (generation {})", args.listen, shared.generation());
    match server::serve(listener, shared, args.max_clients.max(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("stopped serving: {e}");
            ExitCode::FAILURE
        }
    }
}

/// On SIGTERM or SIGINT: removes `files` (the socket, the pidfile) and
/// exits. Searches in flight are microseconds long; a client that loses
/// one retries on a new connection, to the next daemon.
fn stop_on_signals(files: Vec<PathBuf>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new().name("esf-search-signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            for file in &files {
                let _ = std::fs::remove_file(file);
            }
            log::info!("stopping on signal {signal}");
            std::process::exit(0);
        }
    })?;
    Ok(())
}
