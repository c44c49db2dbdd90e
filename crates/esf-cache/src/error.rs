//! The errors a cache write, removal or open can report. Reads have none:
//! every failure to read is a miss.
use std::fmt;

#[derive(Debug)]
pub enum CacheError {
    /// The cache directory or one of its small files could not be used.
    Io(std::io::Error),
    /// LMDB refused an operation.
    Lmdb(lmdb::Error),
    /// The value could not be serialized.
    Encode(postcard::Error),
    /// Keys are 1 to 511 bytes long (LMDB's key limit).
    InvalidKey,
    /// The value is too large for this cache (more than a quarter of the
    /// map); storing it would only evict everything else.
    TooLarge { bytes: usize },
    /// The map is full and neither sweeping nor emptying the cache made
    /// room: typically a reader slot left by a killed process pins the
    /// pages that would be reused (see [`readers`](crate::readers)). Puts
    /// then fail at once for a second.
    Full,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Io(e) => write!(f, "object cache I/O error: {e}"),
            CacheError::Lmdb(e) => write!(f, "object cache LMDB error: {e}"),
            CacheError::Encode(e) => write!(f, "object cache cannot serialize the value: {e}"),
            CacheError::InvalidKey => f.write_str("object cache keys must be 1 to 511 bytes long"),
            CacheError::TooLarge { bytes } => write!(f, "a {bytes}-byte value is too large for the object cache"),
            CacheError::Full => f.write_str("the object cache is full and no room could be made"),
        }
    }
}

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CacheError::Io(e) => Some(e),
            CacheError::Lmdb(e) => Some(e),
            CacheError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for CacheError {
    fn from(e: std::io::Error) -> Self {
        CacheError::Io(e)
    }
}

impl From<lmdb::Error> for CacheError {
    fn from(e: lmdb::Error) -> Self {
        CacheError::Lmdb(e)
    }
}

impl From<postcard::Error> for CacheError {
    fn from(e: postcard::Error) -> Self {
        CacheError::Encode(e)
    }
}
