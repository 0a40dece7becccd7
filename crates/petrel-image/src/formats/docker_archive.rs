//! `docker save` archives: a tar with `manifest.json` (`Config`, `RepoTags`, `Layers`),
//! read in place (entries are located once, then read by offset; nothing is extracted
//! except through the normal verified install).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Progress;
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::store::{BlobSource, PullOutcome, Resolved, Store, MAX_METADATA_BYTES};

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

struct Archive {
    path: PathBuf,
    /// Member name → (offset of data, size).
    members: HashMap<String, (u64, u64)>,
    /// Blob digest → member name.
    blobs: HashMap<Digest, String>,
}

impl Archive {
    fn open(path: &Path) -> Result<Archive> {
        let f = File::open(path).ctx("open archive", path)?;
        let mut ar = tar::Archive::new(f);
        let mut members = HashMap::new();
        let bad =
            |e: std::io::Error| Error::format(format!("docker archive {}", path.display()), e);
        for e in ar.entries().map_err(bad)? {
            let e = e.map_err(bad)?;
            let name = e
                .path()
                .map_err(bad)?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            members.insert(name, (e.raw_file_position(), e.size()));
        }
        Ok(Archive {
            path: path.to_path_buf(),
            members,
            blobs: HashMap::new(),
        })
    }

    fn member(&self, name: &str) -> Result<impl Read + Send> {
        let (off, size) = *self
            .members
            .get(name.trim_start_matches("./"))
            .ok_or_else(|| {
                Error::format(
                    format!("docker archive {}", self.path.display()),
                    format!("no member {name}"),
                )
            })?;
        let mut f = File::open(&self.path).ctx("open archive", &self.path)?;
        f.seek(SeekFrom::Start(off)).ctx("seek", &self.path)?;
        Ok(f.take(size))
    }
}

impl BlobSource for Archive {
    fn open_blob(&self, digest: &Digest, _size: Option<u64>) -> Result<Box<dyn Read + Send + '_>> {
        let name = self
            .blobs
            .get(digest)
            .ok_or_else(|| Error::NotFound(format!("blob {digest} in {}", self.path.display())))?;
        Ok(Box::new(self.member(name)?))
    }
}

pub(crate) fn import(
    store: &Store,
    path: &Path,
    names: Vec<String>,
    own_tags: bool,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    let path = super::source_path(path, "open archive")?;
    let (ar, resolved) = resolve(&path, names, own_tags)?;
    store.install(resolved, &ar, progress)
}

/// What importing the archive at `path` would install: the manifest synthesised from its
/// `manifest.json`, and the names its `RepoTags` give. Reads the archive as `import`
/// does, without a store, so that hostile archives can be tried on their own.
#[doc(hidden)]
pub fn inspect(path: &Path) -> Result<(Vec<u8>, Vec<String>)> {
    let (_, r) = resolve(path, Vec::new(), true)?;
    Ok((r.manifest_bytes, r.names))
}

/// Reads the archive's `manifest.json` and config and locates its layers.
fn resolve(path: &Path, mut names: Vec<String>, own_tags: bool) -> Result<(Archive, Resolved)> {
    let mut ar = Archive::open(path)?;
    let what = format!("manifest.json in {}", path.display());
    let bytes = super::read_capped(ar.member("manifest.json")?, MAX_METADATA_BYTES, &what)?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&bytes).map_err(|e| Error::format(&what, e))?;
    let entry = entries
        .into_iter()
        .next()
        .ok_or_else(|| Error::format(&what, "no images"))?;
    let config_what = format!("config {} in {}", entry.config, path.display());
    let config = super::read_capped(ar.member(&entry.config)?, MAX_METADATA_BYTES, &config_what)?;
    let config_digest = Digest::of(&config);
    ar.blobs.insert(config_digest.clone(), entry.config.clone());
    let diff_ids: Vec<String> = serde_json::from_slice::<serde_json::Value>(&config)
        .ok()
        .and_then(|c| c["rootfs"]["diff_ids"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let mut layers = Vec::new();
    for (i, l) in entry.layers.iter().enumerate() {
        let size = ar
            .members
            .get(l.trim_start_matches("./"))
            .map(|m| m.1)
            .unwrap_or(0);
        let mut head = [0u8; 4];
        let n = ar.member(l)?.read(&mut head).ctx("read layer", path)?;
        let media = super::sniff_layer_type(&head[..n]);
        // The blob digest the manifest will name (verified again while installing):
        // named by the path in newer archives (`blobs/sha256/<hex>`), equal to the
        // diff_id for an uncompressed layer, else hashed here.
        let from_path = l
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok());
        let from_diff = (media == "application/vnd.oci.image.layer.v1.tar")
            .then(|| diff_ids.get(i).and_then(|d| Digest::parse(d).ok()))
            .flatten();
        let d = match from_path.or(from_diff) {
            Some(d) => d,
            None => {
                let mut h = HashingReader::new(ar.member(l)?);
                h.drain().ctx("read layer", path)?;
                h.finish().0
            }
        };
        ar.blobs.insert(d.clone(), l.clone());
        layers.push((d, size, media));
    }
    let (manifest_bytes, digest) =
        super::synth_manifest((&config_digest, config.len() as u64), &layers)?;
    // `RepoTags` is whatever the archive's maker wrote: never a registry name.
    if own_tags {
        for t in entry.repo_tags.unwrap_or_default() {
            names.push(super::normalise_name(&t));
        }
    }
    let resolved = Resolved {
        manifest_bytes,
        digest,
        source: format!("docker-archive:{}", path.display()),
        names,
    };
    Ok((ar, resolved))
}
