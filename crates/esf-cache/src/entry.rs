//! The stored form of one cache entry: a fixed 19-byte header, then the
//! postcard-serialized value.
//!
//! ```text
//! offset  size  field
//!      0     1  layout of this header (LAYOUT_V1)
//!      1     2  format version chosen by the caller per type (u16 LE)
//!      3     8  stored at, unix milliseconds (u64 LE)
//!     11     8  expires at, unix milliseconds (u64 LE)
//!     19     …  postcard bytes
//! ```
//!
//! The header is read without touching the value, so expired entries and
//! other format versions cost no deserialization, and the sweeper can judge
//! an entry from its first bytes.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Lets a later version of this crate change the header and still recognise
/// (and ignore) entries written by this one.
const LAYOUT_V1: u8 = 1;
pub(crate) const HEADER_LEN: usize = 19;

/// The decoded header of a stored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub format: u16,
    pub stored_at_ms: u64,
    pub expires_at_ms: u64,
}

impl Header {
    /// Splits stored bytes into header and value bytes; `None` for anything
    /// that was not written by this layout.
    pub fn parse(bytes: &[u8]) -> Option<(Header, &[u8])> {
        let (head, body) = bytes.split_at_checked(HEADER_LEN)?;
        if head[0] != LAYOUT_V1 {
            return None;
        }
        let header = Header {
            format: u16::from_le_bytes([head[1], head[2]]),
            stored_at_ms: u64::from_le_bytes(head[3..11].try_into().ok()?),
            expires_at_ms: u64::from_le_bytes(head[11..19].try_into().ok()?),
        };
        Some((header, body))
    }

    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }
}

/// Whether stored bytes are an expired entry, or unreadable (which the
/// sweeper removes as well: nothing could ever hit them).
pub(crate) fn is_dead(bytes: &[u8], now_ms: u64) -> bool {
    Header::parse(bytes).is_none_or(|(header, _)| header.is_expired_at(now_ms))
}

/// Builds the stored bytes of `value`.
pub(crate) fn encode<T: Serialize + ?Sized>(
    format: u16,
    value: &T,
    stored_at_ms: u64,
    expires_at_ms: u64,
) -> Result<Vec<u8>, postcard::Error> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 64);
    bytes.push(LAYOUT_V1);
    bytes.extend_from_slice(&format.to_le_bytes());
    bytes.extend_from_slice(&stored_at_ms.to_le_bytes());
    bytes.extend_from_slice(&expires_at_ms.to_le_bytes());
    // to_io appends with extend_from_slice (a memcpy per string or byte
    // run); to_extend would push byte by byte.
    postcard::to_io(value, bytes)
}

/// Decodes value bytes, demanding that they are consumed exactly: trailing
/// bytes mean the value was written as some other type.
pub(crate) fn decode_value<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    // A Deserialize impl is caller code; a panic in it must still read as
    // a miss rather than take the request (or the child) down.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| postcard::take_from_bytes::<T>(body)));
    match decoded {
        Ok(Ok((value, []))) => Some(value),
        _ => None,
    }
}

pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

pub(crate) fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let bytes = encode(7, &"hello", 1_000, 2_000).unwrap();
        let (header, body) = Header::parse(&bytes).unwrap();
        assert_eq!(header, Header { format: 7, stored_at_ms: 1_000, expires_at_ms: 2_000 });
        assert_eq!(decode_value::<String>(body).as_deref(), Some("hello"));
        assert!(!header.is_expired_at(1_999));
        assert!(header.is_expired_at(2_000));
    }

    #[test]
    fn short_or_foreign_bytes_have_no_header() {
        assert!(Header::parse(b"").is_none());
        assert!(Header::parse(&[LAYOUT_V1; HEADER_LEN - 1]).is_none());
        let mut foreign = encode(1, &1u8, 0, u64::MAX).unwrap();
        foreign[0] = 99;
        assert!(Header::parse(&foreign).is_none());
        assert!(is_dead(&foreign, 0));
    }

    #[test]
    fn trailing_bytes_do_not_decode() {
        let body = postcard::to_stdvec(&(1u32, 2u32)).unwrap();
        assert_eq!(decode_value::<(u32, u32)>(&body), Some((1, 2)));
        assert_eq!(decode_value::<u32>(&body), None);
    }
}
