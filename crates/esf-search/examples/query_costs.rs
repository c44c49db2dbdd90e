//! Times every query of a catalog's queries.tsv in every sort against an
//! index built straight from its products.tsv (no database, one thread),
//! and prints the slowest (the least of five runs each): where the index
//! spends its time.
//!
//! ```text
//! cargo run --release -p esf-search --example query_costs -- target/bench/catalog-large
//! ```
use std::time::{Duration, Instant};

use esf_search::{query_words, Index, ProductText, Sort, Tokenized};

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: query_costs CATALOG_DIR"));
    let started = Instant::now();
    let text = std::fs::read_to_string(dir.join("products.tsv")).expect("products.tsv");
    let products = text.lines().skip(1).map(|line| {
        let f: Vec<&str> = line.split('\t').collect();
        let days = f[9].split('-').map(|n| n.parse::<i32>().unwrap()).fold(0, |acc, n| acc * 40 + n);
        Tokenized::new(&ProductText { id: f[0].parse().unwrap(), price_cents: f[7].parse().unwrap(), created_days: days, name: f[3].into(), brand: f[4].into(), description: f[8].into() })
    });
    let index = Index::build(products);
    println!("built {:?} in {:.2?}", index.stats(), started.elapsed());
    let (postings, orders) = index.bitmap_bytes();
    println!("bitmaps: postings {} MiB, price and day orders {} MiB", postings >> 20, orders >> 20);
    let queries: Vec<String> = std::fs::read_to_string(dir.join("queries.tsv")).expect("queries.tsv").lines().skip(1).map(str::to_string).collect();
    let mut costs: Vec<(Duration, Sort, &str, u64)> = Vec::new();
    for query in &queries {
        let words = query_words(query);
        for sort in Sort::ALL {
            // The least of five runs: the cost, not the machine's other load.
            let mut least = Duration::MAX;
            let mut total = 0;
            for _ in 0..5 {
                let one = Instant::now();
                total = index.search(&words, sort, 1).total;
                least = least.min(one.elapsed());
            }
            costs.push((least, sort, query, total));
        }
    }
    for sort in Sort::ALL {
        let mut mine: Vec<Duration> = costs.iter().filter(|c| c.1 == sort).map(|c| c.0).collect();
        mine.sort_unstable();
        let at = |p: f64| mine[((mine.len() - 1) as f64 * p) as usize];
        println!("{sort:>10}: p50 {:?} p99 {:?} max {:?}", at(0.5), at(0.99), at(1.0));
    }
    costs.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    for (took, sort, query, total) in costs.iter().take(15) {
        println!("{took:>10.2?} {sort:>10} {total:>8} {query:?}");
    }
}
