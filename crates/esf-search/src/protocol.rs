//! esf-searchd's wire protocol: one line of UTF-8 text per request, one
//! line per reply, over a persistent Unix or TCP connection.
//!
//! ```text
//! SEARCH <sort> <page> <words…>\n   ->  OK <total> <id> <id> …\n   (at most PER_PAGE ids)
//! PING\n                            ->  PONG\n
//! STATS\n                           ->  STATS products=<n> tokens=<n> generation=<n>\n
//! anything else                     ->  ERR <reason>\n
//! ```
//!
//! `<sort>` is a [`Sort`] name, `<page>` a whole number from 1, `<words>`
//! the query's words as [`crate::query_words`] gives them, separated by
//! spaces (no word holds one). They are not cut again: lowercasing can
//! give characters that are not alphanumeric (İ's combining dot), so
//! cutting twice may split a word; a repeated word counts once. A request is at most
//! [`MAX_REQUEST`] bytes with its newline: a longer one gets an `ERR` and
//! the connection is closed, since the rest of it cannot be told from the
//! next request. Every other malformed request gets an `ERR` and the
//! connection carries on. Text because it is easy to read in a trace and
//! to type into `nc`; a reply is a few hundred bytes, so nothing is gained
//! by packing it.
use crate::index::Found;
use crate::text::{Sort, PER_PAGE};

/// The longest request line, newline included. Larger than any query
/// httpd lets through (its request line is at most 8 KiB, and lowercasing
/// grows text by at most half).
pub const MAX_REQUEST: usize = 16 * 1024;

/// The longest reply line: 24 ids of at most 11 characters and a total.
pub const MAX_REPLY: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Search { sort: Sort, page: u32, words: Vec<String> },
    Ping,
    Stats,
}

/// Reads one request line (without its `\n`; a `\r` before it is ignored).
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| "the request is not UTF-8".to_string())?;
    let (command, rest) = text.split_once(' ').unwrap_or((text, ""));
    match command {
        "SEARCH" => {
            let mut fields = rest.splitn(3, ' ');
            let sort_name = fields.next().unwrap_or("");
            let sort = Sort::parse(sort_name).ok_or_else(|| format!("unknown sort {sort_name:?}: expected relevance, price_asc, price_desc or newest"))?;
            let page_text = fields.next().unwrap_or("");
            let page = Some(page_text)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| *p >= 1)
                .ok_or_else(|| format!("bad page {page_text:?}: expected a whole number from 1"))?;
            let mut words: Vec<String> = Vec::new();
            for word in fields.next().unwrap_or("").split(' ').filter(|w| !w.is_empty()) {
                if !words.iter().any(|known| known == word) {
                    words.push(word.to_string());
                }
            }
            Ok(Request::Search { sort, page, words })
        }
        "PING" if rest.is_empty() => Ok(Request::Ping),
        "STATS" if rest.is_empty() => Ok(Request::Stats),
        "" => Err("empty request".into()),
        "PING" | "STATS" => Err(format!("{command} takes no arguments")),
        _ => Err(format!("unknown command {:?}: expected SEARCH, PING or STATS", truncated(command, 40))),
    }
}

/// The request line for a search (with its newline).
pub fn search_request(words: &[String], sort: Sort, page: u32) -> String {
    let mut line = format!("SEARCH {sort} {page}");
    for word in words {
        line.push(' ');
        line.push_str(word);
    }
    line.push('\n');
    line
}

/// The reply to a search.
pub fn found_reply(found: &Found) -> String {
    let mut line = format!("OK {}", found.total);
    for id in &found.ids {
        line.push(' ');
        line.push_str(&id.to_string());
    }
    line.push('\n');
    line
}

/// The reply to a request the daemon refuses: one line whatever `reason` holds.
pub fn error_reply(reason: &str) -> String {
    format!("ERR {}\n", reason.replace(['\n', '\r'], " "))
}

/// Reads a reply to a search: `Ok(Ok(found))`, `Ok(Err(reason))` for an
/// `ERR`, or `Err` for a line that is neither.
pub fn parse_search_reply(line: &str) -> Result<Result<Found, String>, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if let Some(reason) = line.strip_prefix("ERR ") {
        return Ok(Err(reason.to_string()));
    }
    let bad = || format!("unexpected reply {:?}", truncated(line, 80));
    let mut fields = line.split(' ');
    if fields.next() != Some("OK") {
        return Err(bad());
    }
    let total = fields.next().and_then(|t| t.parse::<u64>().ok()).ok_or_else(bad)?;
    let ids = fields.map(|id| id.parse::<i32>()).collect::<Result<Vec<i32>, _>>().map_err(|_| bad())?;
    if ids.len() > PER_PAGE as usize || ids.len() as u64 > total {
        return Err(bad());
    }
    Ok(Ok(Found { total, ids }))
}

fn truncated(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_round_trip() {
        let words = vec!["zebra".to_string(), "café".to_string()];
        let line = search_request(&words, Sort::PriceDesc, 3);
        assert_eq!(line, "SEARCH price_desc 3 zebra café\n");
        assert_eq!(parse_request(line.trim_end().as_bytes()), Ok(Request::Search { sort: Sort::PriceDesc, page: 3, words }));
        let found = Found { total: 120, ids: vec![5, -3, 7] };
        assert_eq!(parse_search_reply(&found_reply(&found)), Ok(Ok(found)));
        assert_eq!(parse_search_reply("OK 0\n"), Ok(Ok(Found { total: 0, ids: vec![] })));
        assert_eq!(parse_search_reply(&error_reply("bad\nthing")), Ok(Err("bad thing".into())));
    }

    #[test]
    fn words_travel_as_they_are_once_each() {
        assert_eq!(
            parse_request("SEARCH relevance 1 zebra  i\u{307}stanbul zebra crossing\r".as_bytes()),
            Ok(Request::Search { sort: Sort::Relevance, page: 1, words: vec!["zebra".into(), "i\u{307}stanbul".into(), "crossing".into()] })
        );
        assert_eq!(parse_request(b"SEARCH newest 2"), Ok(Request::Search { sort: Sort::Newest, page: 2, words: vec![] }));
        assert_eq!(parse_request(b"PING"), Ok(Request::Ping));
        assert_eq!(parse_request(b"STATS"), Ok(Request::Stats));
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        for (line, reason) in [
            (&b""[..], "empty request"),
            (b"search relevance 1 x", "unknown command"),
            (b"SEARCH", "unknown sort"),
            (b"SEARCH Relevance 1 x", "unknown sort"),
            (b"SEARCH relevance", "bad page"),
            (b"SEARCH relevance 0 x", "bad page"),
            (b"SEARCH relevance -1 x", "bad page"),
            (b"SEARCH relevance +1 x", "bad page"),
            (b"SEARCH relevance 99999999999 x", "bad page"),
            (b"SEARCH relevance  1 x", "bad page"),
            (b"PING me", "takes no arguments"),
            (b"SEARCH relevance 1 \xff\xfe", "not UTF-8"),
            (b"GET / HTTP/1.1", "unknown command"),
        ] {
            let error = parse_request(line).expect_err(&String::from_utf8_lossy(line));
            assert!(error.contains(reason), "{:?}: {error}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn replies_that_make_no_sense_are_protocol_errors() {
        for line in ["", "OK", "OK x", "OK 1 2 3", "PONG", "OK 5 1 x", "HTTP/1.1 400 Bad Request"] {
            assert!(parse_search_reply(line).is_err(), "{line:?}");
        }
        let too_many: String = format!("OK 100{}", " 1".repeat(25));
        assert!(parse_search_reply(&too_many).is_err());
    }
}
