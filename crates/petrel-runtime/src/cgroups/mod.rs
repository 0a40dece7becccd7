//! cgroup limits and usage for one container, on cgroup v1 or v2, detected at run time.
//!
//! A host runs one of three layouts: pure v2 (`/sys/fs/cgroup` is cgroup2), hybrid (v1
//! controllers, with an empty v2 tree at `/sys/fs/cgroup/unified`), or pure v1. Petrel uses
//! v2 only when it is the whole tree, because on hybrid hosts the controllers are bound to
//! v1. Where petrel cannot create a cgroup (an unprivileged user on v1, or v2 without
//! delegation) the container still runs, and [`Cgroup::create`] says which limits were
//! not applied and why.

mod v1;
mod v2;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::spec::Limits;

/// A limit that could not be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotApplied {
    /// `memory`, `cpus`, `cpu-weight` or `pids`.
    pub limit: &'static str,
    pub reason: String,
}

/// What the cgroup measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupUsage {
    pub peak_memory_bytes: Option<u64>,
    pub user_cpu: Option<Duration>,
    pub system_cpu: Option<Duration>,
}

/// Which cgroup layout the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    V1,
    V2,
}

/// Detects the layout: v2 only when `/sys/fs/cgroup` itself is a cgroup2 mount.
pub fn layout() -> Option<Layout> {
    const CGROUP2_SUPER_MAGIC: libc::c_long = 0x6367_7270;
    const TMPFS_MAGIC: libc::c_long = 0x0102_1994;
    const CGROUP_SUPER_MAGIC: libc::c_long = 0x0027_e0eb;
    // SAFETY: statfs is plain data; zeroed is a valid initial value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is a valid C string literal and st a valid out-pointer.
    if unsafe { libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) } != 0 {
        return None;
    }
    match st.f_type as libc::c_long {
        CGROUP2_SUPER_MAGIC => Some(Layout::V2),
        TMPFS_MAGIC | CGROUP_SUPER_MAGIC => Some(Layout::V1),
        _ => None,
    }
}

enum Backend {
    V1(v1::V1),
    V2(v2::V2),
}

/// One container's cgroup (on v1, one directory per controller hierarchy).
pub struct Cgroup {
    backend: Backend,
}

impl Cgroup {
    /// Creates a cgroup named `name` with `limits`. Returns `None` when no cgroup could be
    /// made; every requested limit that is not in force is listed with its reason.
    pub fn create(name: &str, limits: &Limits) -> (Option<Cgroup>, Vec<NotApplied>) {
        match layout() {
            Some(Layout::V2) => match v2::V2::create(name, limits) {
                Ok((cg, missed)) => (
                    Some(Cgroup {
                        backend: Backend::V2(cg),
                    }),
                    missed,
                ),
                Err(reason) => (None, all_limits(limits, &reason)),
            },
            Some(Layout::V1) => match v1::V1::create(name, limits) {
                Ok((cg, missed)) => (
                    Some(Cgroup {
                        backend: Backend::V1(cg),
                    }),
                    missed,
                ),
                Err(reason) => (None, all_limits(limits, &reason)),
            },
            None => (
                None,
                all_limits(limits, "no cgroup filesystem is mounted at /sys/fs/cgroup"),
            ),
        }
    }

    /// Moves process `pid` into the cgroup.
    pub fn add_pid(&self, pid: libc::pid_t) -> io::Result<()> {
        match &self.backend {
            Backend::V1(cg) => cg.add_pid(pid),
            Backend::V2(cg) => cg.add_pid(pid),
        }
    }

    /// How many processes the kernel's OOM killer killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        match &self.backend {
            Backend::V1(cg) => cg.oom_kills(),
            Backend::V2(cg) => cg.oom_kills(),
        }
    }

    pub fn usage(&self) -> CgroupUsage {
        match &self.backend {
            Backend::V1(cg) => cg.usage(),
            Backend::V2(cg) => cg.usage(),
        }
    }

    /// Which cgroup version this cgroup lives in.
    pub fn layout(&self) -> Layout {
        match self.backend {
            Backend::V1(_) => Layout::V1,
            Backend::V2(_) => Layout::V2,
        }
    }

    /// The cgroup's directories (one per v1 hierarchy, one on v2).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(cg) => cg.paths(),
            Backend::V2(cg) => vec![cg.path().to_path_buf()],
        }
    }
}

/// Dropping a cgroup kills whatever is left in it and removes it.
impl Drop for Cgroup {
    fn drop(&mut self) {
        for dir in self.paths() {
            kill_all(&dir);
            remove_dir(&dir);
        }
    }
}

/// The `cgroup.procs` files of the cgroups the container whose init is `init` was moved
/// into: the hierarchies where the init's cgroup differs from its parent's (the process that
/// started it, which stays where it was). Empty when the container has no cgroup of its own.
pub(crate) fn container_procs_files(init: libc::pid_t) -> Vec<PathBuf> {
    let Some(parent) = crate::procfs::parent(init).filter(|&p| p > 0) else {
        return Vec::new();
    };
    let read = |pid: libc::pid_t| -> Vec<(String, String, String)> {
        fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ':');
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                ))
            })
            .collect()
    };
    let theirs = read(parent);
    let v1_mounts = v1::mounts();
    let mut files = Vec::new();
    for (id, controllers, path) in read(init) {
        let same = theirs
            .iter()
            .any(|(i, c, p)| *i == id && *c == controllers && *p == path);
        if same {
            continue;
        }
        let mount = if id == "0" {
            cgroup2_mount()
        } else {
            controllers
                .split(',')
                .find_map(|c| v1_mounts.get(c).cloned())
        };
        if let Some(mount) = mount {
            files.push(
                mount
                    .join(path.trim_start_matches('/'))
                    .join("cgroup.procs"),
            );
        }
    }
    files
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on hybrid hosts).
fn cgroup2_mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(left.split(' ').nth(4)?))
    })
}

fn all_limits(limits: &Limits, reason: &str) -> Vec<NotApplied> {
    ["memory", "cpu", "pids"]
        .iter()
        .flat_map(|c| not_applied_for(c, limits, reason))
        .collect()
}

/// The limits that depend on `controller`, as not applied for `reason`.
pub(super) fn not_applied_for(controller: &str, limits: &Limits, reason: &str) -> Vec<NotApplied> {
    let mut out = Vec::new();
    let mut push = |set: bool, limit| {
        if set {
            out.push(NotApplied {
                limit,
                reason: reason.to_string(),
            });
        }
    };
    match controller {
        "memory" => push(limits.memory_bytes.is_some(), "memory"),
        "cpu" => {
            push(limits.cpus.is_some(), "cpus");
            push(limits.cpu_weight.is_some(), "cpu-weight");
        }
        "pids" => push(limits.pids.is_some(), "pids"),
        _ => {}
    }
    out
}

/// The caller's own cgroup path in the hierarchy whose `/proc/self/cgroup` entry matches.
fn own_path(matches: impl Fn(&str, &str) -> bool) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        matches(id, controllers).then(|| path.to_string())
    })
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    fs::write(dir.join(file), value)
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`).
fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn kill_all(dir: &Path) {
    if v2::kill_with_cgroup_kill(dir) {
        return;
    }
    for _ in 0..50 {
        let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<libc::pid_t> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn remove_dir(dir: &Path) {
    // A cgroup whose last process just died can stay busy for a moment.
    for attempt in 0..200 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) if attempt == 199 => {
                tracing::warn!("could not remove cgroup {}: {e}", dir.display());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Maps a cgroup v2 CPU weight (1..=10000, default 100) to v1 shares the way systemd does:
/// proportionally, so the default weight gives the default 1024 shares.
fn weight_to_shares(weight: u32) -> u64 {
    (u64::from(weight.clamp(1, 10000)) * 1024 / 100).clamp(2, 262_144)
}

/// The CFS quota in microseconds for `cpus` CPUs over `period_us`.
fn quota_us(cpus: f64, period_us: u64) -> u64 {
    ((cpus * period_us as f64).round() as u64).max(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(weight_to_shares(1), 10);
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(10000), 102_400);
        assert_eq!(quota_us(1.5, 100_000), 150_000);
        assert_eq!(quota_us(0.001, 100_000), 1000);
    }

    #[test]
    fn all_limits_lists_only_set_ones() {
        let limits = Limits {
            memory_bytes: Some(1),
            pids: Some(3),
            ..Limits::default()
        };
        let missed = all_limits(&limits, "why");
        let names: Vec<_> = missed.iter().map(|m| m.limit).collect();
        assert_eq!(names, ["memory", "pids"]);
    }
}
