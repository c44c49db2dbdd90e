//! `esf`: mod_esf's command line.
//!
//! ```text
//! esf migrate --database CONNINFO
//! esf import --database CONNINFO DIR
//! esf purge --cache-root DIR [--key-base URL] PATH|URL...
//! ```
//!
//! CONNINFO is a libpq connection string (`host=... dbname=...` or a
//! `postgresql://` URL), or the environment variable ESF_DATABASE. Exit
//! status: 0 done, 1 failed (one line on stderr), 2 bad usage.
use clap::{Args, Parser, Subcommand};
use esf_schema::postgres::{Client, NoTls};
use esf_schema::SchemaError;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use esf_data::page_cache;

#[derive(Parser)]
#[command(
    name = "esf",
    version,
    about = "mod_esf's command line: schema and catalog"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the schema migrations the database lacks.
    Migrate {
        #[command(flatten)]
        database: Database,
    },
    /// Replace the catalog with categories.tsv, products.tsv and
    /// inventory.tsv from DIR (as written by gen_catalog.py).
    Import {
        #[command(flatten)]
        database: Database,
        /// Directory holding the TSV files.
        dir: PathBuf,
    },
    /// Remove pages from the front proxy's page cache (mod_cache_disk) at
    /// once; the next request for them goes to an app server.
    Purge {
        /// The proxy's CacheRoot.
        #[arg(long, value_name = "DIR", env = "ESF_PAGE_CACHE")]
        cache_root: PathBuf,
        /// The proxy's CacheKeyBaseURL.
        #[arg(long, value_name = "URL", default_value = page_cache::DEFAULT_KEY_BASE)]
        key_base: String,
        /// Pages to remove: paths (/store/product/12) or URLs.
        #[arg(required = true, value_name = "PATH|URL")]
        pages: Vec<String>,
    },
}

#[derive(Args)]
struct Database {
    /// libpq connection string or postgresql:// URL.
    #[arg(long = "database", value_name = "CONNINFO", env = "ESF_DATABASE")]
    conninfo: String,
}

impl Database {
    fn connect(&self) -> Result<Client, String> {
        Client::connect(&self.conninfo, NoTls)
            .map_err(|e| format!("cannot connect to the database: {}", SchemaError::from(e)))
    }
}

fn main() -> ExitCode {
    // clap exits with 2 on bad usage and 0 after --help/--version.
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("esf: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Purge { cache_root, key_base, pages } => {
            let keys = pages.iter().map(|page| page_cache::cache_key(&key_base, page)).collect::<Result<Vec<_>, _>>()?;
            let purged = page_cache::purge(&cache_root, &keys)?;
            for key in &purged.removed {
                println!("purged {key}");
            }
            for key in &purged.not_cached {
                println!("not cached {key}");
            }
        }
        Command::Migrate { database } => {
            let mut client = database.connect()?;
            let applied = esf_schema::migrate(&mut client).map_err(|e| e.to_string())?;
            if applied.is_empty() {
                println!("schema is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
        }
        Command::Import { database, dir } => {
            let mut client = database.connect()?;
            let started = Instant::now();
            let counts =
                esf_schema::import_catalog(&mut client, &dir).map_err(|e| e.to_string())?;
            println!(
                "imported {} categories, {} products, {} inventory rows in {:.2} s",
                counts.categories,
                counts.products,
                counts.inventory,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
