//! How fast `get` is: fills a cache with 100,000 entries of about 500 bytes,
//! then reads random keys from two threads and prints reads per second and
//! the median and 99th-percentile time of one read.
//!
//! `cargo run --release -p esf-cache --example cache_bench [reads per thread] [threads]`
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use esf_cache::ObjectCache;
use serde::{Deserialize, Serialize};

const ENTRIES: u64 = 100_000;
const FORMAT: u16 = 1;

/// Roughly a product's slow-changing part.
#[derive(Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
    brand: String,
    price_cents: i64,
    description: String,
}

fn product(id: u64) -> Product {
    Product {
        id,
        name: format!("Wooden train set no. {id}"),
        brand: "eToys Classics".to_string(),
        price_cents: 1999 + id as i64 % 5000,
        description: "A sturdy beechwood train with magnetic couplings. ".repeat(9),
    }
}

/// xorshift64*, one per thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn main() {
    let arg = |n: usize, default: usize| std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (reads_per_thread, threads) = (arg(1, 1_000_000), arg(2, 2));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = Arc::new(ObjectCache::open(dir.path(), 1 << 30, 126).expect("open the cache"));

    let filling = Instant::now();
    for id in 0..ENTRIES {
        cache.put(&format!("product:{id}"), FORMAT, &product(id), Duration::from_secs(3600)).expect("put");
    }
    let stats = cache.stats();
    let value_len = postcard::to_stdvec(&product(1)).unwrap().len();
    println!(
        "filled {} entries of ~{value_len} bytes in {:.2?} ({} MiB of pages)",
        stats.entries,
        filling.elapsed(),
        stats.bytes_used >> 20
    );

    let start = Arc::new(Barrier::new(threads + 1));
    let readers: Vec<_> = (0..threads)
        .map(|thread_no| {
            let (cache, start) = (cache.clone(), start.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (thread_no as u64 + 1));
                let keys: Vec<String> = (0..reads_per_thread).map(|_| format!("product:{}", rng.below(ENTRIES))).collect();
                let mut nanos = Vec::with_capacity(reads_per_thread);
                start.wait();
                for key in &keys {
                    let began = Instant::now();
                    let hit = cache.get::<Product>(key, FORMAT);
                    nanos.push(began.elapsed().as_nanos() as u64);
                    assert!(hit.is_some(), "{key} missed");
                }
                nanos
            })
        })
        .collect();
    start.wait();
    let reading = Instant::now();
    let mut nanos: Vec<u64> = readers.into_iter().flat_map(|reader| reader.join().unwrap()).collect();
    let elapsed = reading.elapsed();
    nanos.sort_unstable();
    let percentile = |p: f64| nanos[((nanos.len() - 1) as f64 * p) as usize];
    println!(
        "{threads} threads, {} reads in {elapsed:.2?}: {:.0} reads/s; per read p50 {} ns, p99 {} ns, max {} µs",
        nanos.len(),
        nanos.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        nanos[nanos.len() - 1] / 1000,
    );
    let stats = cache.stats();
    println!("hits {} misses {} expired {}", stats.hits, stats.misses, stats.expired);
}
