//! Reading the catalog from PostgreSQL: every product for a full build,
//! or a few by id for an update.
//!
//! A full build streams the products table (one pass, rows never all in
//! memory as text) to tokenizer threads, and the index takes the tokens in
//! as they come: at a million products the reading, the tokenizing and the
//! indexing overlap.
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use esf_search::{Change, Index, ProductText, Tokenized};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Row};

/// What the index reads of a product; `created` as days since 1970 (only
/// its order matters, and an int4 needs no date support in the driver).
const PRODUCTS_SQL: &str = "SELECT id, price_cents, created - DATE '1970-01-01', name, brand, description FROM products ORDER BY id";
const PRODUCTS_BY_ID_SQL: &str = "SELECT id, price_cents, created - DATE '1970-01-01', name, brand, description FROM products WHERE id = ANY($1)";

/// Rows handed to a tokenizer at a time.
const CHUNK: usize = 2048;

/// How a full build went, for the log and the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct BuildReport {
    pub products: usize,
    pub tokens: usize,
    pub took: Duration,
}

fn product(row: &Row) -> ProductText {
    ProductText { id: row.get(0), price_cents: row.get(1), created_days: row.get(2), name: row.get(3), brand: row.get(4), description: row.get(5) }
}

/// An index of every product, tokenized on `threads` threads.
pub fn build(client: &mut Client, threads: usize) -> Result<(Index, BuildReport), postgres::Error> {
    let started = Instant::now();
    let threads = threads.max(1);
    let (rows_out, rows_in) = bounded::<Vec<ProductText>>(threads * 2);
    let (tokens_out, tokens_in) = bounded::<Vec<Tokenized>>(threads * 2);
    let index = std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<(), postgres::Error> {
            let mut rows = client.query_raw(PRODUCTS_SQL, std::iter::empty::<i32>())?;
            let mut chunk = Vec::with_capacity(CHUNK);
            while let Some(row) = rows.next()? {
                chunk.push(product(&row));
                if chunk.len() == CHUNK && rows_out.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_err() {
                    return Ok(());
                }
            }
            if !chunk.is_empty() {
                let _ = rows_out.send(chunk);
            }
            Ok(())
        });
        for _ in 0..threads {
            let (rows_in, tokens_out) = (rows_in.clone(), tokens_out.clone());
            scope.spawn(move || {
                for chunk in rows_in {
                    if tokens_out.send(chunk.iter().map(Tokenized::new).collect()).is_err() {
                        return;
                    }
                }
            });
        }
        // Only the threads' copies remain: the chunks end when they do.
        drop((rows_in, tokens_out));
        let index = Index::build(tokens_in.iter().flatten());
        reader.join().expect("the reader thread does not panic").map(|()| index)
    })?;
    let stats = index.stats();
    Ok((index, BuildReport { products: stats.products, tokens: stats.tokens, took: started.elapsed() }))
}

/// The changes that bring the index up to date for products `ids`: each
/// one as the database has it now, or removed if it is gone.
pub fn changes(client: &mut Client, ids: &[i32]) -> Result<Vec<Change>, postgres::Error> {
    let rows = client.query(PRODUCTS_BY_ID_SQL, &[&ids])?;
    let found: Vec<ProductText> = rows.iter().map(product).collect();
    let mut changes: Vec<Change> = ids.iter().filter(|id| !found.iter().any(|p| p.id == **id)).map(|id| Change::Remove(*id)).collect();
    changes.extend(found.iter().map(|p| Change::Upsert(Tokenized::new(p))));
    Ok(changes)
}

/// The resident memory of this process, in bytes (from /proc).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
