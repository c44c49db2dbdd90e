//! Bulk import of the reference catalog (categories.tsv, products.tsv,
//! inventory.tsv from gen_catalog.py) with COPY, in one transaction that
//! replaces whatever catalog was there.
//!
//! The files are streamed, never read whole. What makes a million rows
//! fast: the tables are truncated in the same transaction, so COPY FREEZE
//! writes rows already frozen (no later hint-bit rewrite); and the plain
//! indexes, unique and foreign-key constraints are dropped first and
//! recreated after, one sorted index build and one join each instead of
//! a row-by-row index insert and a row-by-row foreign-key trigger; and the
//! search table is filled from the products file tokenized here, in Rust,
//! rather than by its trigger with PostgreSQL's regex tokenizer, which
//! alone would take a minute for a million products.
use crate::error::describe;
use crate::SchemaError;
use postgres::{Client, Transaction};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

/// Rows loaded into each table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportCounts {
    pub categories: u64,
    pub products: u64,
    pub inventory: u64,
}

/// A TSV file and the table it loads; the header must list `columns`.
struct CatalogFile {
    table: &'static str,
    file: &'static str,
    columns: &'static [&'static str],
}

/// In load order: referenced tables first.
const CATALOG: [CatalogFile; 3] = [
    CatalogFile {
        table: "categories",
        file: "categories.tsv",
        columns: &["id", "parent_id", "name", "slug"],
    },
    CatalogFile {
        table: "products",
        file: "products.tsv",
        columns: &[
            "id",
            "category_id",
            "sku",
            "name",
            "brand",
            "age_min",
            "age_max",
            "price_cents",
            "description",
            "created",
        ],
    },
    CatalogFile {
        table: "inventory",
        file: "inventory.tsv",
        columns: &["product_id", "on_hand"],
    },
];

/// Read size: large enough that COPY gets big messages.
const READ_BUFFER: usize = 256 * 1024;

/// Replaces the catalog with the TSV files in `dir`: TRUNCATE ... CASCADE
/// (which also empties the carts, whose lines reference products), COPY
/// each file, restore the indexes and constraints, ANALYZE, all in one
/// transaction. Readers of the catalog wait meanwhile (TRUNCATE locks the
/// tables) and then see the new one; a failure leaves the old one. The
/// change triggers fire once per COPY and send the prefix form.
pub fn import_catalog(client: &mut Client, dir: &Path) -> Result<ImportCounts, SchemaError> {
    // Every file opened and its header checked before anything changes.
    let mut readers = Vec::with_capacity(CATALOG.len());
    for catalog_file in &CATALOG {
        let path = dir.join(catalog_file.file);
        let reader = open_after_header(&path, catalog_file.columns)?;
        readers.push((catalog_file, path, reader));
    }

    let present: bool = client
        .query_one(
            "SELECT to_regclass('categories') IS NOT NULL
                AND to_regclass('products') IS NOT NULL
                AND to_regclass('inventory') IS NOT NULL",
            &[],
        )?
        .get(0);
    if !present {
        return Err(SchemaError::NotMigrated);
    }

    let mut tx = client.transaction()?;
    // For the index builds below; SET LOCAL ends with the transaction.
    tx.batch_execute(
        "SET LOCAL maintenance_work_mem = '256MB';
         TRUNCATE categories, products, inventory CASCADE",
    )?;
    let deferred = drop_deferrable(&mut tx)?;
    let search_indexes = drop_search_indexes(&mut tx)?;

    let mut loaded = Vec::with_capacity(CATALOG.len());
    for (catalog_file, path, reader) in readers {
        loaded.push(copy_rows(&mut tx, catalog_file, &path, reader)?);
    }
    copy_search_rows(&mut tx, &dir.join("products.tsv"))?;
    for create in &search_indexes {
        tx.batch_execute(create)?;
    }
    tx.batch_execute("ALTER TABLE products ENABLE TRIGGER product_search_insert")?;

    for item in deferred.iter().rev() {
        tx.batch_execute(&item.create)
            .map_err(|e| SchemaError::Input {
                file: dir.join(file_of_table(&item.table)),
                line: None,
                message: describe(&e),
            })?;
    }
    tx.batch_execute("ANALYZE categories, products, inventory, product_search")?;
    tx.commit()?;
    Ok(ImportCounts {
        categories: loaded[0],
        products: loaded[1],
        inventory: loaded[2],
    })
}

/// Turns off the search table's row trigger for this transaction's COPY
/// (ALTER TABLE is transactional) and drops its secondary indexes; returns
/// the statements that recreate them.
fn drop_search_indexes(tx: &mut Transaction<'_>) -> Result<Vec<String>, SchemaError> {
    tx.batch_execute("ALTER TABLE products DISABLE TRIGGER product_search_insert")?;
    let mut creates = Vec::new();
    for row in tx.query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'product_search' AND indexname <> 'product_search_pkey'",
        &[],
    )? {
        let name: String = row.get(0);
        tx.batch_execute(&format!("DROP INDEX {}", quote_ident(&name)))?;
        creates.push(row.get(1));
    }
    Ok(creates)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Fills the search table from products.tsv (already loaded and checked by
/// the products COPY), with the tokenizer search itself uses.
fn copy_search_rows(tx: &mut Transaction<'_>, path: &Path) -> Result<u64, SchemaError> {
    let reader = open_after_header(path, CATALOG[1].columns)?;
    let mut writer = tx.copy_in(
        "COPY product_search (product_id, price_cents, created, name_tokens, brand_tokens, description_tokens) FROM STDIN WITH (FREEZE)",
    )?;
    let mut rows = 0;
    let mut out = Vec::with_capacity(READ_BUFFER);
    for line in reader.lines() {
        let line = line.map_err(|e| SchemaError::Input { file: path.to_path_buf(), line: None, message: format!("cannot read: {e}") })?;
        let fields: Vec<&str> = line.split('\t').collect();
        let [id, _, _, name, brand, _, _, price, description, created] = fields[..] else { continue };
        // Tokens are letters and digits only: nothing to quote in an array
        // literal or escape for COPY.
        writeln!(out, "{id}\t{price}\t{created}\t{}\t{}\t{}", array(name), array(brand), array(description))
            .map_err(|e| copy_error(path, &e))?;
        rows += 1;
        if out.len() >= READ_BUFFER {
            writer.write_all(&out).map_err(|e| copy_error(path, &e))?;
            out.clear();
        }
    }
    writer.write_all(&out).map_err(|e| copy_error(path, &e))?;
    writer.finish().map_err(|e| copy_failed(path, &e))?;
    Ok(rows)
}

/// `{tok1,tok2}`: the tokens of `text` as a PostgreSQL array literal.
fn array(text: &str) -> String {
    format!("{{{}}}", esf_data::search::tokens(text).join(","))
}

/// Opens `path` and reads its header line, which must be `columns`
/// joined by tabs; returns the reader positioned at the first data line.
fn open_after_header(path: &Path, columns: &[&str]) -> Result<BufReader<File>, SchemaError> {
    let input_error = |line, message| SchemaError::Input {
        file: path.to_path_buf(),
        line,
        message,
    };
    let file = File::open(path).map_err(|e| input_error(None, format!("cannot open: {e}")))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let mut header = Vec::new();
    reader
        .read_until(b'\n', &mut header)
        .map_err(|e| input_error(None, format!("cannot read: {e}")))?;
    let expected = columns.join("\t");
    let found = String::from_utf8_lossy(&header);
    let found = found.strip_suffix('\n').unwrap_or(&found);
    if found != expected {
        return Err(input_error(
            Some(1),
            format!("expected the header {expected:?}, found {found:?}"),
        ));
    }
    Ok(reader)
}

/// A dropped index or constraint: the statement that recreates it, and
/// its table (to name the file when recreating fails on the new data).
struct Deferred {
    table: String,
    create: String,
}

/// Drops the catalog tables' foreign keys, unique constraints and plain
/// indexes, and returns them in drop order. Primary keys and CHECKs stay:
/// other tables' foreign keys need the former, the latter are cheap. Read
/// from the system catalog, so later migrations' indexes are covered too.
fn drop_deferrable(tx: &mut Transaction<'_>) -> Result<Vec<Deferred>, SchemaError> {
    let rows = tx.query(
        "SELECT relation, drop_sql, create_sql FROM (
             SELECT c.conrelid::regclass::text AS relation,
                    CASE c.contype WHEN 'f' THEN 1 ELSE 2 END AS stage,
                    format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_sql,
                    format('ALTER TABLE %s ADD CONSTRAINT %I %s',
                           c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)) AS create_sql
             FROM pg_constraint c
             WHERE c.contype IN ('f', 'u')
               AND c.conrelid IN ('categories'::regclass, 'products'::regclass, 'inventory'::regclass)
             UNION ALL
             SELECT i.indrelid::regclass::text, 3,
                    format('DROP INDEX %s', i.indexrelid::regclass),
                    pg_get_indexdef(i.indexrelid)
             FROM pg_index i
             WHERE i.indrelid IN ('categories'::regclass, 'products'::regclass, 'inventory'::regclass)
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                               WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
         ) AS deferred
         ORDER BY stage, drop_sql",
        &[],
    )?;
    let mut deferred = Vec::with_capacity(rows.len());
    for row in rows {
        tx.batch_execute(row.get(1))?;
        deferred.push(Deferred {
            table: row.get(0),
            create: row.get(2),
        });
    }
    Ok(deferred)
}

fn file_of_table(table: &str) -> &'static str {
    CATALOG
        .iter()
        .find(|catalog_file| catalog_file.table == table)
        .map_or("catalog", |catalog_file| catalog_file.file)
}

/// Streams the rest of `reader` into the table with COPY and returns the
/// number of rows. Fields are literal text, so backslashes, which COPY's
/// text format reads as escapes, are doubled on the way.
fn copy_rows(
    tx: &mut Transaction<'_>,
    catalog_file: &CatalogFile,
    path: &Path,
    mut reader: BufReader<File>,
) -> Result<u64, SchemaError> {
    let statement = format!(
        "COPY {} ({}) FROM STDIN WITH (FREEZE)",
        catalog_file.table,
        catalog_file.columns.join(", ")
    );
    let mut writer = tx.copy_in(&statement)?;
    loop {
        let chunk = reader.fill_buf().map_err(|e| SchemaError::Input {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        if chunk.is_empty() {
            break;
        }
        write_escaped(&mut writer, chunk).map_err(|e| copy_error(path, &e))?;
        let consumed = chunk.len();
        reader.consume(consumed);
    }
    writer.finish().map_err(|e| copy_failed(path, &e))
}

/// Writes `chunk` with each backslash doubled.
fn write_escaped(out: &mut impl Write, chunk: &[u8]) -> io::Result<()> {
    for (i, piece) in chunk.split(|&b| b == b'\\').enumerate() {
        if i > 0 {
            out.write_all(b"\\\\")?;
        }
        out.write_all(piece)?;
    }
    Ok(())
}

/// A write into COPY failed: the server rejected the data (the usual
/// case: its error comes back on a later write) or the connection broke.
fn copy_error(path: &Path, e: &io::Error) -> SchemaError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<postgres::Error>())
    {
        Some(pg) => copy_failed(path, pg),
        None => SchemaError::Input {
            file: path.to_path_buf(),
            line: None,
            message: format!("COPY failed: {e}"),
        },
    }
}

/// The server's COPY error with the file's line number: its context says
/// `COPY products, line 5, column price_cents: "x"`, counting data lines,
/// so the file line is one more (the header).
fn copy_failed(path: &Path, e: &postgres::Error) -> SchemaError {
    let context = e.as_db_error().and_then(|db| db.where_()).unwrap_or("");
    let (line, column) = copy_context(context);
    let message = match column {
        Some(column) => format!("column {column}: {}", describe(e)),
        None => describe(e),
    };
    SchemaError::Input {
        file: path.to_path_buf(),
        line: line.map(|data_line| data_line + 1),
        message,
    }
}

/// The data line number and column named in a COPY error context.
fn copy_context(context: &str) -> (Option<u64>, Option<&str>) {
    let Some(after_line) = context.split_once(", line ").map(|(_, rest)| rest) else {
        return (None, None);
    };
    let digits = after_line
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after_line.len());
    let line = after_line[..digits].parse().ok();
    let column = after_line[digits..]
        .strip_prefix(", column ")
        .and_then(|rest| rest.split(':').next());
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslashes_are_doubled_and_nothing_else_changes() {
        let mut out = Vec::new();
        write_escaped(&mut out, b"a\\b\t\\N\\\n").unwrap();
        assert_eq!(out, b"a\\\\b\t\\\\N\\\\\n");
        out.clear();
        write_escaped(&mut out, "café\ttoy\n".as_bytes()).unwrap();
        assert_eq!(out, "café\ttoy\n".as_bytes());
    }

    #[test]
    fn copy_context_gives_line_and_column() {
        assert_eq!(
            copy_context(r#"COPY products, line 5, column price_cents: "abc""#),
            (Some(5), Some("price_cents"))
        );
        assert_eq!(
            copy_context(r#"COPY inventory, line 12: "1	2	3""#),
            (Some(12), None)
        );
        assert_eq!(copy_context(""), (None, None));
    }

    #[test]
    fn a_wrong_header_names_the_file_and_line_one() {
        let dir = std::env::temp_dir().join(format!("esf-schema-header-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inventory.tsv");
        std::fs::write(&path, "product\ton_hand\n1\t2\n").unwrap();
        let error = open_after_header(&path, CATALOG[2].columns).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                r#"{} line 1: expected the header "product_id\ton_hand", found "product\ton_hand""#,
                path.display()
            )
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let path = Path::new("/nonexistent/products.tsv");
        let error = open_after_header(path, CATALOG[1].columns).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/nonexistent/products.tsv: cannot open: No such file or directory (os error 2)"
        );
    }
}
