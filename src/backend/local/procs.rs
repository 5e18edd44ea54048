//! Small /proc helpers: which processes are ours, and stopping them by process group.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The argv of `pid`, or `None` when it is gone.
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
}

/// State letter and process group, from /proc/<pid>/stat.
fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// True while `pid` exists and is not a zombie (a zombie has already let go of everything).
pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((s, _)) if s != 'Z' && s != 'X')
}

pub fn pgrp(pid: i32) -> Option<i32> {
    stat(pid).map(|(_, g)| g)
}

/// True when `pid` is alive and its argv mentions `needle` (our cluster dir): a recycled pid of
/// some other program never matches.
pub fn alive_and_ours(pid: i32, needle: &str) -> bool {
    alive(pid) && cmdline(pid).is_some_and(|argv| argv.iter().any(|a| a.contains(needle)))
}

pub fn read_pid_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok().filter(|p: &i32| *p > 1)
}

fn all_pids() -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Live processes whose argv mentions `needle`, excluding ourselves.
pub fn find_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids().into_iter().filter(|&p| p != me && alive_and_ours(p, needle)).collect()
}

fn group_members(pgid: i32) -> Vec<i32> {
    all_pids().into_iter().filter(|&p| alive(p) && pgrp(p) == Some(pgid)).collect()
}

pub fn signal(pid: i32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid), sig);
}

/// Stops the process group led by `leader` (a bwrap or kwok we started with its own group):
/// SIGTERM to the workload first, so it shuts down cleanly instead of being killed when bwrap
/// dies (`--die-with-parent`), then SIGKILL to whatever is left after `grace`.
pub async fn stop_group(leader: i32, grace: Duration) {
    if pgrp(leader) != Some(leader) {
        // Not a group leader any more: the pid is gone or recycled. Nothing of ours to stop.
        return;
    }
    let members = group_members(leader);
    let workload: Vec<i32> = members.iter().copied().filter(|&p| p != leader).collect();
    if workload.is_empty() {
        signal(leader, Signal::SIGTERM);
    } else {
        for p in &workload {
            signal(*p, Signal::SIGTERM);
        }
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if group_members(leader).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Kill the workload before bwrap, so bwrap reaps it: a process orphaned by a killed bwrap
    // stays a zombie wherever pid 1 does not reap (some container inits).
    for p in group_members(leader).into_iter().filter(|&p| p != leader) {
        signal(p, Signal::SIGKILL);
    }
    for _ in 0..20 {
        if group_members(leader).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = killpg(Pid::from_raw(leader), Signal::SIGKILL);
    for _ in 0..40 {
        if group_members(leader).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `pid` is gone (or a zombie), up to `timeout`.
pub async fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
