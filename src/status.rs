//! The status page (`SetHandler esf-status`) and, in each child, the
//! figures behind it (laid out in `esf_core::status`).
//!
//! The parent hands over the shared table in post_config; each child claims
//! its slot at start and releases it when it exits. After every request
//! `SetHandler esf` served, the child counts it (status, latency) and
//! publishes what its data layers hold: database handles open and in use,
//! search daemon connections, and the cache lookups made since the last
//! request. The page reads the whole table.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use esf_core::http::Response;
use esf_core::status::{ChildSlot, ServerFacts, StatusTable};

use crate::procfs;

static TABLE: OnceLock<StatusTable<'static>> = OnceLock::new();
static SLOT: OnceLock<&'static ChildSlot> = OnceLock::new();
/// This child's cache counters as far as they are in its slot already.
static PUBLISHED_HITS: AtomicU64 = AtomicU64::new(0);
static PUBLISHED_MISSES: AtomicU64 = AtomicU64::new(0);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Takes the server's table (post_config, in the parent).
pub fn set_table(table: StatusTable<'static>) {
    table.header.mark_started(now());
    let _ = TABLE.set(table);
}

/// Counts a child recycled (see `crate::recycle`).
pub fn count_recycled() {
    if let Some(table) = TABLE.get() {
        table.header.count_recycled();
    }
}

/// This child's hold on its slot; dropping it (when the child's pool goes)
/// frees the slot.
pub struct SlotLease(&'static ChildSlot);

impl Drop for SlotLease {
    fn drop(&mut self) {
        StatusTable::release(self.0);
    }
}

/// Claims a slot for this child (child_init). `Err` when there is a table
/// but every slot is held by a live child.
pub fn claim_slot(generation: i64) -> Result<Option<SlotLease>, String> {
    let Some(table) = TABLE.get() else { return Ok(None) };
    let pid = u64::from(std::process::id());
    let slot = table
        .claim(pid, u64::try_from(generation).unwrap_or(0), now(), procfs::is_sibling)
        .ok_or_else(|| format!("all {} status slots are taken; child {pid} is left off the status page", table.slots.len()))?;
    let _ = SLOT.set(slot);
    Ok(Some(SlotLease(slot)))
}

/// Counts one response of this child and publishes its data figures.
pub fn record(status: u16, micros: u64) {
    let Some(slot) = SLOT.get() else { return };
    slot.record(status, micros);
    let figures = crate::site::child_data_figures();
    slot.set_gauges(figures.gauges);
    // Each lookup is added once even when threads publish at once: the one
    // that moves the mark adds what lies between the old mark and its own.
    let hits = figures.cache_hits.saturating_sub(PUBLISHED_HITS.fetch_max(figures.cache_hits, Ordering::Relaxed));
    let misses = figures.cache_misses.saturating_sub(PUBLISHED_MISSES.fetch_max(figures.cache_misses, Ordering::Relaxed));
    slot.add_cache_lookups(hits, misses);
}

/// The page, for a request with query string `query`.
pub fn page(query: Option<&str>, generation: i64, mpm: &str) -> Response {
    let Some(table) = TABLE.get() else {
        return Response::html(503, "<!DOCTYPE html>\n<p>The status table is not available (see the error log).</p>\n".into());
    };
    let facts = ServerFacts { version: env!("CARGO_PKG_VERSION"), mpm: mpm.into(), generation, now: now() };
    let report = table.report(facts, procfs::is_sibling, procfs::private_rss_bytes);
    esf_core::status_page::response(&report, query)
}
