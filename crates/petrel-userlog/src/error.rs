//! Errors of the writer and the reader. Every error that comes from a log names the
//! log (its path, or the name the caller gave a stream) and, when reading, the line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserLogError {
    /// Opening, locking, reading or writing the log failed.
    #[error("user log {file}: {action}: {source}")]
    Io {
        file: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A record does not have the layout its event number calls for, or a line
    /// between records is not a record header.
    #[error("user log {file}, line {line}: {message}")]
    Malformed {
        file: PathBuf,
        line: u64,
        message: String,
    },
    /// The log ends inside a record: a writer is still writing it (or died while
    /// writing it). Followers wait for the rest; one-shot readers stop here.
    #[error("user log {file}, line {line}: incomplete record at the end of the log")]
    Incomplete { file: PathBuf, line: u64 },
    /// A line is longer than the reader's limit; the reader skipped its record.
    #[error("user log {file}, line {line}: line longer than {limit} bytes, record skipped")]
    LineTooLong {
        file: PathBuf,
        line: u64,
        limit: usize,
    },
    /// A record is longer than the reader's limit; the reader skipped it.
    #[error("user log {file}, line {line}: record longer than {limit} bytes, record skipped")]
    RecordTooLong {
        file: PathBuf,
        line: u64,
        limit: usize,
    },
    /// The event cannot be written in a form HTCondor reads back.
    #[error("user log {file}: cannot write event {code}: {message}")]
    InvalidEvent {
        file: PathBuf,
        code: u32,
        message: String,
    },
    /// The time cannot be shown in the log's time zone.
    #[error("user log {file}: cannot write time: {message}")]
    Time { file: PathBuf, message: String },
}

impl UserLogError {
    /// The line the error is about, for errors found while reading.
    pub fn line(&self) -> Option<u64> {
        match self {
            UserLogError::Malformed { line, .. }
            | UserLogError::Incomplete { line, .. }
            | UserLogError::LineTooLong { line, .. }
            | UserLogError::RecordTooLong { line, .. } => Some(*line),
            _ => None,
        }
    }
}

pub type Result<T, E = UserLogError> = std::result::Result<T, E>;
