//! A running container, from the caller's side.
//!
//! [`start`] returns once the job's command has been exec'd (setup errors come back from it),
//! and the [`Container`] it returns is how its owner signals the job, reads its usage and
//! waits for it. [`run`] is `start` then `wait`, passing on the signals the caller receives.
//! A `Container` dropped without `wait` takes the whole container with it: its processes,
//! its cgroup and its state directory (its mounts live in its own mount namespace and go
//! with its last process).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use serde::Serialize;

use crate::cgroups::{self, Cgroup, NotApplied};
use crate::channel::{self, Report};
use crate::container::{self, MaskGuard};
use crate::error::RuntimeError;
use crate::init::{self, JobStatus, FORWARDED};
use crate::procfs;
use crate::spec::ContainerSpec;
use crate::statedir::StateDir;

/// What a finished container did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub status: JobStatus,
    /// The kernel's OOM killer killed a process of the job because of the memory limit.
    pub oom_killed: bool,
    pub usage: Usage,
    /// Limits that were asked for but are not in force, with the reason.
    pub not_applied: Vec<NotApplied>,
    /// The cgroup layout used, if a cgroup was made.
    pub cgroup: Option<cgroups::Layout>,
}

/// Resource usage of the whole container.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// Peak memory: of the cgroup when there was one, else the largest process's RSS.
    pub peak_memory_bytes: Option<u64>,
    /// Where the memory figure comes from: `cgroup`; `rusage` (a finished container without
    /// one); `proc` (a running container without one: its processes' `/proc` entries).
    pub memory_source: &'static str,
    pub user_cpu_seconds: f64,
    pub system_cpu_seconds: f64,
    pub wall_seconds: f64,
}

/// Runs the container to completion.
///
/// While it runs, the signals a container's init forwards (SIGTERM, SIGINT, SIGHUP, SIGUSR1,
/// SIGUSR2, SIGQUIT) are blocked in the calling thread, and those another process sends to
/// the caller are passed on to the job. (Terminal signals reach the job directly.)
pub fn run(spec: &ContainerSpec) -> Result<Outcome, RuntimeError> {
    run_warning(spec, |_| {})
}

/// [`run`], calling `not_applied` with the limits that could not be applied once that is
/// known and before the job starts, so a warning about them comes before the job's output.
pub fn run_warning(
    spec: &ContainerSpec,
    not_applied: impl FnOnce(&[NotApplied]),
) -> Result<Outcome, RuntimeError> {
    // Blocked for the whole run: a SIGTERM to the caller is queued and passed on, rather
    // than killing the caller (and with it, by the parent-death signal, the container).
    let _mask = MaskGuard::block(&FORWARDED);
    let signals = init::signalfd(&FORWARDED).ok();
    launch(spec, signals, not_applied)?.wait()
}

/// Starts the container and returns once the job's command has been exec'd.
///
/// Setup failures, a command that is not in the image or cannot be executed, come back as
/// errors here. Signals the caller receives are the caller's business: pass them on with
/// [`Container::signal`]. The caller must not reap [`Container::pid`] itself (no
/// `waitpid(-1)` in a SIGCHLD handler).
///
/// The container's init is killed when the *thread* that called `start` ends (the kernel's
/// parent-death signal follows the creating thread, and it is what ends a container whose
/// caller died): call it from a thread that outlives the container, such as the main one.
/// The `Container` itself may be used and dropped from any thread.
pub fn start(spec: &ContainerSpec) -> Result<Container, RuntimeError> {
    launch(spec, None, |_| {})
}

/// A started container. Dropping it without [`Container::wait`] kills it and cleans up.
pub struct Container {
    name: String,
    pid: libc::pid_t,
    /// The read end of the report channel; `None` once it has closed.
    report: Option<OwnedFd>,
    /// What the channel carried so far.
    bytes: Vec<u8>,
    /// A signalfd for the signals passed on to the job while waiting (`run` only).
    forward: Option<OwnedFd>,
    /// A pidfd of the job's process, for the signals the init does not forward.
    job: Option<OwnedFd>,
    reaped: bool,
    started: Instant,
    not_applied: Vec<NotApplied>,
    // Dropped in this order, after the processes are gone: the cgroup, then the state.
    cgroup: Option<Cgroup>,
    _state: Option<StateDir>,
}

fn launch(
    spec: &ContainerSpec,
    forward: Option<OwnedFd>,
    before_start: impl FnOnce(&[NotApplied]),
) -> Result<Container, RuntimeError> {
    let started = Instant::now();
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let name = container::container_id(spec);
    let mut prepared = container::prepare(spec, &name, uid, gid)?;
    let (cgroup, not_applied) = if spec.limits.any() {
        Cgroup::create(&name, &spec.limits)
    } else {
        (None, Vec::new())
    };
    before_start(&not_applied);
    let (pid, report) = container::spawn(&prepared, cgroup.as_ref(), uid, gid)?;
    let mut container = Container {
        name,
        pid,
        report: Some(report),
        bytes: Vec::new(),
        forward,
        job: None,
        reaped: false,
        started,
        not_applied,
        cgroup,
        _state: prepared.state.take(),
    };
    container.read_reports(true);
    if let Some(err) = container.failure() {
        // The init reports the job's exit too, then ends: collect it before cleaning up.
        container.read_reports(false);
        container.reap();
        return Err(err);
    }
    if container.forward.is_none() {
        // Only an owner that may call `signal` needs it; `run` saves the look-up.
        container.job = job_pidfd(pid);
    }
    Ok(container)
}

impl Container {
    /// The host pid of the container's init (pid 1 inside); what [`crate::exec_in`] takes.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The container's unique name (its cgroup's and state directory's name), from
    /// [`ContainerSpec::name`] with the caller's pid and a time stamp added.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Limits that were asked for but are not in force, with the reason.
    pub fn not_applied(&self) -> &[NotApplied] {
        &self.not_applied
    }

    /// Sends `sig` to the job.
    ///
    /// The signals `run` passes on (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT) go
    /// through the container's init, which forwards them to the job exactly as for `run`.
    /// SIGKILL (and 0, the liveness probe) go to the init: killing it ends every process of
    /// the container. Any other signal (SIGSTOP, SIGCONT, SIGWINCH, ...) goes straight to
    /// the job's process.
    pub fn signal(&self, sig: i32) -> Result<(), RuntimeError> {
        let context = || format!("sending signal {sig} to container {}", self.name);
        if sig == 0 || sig == libc::SIGKILL || FORWARDED.contains(&sig) {
            // SAFETY: kill takes plain integers; the init is our unreaped child, so its pid
            // cannot have been reused.
            if unsafe { libc::kill(self.pid, sig) } != 0 {
                return Err(RuntimeError::io(context(), std::io::Error::last_os_error()));
            }
            return Ok(());
        }
        let Some(job) = &self.job else {
            return Err(RuntimeError::io(
                format!("{}: the job's process has ended", context()),
                std::io::Error::from_raw_os_error(libc::ESRCH),
            ));
        };
        // SAFETY: pidfd_send_signal takes a pidfd we own, a signal number, a null siginfo
        // (meaning: as kill(2) would send it) and no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                job.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        if rc != 0 {
            return Err(RuntimeError::io(context(), std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// The container's resource usage so far: from its cgroup when it has one, else summed
    /// over its processes' `/proc` entries (CPU time of every process alive or reaped inside
    /// it, and the largest peak resident set of a process alive now).
    pub fn usage(&self) -> Usage {
        let cg = self.cgroup.as_ref().map(Cgroup::usage).unwrap_or_default();
        let needs_proc = cg.peak_memory_bytes.is_none() || cg.user_cpu.is_none();
        let tree = if needs_proc && !self.reaped {
            procfs::tree_usage(self.pid)
        } else {
            procfs::TreeUsage::default()
        };
        Usage {
            peak_memory_bytes: cg.peak_memory_bytes.or(tree.peak_rss_bytes),
            memory_source: if cg.peak_memory_bytes.is_some() {
                "cgroup"
            } else {
                "proc"
            },
            user_cpu_seconds: cg
                .user_cpu
                .map_or(tree.user_cpu_seconds, |d| d.as_secs_f64()),
            system_cpu_seconds: cg
                .system_cpu
                .map_or(tree.system_cpu_seconds, |d| d.as_secs_f64()),
            wall_seconds: self.started.elapsed().as_secs_f64(),
        }
    }

    /// Waits for the job to end (the container ends with it) and reports what it did.
    pub fn wait(mut self) -> Result<Outcome, RuntimeError> {
        self.read_reports(false);
        let (init_status, rusage) = self.reap();
        if let Some(err) = self.failure() {
            return Err(err);
        }
        let status = channel::parse(&self.bytes)
            .iter()
            .find_map(|r| match r {
                Report::Exit(status) => Some(JobStatus::from_wait_status(*status)),
                _ => None,
            })
            .or_else(|| {
                // The init itself was killed (by the OOM killer, or SIGKILL from outside).
                libc::WIFSIGNALED(init_status).then(|| JobStatus::from_wait_status(init_status))
            })
            .ok_or(RuntimeError::NoReport)?;
        let oom_killed = self.cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0);
        let cg_usage = self.cgroup.as_ref().map(Cgroup::usage).unwrap_or_default();
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let usage = Usage {
            peak_memory_bytes: cg_usage
                .peak_memory_bytes
                .or(Some(rusage.ru_maxrss as u64 * 1024)),
            memory_source: if cg_usage.peak_memory_bytes.is_some() {
                "cgroup"
            } else {
                "rusage"
            },
            user_cpu_seconds: cg_usage
                .user_cpu
                .map_or(tv(rusage.ru_utime), |d| d.as_secs_f64()),
            system_cpu_seconds: cg_usage
                .system_cpu
                .map_or(tv(rusage.ru_stime), |d| d.as_secs_f64()),
            wall_seconds: self.started.elapsed().as_secs_f64(),
        };
        Ok(Outcome {
            status,
            oom_killed,
            usage,
            not_applied: std::mem::take(&mut self.not_applied),
            cgroup: self.cgroup.as_ref().map(Cgroup::layout),
        })
    }

    /// The first setup failure the channel carried, as the caller's error.
    fn failure(&self) -> Option<RuntimeError> {
        channel::parse(&self.bytes)
            .into_iter()
            .find_map(|r| match r {
                Report::Failure(failure, message) => {
                    Some(RuntimeError::InContainer { failure, message })
                }
                _ => None,
            })
    }

    /// Reads the report channel until it closes, or with `until_started` until the job has
    /// started or setup has failed; passes signals on meanwhile when asked to.
    fn read_reports(&mut self, until_started: bool) {
        let Some(report) = &self.report else {
            return;
        };
        let forward = self.forward.as_ref().map(|signals| (signals, self.pid));
        let closed = channel::read(report, &mut self.bytes, forward, |bytes| {
            until_started
                && channel::parse(bytes)
                    .iter()
                    .any(|r| matches!(r, Report::Started | Report::Failure(..)))
        });
        if closed {
            self.report = None;
        }
    }

    /// Reaps the init; returns its wait status and the resources it and its children used.
    fn reap(&mut self) -> (i32, libc::rusage) {
        // SAFETY: rusage is plain data; wait4 fills it and the status.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut status = 0;
        loop {
            // SAFETY: valid out-pointers.
            let r = unsafe { libc::wait4(self.pid, &mut status, 0, &mut rusage) };
            if r == self.pid
                || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
        self.reaped = true;
        (status, rusage)
    }
}

/// Kills a container that was not waited for: SIGKILL to its init ends every process in its
/// pid namespace (the kernel lets the init be reaped only once they are gone); the cgroup
/// and state directory are removed as the fields drop.
impl Drop for Container {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: kill takes plain integers; the init is our unreaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.reap();
        }
    }
}

/// A pidfd for the job: the init's first child, right after it started. `None` when the job
/// has already ended (or the kernel has no pidfds).
fn job_pidfd(init: libc::pid_t) -> Option<OwnedFd> {
    let job = procfs::children(init).into_iter().next()?;
    // SAFETY: pidfd_open takes a pid and no flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, job, 0u32) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pid could have been reused between the two reads only if the job ended and was
    // reaped: then the process the pidfd names is not the init's child.
    (procfs::parent(job) == Some(init)).then_some(fd)
}
