//! Benchmark (bench/search.sh): the queries of queries.tsv against
//! esf-searchd and against PostgreSQL's full-text path (GIN over the token
//! arrays, `esf_data::search::find`: the engine the store uses without
//! `EsfSearch`), one after the other in the same run, with the same
//! number of client threads, each query drawn uniformly from the file (as
//! the SPEC's search mix draws them), page 1.
//!
//! ```text
//! search_bench CONNINFO ADDRESS QUERIES_TSV [CLIENTS=4] [SECONDS=10] [SORT=relevance|mixed]
//! ```
//!
//! `mixed` gives each query a sort drawn uniformly from the four. Prints
//! one Markdown table row per engine and the ratio.
use std::time::{Duration, Instant};

use esf_data::search::{self, query_words, DaemonClient, SearchQuery, Sort};
use esf_data::Database;

/// xorshift64*: one stream per client thread, the same at every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % n
    }
}

struct Run {
    queries: usize,
    seconds: f64,
    /// Every query's latency, sorted.
    latencies: Vec<Duration>,
    /// Matches summed over the queries (to check both engines did the work).
    matched: u64,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.queries as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> Duration {
        self.latencies.get(((self.latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
    }
}

/// Runs `clients` threads for `seconds`, each calling `search` (made per
/// thread by `connect`) on drawn queries; `search` returns the total.
fn drive<C, S>(clients: usize, seconds: f64, queries: &[String], mixed: bool, connect: C) -> Run
where
    C: Fn() -> S + Sync,
    S: FnMut(&str, Sort) -> u64,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let results: Vec<(Vec<Duration>, u64)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|client| {
                let connect = &connect;
                scope.spawn(move || {
                    let mut search = connect();
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((client as u64 + 1) * 0x1000_0001));
                    let mut latencies = Vec::new();
                    let mut matched = 0;
                    while Instant::now() < deadline {
                        let query = &queries[rng.below(queries.len())];
                        let sort = if mixed { Sort::ALL[rng.below(4)] } else { Sort::Relevance };
                        let one = Instant::now();
                        matched += search(query, sort);
                        latencies.push(one.elapsed());
                    }
                    (latencies, matched)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a client thread")).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    latencies.sort_unstable();
    Run { queries: latencies.len(), seconds, latencies, matched: results.iter().map(|(_, m)| m).sum() }
}

fn micros(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", d.as_micros())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: search_bench CONNINFO ADDRESS QUERIES_TSV [CLIENTS=4] [SECONDS=10] [SORT=relevance|mixed]");
        std::process::exit(2);
    }
    let (conninfo, address, file) = (&args[1], &args[2], &args[3]);
    let clients: usize = args.get(4).map_or(4, |a| a.parse().expect("CLIENTS"));
    let seconds: f64 = args.get(5).map_or(10.0, |a| a.parse().expect("SECONDS"));
    let mixed = args.get(6).is_some_and(|a| a == "mixed");
    let queries: Vec<String> = std::fs::read_to_string(file).expect("read queries.tsv").lines().skip(1).filter(|l| !l.is_empty()).map(str::to_string).collect();
    let address = search::Address::parse(address).expect("ADDRESS");

    let daemon = drive(clients, seconds, &queries, mixed, || {
        let client = DaemonClient::new(address.clone(), 1, Duration::from_secs(10));
        move |query: &str, sort: Sort| client.search(&query_words(query), sort, 1).expect("esf-searchd answers").total
    });
    let postgres = drive(clients, seconds, &queries, mixed, || {
        let db = Database::new(conninfo, 1);
        move |query: &str, sort: Sort| {
            let query = SearchQuery::new(query, sort, 1);
            if query.words.is_empty() {
                return 0;
            }
            let mut handle = db.handle().expect("a PostgreSQL connection");
            search::find(&mut handle, &query).expect("PostgreSQL answers").0 as u64
        }
    });
    let sort = if mixed { "four sorts mixed" } else { "relevance" };
    println!("| engine ({sort}, {clients} clients) | queries/s | p50 | p99 | queries |");
    println!("|---|---|---|---|---|");
    for (name, run) in [("PostgreSQL GIN (`find`)", &postgres), ("esf-searchd", &daemon)] {
        println!("| {name} | {:.0} | {} | {} | {} |", run.per_second(), micros(run.percentile(0.5)), micros(run.percentile(0.99)), run.queries);
    }
    println!("esf-searchd / PostgreSQL: {:.1}x the queries/s", daemon.per_second() / postgres.per_second());
    // The same queries were drawn: their matches per query agree on average.
    eprintln!(
        "  (mean matches per query: esf-searchd {:.0}, PostgreSQL {:.0})",
        daemon.matched as f64 / daemon.queries.max(1) as f64,
        postgres.matched as f64 / postgres.queries.max(1) as f64
    );
}
