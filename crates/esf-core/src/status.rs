//! The figures behind the status page (`SetHandler esf-status`): what each
//! child counts in memory shared by every child, and how the page reads it.
//!
//! The module lays out one [`StatusHeader`] and a [`ChildSlot`] per child
//! that can exist at once in shared memory made once for the life of the
//! server's parent process, so totals survive graceful restarts. A child
//! claims a slot when it starts ([`StatusTable::claim`]: a compare-and-swap
//! on the slot's pid), counts each request with relaxed atomic adds
//! ([`ChildSlot::record`]) and publishes its database, cache and search
//! figures after each one. The page reads every slot without a lock:
//! figures of different slots may be a request apart, which a report can
//! bear.
//!
//! A slot's counters only ever grow: a child that takes over the slot of an
//! exited one copies the counters as its baseline, so its own row shows
//! what it served since it started while the totals keep what every child
//! served since the server started. Latencies go into a histogram of fixed
//! log-scale buckets (four per power of two, so a percentile is known
//! within 19%) from which the reader computes p50 and p99.
use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets of the latency histogram: microseconds up to 2^31 (36 minutes);
/// slower requests land in the last one.
pub const LATENCY_BUCKETS: usize = 120;

/// The histogram bucket for a latency of `micros` microseconds: exact below
/// 8, then four buckets per power of two.
pub fn bucket_of(micros: u64) -> usize {
    if micros < 4 {
        return micros as usize;
    }
    let log2 = 63 - micros.leading_zeros() as usize;
    let sub = ((micros >> (log2 - 2)) & 3) as usize;
    (4 * (log2 - 1) + sub).min(LATENCY_BUCKETS - 1)
}

/// The largest latency bucket `index` holds (what a percentile reports).
pub fn bucket_upper(index: usize) -> u64 {
    if index < 4 {
        return index as u64;
    }
    let log2 = index / 4 + 1;
    let sub = (index % 4) as u64;
    let width = 1u64 << (log2 - 2);
    ((4 + sub) << (log2 - 2)) + width - 1
}

/// The latency below which `fraction` (0.5 for p50) of the counted
/// requests fall, as the upper bound of its bucket; `None` with no requests.
pub fn percentile(buckets: &[u64], fraction: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((fraction * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(bucket_upper(index));
        }
    }
    None
}

/// Counters that only grow (per slot; see the module doc).
#[repr(C)]
#[derive(Debug)]
pub struct Counters {
    pub requests: AtomicU64,
    /// Responses with a 5xx status.
    pub server_errors: AtomicU64,
    /// Responses with a 4xx status other than 429.
    pub client_errors: AtomicU64,
    /// 429 responses (`EsfThrottle`).
    pub throttled: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub latency: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            requests: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counters {
    pub fn read(&self) -> CounterValues {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterValues {
            requests: read(&self.requests),
            server_errors: read(&self.server_errors),
            client_errors: read(&self.client_errors),
            throttled: read(&self.throttled),
            cache_hits: read(&self.cache_hits),
            cache_misses: read(&self.cache_misses),
            latency: self.latency.iter().map(read).collect(),
        }
    }

    fn store(&self, values: &CounterValues) {
        let store = |counter: &AtomicU64, value: u64| counter.store(value, Ordering::Relaxed);
        store(&self.requests, values.requests);
        store(&self.server_errors, values.server_errors);
        store(&self.client_errors, values.client_errors);
        store(&self.throttled, values.throttled);
        store(&self.cache_hits, values.cache_hits);
        store(&self.cache_misses, values.cache_misses);
        for (counter, value) in self.latency.iter().zip(&values.latency) {
            store(counter, *value);
        }
    }
}

/// A reading of [`Counters`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterValues {
    pub requests: u64,
    pub server_errors: u64,
    pub client_errors: u64,
    pub throttled: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Requests per latency bucket (see [`bucket_of`]).
    pub latency: Vec<u64>,
}

impl Default for CounterValues {
    fn default() -> CounterValues {
        CounterValues { requests: 0, server_errors: 0, client_errors: 0, throttled: 0, cache_hits: 0, cache_misses: 0, latency: vec![0; LATENCY_BUCKETS] }
    }
}

impl CounterValues {
    /// What was counted since `base` was read.
    pub fn since(&self, base: &CounterValues) -> CounterValues {
        CounterValues {
            requests: self.requests.saturating_sub(base.requests),
            server_errors: self.server_errors.saturating_sub(base.server_errors),
            client_errors: self.client_errors.saturating_sub(base.client_errors),
            throttled: self.throttled.saturating_sub(base.throttled),
            cache_hits: self.cache_hits.saturating_sub(base.cache_hits),
            cache_misses: self.cache_misses.saturating_sub(base.cache_misses),
            latency: self.latency.iter().zip(&base.latency).map(|(now, then)| now.saturating_sub(*then)).collect(),
        }
    }

    pub fn add(&mut self, other: &CounterValues) {
        self.requests += other.requests;
        self.server_errors += other.server_errors;
        self.client_errors += other.client_errors;
        self.throttled += other.throttled;
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        for (sum, value) in self.latency.iter_mut().zip(&other.latency) {
            *sum += value;
        }
    }

    /// Median latency in microseconds (0 before any request).
    pub fn p50_micros(&self) -> u64 {
        percentile(&self.latency, 0.50).unwrap_or(0)
    }

    pub fn p99_micros(&self) -> u64 {
        percentile(&self.latency, 0.99).unwrap_or(0)
    }

    /// Hits over lookups; `None` before the first lookup.
    pub fn cache_hit_ratio(&self) -> Option<f64> {
        let lookups = self.cache_hits + self.cache_misses;
        (lookups > 0).then(|| self.cache_hits as f64 / lookups as f64)
    }
}

/// Figures that go up and down: what a child holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub db_open: u64,
    pub db_in_use: u64,
    pub search_connections: u64,
}

impl Gauges {
    pub fn add(&mut self, other: Gauges) {
        self.db_open += other.db_open;
        self.db_in_use += other.db_in_use;
        self.search_connections += other.search_connections;
    }
}

/// A slot's pid while a child is claiming it (never a real pid).
const CLAIMING: u64 = u64::MAX;

/// One child's figures in shared memory. All-zero bytes are a free slot.
#[repr(C)]
#[derive(Debug, Default)]
pub struct ChildSlot {
    /// The child's pid; 0 when free.
    pid: AtomicU64,
    generation: AtomicU64,
    /// When the child started, seconds since the epoch.
    started: AtomicU64,
    counters: Counters,
    /// `counters` when this child claimed the slot.
    base: Counters,
    db_open: AtomicU64,
    db_in_use: AtomicU64,
    search_connections: AtomicU64,
}

impl ChildSlot {
    /// Counts one response of `status` that took `micros` microseconds.
    pub fn record(&self, status: u16, micros: u64) {
        let c = &self.counters;
        c.requests.fetch_add(1, Ordering::Relaxed);
        match status {
            429 => c.throttled.fetch_add(1, Ordering::Relaxed),
            400..=499 => c.client_errors.fetch_add(1, Ordering::Relaxed),
            500..=599 => c.server_errors.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        c.latency[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds cache lookups made since the last call.
    pub fn add_cache_lookups(&self, hits: u64, misses: u64) {
        if hits > 0 {
            self.counters.cache_hits.fetch_add(hits, Ordering::Relaxed);
        }
        if misses > 0 {
            self.counters.cache_misses.fetch_add(misses, Ordering::Relaxed);
        }
    }

    pub fn set_gauges(&self, gauges: Gauges) {
        self.db_open.store(gauges.db_open, Ordering::Relaxed);
        self.db_in_use.store(gauges.db_in_use, Ordering::Relaxed);
        self.search_connections.store(gauges.search_connections, Ordering::Relaxed);
    }

    fn gauges(&self) -> Gauges {
        Gauges {
            db_open: self.db_open.load(Ordering::Relaxed),
            db_in_use: self.db_in_use.load(Ordering::Relaxed),
            search_connections: self.search_connections.load(Ordering::Relaxed),
        }
    }

    /// The pid of the child holding the slot, if one does.
    pub fn pid(&self) -> Option<u64> {
        Some(self.pid.load(Ordering::Acquire)).filter(|&pid| pid != 0 && pid != CLAIMING)
    }
}

/// Server-wide figures in shared memory. All-zero bytes are valid.
#[repr(C)]
#[derive(Debug, Default)]
pub struct StatusHeader {
    /// When the server started, seconds since the epoch.
    started: AtomicU64,
    /// Children that exited for `EsfMaxRequestsPerChild` or `EsfMaxChildMemory`.
    recycled: AtomicU64,
}

impl StatusHeader {
    /// Notes the server's start the first time (later generations keep it).
    pub fn mark_started(&self, now: u64) {
        let _ = self.started.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn count_recycled(&self) {
        self.recycled.fetch_add(1, Ordering::Relaxed);
    }
}

/// The shared table: a header and one slot per possible child.
#[derive(Debug, Clone, Copy)]
pub struct StatusTable<'a> {
    pub header: &'a StatusHeader,
    pub slots: &'a [ChildSlot],
}

/// Who the page is for and what it runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    pub version: &'static str,
    pub mpm: String,
    pub generation: i64,
    /// Seconds since the epoch.
    pub now: u64,
}

/// One live child's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildReport {
    pub pid: u64,
    pub generation: u64,
    pub uptime: u64,
    /// Since the child started.
    pub counters: CounterValues,
    pub gauges: Gauges,
    /// Private resident memory, when the system says.
    pub private_rss_bytes: Option<u64>,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub server: ServerFacts,
    pub uptime: u64,
    pub recycled: u64,
    pub children: Vec<ChildReport>,
    /// Every child's counts since the server started, exited ones included.
    pub totals: CounterValues,
    /// The live children's gauges, summed.
    pub gauges: Gauges,
}

impl<'a> StatusTable<'a> {
    /// Takes a free slot, or one whose child is gone (`is_alive` says no),
    /// for `pid`. `None` when every slot is held by a live child.
    pub fn claim(&self, pid: u64, generation: u64, now: u64, is_alive: impl Fn(u64) -> bool) -> Option<&'a ChildSlot> {
        let free = self.slots.iter().find_map(|slot| self.try_claim(slot, 0, pid, generation, now));
        free.or_else(|| {
            self.slots.iter().find_map(|slot| match slot.pid() {
                Some(holder) if !is_alive(holder) => self.try_claim(slot, holder, pid, generation, now),
                _ => None,
            })
        })
    }

    fn try_claim(&self, slot: &'a ChildSlot, expected: u64, pid: u64, generation: u64, now: u64) -> Option<&'a ChildSlot> {
        slot.pid.compare_exchange(expected, CLAIMING, Ordering::AcqRel, Ordering::Relaxed).ok()?;
        slot.base.store(&slot.counters.read());
        slot.set_gauges(Gauges::default());
        slot.generation.store(generation, Ordering::Relaxed);
        slot.started.store(now, Ordering::Relaxed);
        slot.pid.store(pid, Ordering::Release);
        Some(slot)
    }

    /// Frees `slot` when its child exits; its counts stay in the totals.
    pub fn release(slot: &ChildSlot) {
        slot.set_gauges(Gauges::default());
        slot.pid.store(0, Ordering::Release);
    }

    /// Reads the table: a row per live child, totals over every slot.
    pub fn report(&self, server: ServerFacts, is_alive: impl Fn(u64) -> bool, private_rss_bytes: impl Fn(u64) -> Option<u64>) -> Report {
        let mut totals = CounterValues::default();
        let mut gauges = Gauges::default();
        let mut children = Vec::new();
        for slot in self.slots {
            let counters = slot.counters.read();
            totals.add(&counters);
            let Some(pid) = slot.pid().filter(|&pid| is_alive(pid)) else { continue };
            let child_gauges = slot.gauges();
            gauges.add(child_gauges);
            children.push(ChildReport {
                pid,
                generation: slot.generation.load(Ordering::Relaxed),
                uptime: server.now.saturating_sub(slot.started.load(Ordering::Relaxed)),
                counters: counters.since(&slot.base.read()),
                gauges: child_gauges,
                private_rss_bytes: private_rss_bytes(pid),
            });
        }
        children.sort_by_key(|c| c.pid);
        Report {
            uptime: server.now.saturating_sub(self.header.started.load(Ordering::Relaxed)),
            recycled: self.header.recycled.load(Ordering::Relaxed),
            server,
            children,
            totals,
            gauges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_then_four_per_power_of_two() {
        for v in 0..8 {
            assert_eq!(bucket_upper(bucket_of(v)), v);
        }
        let mut last = 0;
        for v in (1..5_000_000u64).step_by(7) {
            let b = bucket_of(v);
            assert!(b >= last, "monotonic at {v}");
            last = b;
            let upper = bucket_upper(b);
            assert!(upper >= v, "{v} fits under {upper}");
            assert!((upper - v) as f64 <= v as f64 * 0.25, "{v}: bucket up to {upper} is within 25%");
            if b > 0 {
                assert!(bucket_upper(b - 1) < v, "{v} is not in the bucket before");
            }
        }
        assert_eq!(bucket_of(u64::MAX), LATENCY_BUCKETS - 1);
        assert_eq!(bucket_upper(LATENCY_BUCKETS - 1), (1 << 31) - 1);
    }

    #[test]
    fn percentiles_from_buckets() {
        let mut buckets = vec![0; LATENCY_BUCKETS];
        assert_eq!(percentile(&buckets, 0.5), None);
        for micros in [100u64; 98].into_iter().chain([5_000, 80_000]) {
            buckets[bucket_of(micros)] += 1;
        }
        assert_eq!(percentile(&buckets, 0.5), Some(bucket_upper(bucket_of(100))));
        assert_eq!(percentile(&buckets, 0.98), Some(bucket_upper(bucket_of(100))));
        assert_eq!(percentile(&buckets, 0.99), Some(bucket_upper(bucket_of(5_000))));
        assert_eq!(percentile(&buckets, 1.0), Some(bucket_upper(bucket_of(80_000))));
    }

    fn table(slots: usize) -> (StatusHeader, Vec<ChildSlot>) {
        (StatusHeader::default(), (0..slots).map(|_| ChildSlot::default()).collect())
    }

    fn facts(now: u64) -> ServerFacts {
        ServerFacts { version: "test", mpm: "event".into(), generation: 1, now }
    }

    #[test]
    fn children_claim_free_slots_then_those_of_exited_children() {
        let (header, slots) = table(2);
        let t = StatusTable { header: &header, slots: &slots };
        let alive = |pid: u64| pid == 11 || pid == 12;
        let a = t.claim(11, 0, 100, alive).unwrap();
        let b = t.claim(12, 0, 100, alive).unwrap();
        assert!(!std::ptr::eq(a, b));
        assert!(t.claim(13, 0, 100, alive).is_none(), "both held by live children");
        a.record(200, 10);
        let alive = |pid: u64| pid == 12 || pid == 13;
        let c = t.claim(13, 1, 150, alive).unwrap();
        assert!(std::ptr::eq(a, c), "the exited child's slot is reused");
        assert_eq!(c.pid(), Some(13));
        StatusTable::release(b);
        assert_eq!(b.pid(), None);
    }

    #[test]
    fn rows_count_since_the_child_started_totals_since_the_server_did() {
        let (header, slots) = table(2);
        header.mark_started(1000);
        header.mark_started(2000);
        let t = StatusTable { header: &header, slots: &slots };
        let first = t.claim(11, 0, 1000, |_| true).unwrap();
        let other = t.claim(13, 1, 1100, |_| true).unwrap();
        other.record(200, 90);
        for status in [200, 200, 404, 429, 500, 503] {
            first.record(status, 250);
        }
        first.add_cache_lookups(3, 1);
        first.set_gauges(Gauges { db_open: 2, db_in_use: 1, search_connections: 1 });
        // The child exits without releasing (a crash); its successor takes the slot.
        let second = t.claim(12, 1, 1100, |pid| pid != 11).unwrap();
        assert!(std::ptr::eq(first, second));
        second.record(200, 2_000);
        second.set_gauges(Gauges { db_open: 1, db_in_use: 0, search_connections: 0 });

        let report = t.report(facts(1200), |pid| pid != 11, |pid| Some(pid * 1000));
        assert_eq!(report.uptime, 200, "from the first start");
        assert_eq!(report.children.len(), 2);
        let row = &report.children[0];
        assert_eq!((row.pid, row.generation, row.uptime, row.private_rss_bytes), (12, 1, 100, Some(12_000)));
        assert_eq!(row.counters.requests, 1, "only its own requests");
        assert_eq!(row.counters.server_errors, 0);
        assert_eq!(row.gauges, Gauges { db_open: 1, db_in_use: 0, search_connections: 0 }, "the crashed child's gauges are gone");
        let totals = &report.totals;
        assert_eq!((totals.requests, totals.server_errors, totals.client_errors, totals.throttled), (8, 2, 1, 1));
        assert_eq!((totals.cache_hits, totals.cache_misses), (3, 1));
        assert_eq!(totals.cache_hit_ratio(), Some(0.75));
        assert_eq!(report.gauges.db_open, 1);
        assert_eq!(totals.p50_micros(), bucket_upper(bucket_of(250)));
        assert_eq!(totals.p99_micros(), bucket_upper(bucket_of(2_000)));
    }

    #[test]
    fn nothing_counted_reads_as_zero() {
        let values = CounterValues::default();
        assert_eq!((values.p50_micros(), values.p99_micros(), values.cache_hit_ratio()), (0, 0, None));
    }
}
