//! Per-user throttling (`EsfThrottle N/SECONDS`): at most N requests per
//! session (or, without one, per client address) in each window of SECONDS.
//!
//! The counters live in a table of 64-bit atomics that the module puts in
//! memory shared by every child of the server, so a user is counted once
//! however their requests are spread. Each slot packs a 24-bit fingerprint
//! of the user, a 20-bit window number and a 20-bit count, updated with a
//! compare-and-swap: no lock, no system call. Two users whose keys land in
//! the same slot reset each other's count, which errs on the side of
//! letting requests through.
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Throttle;

const COUNT_BITS: u32 = 20;
const WINDOW_BITS: u32 = 20;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const WINDOW_MASK: u64 = (1 << WINDOW_BITS) - 1;

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit: retry after this many seconds (the window's end).
    Limited { retry_after: u64 },
}

/// The shared table of counters.
pub struct Counters<'a> {
    slots: &'a [AtomicU64],
}

impl<'a> Counters<'a> {
    pub fn new(slots: &'a [AtomicU64]) -> Counters<'a> {
        assert!(!slots.is_empty());
        Counters { slots }
    }

    /// Counts one request of `user` at unix time `now` (seconds).
    pub fn hit(&self, rule: Throttle, user: &str, now: u64) -> Verdict {
        let hash = fingerprint(user);
        let slot = &self.slots[(hash as usize) % self.slots.len()];
        let tag = (hash >> 40) & ((1 << 24) - 1);
        let window_number = now / u64::from(rule.seconds);
        let window = window_number & WINDOW_MASK;
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let same = current >> (COUNT_BITS + WINDOW_BITS) == tag && (current >> COUNT_BITS) & WINDOW_MASK == window;
            let count = if same { current & COUNT_MASK } else { 0 };
            if count >= u64::from(rule.requests) {
                let retry_after = (window_number + 1) * u64::from(rule.seconds) - now;
                return Verdict::Limited { retry_after: retry_after.max(1) };
            }
            let next = (tag << (COUNT_BITS + WINDOW_BITS)) | (window << COUNT_BITS) | (count + 1).min(COUNT_MASK);
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Verdict::Allowed,
                Err(actual) => current = actual,
            }
        }
    }
}

fn fingerprint(user: &str) -> u64 {
    // std's SipHash with fixed keys: the same in every child.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(0x6573_665f_7468_726f, 0x7474_6c65_5f76_3031);
    user.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<AtomicU64> {
        (0..1024).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn limits_each_user_per_window() {
        let slots = table();
        let counters = Counters::new(&slots);
        let rule = Throttle { requests: 3, seconds: 10 };
        let t = 1_000_003; // 3 s into a window
        for _ in 0..3 {
            assert_eq!(counters.hit(rule, "alice", t), Verdict::Allowed);
        }
        assert_eq!(counters.hit(rule, "alice", t + 1), Verdict::Limited { retry_after: 6 });
        assert_eq!(counters.hit(rule, "bob", t), Verdict::Allowed, "others carry on");
        assert_eq!(counters.hit(rule, "alice", t + 7), Verdict::Allowed, "a new window");
    }

    #[test]
    fn threads_count_together() {
        let slots = table();
        let counters = Counters::new(&slots);
        let rule = Throttle { requests: 1000, seconds: 60 };
        let allowed = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..500 {
                        if counters.hit(rule, "carol", 120) == Verdict::Allowed {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.load(Ordering::Relaxed), 1000);
    }
}
