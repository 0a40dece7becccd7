//! Petrel's init: pid 1 inside the container. It forwards signals to the job, reaps every
//! process that ends up as its child (orphans are re-parented to pid 1), and when the job
//! exits it reports the job's wait status and exits, which makes the kernel kill whatever
//! is left in the pid namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::Serialize;

use crate::channel;

/// Signals a container's init (and the caller) pass on to the job.
pub(crate) const FORWARDED: [libc::c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGQUIT,
];

/// How the job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

impl JobStatus {
    pub(crate) fn from_wait_status(status: i32) -> JobStatus {
        if libc::WIFSIGNALED(status) {
            JobStatus::Signaled(libc::WTERMSIG(status))
        } else {
            JobStatus::Exited(libc::WEXITSTATUS(status))
        }
    }

    pub fn exit_code(self) -> Option<i32> {
        match self {
            JobStatus::Exited(code) => Some(code),
            JobStatus::Signaled(_) => None,
        }
    }

    pub fn signal(self) -> Option<i32> {
        match self {
            JobStatus::Signaled(sig) => Some(sig),
            JobStatus::Exited(_) => None,
        }
    }

    /// The status a shell would report: the exit code, or 128 + the signal number.
    pub fn shell_status(self) -> u8 {
        match self {
            JobStatus::Exited(code) => (code & 0xff) as u8,
            JobStatus::Signaled(sig) => (128 + sig).clamp(0, 255) as u8,
        }
    }
}

/// A signal set holding `signals`.
pub(crate) fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise and fill it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks `signals` for the calling thread, so they queue for a signalfd instead.
pub(crate) fn block(signals: &[libc::c_int]) {
    let set = sigset(signals);
    // SAFETY: set is initialised; the old mask is not needed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// A signalfd for `signals`, which must already be blocked.
pub(crate) fn signalfd(signals: &[libc::c_int]) -> std::io::Result<OwnedFd> {
    let set = sigset(signals);
    // SAFETY: set is initialised; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by signalfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one signal from a signalfd; `None` on error.
pub(crate) fn read_signal(fd: &OwnedFd) -> Option<libc::signalfd_siginfo> {
    // SAFETY: signalfd_siginfo is plain data; zeroed is valid.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: info is a valid buffer of `size` bytes.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        if n == size as isize {
            return Some(info);
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return None;
    }
}

/// Whether a signal was sent by a process (`kill`, `sigqueue`, `tkill`) rather than by the
/// kernel. Terminal signals (Ctrl-C) come from the kernel to the whole foreground process
/// group, which includes the job, so passing them on would deliver them twice.
pub(crate) fn sent_by_process(info: &libc::signalfd_siginfo) -> bool {
    matches!(
        info.ssi_code,
        libc::SI_USER | libc::SI_QUEUE | libc::SI_TKILL
    )
}

/// The init's loop; never returns. `signals` is a signalfd for [`FORWARDED`] and SIGCHLD.
pub(crate) fn run(job: libc::pid_t, signals: OwnedFd, report: OwnedFd) -> ! {
    loop {
        let Some(info) = read_signal(&signals) else {
            // Cannot happen with a valid signalfd; still, never leave the job unwatched.
            wait_for_job_blocking(job, &report);
        };
        let sig = info.ssi_signo as libc::c_int;
        if sig == libc::SIGCHLD {
            if let Some(status) = reap(job) {
                channel::send_exit(&report, status);
                // SAFETY: _exit ends the process without running destructors, as init should.
                unsafe { libc::_exit(0) };
            }
        } else if sent_by_process(&info) {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(job, sig) };
        }
    }
}

/// Reaps every exited child; returns the job's wait status once the job is among them.
fn reap(job: libc::pid_t) -> Option<i32> {
    let mut job_status = None;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return job_status;
        }
        if pid == job {
            job_status = Some(status);
        }
    }
}

fn wait_for_job_blocking(job: libc::pid_t, report: &OwnedFd) -> ! {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == job || pid < 0 {
            channel::send_exit(report, status);
            // SAFETY: see above.
            unsafe { libc::_exit(0) };
        }
    }
}
