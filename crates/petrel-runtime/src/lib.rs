//! Petrel's embedded container runtime.
//!
//! It runs one command in a container made of Linux namespaces (user, mount, pid, uts, ipc
//! and, on request, network), with a directory as the root filesystem, a pid-1 init of its
//! own, capabilities dropped, `no_new_privs`, a seccomp filter and cgroup limits. It needs no
//! daemon and no setuid helper: it works as root and as an unprivileged user.
//!
//! # Overview
//! - [`ContainerSpec`] says what to run: rootfs, argv, environment, mounts, limits.
//! - [`run`] runs it to completion and returns an [`Outcome`] (exit status, whether the
//!   kernel killed it for memory, usage, limits that could not be applied).
//! - [`start`] returns a [`Container`] once the job's command has been exec'd: its owner
//!   signals it, reads its usage while it runs, and waits for its [`Outcome`]; dropping it
//!   kills the container and cleans up. `run` is `start` then `wait`.
//! - [`exec_in`] runs an [`ExecSpec`] command inside a running container (`petrel ssh`,
//!   the drivers' `exec`), with the job's restrictions.
//! - Errors are [`RuntimeError`]s that name the path, option or kernel setting involved.
//!
//! # The process tree
//! ```text
//! caller (stays outside; waits, forwards signals, reads cgroup usage)
//!   ├─ init: pid 1 inside the new namespaces; builds the root, then reaps and forwards
//!   │    └─ the job: drops privileges, installs seccomp, execs the command
//!   └─ joiner (exec_in): joins the init's namespaces, reaps and forwards
//!        └─ the command: in the container's pid namespace, restricted as the job is
//! ```
//! The order of the setup steps is written out in `setup.rs`, in the spirit of bubblewrap:
//! one ordered list, run once. `SECURITY.md` at the repository root states what petrel does
//! and does not promise.
//!
//! ```no_run
//! use petrel_runtime::{run, ContainerSpec};
//! let mut spec = ContainerSpec::new("/srv/images/busybox", vec!["/bin/true".into()]);
//! spec.limits.memory_bytes = Some(64 << 20);
//! let outcome = run(&spec).expect("container ran");
//! assert_eq!(outcome.status.exit_code(), Some(0));
//! ```
//!
//! A job that runs in the background and is entered while it runs:
//! ```no_run
//! use petrel_runtime::{exec_in, start, ContainerSpec, ExecSpec};
//! let mut spec = ContainerSpec::new("/srv/images/busybox", vec!["sleep".into(), "600".into()]);
//! spec.scratch = Some("/var/lib/petrel/job-7".into());
//! let container = start(&spec).expect("container started");
//! let status = exec_in(container.pid(), &ExecSpec::new(vec!["ls".into()])).expect("entered");
//! assert_eq!(status.exit_code(), Some(0));
//! println!("{:?}", container.usage());
//! container.signal(libc::SIGTERM).expect("signalled");
//! let outcome = container.wait().expect("waited");
//! assert_eq!(outcome.status.signal(), Some(libc::SIGTERM));
//! ```

mod caps;
pub mod cgroups;
mod channel;
mod container;
mod enter;
mod error;
mod exec;
mod handle;
mod idmap;
mod init;
mod mounts;
mod namespaces;
mod procfs;
mod seccomp;
mod setup;
mod spec;
mod statedir;

pub use cgroups::NotApplied;
pub use enter::{exec_in, ExecSpec};
pub use error::{RuntimeError, SetupFailure};
pub use handle::{run, run_warning, start, Container, Outcome, Usage};
pub use init::JobStatus;
pub use seccomp::BLOCKED_SYSCALLS;
pub use spec::{
    Bind, ContainerSpec, IdMapping, Limits, NetMode, Overlay, User, DEFAULT_PATH,
    DEFAULT_TARGET_DIR,
};

/// Exit statuses `petrel run` uses for its own failures, as `docker run` and shells do.
pub mod exit_status {
    /// Petrel could not set the container up (bad option, missing rootfs, kernel refused).
    pub const SETUP_FAILED: u8 = 125;
    /// The command exists in the image but cannot be executed.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// The command was not found in the image.
    pub const NOT_FOUND: u8 = 127;
    /// The kernel killed the job because it exceeded its memory limit. Not 137 (SIGKILL),
    /// so a script can tell an out-of-memory kill from any other `kill -9`.
    pub const OUT_OF_MEMORY: u8 = 247;
}
