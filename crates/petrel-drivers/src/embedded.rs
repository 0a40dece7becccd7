//! Petrel's own runtime ([`petrel_runtime`]), in process: no program to find, no daemon,
//! rootless or root. The job's stdio files are opened here and handed to the runtime.
//!
//! [`petrel_runtime::Container::wait`] takes the container, so the handle keeps it until
//! a pidfd of the container's init says the init has ended; only then does a waiter take
//! it and collect the outcome, which is immediate. Until then signals, stats and exec use
//! the container in place.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_runtime::{Container, ContainerSpec, ExecSpec, RuntimeError, SetupFailure};

use crate::error::{DriverError, ErrorKind};
use crate::job_spec::{JobImage, JobSpec, NetMode, Stdio, User};
use crate::runtime::{Capabilities, ExitInfo, Handle, ImageKind, JobStatus, Runtime, Stats};

/// The embedded runtime's driver.
#[derive(Debug, Clone, Default)]
pub struct Embedded {
    _private: (),
}

impl Embedded {
    pub fn new() -> Embedded {
        Embedded { _private: () }
    }

    /// The petrel-runtime spec for `spec` (stdio not yet opened).
    pub fn container_spec(&self, spec: &JobSpec) -> Result<ContainerSpec, DriverError> {
        let JobImage::Rootfs(rootfs) = &spec.image else {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!(
                    "the embedded runtime needs an unpacked root file system, not a {} \
                     (prepare the image first)",
                    spec.image.describe()
                ),
            ));
        };
        let mut cs = ContainerSpec::new(rootfs.clone(), spec.argv.clone());
        cs.env = spec.env.clone();
        cs.workdir = spec.cwd.clone();
        cs.scratch = spec.scratch.clone();
        cs.target_dir = spec.target_dir.clone();
        cs.binds = spec
            .binds
            .iter()
            .map(|b| petrel_runtime::Bind {
                source: b.source.clone(),
                target: b.target.clone(),
                read_only: b.read_only,
            })
            .collect();
        cs.hostname = spec.hostname.clone();
        cs.net = match spec.network {
            NetMode::Host => petrel_runtime::NetMode::Host,
            NetMode::None => petrel_runtime::NetMode::None,
        };
        cs.user = spec.user.map(|u| petrel_runtime::User {
            uid: u.uid,
            gid: u.gid,
        });
        cs.limits = petrel_runtime::Limits {
            memory_bytes: spec.limits.memory_bytes,
            cpus: spec.limits.cpus,
            cpu_weight: None,
            pids: spec.limits.pids,
        };
        cs.name = Some(spec.name.clone());
        Ok(cs)
    }
}

/// Opens one stdio destination for the runtime (`None`: the caller's own).
fn open(stdio: &Stdio, input: bool) -> Result<Option<Arc<File>>, DriverError> {
    let (path, what) = match stdio {
        Stdio::Inherit => return Ok(None),
        Stdio::Null => (std::path::Path::new("/dev/null"), "/dev/null"),
        Stdio::File(p) => (p.as_path(), "the job's file"),
    };
    let file = if input {
        File::open(path)
    } else {
        File::create(path)
    };
    file.map(|f| Some(Arc::new(f))).map_err(|e| {
        DriverError::job(
            ErrorKind::Spec,
            format!("cannot open {what} {}: {e}", path.display()),
        )
    })
}

/// Whose fault a runtime error is.
fn driver_error(err: RuntimeError) -> DriverError {
    let message = format!("embedded: {err}");
    match &err {
        RuntimeError::InContainer {
            failure: SetupFailure::CommandNotFound | SetupFailure::NotExecutable,
            ..
        } => DriverError::job(ErrorKind::Command, message),
        RuntimeError::InContainer {
            failure: SetupFailure::Workdir | SetupFailure::User,
            ..
        }
        | RuntimeError::InvalidSpec(_) => DriverError::job(ErrorKind::Spec, message),
        RuntimeError::RootfsMissing(_) | RuntimeError::RootfsNotDirectory(_) => {
            DriverError::job(ErrorKind::Image, message)
        }
        _ => DriverError::slot(ErrorKind::Runtime, message),
    }
}

impl Runtime for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn image_kinds(&self) -> &'static [ImageKind] {
        // petrel-image turns every kind into a root file system, SIF and squashfs without
        // Apptainer.
        &ImageKind::ALL
    }

    fn accepts(&self, image: &JobImage) -> bool {
        matches!(image, JobImage::Rootfs(_))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            signals: true,
            exec: true,
            limits: User::current().uid == 0,
            pid_namespace: true,
            network_isolation: true,
        }
    }

    fn version(&self) -> Result<String, DriverError> {
        Ok(env!("CARGO_PKG_VERSION").to_string())
    }

    fn start(&self, spec: &JobSpec) -> Result<Box<dyn Handle>, DriverError> {
        spec.validate()?;
        let mut cs = self.container_spec(spec)?;
        cs.stdio = [
            open(&spec.stdin, true)?,
            open(&spec.stdout, false)?,
            open(&spec.stderr, false)?,
        ];
        let container = petrel_runtime::start(&cs).map_err(driver_error)?;
        let pid = container.pid();
        let pidfd = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| DriverError::slot(ErrorKind::Runtime, format!("bad init pid {pid}")))
            .and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).map_err(|e| {
                    DriverError::io("opening a pidfd for the container's init", e.into())
                })
            })?;
        let memory_limit = spec
            .limits
            .memory_bytes
            .filter(|_| !container.not_applied().iter().any(|m| m.limit == "memory"));
        Ok(Box::new(EmbeddedHandle {
            name: spec.name.clone(),
            pid,
            init: pidfd,
            state: Mutex::new(State {
                container: Some(container),
                result: None,
            }),
            memory_limit,
            exec: ExecSpec {
                argv: Vec::new(),
                env: spec.env.clone(),
                workdir: Some(spec.workdir().to_string()),
                user: spec.user.map(|u| petrel_runtime::User {
                    uid: u.uid,
                    gid: u.gid,
                }),
                seccomp: true,
            },
        }))
    }
}

struct State {
    /// The running container; taken by the waiter that collects its outcome.
    container: Option<Container>,
    result: Option<Result<ExitInfo, DriverError>>,
}

struct EmbeddedHandle {
    name: String,
    pid: i32,
    /// Readable once the container's init has ended.
    init: OwnedFd,
    state: Mutex<State>,
    memory_limit: Option<u64>,
    /// The environment, directory and user of commands run with `exec`.
    exec: ExecSpec,
}

impl EmbeddedHandle {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, DriverError> {
        self.state
            .lock()
            .map_err(|_| DriverError::slot(ErrorKind::Runtime, "a waiter panicked"))
    }

    /// Whether the init has ended, waiting at most `timeout` for it.
    fn init_ended(&self, timeout: Option<Duration>) -> Result<bool, DriverError> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let ts = left.map(|l| Timespec {
                tv_sec: l.as_secs() as i64,
                tv_nsec: i64::from(l.subsec_nanos()),
            });
            let mut fds = [PollFd::new(&self.init, PollFlags::IN)];
            match poll(&mut fds, ts.as_ref()) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(DriverError::io("polling the container's init", e.into())),
            }
        }
    }

    fn collect(&self, container: Container) -> Result<ExitInfo, DriverError> {
        let outcome = container.wait().map_err(driver_error)?;
        Ok(ExitInfo {
            status: match outcome.status {
                petrel_runtime::JobStatus::Exited(code) => JobStatus::Exited(code),
                petrel_runtime::JobStatus::Signaled(sig) => JobStatus::Signaled(sig),
            },
            oom_killed: outcome.oom_killed,
            memory_limit_bytes: self.memory_limit,
            peak_memory_bytes: outcome.usage.peak_memory_bytes,
            user_cpu_seconds: Some(outcome.usage.user_cpu_seconds),
            system_cpu_seconds: Some(outcome.usage.system_cpu_seconds),
            wall_seconds: outcome.usage.wall_seconds,
        })
    }
}

impl Handle for EmbeddedHandle {
    fn name(&self) -> &str {
        &self.name
    }

    fn pid(&self) -> Option<u32> {
        u32::try_from(self.pid).ok()
    }

    fn wait_timeout(&self, timeout: Option<Duration>) -> Result<Option<ExitInfo>, DriverError> {
        let finished = self.lock()?.result.is_some();
        if !finished && !self.init_ended(timeout)? {
            return Ok(None);
        }
        let mut state = self.lock()?;
        if state.result.is_none() {
            if let Some(container) = state.container.take() {
                state.result = Some(self.collect(container));
            }
        }
        match &state.result {
            Some(Ok(info)) => Ok(Some(info.clone())),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(None),
        }
    }

    fn signal(&self, sig: i32) -> Result<(), DriverError> {
        let state = self.lock()?;
        match &state.container {
            Some(c) => c.signal(sig).map_err(driver_error),
            None => Ok(()),
        }
    }

    fn exec(&self, argv: &[String], tty: bool) -> Result<JobStatus, DriverError> {
        // The caller's own terminal is the command's: nothing to allocate for `tty`.
        let _ = tty;
        if self.lock()?.container.is_none() {
            return Err(DriverError::slot(
                ErrorKind::Runtime,
                format!("{}: the container has ended", self.name),
            ));
        }
        let mut spec = self.exec.clone();
        spec.argv = argv.to_vec();
        match petrel_runtime::exec_in(self.pid, &spec).map_err(driver_error)? {
            petrel_runtime::JobStatus::Exited(code) => Ok(JobStatus::Exited(code)),
            petrel_runtime::JobStatus::Signaled(sig) => Ok(JobStatus::Signaled(sig)),
        }
    }

    fn stats(&self) -> Result<Stats, DriverError> {
        let state = self.lock()?;
        let Some(c) = &state.container else {
            return Ok(Stats::default());
        };
        let usage = c.usage();
        Ok(Stats {
            memory_bytes: None,
            peak_memory_bytes: usage.peak_memory_bytes,
            user_cpu_seconds: Some(usage.user_cpu_seconds),
            system_cpu_seconds: Some(usage.system_cpu_seconds),
            pids: None,
        })
    }

    fn destroy(&self) -> Result<(), DriverError> {
        {
            let state = self.lock()?;
            match &state.container {
                // SIGKILL goes to the init, which takes the whole pid namespace with it.
                Some(c) => c.signal(crate::process::SIGKILL).map_err(driver_error)?,
                None => return Ok(()),
            }
        }
        match self.wait_timeout(Some(Duration::from_secs(30))) {
            Ok(Some(_)) | Err(_) => Ok(()),
            Ok(None) => Err(DriverError::slot(
                ErrorKind::Timeout,
                format!(
                    "{}: the container did not end within 30s of SIGKILL",
                    self.name
                ),
            )),
        }
    }
}
