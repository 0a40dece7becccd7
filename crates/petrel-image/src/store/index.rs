//! Image metadata and names, as small JSON files written atomically (temp + rename).
//!
//! * `images/<hex>/meta.json`: what the image is (written once, before the image
//!   directory is renamed into place, so an image directory without it is never seen).
//! * `images/<hex>/last-used`: an empty file whose mtime is the last use (LRU for GC).
//! * `names/<encoded name>`: the digest a name points at, one file per name, so
//!   tagging never rewrites a shared index.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

/// A layer of a stored image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerMeta {
    /// Digest of the blob as distributed (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar: the key of the unpack cache.
    pub diff_id: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Bytes of file content once unpacked.
    pub unpacked_size: u64,
    /// Media type as distributed.
    pub media_type: String,
    /// What unpacking left out (device nodes, setuid/setgid bits, file capabilities).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

/// What a stored image is made of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageKind {
    /// Layers flattened into `images/<hex>/rootfs` with hardlinks.
    Layers {
        /// Digest of the config blob.
        config_digest: Digest,
        /// Layers, bottom first.
        layers: Vec<LayerMeta>,
    },
    /// A squashfs (file, or partition of a SIF file) extracted into `rootfs`.
    Squashfs {
        /// The file it came from.
        file: PathBuf,
        /// Byte offset of the squashfs inside the file (SIF partitions).
        offset: u64,
    },
}

/// The stored record of one image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageMeta {
    /// Manifest digest (for squashfs/SIF: a digest of the file's identity).
    pub digest: Digest,
    /// Where it came from (`docker://…`, `oci:…`, `sif:…`).
    pub source: String,
    /// The runtime config.
    pub config: ImageConfig,
    /// Bytes of file content in the root file system.
    pub size: u64,
    /// Seconds since the epoch when stored.
    pub created: u64,
    /// How it is stored.
    pub kind: ImageKind,
    /// What storing left out of a squashfs image (layers record their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

impl ImageMeta {
    /// Everything left out of the image, layer by layer.
    pub fn all_dropped(&self) -> Vec<String> {
        let mut out = self.dropped.clone();
        if let ImageKind::Layers { layers, .. } = &self.kind {
            for l in layers {
                out.extend(
                    l.dropped
                        .iter()
                        .map(|d| format!("layer {}: {d}", l.digest.short())),
                );
            }
        }
        out
    }
}

/// An image as `ls` and `inspect` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// Image digest.
    pub digest: Digest,
    /// Names pointing at it.
    pub names: Vec<String>,
    /// Origin.
    pub source: String,
    /// Bytes of file content in the root file system.
    pub size: u64,
    /// Bytes on disk that only this image's blobs and layers take (0 when shared).
    pub blob_size: u64,
    /// Seconds since the epoch when stored.
    pub created: u64,
    /// Seconds since the epoch of the last `prepare`/`pull`.
    pub last_used: u64,
    /// The runtime config.
    pub config: ImageConfig,
    /// How it is stored.
    pub kind: ImageKind,
    /// What storing left out so that nothing privileged sits on the host: device nodes,
    /// setuid/setgid bits, file capabilities.
    pub dropped: Vec<String>,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `bytes` to `path` atomically: a temp file beside it, then rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    std::fs::write(&tmp, bytes).ctx("write", &tmp)?;
    std::fs::rename(&tmp, path).ctx("rename into place", path)
}

/// Reads a JSON file no larger than `cap` bytes.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, cap: u64) -> Result<T> {
    let meta = std::fs::metadata(path).ctx("stat", path)?;
    if meta.len() > cap {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            limit: cap,
        });
    }
    let bytes = std::fs::read(path).ctx("read", path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::format(path.display().to_string(), e))
}

/// File name for a name: `/` and `%` percent-encoded.
pub(crate) fn encode_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

pub(crate) fn decode_name(file: &str) -> String {
    file.replace("%2F", "/").replace("%25", "%")
}

pub(crate) fn touch(path: &Path) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx("open", path)?;
    f.set_modified(SystemTime::now()).ctx("touch", path)
}

pub(crate) fn mtime_secs(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
