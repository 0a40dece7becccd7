//! Reading the cgroup a runtime made for a job (runc and crun at the `cgroupsPath` petrel
//! gives them, Docker under the `--cgroup-parent` petrel gives it), by its path from the
//! cgroup root, on v1 or v2.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One cgroup path in every mounted hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct CgroupPath {
    /// The path from the hierarchy root, starting with `/`.
    rel: String,
    /// `(controllers, mount point)` of each hierarchy (`""` for cgroup2).
    mounts: Vec<(String, PathBuf)>,
}

impl CgroupPath {
    pub fn new(rel: &str) -> CgroupPath {
        CgroupPath {
            rel: format!("/{}", rel.trim_start_matches('/')),
            mounts: mounts(),
        }
    }

    /// The directory in the hierarchy that has `controller` (`""`: the v2 tree).
    fn dir(&self, controller: &str) -> Option<PathBuf> {
        let unified = self
            .mounts
            .iter()
            .find(|(c, m)| c.is_empty() && m == Path::new("/sys/fs/cgroup"));
        let (_, mount) = match unified {
            // A pure v2 host: every controller lives in the one tree.
            Some(found) => found,
            None => self
                .mounts
                .iter()
                .find(|(c, _)| !c.is_empty() && c.split(',').any(|x| x == controller))?,
        };
        Some(mount.join(self.rel.trim_start_matches('/')))
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        fs::read_to_string(self.dir(controller)?.join(file)).ok()
    }

    fn read_u64(&self, controller: &str, file: &str) -> Option<u64> {
        self.read(controller, file)?.trim().parse().ok()
    }

    fn read_key(&self, controller: &str, file: &str, key: &str) -> Option<u64> {
        self.read(controller, file)?.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }

    fn v2(&self) -> bool {
        self.mounts
            .iter()
            .any(|(c, m)| c.is_empty() && m == Path::new("/sys/fs/cgroup"))
    }

    pub fn memory_bytes(&self) -> Option<u64> {
        if self.v2() {
            self.read_u64("memory", "memory.current")
        } else {
            self.read_u64("memory", "memory.usage_in_bytes")
        }
    }

    pub fn peak_memory_bytes(&self) -> Option<u64> {
        if self.v2() {
            self.read_u64("memory", "memory.peak")
        } else {
            self.read_u64("memory", "memory.max_usage_in_bytes")
        }
    }

    /// How many processes the OOM killer killed because of this cgroup's own limit.
    pub fn oom_kills(&self) -> u64 {
        if self.v2() {
            self.read_key("memory", "memory.events", "oom_kill")
        } else {
            self.read_key("memory", "memory.oom_control", "oom_kill")
        }
        .unwrap_or(0)
    }

    /// User and system CPU time.
    pub fn cpu(&self) -> (Option<Duration>, Option<Duration>) {
        if self.v2() {
            let us = |k| {
                self.read_key("cpu", "cpu.stat", k)
                    .map(Duration::from_micros)
            };
            (us("user_usec"), us("system_usec"))
        } else {
            let ns = |f| self.read_u64("cpuacct", f).map(Duration::from_nanos);
            (ns("cpuacct.usage_user"), ns("cpuacct.usage_sys"))
        }
    }

    pub fn pids(&self) -> Option<u64> {
        self.read_u64("pids", "pids.current")
    }

    /// The running job's use, as a handle's `stats` reports it.
    pub fn stats(&self) -> crate::Stats {
        let (user, system) = self.cpu();
        crate::Stats {
            memory_bytes: self.memory_bytes(),
            peak_memory_bytes: self.peak_memory_bytes(),
            user_cpu_seconds: user.map(|d| d.as_secs_f64()),
            system_cpu_seconds: system.map(|d| d.as_secs_f64()),
            pids: self.pids(),
        }
    }

    /// Removes the cgroup, with any child cgroups a runtime left in it (Podman's
    /// `conmon`), from every hierarchy; a busy one is left with a warning.
    pub fn remove(&self) {
        for (_, mount) in &self.mounts {
            let dir = mount.join(self.rel.trim_start_matches('/'));
            if dir.is_dir() {
                remove_tree(&dir);
            }
        }
    }
}

/// Removes cgroup `dir` and its child cgroups, deepest first. (A cgroup directory holds
/// only control files and child cgroups, and `rmdir` takes it with its control files.)
fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    for _ in 0..100 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            // A cgroup whose last process just died stays busy for a moment.
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    tracing::warn!("could not remove cgroup {}", dir.display());
}

/// Mounted cgroup hierarchies from `/proc/self/mountinfo`.
fn mounts() -> Vec<(String, PathBuf)> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let _source = r.next();
            let options = r.next().unwrap_or("");
            let mount_point = PathBuf::from(left.split(' ').nth(4)?);
            match fstype {
                "cgroup2" => Some((String::new(), mount_point)),
                "cgroup" => {
                    let controllers: Vec<&str> = options
                        .split(',')
                        .filter(|o| {
                            !matches!(*o, "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime")
                        })
                        .collect();
                    Some((controllers.join(","), mount_point))
                }
                _ => None,
            }
        })
        .collect()
}

/// The first of `files` found in any of `dirs` (one cgroup's directories), as a number.
pub(crate) fn read_first(dirs: &[PathBuf], files: &[&str]) -> Option<u64> {
    files.iter().find_map(|f| {
        dirs.iter()
            .find_map(|d| fs::read_to_string(d.join(f)).ok()?.trim().parse().ok())
    })
}

/// Sends SIGKILL to every process in the cgroup with directories `dirs`, until none is left
/// (or a second has passed: a process in uninterruptible sleep dies when it wakes).
pub(crate) fn kill_all(dirs: &[PathBuf]) {
    let Some(procs) = dirs
        .iter()
        .map(|d| d.join("cgroup.procs"))
        .find(|p| p.exists())
    else {
        return;
    };
    for _ in 0..200 {
        let pids: Vec<i32> = fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids.into_iter().filter_map(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_memory_hierarchy() {
        let cg = CgroupPath::new("petrel/none-such");
        if mounts().is_empty() {
            eprintln!("skipped: no cgroup file system mounted");
            return;
        }
        let dir = cg.dir("memory").expect("a memory hierarchy");
        assert!(dir.ends_with("petrel/none-such"));
        assert!(!dir.exists());
        assert_eq!(cg.oom_kills(), 0);
        assert_eq!(cg.peak_memory_bytes(), None);
    }
}
