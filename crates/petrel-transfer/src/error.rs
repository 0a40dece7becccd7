//! Transfer failures, and how they become HTCondor holds.
//!
//! HTCondor puts a job whose transfer failed on hold with `HoldReasonCode` 13
//! (`TransferInputError`) or 12 (`TransferOutputError`) and the `errno` of the failure as
//! `HoldReasonSubCode`, and writes a `HoldReason` that says which side failed and what it
//! was doing. [`TransferError`] carries the same facts: the direction, the side, the path
//! and the errno.

use std::io;
use std::path::{Path, PathBuf};

/// `HoldReasonCode` for a failed input transfer (HTCondor's `TransferInputError`).
pub const HOLD_TRANSFER_INPUT: i32 = 13;
/// `HoldReasonCode` for a failed output transfer (HTCondor's `TransferOutputError`).
pub const HOLD_TRANSFER_OUTPUT: i32 = 12;

/// `EPERM`: HTCondor's subcode for a path that must not be used (an illegal sandbox path,
/// a remap cycle).
pub(crate) const EPERM: i32 = 1;
pub(crate) const ENOENT: i32 = 2;
pub(crate) const EISDIR: i32 = 21;
pub(crate) const EINVAL: i32 = 22;
pub(crate) const ELOOP: i32 = 40;
pub(crate) const ENOTSUP: i32 = 95;

/// Which transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Submit side to scratch directory, before the job runs.
    Input,
    /// Scratch directory to submit side, after the job ran.
    Output,
}

/// Where the failure happened, in HTCondor's words: the access point holds the job's
/// submit-side files, the execution point the scratch directory. On one machine both are
/// this host, but the hold reason still says which half of the copy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Reading or writing the submit-side files (or reading the job ad).
    AccessPoint,
    /// Reading or writing the scratch directory.
    ExecutionPoint,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read (missing, unreadable, a read error).
    Read,
    /// A file could not be created or written.
    Write,
    /// A directory could not be created.
    CreateDir,
    /// A directory could not be listed.
    ListDir,
    /// A symbolic link in the scratch directory leads outside it (the job is untrusted:
    /// petrel never reads or writes through such a link).
    SymlinkEscape,
    /// A name with `..` (or an absolute path where only a relative one is allowed) would
    /// leave the scratch directory or the job's `Iwd`.
    PathEscape,
    /// A symbolic link to a directory inside a transferred tree (HTCondor does not
    /// transfer these either).
    SymlinkToDirectory,
    /// A directory tree deeper than petrel follows.
    TooDeep,
    /// A URL whose scheme petrel has no transfer plugin for.
    UnsupportedUrl,
    /// `TransferOutputRemaps` maps names in a cycle.
    RemapCycle,
    /// A job ad attribute has a value that cannot be used.
    BadAttribute {
        /// The attribute.
        attribute: String,
    },
}

/// A failed transfer: the facts HTCondor puts in `HoldReason`, `HoldReasonCode` and
/// `HoldReasonSubCode`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transfer {} files failure: {}", .direction.word(), .details)]
pub struct TransferError {
    direction: Direction,
    side: Side,
    kind: ErrorKind,
    path: Option<PathBuf>,
    errno: i32,
    details: String,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

impl TransferError {
    /// An I/O error on `path`, with HTCondor's wording for the action
    /// (`reading from file /x: (errno 2) No such file or directory`).
    pub(crate) fn io(
        direction: Direction,
        side: Side,
        kind: ErrorKind,
        path: &Path,
        err: &io::Error,
    ) -> TransferError {
        let errno = err.raw_os_error().unwrap_or(libc_eio());
        let action = match kind {
            ErrorKind::Write => "writing to file",
            ErrorKind::CreateDir => "creating directory",
            ErrorKind::ListDir => "listing directory",
            _ => "reading from file",
        };
        TransferError {
            direction,
            side,
            kind,
            path: Some(path.to_path_buf()),
            errno,
            details: format!(
                "{action} {}: (errno {errno}) {}",
                path.display(),
                strerror(errno)
            ),
        }
    }

    /// A refusal or a bad description: `errno` is the subcode HTCondor would use, `why`
    /// says what was refused.
    pub(crate) fn refused(
        direction: Direction,
        side: Side,
        kind: ErrorKind,
        path: Option<&Path>,
        errno: i32,
        why: impl Into<String>,
    ) -> TransferError {
        let why = why.into();
        let details = match path {
            Some(p) => format!("{}: {why} (errno {errno})", p.display()),
            None => format!("{why} (errno {errno})"),
        };
        TransferError {
            direction,
            side,
            kind,
            path: path.map(Path::to_path_buf),
            errno,
            details,
        }
    }

    /// `(HoldReasonCode, HoldReasonSubCode)`: 13 for input, 12 for output; the subcode is
    /// the errno of the failure.
    pub fn hold_code(&self) -> (i32, i32) {
        match self.direction {
            Direction::Input => (HOLD_TRANSFER_INPUT, self.errno),
            Direction::Output => (HOLD_TRANSFER_OUTPUT, self.errno),
        }
    }

    /// The `HoldReason` HTCondor would write, naming this machine as the access point
    /// (`access_point`, e.g. the host name) and the slot as the execution point
    /// (`execution_point`, e.g. `slot1@host`):
    /// `Transfer input files failure at access point host while sending files to
    /// execution point slot1@host. Details: reading from file /x: (errno 2) No such file
    /// or directory`.
    pub fn hold_reason(&self, access_point: &str, execution_point: &str) -> String {
        let dir = self.direction.word();
        let (verb_ap, verb_ep) = match self.direction {
            // the access point sends inputs, the execution point receives them
            Direction::Input => ("sending files to", "receiving files from"),
            // the execution point sends outputs, the access point receives them
            Direction::Output => ("receiving files from", "sending files to"),
        };
        match self.side {
            Side::AccessPoint => format!(
                "Transfer {dir} files failure at access point {access_point} while {verb_ap} \
                 execution point {execution_point}. Details: {}",
                self.details
            ),
            Side::ExecutionPoint => format!(
                "Transfer {dir} files failure at execution point {execution_point} while \
                 {verb_ep} access point {access_point}. Details: {}",
                self.details
            ),
        }
    }

    /// Input or output.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Which side of the copy failed.
    pub fn side(&self) -> Side {
        self.side
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The file or directory involved, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The errno (the hold subcode).
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The part of the message after `Details:`.
    pub fn details(&self) -> &str {
        &self.details
    }
}

/// `EIO`, for an I/O error that carries no errno (a short copy).
fn libc_eio() -> i32 {
    5
}

/// The C library's text for an errno, without Rust's ` (os error N)` suffix.
pub(crate) fn strerror(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_drops_rust_suffix() {
        assert_eq!(strerror(2), "No such file or directory");
        assert_eq!(strerror(13), "Permission denied");
    }

    #[test]
    fn hold_reason_wording() {
        let e = TransferError::io(
            Direction::Input,
            Side::AccessPoint,
            ErrorKind::Read,
            Path::new("/sub/missing"),
            &io::Error::from_raw_os_error(2),
        );
        assert_eq!(e.hold_code(), (13, 2));
        assert_eq!(
            e.hold_reason("host", "slot1@host"),
            "Transfer input files failure at access point host while sending files to \
             execution point slot1@host. Details: reading from file /sub/missing: (errno 2) \
             No such file or directory"
        );
        let e = TransferError::io(
            Direction::Output,
            Side::ExecutionPoint,
            ErrorKind::Read,
            Path::new("/scratch/out"),
            &io::Error::from_raw_os_error(2),
        );
        assert_eq!(e.hold_code(), (12, 2));
        assert!(e
            .hold_reason("host", "slot1@host")
            .starts_with("Transfer output files failure at execution point slot1@host while sending files to access point host. Details: reading from file /scratch/out"));
        assert_eq!(
            e.to_string(),
            "transfer output files failure: reading from file /scratch/out: (errno 2) No such file or directory"
        );
    }
}
