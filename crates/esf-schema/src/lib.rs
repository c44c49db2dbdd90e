//! mod_esf's PostgreSQL schema: the migrations in `sql/`, embedded so that
//! the module and the `esf` CLI carry them, and the bulk import of the
//! reference catalog (SPEC.md, "Data set").
//!
//! ```no_run
//! let mut client = esf_schema::postgres::Client::connect("dbname=store", esf_schema::postgres::NoTls)?;
//! esf_schema::migrate(&mut client)?;
//! let counts = esf_schema::import_catalog(&mut client, std::path::Path::new("catalog"))?;
//! println!("{} products", counts.products);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod import;
mod migrations;

pub use error::SchemaError;
pub use import::{import_catalog, ImportCounts};
pub use migrations::{migrate, Migration, MIGRATIONS};
/// The client this crate's API takes, re-exported so that callers use the
/// same version.
pub use postgres;
