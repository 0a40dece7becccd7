//! cgroup v1: one directory per controller hierarchy, each a child of the caller's own cgroup
//! in that hierarchy (so limits nest inside whatever confines the caller).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    not_applied_for, own_path, quota_us, read_key, read_u64, weight_to_shares, write, CgroupUsage,
    NotApplied,
};
use crate::spec::Limits;

pub(super) struct V1 {
    /// controller name → the container's directory in that controller's hierarchy.
    dirs: BTreeMap<&'static str, PathBuf>,
}

/// Mount points of the v1 hierarchies, by controller (and `name=` option), from
/// `/proc/self/mountinfo`.
pub(super) fn mounts() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return out;
    };
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut rfields = right.split(' ');
        if rfields.next() != Some("cgroup") {
            continue;
        }
        let _source = rfields.next();
        let options = rfields.next().unwrap_or("");
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        for opt in options.split(',') {
            out.insert(opt.to_string(), PathBuf::from(mount_point));
        }
    }
    out
}

impl V1 {
    pub(super) fn create(name: &str, limits: &Limits) -> Result<(V1, Vec<NotApplied>), String> {
        let mounts = mounts();
        let mut wanted: Vec<&'static str> = vec!["memory", "cpuacct"];
        if limits.cpus.is_some() || limits.cpu_weight.is_some() {
            wanted.push("cpu");
        }
        if limits.pids.is_some() {
            wanted.push("pids");
        }
        let mut cg = V1 {
            dirs: BTreeMap::new(),
        };
        let mut missed = Vec::new();
        for controller in wanted {
            let Some(mount) = mounts.get(controller) else {
                missed.extend(not_applied_for(
                    controller,
                    limits,
                    "the controller is not mounted",
                ));
                continue;
            };
            let own = own_path(|_, ctrls| ctrls.split(',').any(|c| c == controller))
                .unwrap_or_else(|| "/".into());
            let dir = mount.join(own.trim_start_matches('/')).join(name);
            match fs::create_dir(&dir) {
                Ok(()) => {
                    cg.dirs.insert(controller, dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    cg.dirs.insert(controller, dir);
                }
                Err(e) => {
                    // SAFETY: getuid has no preconditions.
                    let uid = unsafe { libc::getuid() };
                    let reason = format!(
                        "cannot create {} ({e}): cgroup v1 is not delegated to uid {uid}",
                        dir.display()
                    );
                    missed.extend(not_applied_for(controller, limits, &reason));
                }
            }
        }
        if cg.dirs.is_empty() {
            return Err(missed
                .first()
                .map(|m| m.reason.clone())
                .unwrap_or_else(|| "no cgroup v1 controller is usable".into()));
        }
        missed.extend(cg.apply(limits));
        Ok((cg, missed))
    }

    fn apply(&self, limits: &Limits) -> Vec<NotApplied> {
        let mut missed = Vec::new();
        let mut attempt = |controller: &str, limit: &'static str, file: &str, value: String| {
            if let Some(dir) = self.dirs.get(controller) {
                if let Err(e) = write(dir, file, &value) {
                    missed.push(NotApplied {
                        limit,
                        reason: format!("writing {value} to {}: {e}", dir.join(file).display()),
                    });
                }
            }
        };
        if let Some(bytes) = limits.memory_bytes {
            attempt(
                "memory",
                "memory",
                "memory.limit_in_bytes",
                bytes.to_string(),
            );
        }
        if let Some(cpus) = limits.cpus {
            attempt("cpu", "cpus", "cpu.cfs_period_us", "100000".into());
            attempt(
                "cpu",
                "cpus",
                "cpu.cfs_quota_us",
                quota_us(cpus, 100_000).to_string(),
            );
        }
        if let Some(weight) = limits.cpu_weight {
            attempt(
                "cpu",
                "cpu-weight",
                "cpu.shares",
                weight_to_shares(weight).to_string(),
            );
        }
        if let Some(pids) = limits.pids {
            attempt("pids", "pids", "pids.max", pids.to_string());
        }
        if let (Some(bytes), Some(dir)) = (limits.memory_bytes, self.dirs.get("memory")) {
            // No swap on top of the limit: memsw exists only with swap accounting on; without
            // it, swappiness 0 keeps the job in RAM as far as v1 allows.
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                if let Err(e) = fs::write(&memsw, bytes.to_string()) {
                    tracing::info!("swap not limited ({}): {e}", memsw.display());
                }
            } else if let Err(e) = write(dir, "memory.swappiness", "0") {
                tracing::debug!("memory.swappiness not set: {e}");
            }
        }
        missed
    }

    pub(super) fn add_pid(&self, pid: libc::pid_t) -> io::Result<()> {
        for dir in self.dirs.values() {
            write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    pub(super) fn oom_kills(&self) -> u64 {
        self.dirs
            .get("memory")
            .and_then(|d| read_key(&d.join("memory.oom_control"), "oom_kill"))
            .unwrap_or(0)
    }

    pub(super) fn usage(&self) -> CgroupUsage {
        let mut usage = CgroupUsage::default();
        if let Some(dir) = self.dirs.get("memory") {
            usage.peak_memory_bytes = read_u64(&dir.join("memory.max_usage_in_bytes"));
        }
        if let Some(dir) = self.dirs.get("cpuacct") {
            let ns = |f: &str| read_u64(&dir.join(f)).map(Duration::from_nanos);
            usage.user_cpu = ns("cpuacct.usage_user");
            usage.system_cpu = ns("cpuacct.usage_sys");
            if usage.user_cpu.is_none() {
                // SAFETY: sysconf has no preconditions.
                let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
                let ticks = |k| read_key(&dir.join("cpuacct.stat"), k);
                usage.user_cpu = ticks("user").map(|t| Duration::from_secs_f64(t as f64 / hz));
                usage.system_cpu = ticks("system").map(|t| Duration::from_secs_f64(t as f64 / hz));
            }
        }
        usage
    }

    pub(super) fn paths(&self) -> Vec<PathBuf> {
        self.dirs.values().cloned().collect()
    }
}
