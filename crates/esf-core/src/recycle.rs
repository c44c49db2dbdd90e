//! When a child has done enough: `EsfMaxRequestsPerChild` and
//! `EsfMaxChildMemory`, like mod_wsgi's maximum-requests and
//! Apache2::SizeLimit. The module checks after each request and, past a
//! limit, lets the request finish and the child exit gracefully.
use std::fmt;

use crate::config::ServerConfig;

/// A child's limits; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_requests: Option<u64>,
    /// Resident bytes.
    pub max_memory: Option<u64>,
}

impl Limits {
    /// From the server's settings (0 means unlimited for both).
    pub fn of(config: &ServerConfig) -> Limits {
        Limits { max_requests: config.max_requests_per_child.filter(|&n| n > 0), max_memory: config.max_child_memory.filter(|&n| n > 0) }
    }

    /// Whether checking needs the child's resident size.
    pub fn watches_memory(&self) -> bool {
        self.max_memory.is_some()
    }

    /// Why a child that has served `served` requests and holds `rss` bytes
    /// (if known) should exit, if it should.
    pub fn exceeded(&self, served: u64, rss: Option<u64>) -> Option<Reason> {
        if let Some(limit) = self.max_requests.filter(|&limit| served >= limit) {
            return Some(Reason::Requests { served, limit });
        }
        match (self.max_memory, rss) {
            (Some(limit), Some(rss)) if rss > limit => Some(Reason::Memory { served, rss, limit }),
            _ => None,
        }
    }
}

/// Why a child recycles; `Display` is the error log's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Requests { served: u64, limit: u64 },
    Memory { served: u64, rss: u64, limit: u64 },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests = |n: u64| if n == 1 { "1 request".to_string() } else { format!("{n} requests") };
        match *self {
            Reason::Requests { served, limit } => write!(f, "after {} (EsfMaxRequestsPerChild {limit})", requests(served)),
            Reason::Memory { served, rss, limit } => {
                write!(f, "after {}: private RSS {} over EsfMaxChildMemory {}", requests(served), size(rss), size(limit))
            }
        }
    }
}

/// Bytes the way the directive is written: `512M`, `1.5G`, `700K`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (unit, suffix) in UNITS {
        if bytes >= unit {
            let value = bytes as f64 / unit as f64;
            return if bytes.is_multiple_of(unit) { format!("{}{suffix}", bytes / unit) } else { format!("{value:.1}{suffix}") };
        }
    }
    format!("{bytes}")
}

/// A process's private resident memory, in bytes, from the text of
/// `/proc/PID/status`: `RssAnon` (heap, stacks: what a leak grows),
/// without the file pages it maps, such as the object cache's LMDB map
/// that every child shares. `VmRSS` (everything resident) on kernels
/// before 4.5, which lack `RssAnon`.
pub fn private_rss(proc_status: &str) -> Option<u64> {
    let field = |name: &str| {
        let line = proc_status.lines().find_map(|l| l.strip_prefix(name))?;
        let kilobytes: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
        kilobytes.checked_mul(1024)
    };
    field("RssAnon:").or_else(|| field("VmRSS:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_settings_and_zero_is_none() {
        let config = ServerConfig { max_requests_per_child: Some(0), max_child_memory: Some(64 << 20), ..Default::default() };
        assert_eq!(Limits::of(&config), Limits { max_requests: None, max_memory: Some(64 << 20) });
        assert!(Limits::of(&config).watches_memory());
        assert_eq!(Limits::of(&ServerConfig::default()), Limits::default());
    }

    #[test]
    fn a_limit_is_reached_at_the_nth_request_or_past_the_size() {
        let limits = Limits { max_requests: Some(20), max_memory: Some(512 << 20) };
        assert_eq!(limits.exceeded(19, Some(100 << 20)), None);
        assert_eq!(limits.exceeded(20, None), Some(Reason::Requests { served: 20, limit: 20 }));
        assert_eq!(limits.exceeded(3, Some(600 << 20)), Some(Reason::Memory { served: 3, rss: 600 << 20, limit: 512 << 20 }));
        assert_eq!(limits.exceeded(3, Some(512 << 20)), None, "at the limit is not over it");
        assert_eq!(limits.exceeded(3, None), None, "an unknown size never recycles");
        assert_eq!(Limits::default().exceeded(u64::MAX, Some(u64::MAX)), None);
    }

    #[test]
    fn reasons_read_like_the_directives() {
        assert_eq!(Reason::Requests { served: 20, limit: 20 }.to_string(), "after 20 requests (EsfMaxRequestsPerChild 20)");
        let memory = Reason::Memory { served: 7, rss: (45 << 20) + (300 << 10), limit: 1 << 20 };
        assert_eq!(memory.to_string(), "after 7 requests: private RSS 45.3M over EsfMaxChildMemory 1M");
        assert_eq!(Reason::Memory { served: 1, rss: 2 << 20, limit: 1 << 20 }.to_string(), "after 1 request: private RSS 2M over EsfMaxChildMemory 1M");
        assert_eq!(size(512 << 20), "512M");
        assert_eq!(size(3 << 29), "1.5G");
        assert_eq!(size(900), "900");
    }

    #[test]
    fn private_resident_size_from_proc_status() {
        let status = "Name:\tapache2\nVmPeak:\t  200000 kB\nVmRSS:\t   12345 kB\nRssAnon:\t    4321 kB\nRssFile:\t    8000 kB\nThreads:\t1\n";
        assert_eq!(private_rss(status), Some(4321 * 1024), "the cache's mapped file pages are not the child's own");
        assert_eq!(private_rss("Name:\tapache2\nVmRSS:\t   12345 kB\n"), Some(12345 * 1024), "old kernels");
        assert_eq!(private_rss("Name:\tkthreadd\n"), None, "kernel threads have none");
    }
}
