//! Processes by pid, read from /proc: liveness, children, signals and a
//! bounded "wait, then SIGKILL". Always by pid, never by name: other tests
//! run their own httpd and postgres instances in parallel.
use std::fs;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// State letter and parent pid from /proc/<pid>/stat.
fn stat(pid: i32) -> Option<(char, i32)> {
    stat_with_group(pid).map(|(state, ppid, _)| (state, ppid))
}

/// State letter, parent pid and process group from /proc/<pid>/stat.
fn stat_with_group(pid: i32) -> Option<(char, i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Live (not zombie) processes of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_with_group(pid).is_some_and(|(state, _, pgrp)| pgrp == pgid && state != 'Z'))
        .collect()
}

/// True while `pid` exists and is not a zombie (an exited process whose
/// parent, maybe init, has not reaped it yet counts as gone).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// Live processes whose parent is `ppid`.
pub fn children_of(ppid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| matches!(stat(pid), Some((state, parent)) if parent == ppid && state != 'Z'))
        .collect()
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

pub fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Waits up to `grace` for every pid to be gone, then SIGKILLs the rest.
pub fn wait_or_kill(pids: &[i32], grace: Duration) {
    let deadline = Instant::now() + grace;
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    for &pid in pids.iter().filter(|&&p| alive(p)) {
        signal(pid, libc::SIGKILL);
    }
}
