//! The one-way report channel from the container's init (and the job, until it execs) to
//! the caller: setup failures with their message, that the job has started (its command
//! was exec'd), then the job's wait status.
//!
//! Each message is a tag byte and a fixed or length-prefixed body, written with a single
//! `write(2)` below `PIPE_BUF` so messages from two processes never interleave. The write end
//! is close-on-exec, so a successful `execve` closes the job's copy silently.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::SetupFailure;

const TAG_FAILURE: u8 = b'F';
const TAG_EXIT: u8 = b'X';
const TAG_STARTED: u8 = b'S';
const MAX_MESSAGE: usize = 3000;

/// A message read by the caller.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    Failure(SetupFailure, String),
    /// The job's command was exec'd: setup is over.
    Started,
    /// The job's raw wait status, as `waitpid` gave it to init.
    Exit(i32),
}

/// Sends a setup failure; used between `fork` and `exec`, so it allocates little and
/// ignores write errors (the caller then sees a missing report and says so).
pub(crate) fn send_failure(fd: &OwnedFd, failure: SetupFailure, message: &str) {
    let mut text = message.as_bytes();
    if text.len() > MAX_MESSAGE {
        text = &text[..MAX_MESSAGE];
    }
    let mut buf = Vec::with_capacity(text.len() + 6);
    buf.push(TAG_FAILURE);
    buf.push(failure as u8);
    buf.extend_from_slice(&(text.len() as u32).to_le_bytes());
    buf.extend_from_slice(text);
    write_all(fd, &buf);
}

pub(crate) fn send_exit(fd: &OwnedFd, status: i32) {
    let mut buf = [0u8; 5];
    buf[0] = TAG_EXIT;
    buf[1..].copy_from_slice(&status.to_le_bytes());
    write_all(fd, &buf);
}

/// Sent by the init once the job has exec'd (the vfork-style start returns only then), so
/// the caller knows setup is over without waiting for the job to end.
pub(crate) fn send_started(fd: &OwnedFd) {
    write_all(fd, &[TAG_STARTED]);
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: the fd is open for the lifetime of the borrow and buf is a valid slice.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Reads the channel into `bytes` until it closes (then returns true) or `stop` says what
/// was read so far is enough. Meanwhile, when `forward` holds a signalfd and a pid, every
/// signal another process sends to the caller is passed on to that pid, which forwards it
/// to the job (terminal signals reach the job directly, as it is in the terminal's process
/// group, so passing them on would deliver them twice).
pub(crate) fn read(
    report: &OwnedFd,
    bytes: &mut Vec<u8>,
    forward: Option<(&OwnedFd, libc::pid_t)>,
    stop: impl Fn(&[u8]) -> bool,
) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        if stop(bytes) {
            return false;
        }
        let mut fds = [
            libc::pollfd {
                fd: report.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: forward.map_or(-1, |(signals, _)| signals.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfd structs (poll skips a negative fd).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return true;
        }
        if let Some((signals, pid)) = forward {
            if fds[1].revents & libc::POLLIN != 0 {
                if let Some(info) = crate::init::read_signal(signals) {
                    if crate::init::sent_by_process(&info) {
                        // SAFETY: kill takes plain integers; the caller has not reaped `pid`.
                        unsafe { libc::kill(pid, info.ssi_signo as libc::c_int) };
                    }
                }
            }
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            // SAFETY: buf is a valid buffer of its length.
            let r = unsafe { libc::read(report.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                bytes.extend_from_slice(&buf[..r as usize]);
            } else if r == 0
                || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                return true;
            }
        }
    }
}

/// Parses everything the channel carried; unknown or truncated bytes end the parse.
pub(crate) fn parse(mut bytes: &[u8]) -> Vec<Report> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        match tag {
            TAG_FAILURE if rest.len() >= 5 => {
                let Some(failure) = SetupFailure::from_u8(rest[0]) else {
                    break;
                };
                let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
                let Some(text) = rest.get(5..5 + len) else {
                    break;
                };
                out.push(Report::Failure(
                    failure,
                    String::from_utf8_lossy(text).into_owned(),
                ));
                bytes = &rest[5 + len..];
            }
            TAG_STARTED => {
                out.push(Report::Started);
                bytes = rest;
            }
            TAG_EXIT if rest.len() >= 4 => {
                out.push(Report::Exit(i32::from_le_bytes([
                    rest[0], rest[1], rest[2], rest[3],
                ])));
                bytes = &rest[4..];
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let mut bytes = vec![TAG_FAILURE, SetupFailure::CommandNotFound as u8];
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        bytes.push(TAG_STARTED);
        bytes.push(TAG_EXIT);
        bytes.extend_from_slice(&256i32.to_le_bytes());
        bytes.extend_from_slice(&[TAG_FAILURE, 9]);
        assert_eq!(
            parse(&bytes),
            vec![
                Report::Failure(SetupFailure::CommandNotFound, "abc".into()),
                Report::Started,
                Report::Exit(256)
            ]
        );
    }
}
