//! The schema migrations of `sql/`, applied in order, each once, each in
//! its own transaction, recorded in `schema_migrations`.
//!
//! Every app server migrates at startup, so several may run this at once:
//! each transaction first takes one advisory lock, which serialises them,
//! and only then reads what is applied (READ COMMITTED gives the statement
//! after the lock a snapshot that includes the other server's commit).
use crate::SchemaError;
use postgres::{Client, Transaction};

/// One file of `sql/`: `NNN_name.sql`, with version NNN.
#[derive(Debug)]
pub struct Migration {
    pub version: i32,
    /// The file name without `.sql`, e.g. `001_catalog`.
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../../sql/", $name, ".sql")),
        }
    };
}

/// Every migration, in the order they apply. A unit test checks that this
/// list and the files in `sql/` agree.
pub static MIGRATIONS: &[Migration] = &[
    migration!(1, "001_catalog"),
    migration!(2, "002_sessions_orders"),
    migration!(3, "003_cache_notifications"),
    migration!(4, "004_cache_change_log"),
    migration!(5, "005_search"),
];

/// pg_advisory_xact_lock key shared by every migrating process: the bytes
/// of "esf_migr".
const MIGRATION_LOCK: i64 = 0x6573_665f_6d69_6772;

const CREATE_SCHEMA_MIGRATIONS: &str = "
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version    int PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )";

/// Applies the migrations that the database lacks and returns their names
/// in the order applied (empty when the schema was up to date).
pub fn migrate(client: &mut Client) -> Result<Vec<String>, SchemaError> {
    // Under the lock too: two concurrent CREATE TABLE IF NOT EXISTS can
    // both find no table and one then fails on the catalog's unique index.
    let mut tx = client.transaction()?;
    lock(&mut tx)?;
    tx.batch_execute(CREATE_SCHEMA_MIGRATIONS)?;
    tx.commit()?;

    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        let mut tx = client.transaction()?;
        lock(&mut tx)?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&migration.version],
            )?
            .is_some();
        if done {
            continue;
        }
        tx.batch_execute(migration.sql)
            .map_err(|source| SchemaError::Migration {
                name: migration.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )?;
        tx.commit()?;
        applied.push(migration.name.to_string());
    }
    Ok(applied)
}

fn lock(tx: &mut Transaction<'_>) -> Result<(), postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_list_names_every_file_in_sql_in_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".sql").map(str::to_string))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn versions_are_the_file_numbers_and_increase() {
        let mut previous = 0;
        for migration in MIGRATIONS {
            let (number, _) = migration.name.split_once('_').unwrap();
            assert_eq!(number.len(), 3, "{}", migration.name);
            assert_eq!(number.parse::<i32>().unwrap(), migration.version);
            assert!(migration.version > previous, "{}", migration.name);
            previous = migration.version;
        }
    }
}
