//! Jobs whose runtime is a plain child process that becomes (or stays the parent of) the
//! job, with no daemon and no cgroup of its own: Charliecloud's `ch-run` and Apptainer.
//! Petrel puts the process into a cgroup of its own making before it runs anything (the
//! gate in [`crate::process::Gate`]), so the job's limits are enforced and its OOM kills
//! and usage measured just as for the embedded runtime.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use petrel_runtime::cgroups::Cgroup;

use crate::cgroupfs;
use crate::error::{one_line, DriverError, ErrorKind};
use crate::handle::{shell_status, Ended, JobProcess};
use crate::job_spec::{JobSpec, User};
use crate::process::{self, Child, DiagnosticTest, Gate};
use crate::runtime::{ExitInfo, Handle, JobStatus, Stats};

/// How the driver's program must be started.
pub(crate) struct Launch {
    pub runtime: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The program's whole environment.
    pub env: Vec<(String, String)>,
    /// Run the program as this user (set when petrel is root and the job is someone else).
    pub run_as: Option<User>,
    /// Recognises the runtime's own error lines on stderr (`None`: stderr goes straight
    /// to its destination).
    pub diagnostic: Option<DiagnosticTest>,
    /// Runs the program on the host in this directory, with no container around it (the
    /// bare driver); `exec` then enters the job's own process.
    pub host_cwd: Option<PathBuf>,
    /// The exit status the runtime uses for its own failures.
    pub failure_status: i32,
    /// The driver's files for this job (its environment file), kept while it runs.
    pub files: tempfile::TempDir,
}

/// Starts `launch` for `spec`, in a fresh cgroup with the job's limits when one can be
/// made. `gates` is where the gate FIFO goes.
pub(crate) fn start(spec: &JobSpec, launch: Launch, gates: &Path) -> Result<HostJob, DriverError> {
    let limits = petrel_runtime::Limits {
        memory_bytes: spec.limits.memory_bytes,
        cpus: spec.limits.cpus,
        cpu_weight: None,
        pids: spec.limits.pids,
    };
    let (cgroup, not_applied) = Cgroup::create(&spec.name, &limits);
    for missed in &not_applied {
        tracing::warn!(
            "{}: {} limit not applied: {}",
            spec.name,
            missed.limit,
            missed.reason
        );
    }
    let memory_applied = spec.limits.memory_bytes.is_some()
        && cgroup.is_some()
        && !not_applied.iter().any(|m| m.limit == "memory");
    if let Some(cg) = &cgroup {
        // Processes of an earlier run of this job (a petrel that crashed) go first.
        cgroupfs::kill_all(&cg.paths());
    }
    let gate_dir = match &cgroup {
        Some(_) => Some(crate::host::job_dir(gates, &spec.name)?),
        None => None,
    };
    let gate = match &gate_dir {
        Some(dir) => {
            let gate = Gate::new(dir.path().join("gate"))?;
            if let Some(user) = launch.run_as {
                // The gated shell runs as the job's user and must open the FIFO.
                crate::host::give_to(user, &[dir.path(), gate.path()])?;
            }
            Some(gate)
        }
        None => None,
    };
    let mut cmd = match &gate {
        Some(gate) => gate.command(&launch.program),
        None => Command::new(&launch.program),
    };
    cmd.args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &launch.host_cwd {
        cmd.current_dir(dir);
    }
    if let Some(user) = launch.run_as {
        use std::os::unix::process::CommandExt;
        // std drops supplementary groups too when a root parent sets the uid.
        cmd.uid(user.uid).gid(user.gid);
    }
    let child = Child::spawn(
        cmd,
        &spec.stdin,
        &spec.stdout,
        &spec.stderr,
        launch.diagnostic,
    )?;
    if let (Some(cg), Some(gate)) = (&cgroup, &gate) {
        let pid = child.pid() as i32;
        cg.add_pid(pid).map_err(|e| {
            let _ = child.signal(process::SIGKILL);
            DriverError::slot(
                ErrorKind::Runtime,
                format!("moving {} (pid {pid}) into its cgroup: {e}", launch.runtime),
            )
        })?;
        gate.open(&child)?;
    }
    Ok(HostJob {
        runtime: launch.runtime,
        job: JobProcess::new(&spec.name, child),
        cgroup: Mutex::new(cgroup),
        memory_limit: spec.limits.memory_bytes.filter(|_| memory_applied),
        failure_status: launch.failure_status,
        user: spec.effective_user(),
        workdir: match &launch.host_cwd {
            Some(dir) => dir.to_string_lossy().into_owned(),
            None => spec.workdir().to_string(),
        },
        on_host: launch.host_cwd.is_some(),
        env: spec.env.clone(),
        _gate_dir: gate_dir,
        _files: launch.files,
    })
}

/// A running host job: the handle of the ch-run and Apptainer drivers.
pub(crate) struct HostJob {
    runtime: &'static str,
    job: JobProcess,
    /// Taken and dropped (which kills what is left and removes it) once the job ended.
    cgroup: Mutex<Option<Cgroup>>,
    memory_limit: Option<u64>,
    failure_status: i32,
    /// Who `exec` runs as, where and with what environment: as the job.
    user: User,
    workdir: String,
    env: Vec<String>,
    /// The job runs on the host: its own process is where `exec` goes.
    on_host: bool,
    _gate_dir: Option<tempfile::TempDir>,
    _files: tempfile::TempDir,
}

impl HostJob {
    fn finish(&self, ended: Ended<'_>) -> Result<ExitInfo, DriverError> {
        let diagnostics = self.job.child.diagnostics();
        // Dropped at the end of this function: whatever the job left behind (daemons it
        // started) is killed and the cgroup removed.
        let cgroup = self.cgroup.lock().ok().and_then(|mut c| c.take());
        let oom_killed = cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
        let usage = cgroup.as_ref().map(Cgroup::usage);
        let status = shell_status(&ended, oom_killed);
        if status == JobStatus::Exited(self.failure_status) && !diagnostics.is_empty() {
            return Err(DriverError::from_runtime_message(
                self.runtime,
                &one_line(&diagnostics.join("\n")),
            ));
        }
        Ok(ExitInfo {
            status,
            oom_killed,
            memory_limit_bytes: self.memory_limit,
            peak_memory_bytes: usage.and_then(|u| u.peak_memory_bytes),
            user_cpu_seconds: usage.and_then(|u| u.user_cpu).map(|d| d.as_secs_f64()),
            system_cpu_seconds: usage.and_then(|u| u.system_cpu).map(|d| d.as_secs_f64()),
            wall_seconds: ended.wall.as_secs_f64(),
        })
    }

    /// The host pid of the first process inside the container's mount namespace: the
    /// runtime's process itself once it has exec'd the job (ch-run), or its child.
    fn container_pid(&self) -> Option<u32> {
        if self.on_host {
            return (!self.job.finished()).then(|| self.job.child.pid());
        }
        container_pid(self.job.child.pid())
    }
}

impl Handle for HostJob {
    fn name(&self) -> &str {
        &self.job.name
    }

    fn pid(&self) -> Option<u32> {
        Some(self.job.child.pid())
    }

    fn wait_timeout(&self, timeout: Option<Duration>) -> Result<Option<ExitInfo>, DriverError> {
        self.job.wait_with(timeout, |ended| self.finish(ended))
    }

    fn signal(&self, sig: i32) -> Result<(), DriverError> {
        // ch-run's process is the job; Apptainer's starter passes signals on to it.
        self.job.record_signal(sig);
        self.job.child.signal(sig)
    }

    fn exec(&self, argv: &[String], _tty: bool) -> Result<JobStatus, DriverError> {
        let pid = self.container_pid().ok_or_else(|| {
            DriverError::slot(
                ErrorKind::Runtime,
                format!("{}: the container is not running", self.job.name),
            )
        })?;
        nsenter(pid, self.user, &self.workdir, &self.env, argv)
    }

    fn stats(&self) -> Result<Stats, DriverError> {
        let guard = self.cgroup.lock();
        let Some(cg) = guard.as_ref().ok().and_then(|c| c.as_ref()) else {
            return Ok(Stats::default());
        };
        let usage = cg.usage();
        let dirs = cg.paths();
        Ok(Stats {
            memory_bytes: cgroupfs::read_first(&dirs, &["memory.current", "memory.usage_in_bytes"]),
            peak_memory_bytes: usage.peak_memory_bytes,
            user_cpu_seconds: usage.user_cpu.map(|d| d.as_secs_f64()),
            system_cpu_seconds: usage.system_cpu.map(|d| d.as_secs_f64()),
            pids: cgroupfs::read_first(&dirs, &["pids.current"]),
        })
    }

    fn destroy(&self) -> Result<(), DriverError> {
        if self.job.finished() {
            return Ok(());
        }
        self.job.record_signal(process::SIGKILL);
        let dirs = self
            .cgroup
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(Cgroup::paths))
            .unwrap_or_default();
        // Every process of the job, wherever it re-parented itself; then the runtime's.
        cgroupfs::kill_all(&dirs);
        self.job.child.signal(process::SIGKILL)?;
        self.job.settle(|ended| self.finish(ended))
    }
}

impl Drop for HostJob {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            tracing::warn!("{}: {e}", self.job.name);
        }
    }
}

/// The first process at or below `root` whose mount namespace differs from petrel's own.
pub(crate) fn container_pid(root: u32) -> Option<u32> {
    let own = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    let mut queue = std::collections::VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        match std::fs::read_link(format!("/proc/{pid}/ns/mnt")) {
            Ok(ns) if ns != own => return Some(pid),
            _ => {}
        }
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    None
}

/// `nsenter` into the container of `pid` (its user and mount namespaces, and its pid
/// namespace when it has its own), as `user`, in `workdir`, with `env`: how `exec` works
/// for runtimes without an exec command of their own.
/// Enters a job started by another process: its container is the first process below
/// the runtime's with a mount namespace of its own; the job's environment is read from it.
pub(crate) fn exec_running(
    job: &crate::RunningJob,
    argv: &[String],
) -> Result<JobStatus, DriverError> {
    let pid = job.pid.and_then(container_pid).ok_or_else(|| {
        DriverError::slot(
            ErrorKind::Runtime,
            format!("{}: the container is not running", job.name),
        )
    })?;
    let env = environ(pid).unwrap_or_default();
    nsenter(pid, job.user, &job.workdir, &env, argv)
}

/// A process's environment, `KEY=VALUE`.
pub(crate) fn environ(pid: u32) -> std::io::Result<Vec<String>> {
    std::fs::read(format!("/proc/{pid}/environ")).map(|raw| {
        raw.split(|b| *b == 0)
            .filter(|kv| !kv.is_empty())
            .map(|kv| String::from_utf8_lossy(kv).into_owned())
            .collect()
    })
}

pub(crate) fn nsenter(
    pid: u32,
    user: User,
    workdir: &str,
    env: &[String],
    argv: &[String],
) -> Result<JobStatus, DriverError> {
    let nsenter = process::find_program("nsenter").ok_or_else(|| {
        DriverError::slot(
            ErrorKind::Unavailable,
            "nsenter (util-linux) is not installed",
        )
    })?;
    let ns = |name: &str| std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok();
    let own = |name: &str| std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
    let mut cmd = Command::new(nsenter);
    cmd.arg(format!("--target={pid}"));
    if ns("user") != own("user") {
        cmd.arg("--user");
    }
    cmd.arg("--mount");
    if ns("pid") != own("pid") {
        cmd.arg("--pid");
    }
    // `--wd=DIR` opens DIR before entering (util-linux 2.38): name it through the
    // target's root, which resolves inside the container's mount namespace.
    cmd.arg("--root")
        .arg(format!(
            "--wd=/proc/{pid}/root/{}",
            workdir.trim_start_matches('/')
        ))
        .arg(format!("--setuid={}", user.uid))
        .arg(format!("--setgid={}", user.gid))
        .arg("--")
        .args(argv)
        .env_clear()
        .envs(env.iter().filter_map(|kv| kv.split_once('=')));
    process::run_interactive(cmd)
}

/// A file of `KEY=VALUE` lines for runtimes that read the job's environment from one.
pub(crate) fn write_env_file(path: &Path, env: &[String], quote: bool) -> Result<(), DriverError> {
    let mut text = String::new();
    for kv in env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if v.contains('\n') && !quote {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!("environment variable {k} holds a newline, which this runtime cannot pass"),
            ));
        }
        if quote && !shell_name(k) {
            // The file is read as shell assignments: any other name would be code.
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!("environment variable name {k:?} is not a shell variable name, which this runtime needs"),
            ));
        }
        if quote {
            text.push_str(&format!("{k}='{}'\n", v.replace('\'', "'\\''")));
        } else {
            text.push_str(&format!("{k}={v}\n"));
        }
    }
    std::fs::write(path, text)
        .map_err(|e| DriverError::io(format!("writing {}", path.display()), e))
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn shell_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What a host job's process needs when petrel is root and the job is another user.
pub(crate) fn run_as(spec: &JobSpec) -> Option<User> {
    let me = User::current();
    match spec.user {
        Some(user) if me.uid == 0 && user != me => Some(user),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        write_env_file(&f, &["A=1 2".into(), "B=it's".into()], true).unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "A='1 2'\nB='it'\\''s'\n"
        );
        write_env_file(&f, &["A=1 2".into()], false).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "A=1 2\n");
        assert!(write_env_file(&f, &["A=x\ny".into()], false).is_err());
        for name in ["$(id)", "A;B", "1A", "A B", "A.B"] {
            assert!(
                write_env_file(&f, &[format!("{name}=x")], true).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn finds_no_container_below_a_plain_process() {
        assert_eq!(container_pid(std::process::id()), None);
    }
}
