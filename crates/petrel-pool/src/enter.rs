//! `petrel ssh` for a job whose container the caller cannot enter itself.
//!
//! In a root (system) pool, a job's container belongs to root: its user namespace was
//! made by the root starter, and an unprivileged user cannot join it. So the job's owner
//! asks the daemon instead:
//!
//! 1. the client sends `Enter` with the job and the command; the daemon checks the peer
//!    may touch the job (`SO_PEERCRED`: the owner, root or a super user) and that it runs,
//!    and answers `SendTerminal`;
//! 2. the client sends its standard input, output and error with `SCM_RIGHTS`;
//! 3. the daemon starts `petrel enter` (the helper, as root) with those as its stdio; it
//!    joins the container's namespaces and runs the command as the job's uid and gid,
//!    with the job's restrictions (no capabilities, no_new_privs, seccomp);
//! 4. signals the client gets (Ctrl-C, SIGTERM, SIGHUP, ...) go to the daemon as
//!    `Signal` messages and on to the helper, which passes them to the command; if the
//!    client goes away, the helper is killed, and the command with it;
//! 5. the daemon answers `Exited` with the command's status, as a shell reports it.
//!
//! The command always runs as the job's owner, whoever asks: the daemon never runs a
//! client's command with its own ids.

use std::io::{BufReader, BufWriter, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_runtime::{ExecSpec, User};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

use crate::client::Client;
use crate::core::{Core, Peer};
use crate::error::PoolError;
use crate::job::{JobId, JobStatus};
use crate::proto::{read_frame, read_frame_max, write_frame, Request, Response};
use crate::starter::task::{self, ContainerInfo};

/// The signals passed on to a job by its starter and to an entered command (those
/// `petrel_runtime`'s init and `exec_in` forward).
pub(crate) const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// The exit status when the command could not be run at all.
pub const ENTER_FAILED: u8 = 125;

/// The command `petrel ssh` runs: `argv` (a shell when empty) in the job's scratch
/// directory (`target_dir` in the container), with the job's `PATH` and `TERM` passed
/// on, as `user` (`None`: the caller's mapped ids).
pub fn exec_spec(
    target_dir: &str,
    argv: Vec<String>,
    term: Option<String>,
    user: Option<User>,
) -> ExecSpec {
    let argv = if argv.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        argv
    };
    let mut spec = ExecSpec::new(argv);
    spec.workdir = Some(target_dir.to_string());
    spec.env.push(format!("_CONDOR_SCRATCH_DIR={target_dir}"));
    spec.env.push(format!("HOME={target_dir}"));
    // A terminal type is one word; anything else is not passed into the container.
    if let Some(term) = term.filter(|t| {
        !t.is_empty()
            && t.len() < 64
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    }) {
        spec.env.push(format!("TERM={term}"));
    }
    spec.user = user;
    spec
}

/// What the daemon needs to enter a job for a client.
pub struct Target {
    job: JobId,
    container: ContainerInfo,
    helper: PathBuf,
}

/// Checks that `peer` may enter job `id` and that it is running in a container.
pub fn target(core: &Core, peer: &Peer, id: JobId) -> Result<Target, PoolError> {
    let job = core.job_for(peer, id)?;
    let not_running = || {
        PoolError::Refused(format!(
            "job {id} is not running (status {}); only a running job can be entered",
            job.status.code()
        ))
    };
    if job.status != JobStatus::Running {
        return Err(not_running());
    }
    let claim = job.claim.as_ref().ok_or_else(not_running)?;
    let container: ContainerInfo =
        task::read_json(&claim.spool.join(task::CONTAINER_FILE)).map_err(|_| not_running())?;
    Ok(Target {
        job: id,
        container,
        helper: core.config.starter_program.clone(),
    })
}

/// The daemon's side, after the `Enter` request: runs the command for the client and
/// answers with its status. Takes the connection over until the command has ended.
pub fn serve(
    target: Result<Target, PoolError>,
    command: Vec<String>,
    term: Option<String>,
    mut reader: BufReader<UnixStream>,
    mut writer: BufWriter<UnixStream>,
) -> Result<(), PoolError> {
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            let message = e.to_string();
            return write_frame(&mut writer, &Response::Error { message });
        }
    };
    write_frame(&mut writer, &Response::SendTerminal)?;
    let stdio = receive_stdio(reader.get_ref())?;
    let c = &target.container;
    let mut helper = Command::new(&target.helper);
    helper
        .arg("enter")
        .arg(format!("--pid={}", c.pid))
        .arg(format!("--uid={}", c.uid))
        .arg(format!("--gid={}", c.gid))
        .arg(format!("--dir={}", c.target_dir))
        .arg(format!("--job={}", target.job))
        .arg(format!("--runtime={}", c.runtime))
        .arg(format!("--name={}", c.name));
    if let Some(term) = &term {
        helper.arg(format!("--term={term}"));
    }
    let [stdin, stdout, stderr] = stdio;
    let child = helper
        .arg("--")
        .args(&command)
        .env_clear()
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        // Its own group: the daemon's signals are not the command's.
        .process_group(0)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            let message = format!("cannot start {}: {e}", target.helper.display());
            return write_frame(&mut writer, &Response::Error { message });
        }
    };
    tracing::info!(
        "job {}: entered for a client (helper pid {})",
        target.job,
        child.id()
    );
    let pid = Pid::from_child(&child);
    // Set once the helper is reaped; signals are sent only before, so never to a
    // process that reused its pid.
    let reaped = Arc::new(Mutex::new(false));
    let relay = {
        let reaped = reaped.clone();
        std::thread::Builder::new()
            .name("enter-signals".into())
            .spawn(move || relay_signals(&mut reader, pid, &reaped))
            .map_err(|e| PoolError::io("starting the signal relay", e))?
    };
    let status = wait_helper(child, pid, &reaped);
    let result = write_frame(&mut writer, &Response::Exited { status });
    // Ends the relay's read, whatever the client does next.
    let _ = writer.get_ref().shutdown(std::net::Shutdown::Both);
    let _ = relay.join();
    result
}

/// The client's stdin, stdout and stderr, sent with `SCM_RIGHTS` after `SendTerminal`.
fn receive_stdio(stream: &UnixStream) -> Result<[OwnedFd; 3], PoolError> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| PoolError::io("setting a timeout", e))?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| PoolError::io("receiving the terminal", e.into()))?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    let _ = stream.set_read_timeout(None);
    match <[OwnedFd; 3]>::try_from(fds) {
        Ok(fds) if got.bytes == 1 => Ok(fds),
        _ => Err(PoolError::Protocol(
            "expected the terminal: stdin, stdout and stderr as SCM_RIGHTS".into(),
        )),
    }
}

/// Passes the client's `Signal` messages to the helper; kills it when the client is gone.
fn relay_signals(reader: &mut BufReader<UnixStream>, pid: Pid, reaped: &Mutex<bool>) {
    loop {
        // A signal is a few bytes: nothing larger is read on this connection.
        let signal = match read_frame_max::<Request>(reader, 4096) {
            Ok(Some(Request::Signal { signal })) if FORWARDED.contains(&signal) => signal,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => SIGKILL,
        };
        let done = reaped.lock().unwrap_or_else(|p| p.into_inner());
        if *done {
            return;
        }
        // SAFETY: the numbers are valid signals (from FORWARDED, or SIGKILL).
        let sig = unsafe { Signal::from_raw_unchecked(signal) };
        let _ = rustix::process::kill_process(pid, sig);
        if signal == SIGKILL {
            return;
        }
    }
}

/// Waits for the helper without reaping it, marks it reaped under the lock, then reaps
/// it; returns its status as a shell would.
fn wait_helper(mut child: std::process::Child, pid: Pid, reaped: &Mutex<bool>) -> u8 {
    while let Err(rustix::io::Errno::INTR) = rustix::process::waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    ) {}
    let mut done = reaped.lock().unwrap_or_else(|p| p.into_inner());
    *done = true;
    let status = child.wait();
    drop(done);
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (code & 0xff) as u8,
            (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
            _ => ENTER_FAILED,
        },
        Err(_) => ENTER_FAILED,
    }
}

impl Client {
    /// The client's side: runs `command` in job `id` through the daemon, with this
    /// process's stdin, stdout and stderr, passing on the signals that would have
    /// stopped it; returns the command's status as a shell reports it.
    pub fn enter(
        mut self,
        id: JobId,
        command: Vec<String>,
        term: Option<String>,
    ) -> Result<u8, PoolError> {
        let request = Request::Enter {
            job: id,
            command,
            term,
        };
        match self.call(&request)? {
            Response::SendTerminal => {}
            other => {
                return Err(PoolError::Protocol(format!(
                    "unexpected answer from the pool: {other:?}"
                )))
            }
        }
        let stream = self.writer.get_ref();
        let stdio = [
            rustix::stdio::stdin(),
            rustix::stdio::stdout(),
            rustix::stdio::stderr(),
        ];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&stdio));
        rustix::net::sendmsg(
            stream,
            &[IoSlice::new(b"T")],
            &mut control,
            SendFlags::empty(),
        )
        .map_err(|e| PoolError::io("sending the terminal to the pool", e.into()))?;
        let signals = signal_hook::iterator::Signals::new(FORWARDED)
            .map_err(|e| PoolError::io("catching signals", e))?;
        let handle = signals.handle();
        let mut out = BufWriter::new(
            stream
                .try_clone()
                .map_err(|e| PoolError::io("cloning the socket", e))?,
        );
        let forwarder = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut signals = signals;
                for signal in signals.forever() {
                    if write_frame(&mut out, &Request::Signal { signal }).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| PoolError::io("starting the signal forwarder", e))?;
        let answer = read_frame::<Response>(&mut self.reader);
        handle.close();
        let _ = forwarder.join();
        match answer? {
            Some(Response::Exited { status }) => Ok(status),
            Some(Response::Error { message }) => Err(PoolError::Refused(message)),
            Some(other) => Err(PoolError::Protocol(format!(
                "unexpected answer from the pool: {other:?}"
            ))),
            None => Err(PoolError::Protocol(
                "the pool daemon closed the connection".into(),
            )),
        }
    }
}
