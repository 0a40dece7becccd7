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

/// How many characters of the user's input an error message quotes at most.
pub const QUOTE_LIMIT: usize = 80;

/// `text` as an error message quotes it: whole when it has at most `limit` characters,
/// else its start and its end around a note of how much was left out, so that a huge or
/// hostile input never comes back in full (nor fills a terminal or a log).
pub fn excerpt(text: &str, limit: usize) -> String {
    let chars = text.chars().count();
    if chars <= limit {
        return text.to_string();
    }
    let head = limit.div_ceil(2);
    let tail = limit / 2;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(chars - tail).collect();
    format!(
        "{start}[... {} of {} bytes left out ...]{end}",
        text.len() - start.len() - end.len(),
        text.len()
    )
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_keep_short_text_and_bound_long_text() {
        assert_eq!(excerpt("[a=1]", 10), "[a=1]");
        let long = format!("{}X{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = excerpt(&long, 20);
        assert!(e.len() < 100, "{e}");
        assert!(
            e.starts_with("((((((((((") && e.ends_with("))))))))))"),
            "{e}"
        );
        assert!(e.contains("200001 bytes"), "{e}");
        // Never splits a character.
        let wide = "é".repeat(50);
        assert_eq!(
            excerpt(&wide, 4),
            format!("éé[... 92 of 100 bytes left out ...]éé")
        );
    }
}
