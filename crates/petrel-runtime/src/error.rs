//! The runtime's errors. Each names the path, option or kernel setting involved, so the user
//! can act on it without reading petrel's source.

use std::io;
use std::path::PathBuf;

use crate::exit_status;

/// What went wrong inside the container before the command started; sent from the
/// container's init to the caller over the report channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SetupFailure {
    /// A setup step (mount, pivot_root, id map, ...) failed.
    Step = 1,
    /// The command is not in the image.
    CommandNotFound = 2,
    /// The command is in the image but cannot be executed.
    NotExecutable = 3,
    /// The working directory does not exist or cannot be entered.
    Workdir = 4,
    /// Switching to the requested user failed.
    User = 5,
}

impl SetupFailure {
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Step,
            2 => Self::CommandNotFound,
            3 => Self::NotExecutable,
            4 => Self::Workdir,
            5 => Self::User,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("root filesystem {0} does not exist")]
    RootfsMissing(PathBuf),
    #[error("root filesystem {0} is not a directory")]
    RootfsNotDirectory(PathBuf),
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    #[error("cannot create {namespaces} namespaces: {source}{hint}")]
    NamespaceUnavailable {
        namespaces: String,
        source: io::Error,
        /// A sentence saying which kernel setting to change, or empty.
        hint: String,
    },
    #[error("{message}")]
    InContainer {
        failure: SetupFailure,
        message: String,
    },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("cgroup {path}: {message}")]
    Cgroup { path: PathBuf, message: String },
    #[error("the container's init ended without reporting the job's status (internal error)")]
    NoReport,
    #[error("cannot enter process {pid}: {reason}")]
    NotAContainer { pid: i32, reason: String },
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }

    /// The exit status `petrel run` should use for this error.
    pub fn exit_status(&self) -> u8 {
        match self {
            RuntimeError::InContainer {
                failure: SetupFailure::CommandNotFound,
                ..
            } => exit_status::NOT_FOUND,
            RuntimeError::InContainer {
                failure: SetupFailure::NotExecutable,
                ..
            } => exit_status::NOT_EXECUTABLE,
            _ => exit_status::SETUP_FAILED,
        }
    }
}

/// A failure inside the container, before the command runs; becomes
/// [`RuntimeError::InContainer`] on the caller's side.
#[derive(Debug)]
pub(crate) struct StepError {
    pub(crate) failure: SetupFailure,
    pub(crate) message: String,
}

impl StepError {
    pub(crate) fn step(message: impl Into<String>) -> Self {
        StepError {
            failure: SetupFailure::Step,
            message: message.into(),
        }
    }

    pub(crate) fn os(what: impl std::fmt::Display) -> Self {
        Self::step(format!("{what}: {}", io::Error::last_os_error()))
    }
}
