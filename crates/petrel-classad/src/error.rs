//! Typed errors with source positions.

use std::fmt;

/// A position in parsed text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// The text is not valid ClassAd syntax.
    #[error("parse error at {pos}: expected {expected}, found {found}")]
    Parse {
        /// Where the offending token starts.
        pos: Position,
        /// What the parser expected there.
        expected: String,
        /// What it found instead.
        found: String,
    },
    /// The expression nests deeper than the configured limit.
    #[error("expression nests deeper than the limit of {limit} at {pos}")]
    TooDeep {
        /// Where the limit was hit.
        pos: Position,
        /// The limit.
        limit: usize,
    },
    /// The input is larger than the configured limit.
    #[error("input of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A JSON document could not be read or does not describe a ClassAd.
    #[error("JSON error: {0}")]
    Json(String),
    /// A command-line usage problem (used by [`crate::tools`]).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read (used by [`crate::tools`]).
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
