//! Child processes of the CLI drivers: finding runtime programs, running short commands
//! with a timeout, and watching a job's long-running runtime process (a waiter thread
//! reaps it; signals go through a pidfd, so they never reach a recycled pid).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{one_line, DriverError, ErrorKind};
use crate::job_spec::Stdio;
use crate::runtime::JobStatus;

/// How long a short runtime command (`--version`, `inspect`, `kill`, `delete`) may take.
pub(crate) const SHORT: Duration = Duration::from_secs(30);

/// Finds `program` in `PATH` (or takes it as given when it contains a slash).
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// Finds runtime `runtime`'s program, or says it is not installed (the probe's
/// "undetected": `ErrorKind::Unavailable`).
pub(crate) fn require_program(runtime: &str, program: &str) -> Result<PathBuf, DriverError> {
    find_program(program).ok_or_else(|| {
        DriverError::slot(
            ErrorKind::Unavailable,
            format!("{runtime} is not installed ({program} not found)"),
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a short command printed and how it ended.
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The last line of stderr (or stdout when stderr is empty), for messages.
    pub fn message(&self) -> String {
        let line = one_line(&self.stderr);
        if line.is_empty() {
            one_line(&self.stdout)
        } else {
            line
        }
    }
}

/// Writes a command's stdin (a tar stream for `docker import`, say).
pub(crate) type Feeder = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

/// Runs `cmd` to completion with stdin written by `input` (or `/dev/null`), capturing its
/// output; kills it after `timeout`. An error means it could not be run or timed out.
pub(crate) fn run_captured(
    cmd: &mut Command,
    input: Option<Feeder>,
    timeout: Duration,
) -> Result<Output, DriverError> {
    let what = describe(cmd);
    let feeding = what.clone();
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
    let mut child = cmd.spawn().map_err(|e| {
        DriverError::slot(ErrorKind::Unavailable, format!("cannot run {what}: {e}"))
    })?;
    let feeder = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => Some(thread::spawn(move || {
            // A reader that stops early (an engine refusing the input) closes the pipe;
            // the command's own status reports that.
            if let Err(e) = input(&mut stdin) {
                tracing::debug!("feeding {feeding}: {e}");
            }
        })),
        _ => None,
    };
    let out = child.stdout.take().map(reader_thread);
    let err = child.stderr.take().map(reader_thread);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DriverError::slot(
                    ErrorKind::Timeout,
                    format!("{what} did not finish within {}s", timeout.as_secs()),
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(DriverError::io(format!("waiting for {what}"), e)),
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let collect = |h: Option<thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
    })
}

fn reader_thread(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// `program arg arg` for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    let args: Vec<_> = cmd.get_args().take(2).map(OsStr::to_string_lossy).collect();
    format!("`{program} {}`", args.join(" "))
}

/// Opens a job's stdio destination.
pub(crate) fn open_stdio(stdio: &Stdio, input: bool) -> Result<std::process::Stdio, DriverError> {
    Ok(match stdio {
        Stdio::Null => std::process::Stdio::null(),
        Stdio::Inherit => std::process::Stdio::inherit(),
        Stdio::File(path) => {
            let file = if input {
                File::open(path)
            } else {
                File::create(path)
            }
            .map_err(|e| {
                DriverError::job(
                    ErrorKind::Spec,
                    format!("cannot open {} for the job: {e}", path.display()),
                )
            })?;
            file.into()
        }
    })
}

/// Lines a runtime prints about itself on the stream it shares with the job, picked out
/// by a driver-specific test while the rest goes on to the job's stderr destination.
pub(crate) type DiagnosticTest = fn(&str) -> bool;

struct Exit {
    status: ExitStatus,
    at: Instant,
}

/// A job's runtime process, reaped by a waiter thread.
pub(crate) struct Child {
    pid: u32,
    pidfd: Option<OwnedFd>,
    exit: Arc<(Mutex<Option<Exit>>, Condvar)>,
    diagnostics: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
}

impl Child {
    /// Spawns `cmd` with the job's stdio. With a `diagnostic` test, the child's stderr is
    /// relayed through petrel so the runtime's own error lines can be told apart from the
    /// job's output; both still reach the job's stderr destination.
    pub fn spawn(
        mut cmd: Command,
        stdin: &Stdio,
        stdout: &Stdio,
        stderr: &Stdio,
        diagnostic: Option<DiagnosticTest>,
    ) -> Result<Child, DriverError> {
        let what = describe(&cmd);
        cmd.stdin(open_stdio(stdin, true)?)
            .stdout(open_stdio(stdout, false)?);
        let relay_to = if diagnostic.is_some() {
            cmd.stderr(std::process::Stdio::piped());
            Some(match stderr {
                Stdio::Null => None,
                Stdio::Inherit => Some(Box::new(std::io::stderr()) as Box<dyn Write + Send>),
                Stdio::File(path) => Some(Box::new(File::create(path).map_err(|e| {
                    DriverError::job(
                        ErrorKind::Spec,
                        format!("cannot open {} for the job: {e}", path.display()),
                    )
                })?) as Box<dyn Write + Send>),
            })
        } else {
            cmd.stderr(open_stdio(stderr, false)?);
            None
        };
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            DriverError::slot(ErrorKind::Unavailable, format!("cannot run {what}: {e}"))
        })?;
        let pid = child.id();
        // Opened before the waiter can reap the child, so it always names this process.
        let pidfd = rustix::process::Pid::from_raw(pid as i32).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        let diagnostics = Arc::new(Mutex::new(Vec::new()));
        let relay_done = match (relay_to, child.stderr.take(), diagnostic) {
            (Some(dest), Some(pipe), Some(test)) => {
                let (tx, rx) = mpsc::channel();
                let diags = Arc::clone(&diagnostics);
                thread::spawn(move || {
                    relay(pipe, dest, test, &diags);
                    let _ = tx.send(());
                });
                Some(rx)
            }
            _ => None,
        };
        let exit = Arc::new((Mutex::new(None), Condvar::new()));
        let exit2 = Arc::clone(&exit);
        thread::spawn(move || {
            let status = child.wait().unwrap_or_else(|e| {
                tracing::warn!("waiting for pid {pid}: {e}");
                ExitStatus::from_raw(255 << 8)
            });
            let at = Instant::now();
            if let Some(rx) = relay_done {
                // The runtime's last words come before its exit; a job's leftover
                // background process holding stderr open must not stall the wait.
                let _ = rx.recv_timeout(Duration::from_secs(1));
            }
            let (lock, cv) = &*exit2;
            if let Ok(mut slot) = lock.lock() {
                *slot = Some(Exit { status, at });
            }
            cv.notify_all();
        });
        Ok(Child {
            pid,
            pidfd,
            exit,
            diagnostics,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to end, at most `timeout`; returns its status and how long it ran.
    pub fn wait_timeout(&self, timeout: Option<Duration>) -> Option<(ExitStatus, Duration)> {
        let (lock, cv) = &*self.exit;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut guard = lock.lock().ok()?;
        loop {
            if let Some(exit) = guard.as_ref() {
                return Some((exit.status, exit.at.duration_since(self.started)));
            }
            guard = match deadline {
                None => cv.wait(guard).ok()?,
                Some(d) => {
                    let left = d.checked_duration_since(Instant::now())?;
                    cv.wait_timeout(guard, left).ok()?.0
                }
            };
        }
    }

    pub fn exited(&self) -> bool {
        self.exit.0.lock().map(|g| g.is_some()).unwrap_or(true)
    }

    /// Sends `sig` to the process, unless it has already been reaped.
    pub fn signal(&self, sig: i32) -> Result<(), DriverError> {
        let signal = rustix::process::Signal::from_named_raw(sig).ok_or_else(|| {
            DriverError::job(ErrorKind::Spec, format!("{sig} is not a signal number"))
        })?;
        let result = match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, signal),
            None if !self.exited() => rustix::process::Pid::from_raw(self.pid as i32)
                .map_or(Ok(()), |p| rustix::process::kill_process(p, signal)),
            None => Ok(()),
        };
        match result {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(DriverError::slot(
                ErrorKind::Runtime,
                format!("sending signal {sig} to pid {}: {e}", self.pid),
            )),
        }
    }

    /// The runtime's own error lines seen so far on the relayed stderr.
    pub fn diagnostics(&self) -> Vec<String> {
        self.diagnostics
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.signal(SIGKILL);
        }
    }
}

fn relay(
    pipe: impl Read,
    mut dest: Option<Box<dyn Write + Send>>,
    test: DiagnosticTest,
    diags: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                if test(text.trim_end()) {
                    if let Ok(mut d) = diags.lock() {
                        d.push(text.trim_end().to_string());
                    }
                }
                if let Some(w) = dest.as_mut() {
                    if w.write_all(&line).is_err() {
                        dest = None;
                    }
                }
            }
        }
    }
    if let Some(w) = dest.as_mut() {
        let _ = w.flush();
    }
}

/// Signal numbers the drivers send themselves (the same on every Linux architecture).
pub(crate) const SIGKILL: i32 = 9;
pub(crate) const SIGTERM: i32 = 15;

/// The job's status from a runtime process's wait status.
pub(crate) fn job_status(status: ExitStatus) -> JobStatus {
    match (status.code(), status.signal()) {
        (Some(code), _) => JobStatus::Exited(code),
        (None, Some(sig)) => JobStatus::Signaled(sig),
        (None, None) => JobStatus::Exited(255),
    }
}

/// Runs `argv` with the caller's stdio (exec into a container) and returns its status.
pub(crate) fn run_interactive(mut cmd: Command) -> Result<JobStatus, DriverError> {
    let what = describe(&cmd);
    let status = cmd.status().map_err(|e| {
        DriverError::slot(ErrorKind::Unavailable, format!("cannot run {what}: {e}"))
    })?;
    Ok(job_status(status))
}

/// A FIFO that holds a just-spawned process back until petrel has put it into a cgroup:
/// the process is `sh -c 'read -r _ < FIFO && exec "$@"'`, so nothing of the job runs
/// before [`Gate::open`]. (A child cannot be placed in a cgroup before it runs without
/// `clone3(CLONE_INTO_CGROUP)`, which needs cgroup v2 and raw syscalls.)
pub(crate) struct Gate {
    path: PathBuf,
}

impl Gate {
    /// Makes the FIFO at `path`.
    pub fn new(path: PathBuf) -> Result<Gate, DriverError> {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(|e| DriverError::io(format!("creating FIFO {}", path.display()), e.into()))?;
        Ok(Gate { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wraps `program args` so it waits for the gate.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("read -r _ < \"$0\" && exec \"$@\"")
            .arg(&self.path)
            .arg(program);
        cmd
    }

    /// Lets the gated process go on. Waits (up to `SHORT`) for it to open the FIFO.
    pub fn open(&self, child: &Child) -> Result<(), DriverError> {
        use std::os::unix::fs::OpenOptionsExt;
        let deadline = Instant::now() + SHORT;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&self.path)
            {
                Ok(mut f) => {
                    return f
                        .write_all(b"go\n")
                        .map_err(|e| DriverError::io("releasing the job", e))
                }
                // No reader yet: the shell has not reached the `read`.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
                    if child.exited() {
                        return Err(DriverError::slot(
                            ErrorKind::Runtime,
                            "the job's gate shell ended before it was released",
                        ));
                    }
                    if Instant::now() >= deadline {
                        return Err(DriverError::slot(
                            ErrorKind::Timeout,
                            "the job's gate shell never opened its FIFO",
                        ));
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    return Err(DriverError::io(
                        format!("opening {}", self.path.display()),
                        e,
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_and_timeout() {
        let out = run_captured(
            Command::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            None,
            SHORT,
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.message(), "err");
        let started = Instant::now();
        let err = run_captured(
            Command::new("/bin/sh").args(["-c", "sleep 5"]),
            None,
            Duration::from_millis(200),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(3));
        let input: Feeder = Box::new(|w| w.write_all(b"fed\n"));
        let out = run_captured(&mut Command::new("/bin/cat"), Some(input), SHORT).unwrap();
        assert_eq!(out.stdout, "fed\n");
    }

    #[test]
    fn child_relays_and_picks_out_diagnostics() {
        let dir = tempfile::tempdir().unwrap();
        let err_file = dir.path().join("err");
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            "echo job-line >&2; echo 'rt: error: broken' >&2; exit 4",
        ]);
        let child = Child::spawn(
            cmd,
            &Stdio::Null,
            &Stdio::Null,
            &Stdio::File(err_file.clone()),
            Some(|l| l.starts_with("rt: error:")),
        )
        .unwrap();
        let (status, _) = child.wait_timeout(Some(SHORT)).unwrap();
        assert_eq!(status.code(), Some(4));
        assert_eq!(child.diagnostics(), ["rt: error: broken"]);
        assert_eq!(
            std::fs::read_to_string(err_file).unwrap(),
            "job-line\nrt: error: broken\n"
        );
    }

    #[test]
    fn signal_and_timeout() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "sleep 30"]);
        let child = Child::spawn(cmd, &Stdio::Null, &Stdio::Null, &Stdio::Null, None).unwrap();
        assert!(child
            .wait_timeout(Some(Duration::from_millis(50)))
            .is_none());
        child.signal(15).unwrap();
        let (status, _) = child.wait_timeout(Some(SHORT)).unwrap();
        assert_eq!(job_status(status), JobStatus::Signaled(15));
        // A reaped child: signalling is a no-op, not an error.
        child.signal(15).unwrap();
        assert!(child.signal(1000).is_err());
    }

    #[test]
    fn gate_holds_the_process_until_opened() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let gate = Gate::new(dir.path().join("gate")).unwrap();
        let mut cmd = gate.command(Path::new("/bin/touch"));
        cmd.arg(&marker);
        let child = Child::spawn(cmd, &Stdio::Null, &Stdio::Null, &Stdio::Null, None).unwrap();
        thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists());
        gate.open(&child).unwrap();
        let (status, _) = child.wait_timeout(Some(SHORT)).unwrap();
        assert!(status.success());
        assert!(marker.exists());
    }

    #[test]
    fn finds_programs() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("petrel-no-such-program").is_none());
    }
}
