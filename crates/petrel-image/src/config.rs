//! The parts of an image config a runtime needs, and the progress callback trait.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// How to run an image, from its OCI/Docker config (`docker run` semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `KEY=value` pairs.
    #[serde(default)]
    pub env: Vec<String>,
    /// Entrypoint; the job's arguments (or `cmd`) follow it.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Working directory inside the image, if set.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// User (name, uid, or `uid:gid`), if set.
    #[serde(default)]
    pub user: Option<String>,
    /// Image labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Platform the image was built for (`linux/amd64`), when known.
    #[serde(default)]
    pub platform: Option<String>,
}

impl ImageConfig {
    /// The runtime's view of a parsed OCI config.
    #[doc(hidden)]
    pub fn from_oci(cfg: &oci_spec::image::ImageConfiguration) -> ImageConfig {
        let mut out = ImageConfig {
            platform: Some(match cfg.variant() {
                Some(v) => format!("{}/{}/{v}", cfg.os(), cfg.architecture()),
                None => format!("{}/{}", cfg.os(), cfg.architecture()),
            }),
            ..ImageConfig::default()
        };
        if let Some(c) = cfg.config() {
            out.env = c.env().clone().unwrap_or_default();
            out.entrypoint = c.entrypoint().clone();
            out.cmd = c.cmd().clone();
            out.working_dir = c.working_dir().clone().filter(|s| !s.is_empty());
            out.user = c.user().clone().filter(|s| !s.is_empty());
            out.labels = c.labels().clone().unwrap_or_default().into_iter().collect();
        }
        out
    }
}

/// Receives progress while images are fetched and unpacked. Every method has an
/// empty default, so an implementation picks what it shows.
pub trait Progress: Sync {
    /// A layer (or other blob) starts; `size` is its compressed size when known.
    fn layer_started(&self, _digest: &Digest, _size: Option<u64>) {}
    /// `n` more bytes of the blob arrived.
    fn layer_bytes(&self, _digest: &Digest, _n: u64) {}
    /// The blob is stored and unpacked; `cached` when nothing had to be fetched.
    fn layer_finished(&self, _digest: &Digest, _cached: bool) {}
    /// A one-line note (a skipped device node, a fallback that was taken).
    fn note(&self, _msg: &str) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
