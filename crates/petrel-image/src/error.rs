//! The crate's error type: every variant names what it was working on (a layer, an
//! entry, a path, a registry), so a message alone tells the user where to look.

use std::path::Path;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while naming, fetching, storing or unpacking an image.
/// Fields are self-describing: `layer`/`entry`/`path`/`registry` say where, `reason` what.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    /// The text is not an image reference petrel understands.
    #[error("invalid image reference {input:?}: {reason}")]
    Reference { input: String, reason: String },
    /// A file-system operation failed; `context` names the operation and the path.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Content did not hash to the digest it was fetched or recorded under.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest, config or layer went over its size limit (a "bomb").
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    /// A layer entry that would write outside the root file system, or is otherwise refused.
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    /// A layer that cannot be read (bad compression, broken tar).
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    /// The registry answered with an error or something unexpected.
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    /// Credentials were missing or refused.
    #[error("authentication to {registry} failed: {reason}")]
    Auth { registry: String, reason: String },
    /// An index has no manifest for this host's platform.
    #[error("{reference} has no image for platform {wanted}; available: {available}")]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    /// A manifest, config, archive or SIF file that does not parse.
    #[error("invalid {what}: {reason}")]
    Format { what: String, reason: String },
    /// The store has no image of that name or digest.
    #[error("image {0} is not in the store")]
    NotFound(String),
    /// The image is held by a running job (a lease).
    #[error("image {0} is in use")]
    InUse(String),
    /// A required external tool or feature is missing.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn format(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Format {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// Adds a context (operation and path) to `std::io` results.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(format!("{what} {}", path.display()), e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(std::io::Error::from).ctx(what, path)
    }
}
