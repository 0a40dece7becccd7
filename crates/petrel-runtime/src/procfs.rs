//! What the caller reads about a container's processes from the host's `/proc`: the
//! process tree below its init (every process of a pid namespace descends from its init,
//! since orphans are re-parented to it) and what those processes used.

use std::collections::BTreeSet;
use std::fs;

/// The value of `key` in `/proc/PID/status` (`PPid`, `NSpid`, `VmHWM`, ...).
pub(crate) fn status_field(pid: libc::pid_t, key: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

/// The parent's pid, as this process sees it.
pub(crate) fn parent(pid: libc::pid_t) -> Option<libc::pid_t> {
    status_field(pid, "PPid")?.parse().ok()
}

/// The children of every thread of `pid`, oldest first (`/proc/PID/task/TID/children`).
pub(crate) fn children(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<libc::pid_t>().ok()),
            );
        }
    }
    out
}

/// What a tree of processes used, from their `/proc` entries.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TreeUsage {
    /// The largest peak resident set (`VmHWM`) of a process in the tree.
    pub(crate) peak_rss_bytes: Option<u64>,
    /// CPU time of the processes in the tree and of the children they reaped.
    pub(crate) user_cpu_seconds: f64,
    pub(crate) system_cpu_seconds: f64,
}

/// Sums the usage of `root` and every process below it.
pub(crate) fn tree_usage(root: libc::pid_t) -> TreeUsage {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut usage = TreeUsage::default();
    let mut seen = BTreeSet::new();
    let mut pending = vec![root];
    while let Some(pid) = pending.pop() {
        // A pid seen twice was reused while we walked; a bound keeps a fork bomb finite.
        if !seen.insert(pid) || seen.len() > 100_000 {
            continue;
        }
        if let Some((user, system)) = cpu_ticks(pid) {
            usage.user_cpu_seconds += user as f64 / hz;
            usage.system_cpu_seconds += system as f64 / hz;
        }
        let hwm = status_field(pid, "VmHWM")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024);
        usage.peak_rss_bytes = usage.peak_rss_bytes.max(hwm);
        pending.extend(children(pid));
    }
    usage
}

/// User and system CPU ticks of a process, its own plus those of the children it reaped
/// (`/proc/PID/stat` fields 14 to 17).
fn cpu_ticks(pid: libc::pid_t) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    match fields.as_slice() {
        [utime, stime, cutime, cstime] => Some((utime + cutime, stime + cstime)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_and_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let me = std::process::id() as libc::pid_t;
        let kids = children(me);
        assert!(kids.contains(&(child.id() as libc::pid_t)), "{kids:?}");
        assert_eq!(parent(child.id() as libc::pid_t), Some(me));
        let usage = tree_usage(me);
        assert!(usage.peak_rss_bytes.unwrap_or(0) > 0, "{usage:?}");
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}
