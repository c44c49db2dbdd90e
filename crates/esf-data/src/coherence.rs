//! Keeping every app server's object cache coherent with PostgreSQL (and,
//! through the same machinery, the front proxy's page cache: see
//! [`crate::page_cache`]).
//!
//! Triggers on the catalog tables (sql/) record each change in
//! `cache_changes` with a sequence number and `NOTIFY esf_cache` with
//! `SEQ TOKENS…` (docs/DATA.md). One listener per app server applies them
//! to the server's LMDB cache: every child runs a listener thread, and the
//! one holding the advisory lock on `coherence.lock` in the cache directory
//! is the leader; when its child exits, the kernel frees the lock and
//! another child's thread takes over within [`FOLLOWER_POLL`].
//!
//! The newest sequence number applied is kept in the cache itself, so a
//! new leader, or a leader that lost its connection, first applies what it
//! missed from `cache_changes` (after issuing LISTEN, so nothing falls in
//! between). Numbers are taken at insert but notifications arrive in
//! commit order, so every notification is applied whatever its number
//! (dropping a key twice is harmless), and a catch-up also re-reads the
//! last minute of the log.
use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use esf_cache::ObjectCache;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

/// How often a follower tries to become the leader.
pub const FOLLOWER_POLL: Duration = Duration::from_millis(250);
/// How long a leader waits before reconnecting to a lost database.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// How long the leader blocks waiting for a notification (and so how soon
/// it sees a stop request).
const WAIT: Duration = Duration::from_millis(250);
/// Changes older than this are pruned from `cache_changes`.
const KEEP_CHANGES: &str = "10 minutes";
const PRUNE_EVERY: Duration = Duration::from_secs(60);

const SEQ_KEY: &str = "_coherence:last_seq";
const SEQ_FORMAT: u16 = 1;
const SEQ_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a listener does with the changes it hears.
pub trait ChangeSink: Send + Sync + 'static {
    /// Names the sink in log lines ("cache coherence", "page purge").
    fn name(&self) -> &'static str;
    /// Drops what the tokens name (docs/DATA.md); `*` drops everything.
    fn apply(&self, tokens: &str);
    /// The newest change this sink applied before, if it remembers one.
    fn last_applied(&self) -> Option<i64>;
    fn remember(&self, seq: i64);
    /// Called about every quarter second while leading, for delayed work.
    fn tick(&self) {}
}

/// The app server's object cache: the sequence number lives in the cache
/// itself, so a new leader in another child continues from it.
impl ChangeSink for ObjectCache {
    fn name(&self) -> &'static str {
        "cache coherence"
    }

    fn apply(&self, tokens: &str) {
        if let Err(e) = self.apply_invalidation(tokens) {
            log::error!("cache coherence: could not drop {tokens:?} from the object cache: {e}");
        }
    }

    fn last_applied(&self) -> Option<i64> {
        self.get::<i64>(SEQ_KEY, SEQ_FORMAT).map(|hit| hit.value)
    }

    fn remember(&self, seq: i64) {
        if let Err(e) = self.put(SEQ_KEY, SEQ_FORMAT, &seq, SEQ_TTL) {
            log::warn!("cache coherence: could not record the last change applied: {e}");
        }
    }
}

/// A running listener thread; stopped (and joined) on drop.
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Listener {
    /// Starts the thread that competes, through the file lock at
    /// `lock_path`, for being the one that feeds changes to `sink`.
    pub fn spawn(conninfo: String, sink: Arc<dyn ChangeSink>, lock_path: PathBuf) -> std::io::Result<Listener> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new().name("esf-coherence".into()).spawn(move || run(&conninfo, &*sink, &lock_path, &flag))?;
        Ok(Listener { stop, thread: Some(thread) })
    }
}

fn run(conninfo: &str, sink: &dyn ChangeSink, lock_path: &PathBuf, stop: &AtomicBool) {
    let name = sink.name();
    let lock = match File::options().create(true).truncate(false).write(true).open(lock_path) {
        Ok(file) => file,
        Err(e) => {
            log::error!("{name}: cannot open {}: {e}; this child will not listen for changes", lock_path.display());
            return;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        match lock.try_lock() {
            Ok(()) => lead(conninfo, sink, stop),
            Err(TryLockError::WouldBlock) => thread::sleep(FOLLOWER_POLL),
            Err(TryLockError::Error(e)) => {
                log::error!("{name}: cannot lock {}: {e}", lock_path.display());
                thread::sleep(RECONNECT_DELAY);
            }
        }
    }
}

/// Listens while this process holds the lock (i.e. until told to stop:
/// the lock is only ever released by the process exiting).
fn lead(conninfo: &str, sink: &dyn ChangeSink, stop: &AtomicBool) {
    let mut logged_down = false;
    while !stop.load(Ordering::Relaxed) {
        match listen(conninfo, sink, stop) {
            Ok(()) => return,
            Err(e) => {
                if !logged_down {
                    log::warn!("{}: lost the database ({e}); reconnecting", sink.name());
                    logged_down = true;
                }
                thread::sleep(RECONNECT_DELAY);
            }
        }
    }
}

fn listen(conninfo: &str, sink: &dyn ChangeSink, stop: &AtomicBool) -> Result<(), postgres::Error> {
    let mut client = Client::connect(conninfo, NoTls)?;
    client.batch_execute("LISTEN esf_cache")?;
    let mut last = match sink.last_applied() {
        Some(seq) => catch_up(&mut client, sink, seq)?,
        // A cache that never listened holds nothing older than now.
        None => client.query_one("SELECT coalesce(max(seq), 0) FROM cache_changes", &[])?.get(0),
    };
    sink.remember(last);
    let mut pruned = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut pending = Vec::new();
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(WAIT);
            while let Some(note) = waiting.next()? {
                pending.push(note.payload().to_string());
            }
        }
        for payload in pending {
            match parse(&payload) {
                Some((seq, tokens)) => {
                    sink.apply(tokens);
                    last = last.max(seq);
                }
                None => log::warn!("{}: ignored a malformed notification {payload:?}", sink.name()),
            }
            sink.remember(last);
        }
        sink.tick();
        if pruned.elapsed() >= PRUNE_EVERY {
            client.execute(&format!("DELETE FROM cache_changes WHERE at < now() - interval '{KEEP_CHANGES}'"), &[])?;
            pruned = Instant::now();
        }
    }
    Ok(())
}

/// Applies every change after `last` from the log; returns the new last.
fn catch_up(client: &mut Client, sink: &dyn ChangeSink, last: i64) -> Result<i64, postgres::Error> {
    let oldest: Option<i64> = client.query_one("SELECT min(seq) FROM cache_changes", &[])?.get(0);
    if oldest.is_some_and(|oldest| oldest > last + 1) {
        // The log no longer reaches back to `last`: drop everything.
        log::warn!("{}: changes since {last} were pruned; dropping everything", sink.name());
        sink.apply("*");
    }
    let mut newest = last;
    let rows = client.query(
        "SELECT seq, payload FROM cache_changes WHERE seq > $1 OR at > now() - interval '1 minute' ORDER BY seq",
        &[&last],
    )?;
    for row in rows {
        sink.apply(row.get(1));
        newest = newest.max(row.get(0));
    }
    Ok(newest)
}

fn parse(payload: &str) -> Option<(i64, &str)> {
    let (seq, tokens) = payload.split_once(' ').unwrap_or((payload, ""));
    Some((seq.parse().ok()?, tokens))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn payloads_carry_a_sequence_number() {
        assert_eq!(parse("12 product:3 catlist:4:*"), Some((12, "product:3 catlist:4:*")));
        assert_eq!(parse("7"), Some((7, "")));
        assert_eq!(parse("product:3"), None);
    }
}
