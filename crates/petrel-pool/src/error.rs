//! The pool's errors.

use std::io;

/// Everything that can go wrong in the pool, its client or its starter.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("queue database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("configuration: {0}")]
    Config(String),
    /// The request was refused (bad input, permissions); the daemon is unharmed.
    #[error("{0}")]
    Refused(String),
    /// The pool is not running and could not be started.
    #[error("{0}")]
    NotRunning(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error(transparent)]
    Submit(#[from] petrel_submit::SubmitError),
}

impl PoolError {
    pub fn io(what: impl Into<String>, source: io::Error) -> PoolError {
        PoolError::Io {
            what: what.into(),
            source,
        }
    }
}
