//! The one-way report channel from the container's init (and the job, until it execs) to
//! the caller: setup failures with their message, then the job's wait status.
//!
//! Each message is a tag byte and a fixed or length-prefixed body, written with a single
//! `write(2)` below `PIPE_BUF` so messages from two processes never interleave. The write end
//! is close-on-exec, so a successful `execve` closes the job's copy silently.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::SetupFailure;

const TAG_FAILURE: u8 = b'F';
const TAG_EXIT: u8 = b'X';
const MAX_MESSAGE: usize = 3000;

/// A message read by the caller.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    Failure(SetupFailure, String),
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
        bytes.push(TAG_EXIT);
        bytes.extend_from_slice(&256i32.to_le_bytes());
        bytes.extend_from_slice(&[TAG_FAILURE, 9]);
        assert_eq!(
            parse(&bytes),
            vec![
                Report::Failure(SetupFailure::CommandNotFound, "abc".into()),
                Report::Exit(256)
            ]
        );
    }
}
