//! The one error type of this crate, worded for a one-line message.
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum SchemaError {
    /// The server refused a statement or the connection failed.
    Database(postgres::Error),
    /// A migration's SQL failed; its transaction was rolled back.
    Migration {
        name: &'static str,
        source: postgres::Error,
    },
    /// A catalog file is missing, unreadable or has bad content. `line` is
    /// 1-based, the header being line 1.
    Input {
        file: PathBuf,
        line: Option<u64>,
        message: String,
    },
    /// The catalog tables do not exist yet.
    NotMigrated,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Database(e) => write!(f, "{}", describe(e)),
            SchemaError::Migration { name, source } => {
                write!(f, "migration {name} failed: {}", describe(source))
            }
            SchemaError::Input {
                file,
                line: Some(line),
                message,
            } => write!(f, "{} line {line}: {message}", file.display()),
            SchemaError::Input {
                file,
                line: None,
                message,
            } => write!(f, "{}: {message}", file.display()),
            SchemaError::NotMigrated => {
                write!(f, "the catalog tables are missing: run `esf migrate` first")
            }
        }
    }
}

impl std::error::Error for SchemaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SchemaError::Database(e) | SchemaError::Migration { source: e, .. } => Some(e),
            SchemaError::Input { .. } | SchemaError::NotMigrated => None,
        }
    }
}

impl From<postgres::Error> for SchemaError {
    fn from(e: postgres::Error) -> Self {
        SchemaError::Database(e)
    }
}

/// One line: a server error's message and detail (its Display spreads
/// them over several lines), or a client error with its causes
/// (its Display alone says only "error connecting to server").
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        };
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(next) = cause {
        text = format!("{text}: {next}");
        cause = next.source();
    }
    text
}
