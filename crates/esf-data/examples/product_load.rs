//! Benchmark: loading a Product (both parts) from the LMDB object cache
//! against loading it from PostgreSQL, in one run, and cache reads/s with
//! two threads. Run by bench/data-layer.sh, which prepares the database.
//!
//!   product_load CONNINFO CACHE_DIR PRODUCTS [LOADS]
use std::time::{Duration, Instant};

use esf_data::product::Product;
use esf_data::{DataLayer, DataSettings};

/// A small deterministic PRNG (xorshift64*): ids drawn Zipf-like, as real
/// shops have hot products.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Zipf(s=1) over 1..=n by inverting the harmonic CDF approximately.
    fn zipf(&mut self, n: u64) -> i32 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let h = (n as f64).ln() + 0.5772;
        ((u * h).exp() - 0.5).clamp(1.0, n as f64) as i32
    }
}

fn layer(conninfo: &str, cache_dir: Option<&str>) -> DataLayer {
    DataLayer::open(&DataSettings {
        database: Some(conninfo.to_string()),
        pool_size: 2,
        cache_dir: cache_dir.map(Into::into),
        cache_size: 1 << 30,
        cache_readers: 64,
        search: None,
    })
    .expect("open data layer")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Loads every id, returns (loads/s, p50, p99).
fn measure(data: &DataLayer, ids: &[i32]) -> (f64, Duration, Duration) {
    let mut times = Vec::with_capacity(ids.len());
    let start = Instant::now();
    for id in ids {
        let t = Instant::now();
        Product::load(data, *id).expect("load").expect("product exists");
        times.push(t.elapsed());
    }
    let rate = ids.len() as f64 / start.elapsed().as_secs_f64();
    times.sort();
    (rate, percentile(&times, 0.5), percentile(&times, 0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (conninfo, cache_dir) = (&args[1], &args[2]);
    let products: u64 = args[3].parse().expect("PRODUCTS");
    let loads: usize = args.get(4).map(|n| n.parse().expect("LOADS")).unwrap_or(20_000);
    let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
    let ids: Vec<i32> = (0..loads).map(|_| draw.zipf(products)).collect();

    let database_only = layer(conninfo, None);
    measure(&database_only, &ids[..1000]); // connect and prepare
    let (db_rate, db_p50, db_p99) = measure(&database_only, &ids);

    let cached = layer(conninfo, Some(cache_dir));
    measure(&cached, &ids); // warm: every id into LMDB
    let (lmdb_rate, lmdb_p50, lmdb_p99) = measure(&cached, &ids);

    println!("| source | loads/s | p50 | p99 |");
    println!("|---|---|---|---|");
    println!("| PostgreSQL (2 queries, prepared) | {db_rate:.0} | {db_p50:?} | {db_p99:?} |");
    println!("| LMDB object cache | {lmdb_rate:.0} | {lmdb_p50:?} | {lmdb_p99:?} |");
    println!();
    println!("LMDB / PostgreSQL: {:.0}x the loads/s, p50 {:.0}x faster", lmdb_rate / db_rate, db_p50.as_secs_f64() / lmdb_p50.as_secs_f64());

    // Both cores reading the cache.
    let seconds = Duration::from_secs(3);
    let total: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (cached, ids) = (&cached, &ids);
                scope.spawn(move || {
                    let start = Instant::now();
                    let mut n = 0;
                    while start.elapsed() < seconds {
                        for id in ids.iter().skip(t).step_by(2).take(1000) {
                            Product::load(cached, *id).expect("load");
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    println!("LMDB Product loads with 2 threads: {:.0}/s (2 cache reads each)", total as f64 / seconds.as_secs_f64());
}
