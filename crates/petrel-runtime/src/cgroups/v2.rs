//! cgroup v2: one directory, created as a sibling of the caller's own cgroup.
//!
//! Not a child: v2's "no internal processes" rule forbids enabling controllers below a cgroup
//! that holds processes, and the caller's own cgroup holds at least the caller. Its parent
//! usually holds none, already delegates the controllers (that is how the caller's cgroup
//! got them), and is writable wherever the caller's cgroup is delegated (systemd's
//! `user@UID.service` subtree for unprivileged users).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    not_applied_for, own_path, quota_us, read_key, read_u64, write, CgroupUsage, NotApplied,
};
use crate::spec::Limits;

const ROOT: &str = "/sys/fs/cgroup";

pub(super) struct V2 {
    dir: PathBuf,
}

impl V2 {
    pub(super) fn create(name: &str, limits: &Limits) -> Result<(V2, Vec<NotApplied>), String> {
        let own = own_path(|id, _| id == "0").ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
        let own_dir = Path::new(ROOT).join(own.trim_start_matches('/'));
        let parent = if own == "/" {
            own_dir.clone()
        } else {
            own_dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or(own_dir.clone())
        };
        let mut needed = vec!["memory", "cpu"];
        if limits.pids.is_some() {
            needed.push("pids");
        }
        let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let mut missed = Vec::new();
        for controller in needed {
            if enabled.split_whitespace().any(|c| c == controller) {
                continue;
            }
            if let Err(e) = write(&parent, "cgroup.subtree_control", &format!("+{controller}")) {
                let reason = format!(
                    "controller {controller} is not delegated to {} ({e})",
                    parent.display()
                );
                missed.extend(not_applied_for(controller, limits, &reason));
            }
        }
        let dir = parent.join(name);
        if let Err(e) = fs::create_dir(&dir) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                // SAFETY: getuid has no preconditions.
                let uid = unsafe { libc::getuid() };
                return Err(format!(
                    "cannot create {} ({e}): cgroup v2 is not delegated to uid {uid}; run under \
                     `systemd-run --user --scope -p Delegate=yes`",
                    dir.display()
                ));
            }
        }
        let cg = V2 { dir };
        let already: Vec<&str> = missed.iter().map(|m| m.limit).collect();
        let more: Vec<NotApplied> = cg
            .apply(limits)
            .into_iter()
            .filter(|m| !already.contains(&m.limit))
            .collect();
        missed.extend(more);
        Ok((cg, missed))
    }

    fn apply(&self, limits: &Limits) -> Vec<NotApplied> {
        let mut missed = Vec::new();
        let mut attempt = |limit: &'static str, file: &str, value: String| {
            if let Err(e) = write(&self.dir, file, &value) {
                missed.push(NotApplied {
                    limit,
                    reason: format!("writing {value} to {}: {e}", self.dir.join(file).display()),
                });
            }
        };
        if let Some(bytes) = limits.memory_bytes {
            attempt("memory", "memory.max", bytes.to_string());
        }
        if let Some(cpus) = limits.cpus {
            attempt(
                "cpus",
                "cpu.max",
                format!("{} 100000", quota_us(cpus, 100_000)),
            );
        }
        if let Some(weight) = limits.cpu_weight {
            attempt(
                "cpu-weight",
                "cpu.weight",
                weight.clamp(1, 10000).to_string(),
            );
        }
        if let Some(pids) = limits.pids {
            attempt("pids", "pids.max", pids.to_string());
        }
        if limits.memory_bytes.is_some() && self.dir.join("memory.swap.max").exists() {
            if let Err(e) = write(&self.dir, "memory.swap.max", "0") {
                tracing::info!("swap not limited: {e}");
            }
        }
        missed
    }

    pub(super) fn add_pid(&self, pid: libc::pid_t) -> io::Result<()> {
        write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    pub(super) fn oom_kills(&self) -> u64 {
        read_key(&self.dir.join("memory.events"), "oom_kill").unwrap_or(0)
    }

    pub(super) fn usage(&self) -> CgroupUsage {
        let usec = |k| read_key(&self.dir.join("cpu.stat"), k).map(Duration::from_micros);
        CgroupUsage {
            peak_memory_bytes: read_u64(&self.dir.join("memory.peak")),
            user_cpu: usec("user_usec"),
            system_cpu: usec("system_usec"),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.dir
    }
}

/// Kills every process in a v2 cgroup at once with `cgroup.kill` (Linux 5.14); false when
/// the file does not exist (v1, or an older kernel).
pub(super) fn kill_with_cgroup_kill(dir: &Path) -> bool {
    let file = dir.join("cgroup.kill");
    file.exists() && fs::write(file, "1").is_ok()
}
