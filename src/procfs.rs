//! What /proc says about this child and its siblings (the other children of
//! the same httpd parent): whether one is still running, and its size.
use std::os::unix::process::parent_id;

/// State letter and parent pid from /proc/PID/stat.
fn state_and_parent(pid: u64) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Whether `pid` is a running child of this child's parent (an exited
/// child's pid taken by an unrelated process does not count).
pub fn is_sibling(pid: u64) -> bool {
    matches!(state_and_parent(pid), Some((state, parent)) if state != 'Z' && parent == parent_id())
}

/// Private resident memory of `pid`, in bytes (see
/// `esf_core::recycle::private_rss`).
pub fn private_rss_bytes(pid: u64) -> Option<u64> {
    esf_core::recycle::private_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Private resident memory of this process, in bytes.
pub fn own_private_rss_bytes() -> Option<u64> {
    esf_core::recycle::private_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}
