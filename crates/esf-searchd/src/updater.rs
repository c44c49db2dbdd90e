//! Keeping the index fresh: the daemon listens to the same change
//! notifications as the app servers' object caches (`NOTIFY esf_cache`,
//! docs/DATA.md) and follows them.
//!
//! - `product:ID` tokens: those products are read again and the changes
//!   applied to a copy of the index (cheap: it shares everything it does
//!   not touch), which then replaces the one being searched. Notifications
//!   that arrived together are applied together.
//! - `product:*` or `*` (a bulk write, an import): the index is built
//!   again from the whole table, and replaces the old one when done.
//!
//! Searches never wait: they take the current index (one pointer copy
//! under a lock held for nothing else) and keep it for the whole search.
//! Updates run on this one thread, in order.
//!
//! LISTEN comes before any read, so no change falls between a read and
//! the notifications. After losing the database, the thread reconnects
//! and applies what it missed from the `cache_changes` log, or builds
//! again when the log no longer reaches back far enough, as the app
//! servers' listeners do (crates/esf-data/src/coherence.rs).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use esf_search::Index;
use parking_lot::RwLock;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use crate::load;

/// How long the thread blocks waiting for a notification.
const WAIT: Duration = Duration::from_millis(500);
/// How long it waits before reconnecting to a lost database.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The index being searched, shared by every connection thread.
pub struct Shared {
    current: RwLock<Arc<Index>>,
    /// Indexes installed so far (1 after the first build).
    generation: AtomicU64,
}

impl Shared {
    fn new(index: Index) -> Shared {
        Shared { current: RwLock::new(Arc::new(index)), generation: AtomicU64::new(1) }
    }

    /// The index to search now; later changes do not touch it.
    pub fn current(&self) -> Arc<Index> {
        self.current.read().clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn install(&self, index: Index) {
        let old = std::mem::replace(&mut *self.current.write(), Arc::new(index));
        self.generation.fetch_add(1, Ordering::Relaxed);
        // The old index is freed here, outside the lock (or by the last
        // search still holding it).
        drop(old);
    }
}

/// What the updater needs to know besides the index.
struct Follower {
    conninfo: String,
    threads: usize,
    shared: Arc<Shared>,
    /// The newest `cache_changes` number applied.
    last_seq: i64,
}

/// Connects, builds the first index and starts the thread that keeps it
/// fresh. Fails if the database cannot be read now.
pub fn start(conninfo: &str, threads: usize) -> Result<Arc<Shared>, postgres::Error> {
    let mut client = Client::connect(conninfo, NoTls)?;
    client.batch_execute("LISTEN esf_cache")?;
    let last_seq = newest_seq(&mut client)?;
    let (index, report) = load::build(&mut client, threads)?;
    log_build("built", &report);
    let shared = Arc::new(Shared::new(index));
    let mut follower = Follower { conninfo: conninfo.to_string(), threads, shared: shared.clone(), last_seq };
    thread::Builder::new()
        .name("esf-search-updater".into())
        .spawn(move || follower.run(client))
        .expect("spawn the updater thread");
    Ok(shared)
}

fn log_build(what: &str, report: &load::BuildReport) {
    let rss = load::resident_bytes().map_or_else(|| "?".into(), |b| format!("{} MiB", b >> 20));
    log::info!("{what} the index: {} products, {} tokens in {:.2?} (resident memory {rss})", report.products, report.tokens, report.took);
}

fn newest_seq(client: &mut Client) -> Result<i64, postgres::Error> {
    Ok(client.query_one("SELECT coalesce(max(seq), 0) FROM cache_changes", &[])?.get(0))
}

/// What a batch of notifications asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Batch {
    rebuild: bool,
    ids: Vec<i32>,
}

impl Batch {
    /// Adds one notification's tokens (the payload after its number).
    fn add(&mut self, tokens: &str) {
        for token in tokens.split_whitespace() {
            if token == "*" || (token.starts_with("product:") && token.ends_with('*')) {
                self.rebuild = true;
            } else if let Some(id) = token.strip_prefix("product:").and_then(|id| id.parse::<i32>().ok()) {
                if !self.ids.contains(&id) {
                    self.ids.push(id);
                }
            }
        }
    }
}

/// `SEQ TOKENS…` into its number and tokens.
fn parse(payload: &str) -> Option<(i64, &str)> {
    let (seq, tokens) = payload.split_once(' ').unwrap_or((payload, ""));
    Some((seq.parse().ok()?, tokens))
}

impl Follower {
    fn run(&mut self, first: Client) {
        let mut client = Some(first);
        let mut down_since: Option<Instant> = None;
        loop {
            let result = match client.take() {
                Some(mut connected) => self.follow(&mut connected),
                None => self.reconnect().and_then(|mut connected| {
                    if let Some(since) = down_since.take() {
                        log::info!("the database is back after {:.1?}; caught up", since.elapsed());
                    }
                    self.follow(&mut connected)
                }),
            };
            if let Err(e) = result {
                if down_since.is_none() {
                    log::warn!("lost the database ({e}); searching the index as it is and reconnecting");
                    down_since = Some(Instant::now());
                }
                thread::sleep(RECONNECT_DELAY);
            }
        }
    }

    /// A new connection, listening, with what was missed applied.
    fn reconnect(&mut self) -> Result<Client, postgres::Error> {
        let mut client = Client::connect(&self.conninfo, NoTls)?;
        client.batch_execute("LISTEN esf_cache")?;
        let oldest: Option<i64> = client.query_one("SELECT min(seq) FROM cache_changes", &[])?.get(0);
        if oldest.is_some_and(|oldest| oldest > self.last_seq + 1) {
            log::warn!("changes since {} were pruned from cache_changes; building the index again", self.last_seq);
            self.rebuild(&mut client)?;
            return Ok(client);
        }
        // Numbers are taken at insert, notifications come at commit: the
        // last minute is read again whatever its numbers.
        let rows = client.query("SELECT seq, payload FROM cache_changes WHERE seq > $1 OR at > now() - interval '1 minute' ORDER BY seq", &[&self.last_seq])?;
        let mut batch = Batch::default();
        for row in rows {
            batch.add(row.get(1));
            self.last_seq = self.last_seq.max(row.get(0));
        }
        self.apply(&mut client, batch)?;
        Ok(client)
    }

    /// Applies notifications as they come, until the connection fails.
    fn follow(&mut self, client: &mut Client) -> Result<(), postgres::Error> {
        loop {
            let mut payloads = Vec::new();
            {
                let mut notifications = client.notifications();
                let first = notifications.timeout_iter(WAIT).next()?;
                if let Some(first) = first {
                    payloads.push(first.payload().to_string());
                    // And whatever else has already arrived, in one batch.
                    let mut pending = notifications.iter();
                    while let Some(more) = pending.next()? {
                        payloads.push(more.payload().to_string());
                    }
                }
            }
            if payloads.is_empty() {
                // Nothing for a while: make sure the connection still works
                // (a dead socket shows only when used).
                client.batch_execute("")?;
                continue;
            }
            let mut batch = Batch::default();
            for payload in &payloads {
                match parse(payload) {
                    Some((seq, tokens)) => {
                        batch.add(tokens);
                        self.last_seq = self.last_seq.max(seq);
                    }
                    None => log::warn!("ignored a malformed notification {payload:?}"),
                }
            }
            self.apply(client, batch)?;
        }
    }

    fn apply(&mut self, client: &mut Client, batch: Batch) -> Result<(), postgres::Error> {
        if batch.rebuild {
            return self.rebuild(client);
        }
        if batch.ids.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let changes = load::changes(client, &batch.ids)?;
        let mut next = Index::clone(&self.shared.current());
        next.apply(changes);
        self.shared.install(next);
        log::debug!("applied changes to {} products in {:.2?}", batch.ids.len(), started.elapsed());
        Ok(())
    }

    fn rebuild(&mut self, client: &mut Client) -> Result<(), postgres::Error> {
        self.last_seq = self.last_seq.max(newest_seq(client)?);
        let (index, report) = load::build(client, self.threads)?;
        self.shared.install(index);
        log_build("rebuilt", &report);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_products_or_ask_for_a_rebuild() {
        let mut batch = Batch::default();
        batch.add("product:3 catlist:4:* inventory:3 product:12 product:3");
        assert_eq!(batch, Batch { rebuild: false, ids: vec![3, 12] });
        for bulk in ["product:* catlist:*", "*", "category:* categories catlist:* *"] {
            let mut batch = Batch::default();
            batch.add(bulk);
            assert!(batch.rebuild, "{bulk}");
        }
        let mut batch = Batch::default();
        batch.add("inventory:* category:4 categories product:x");
        assert_eq!(batch, Batch::default());
        assert_eq!(parse("12 product:3 catlist:4:*"), Some((12, "product:3 catlist:4:*")));
        assert_eq!(parse("product:3"), None);
    }
}
