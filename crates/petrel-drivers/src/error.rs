//! The drivers' one error type. Every error says whom to blame, because that decides what
//! the pool does with the job: a job whose image or command is bad is held (running it
//! again elsewhere would fail the same way), while a job that failed because the runtime
//! broke goes back to idle and the slot re-probes the runtime (black-hole protection).

use std::io;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Blame {
    /// The job: its image is missing or unusable, its command is not in the image, its
    /// spec asks for something impossible. The pool holds the job.
    Job,
    /// The slot: the runtime is missing, broken or misconfigured. The pool puts the job
    /// back to idle and re-probes the runtime.
    Slot,
}

/// What kind of failure, for callers that act on more than the blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The image cannot be found, read or converted.
    Image,
    /// The command is not in the image or cannot be executed.
    Command,
    /// The job spec is invalid for this runtime (unsupported image form, option).
    Spec,
    /// The runtime's program is missing or does not answer.
    Unavailable,
    /// The runtime failed to create, run or clean up the container.
    Runtime,
    /// The operation is not supported by this driver.
    Unsupported,
    /// Petrel's own file or process handling failed (bundle, scratch, pipes).
    Io,
    /// A wait ran out of time.
    Timeout,
}

/// A driver failure: whom to blame, its kind, and a one-line message naming the runtime
/// and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DriverError {
    pub blame: Blame,
    pub kind: ErrorKind,
    pub message: String,
}

impl DriverError {
    pub fn job(kind: ErrorKind, message: impl Into<String>) -> Self {
        DriverError {
            blame: Blame::Job,
            kind,
            message: message.into(),
        }
    }

    pub fn slot(kind: ErrorKind, message: impl Into<String>) -> Self {
        DriverError {
            blame: Blame::Slot,
            kind,
            message: message.into(),
        }
    }

    /// An I/O failure of petrel's own (the slot's fault: a full disk, a missing directory).
    pub fn io(context: impl std::fmt::Display, err: io::Error) -> Self {
        Self::slot(ErrorKind::Io, format!("{context}: {err}"))
    }

    /// Whether the job should be held (not retried elsewhere).
    pub fn holds_job(&self) -> bool {
        self.blame == Blame::Job
    }

    /// Classifies what a runtime printed when it could not start a job: messages about a
    /// missing image or command blame the job, anything else blames the runtime.
    pub fn from_runtime_message(runtime: &str, message: &str) -> Self {
        let line = one_line(message);
        let lower = line.to_ascii_lowercase();
        let command = [
            "executable file not found",
            "can't execve",
            "exec format error",
            "no such file or directory: unknown",
            "not found in $path",
            "permission denied: unknown",
            "is a directory",
        ];
        let image = [
            "no such image",
            "unable to find image",
            "pull access denied",
            "manifest unknown",
            "repository does not exist",
            "image not known",
            "can't stat",
            "not a sif file",
            "could not open image",
            "image format not recognized",
        ];
        let text = format!("{runtime}: {line}");
        if command.iter().any(|m| lower.contains(m)) {
            Self::job(ErrorKind::Command, text)
        } else if image.iter().any(|m| lower.contains(m)) {
            Self::job(ErrorKind::Image, text)
        } else {
            Self::slot(ErrorKind::Runtime, text)
        }
    }
}

/// The most telling line of a runtime's error output: the last non-empty line, trimmed of
/// log decoration, so offline reasons and hold reasons stay one line.
pub fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line.chars().take(400).collect();
    if line.chars().count() > 400 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_runtime_messages() {
        let e = DriverError::from_runtime_message(
            "docker",
            "OCI runtime create failed: exec: \"nope\": executable file not found in $PATH: unknown",
        );
        assert_eq!((e.blame, e.kind), (Blame::Job, ErrorKind::Command));
        assert!(e.message.starts_with("docker: OCI runtime"));
        let e = DriverError::from_runtime_message(
            "ch-run",
            "ch-run[1]: error: can't execve(2): nope: No such file or directory",
        );
        assert_eq!(e.kind, ErrorKind::Command);
        let e = DriverError::from_runtime_message("docker", "Error: No such image: petrel_x:1");
        assert_eq!((e.blame, e.kind), (Blame::Job, ErrorKind::Image));
        let e = DriverError::from_runtime_message(
            "crun",
            "cgroups in hybrid mode not supported, drop all controllers from cgroupv2",
        );
        assert_eq!((e.blame, e.kind), (Blame::Slot, ErrorKind::Runtime));
        assert!(!e.holds_job());
    }

    #[test]
    fn one_line_takes_the_last_line() {
        assert_eq!(one_line("a\n  b  \n\n"), "b");
        assert_eq!(one_line(""), "");
        assert_eq!(one_line(&"x".repeat(500)).chars().count(), 401);
    }
}
