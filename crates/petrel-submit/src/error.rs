//! Errors with the file, line and column they come from.

use std::fmt;
use std::path::PathBuf;

/// Where in a submit description something is: file, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Location {
    /// The submit file (or `<string>` for text given directly).
    pub file: String,
    /// 1-based line number (0 when the problem is not on one line).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub column: u32,
}

impl Location {
    /// A location in `file` at `line`, `column`.
    pub fn new(file: impl Into<String>, line: u32, column: u32) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.file),
            (l, 0) => write!(f, "{}:{l}", self.file),
            (l, c) => write!(f, "{}:{l}:{c}", self.file),
        }
    }
}

/// A submit description that cannot be turned into job ads. Nothing is produced.
///
/// Its message quotes the offending text only in part when that is long (a value, a line,
/// a macro's expansion can be megabytes): see [`excerpt`].
#[derive(Debug, thiserror::Error)]
#[error("{location}: {}", excerpt(&kind.to_string(), MESSAGE_LIMIT))]
pub struct SubmitError {
    /// Where the offending text is.
    pub location: Location,
    /// What is wrong, with the offending text and what was expected.
    pub kind: ErrorKind,
}

impl SubmitError {
    /// An error of `kind` at `location`.
    pub fn new(location: Location, kind: ErrorKind) -> Self {
        Self { location, kind }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Text that does not follow the grammar.
    #[error("syntax error at '{text}': expected {expected}")]
    Syntax {
        /// The offending text.
        text: String,
        /// What the grammar wanted there.
        expected: String,
    },
    /// A command whose value is not acceptable.
    #[error("{command} = {value} is invalid: expected {expected}")]
    BadValue {
        /// The submit command.
        command: String,
        /// Its (expanded) value.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// `universe = ...` names no universe.
    #[error("unknown universe '{0}': expected vanilla, container, docker, local, scheduler, parallel, java, vm or grid")]
    UnknownUniverse(String),
    /// An opening quote with no closing quote.
    #[error("unbalanced quotes in '{text}': expected a closing {quote}")]
    UnbalancedQuotes {
        /// The offending text.
        text: String,
        /// The quote character that is not closed.
        quote: char,
    },
    /// `request_memory = 3 XB` and the like.
    #[error("{command} = {value}: unknown unit '{unit}': expected a number with K, KB, M, MB, G, GB, T or TB, or an expression")]
    BadUnit {
        /// The submit command.
        command: String,
        /// Its value.
        value: String,
        /// The unit that was not understood.
        unit: String,
    },
    /// A macro that refers to itself, directly or not.
    #[error("macro expansion loop: $({0}) refers to itself (chain: {1})")]
    MacroLoop(String, String),
    /// Expansion went deeper than the limit.
    #[error("macro expansion nested deeper than {0} levels in '{1}'")]
    MacroDepth(usize, String),
    /// Expansion produced more text than the limit.
    #[error("macro expansion of '{0}' exceeds the limit of {1} bytes")]
    MacroTooLarge(String, usize),
    /// A macro function (`$INT`, `$CHOICE`, ...) used wrongly.
    #[error("{function}: {message}")]
    MacroFunction {
        /// The function, e.g. `$INT(x)`.
        function: String,
        /// What was wrong.
        message: String,
    },
    /// A queue statement that would create more procs than allowed.
    #[error("queue statement would create {count} jobs, more than the limit of {cap} (raise it with the max-procs option)")]
    TooManyProcs {
        /// How many jobs the statement asks for.
        count: u128,
        /// The configured cap.
        cap: u64,
    },
    /// A file the description needs (queue item file, include, executable...).
    #[error("cannot read {what} '{}': {message}", path.display())]
    File {
        /// What the file is for.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A command whose output was to be read failed.
    #[error("command '{command}' failed: {message}")]
    Command {
        /// The shell command.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// Includes nested too deeply.
    #[error("include nesting deeper than {0} levels")]
    IncludeDepth(usize),
    /// A file that includes itself.
    #[error("include cycle: '{0}' is already being read")]
    IncludeCycle(String),
    /// An `if` without `endif`, or `else` without `if`, and so on.
    #[error("{0}")]
    Conditional(String),
    /// `error : message` in the submit description.
    #[error("error statement: {0}")]
    UserError(String),
    /// No `queue` statement at all.
    #[error("no queue statement: nothing to submit")]
    NoQueue,
}

/// How many characters of an error's message (which quotes the user's text) are shown.
pub const MESSAGE_LIMIT: usize = 400;

/// Error messages quote the user's text through ClassAd's own bound (one rule for both).
pub use petrel_classad::excerpt;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, SubmitError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_quote_long_text_only_in_part() {
        let value = "x".repeat(200_000);
        let e = SubmitError::new(
            Location::new("job.sub", 3, 1),
            ErrorKind::BadValue {
                command: "request_cpus".into(),
                value,
                expected: "a whole number".into(),
            },
        );
        let msg = e.to_string();
        assert!(msg.len() < MESSAGE_LIMIT + 100, "{} bytes", msg.len());
        assert!(msg.starts_with("job.sub:3:1: request_cpus = xxx"), "{msg}");
        assert!(msg.ends_with("expected a whole number"), "{msg}");
        assert!(msg.contains("bytes left out"), "{msg}");
        let short = SubmitError::new(Location::new("job.sub", 1, 0), ErrorKind::NoQueue);
        assert_eq!(
            short.to_string(),
            "job.sub:1: no queue statement: nothing to submit"
        );
    }
}
