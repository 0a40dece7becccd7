//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), as
//! `skopeo copy … oci:DIR` and `umoci` write them.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageIndex;

use crate::config::Progress;
use crate::digest::{from_oci, Digest};
use crate::distribution::manifest::{self, ManifestKind};
use crate::error::{Error, Result};
use crate::store::{BlobSource, PullOutcome, Resolved, Store, MAX_METADATA_BYTES};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Blobs read from a layout directory.
pub(crate) struct Layout {
    dir: PathBuf,
}

impl BlobSource for Layout {
    fn open_blob(&self, digest: &Digest, _size: Option<u64>) -> Result<Box<dyn Read + Send + '_>> {
        let f = super::open_beneath(&self.dir, &format!("blobs/sha256/{}", digest.hex()))?;
        Ok(Box::new(f))
    }
}

impl Layout {
    fn read_small(&self, d: &Digest, what: &str) -> Result<Vec<u8>> {
        crate::store::read_blob_verified(self.open_blob(d, None)?, d, what)
    }
}

/// Chooses the manifest for `tag` (or the only one) and resolves indexes to the host platform.
pub(crate) fn resolve(
    dir: &Path,
    tag: Option<&str>,
    platform: &crate::distribution::Platform,
) -> Result<(Layout, Resolved)> {
    let layout = Layout {
        dir: dir.to_path_buf(),
    };
    let index_path = dir.join("index.json");
    let bytes = super::read_capped(
        super::open_beneath(dir, "index.json")?,
        MAX_METADATA_BYTES,
        &index_path.display().to_string(),
    )?;
    let index = ImageIndex::from_reader(&bytes[..])
        .map_err(|e| Error::format(index_path.display().to_string(), e))?;
    let tags: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|m| {
            m.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        })
        .collect();
    let chosen = match tag {
        Some(t) => index
            .manifests()
            .iter()
            .find(|m| {
                m.annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .is_some_and(|n| n == t)
            })
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "tag {t} in {} (tags: {})",
                    dir.display(),
                    tags.join(", ")
                ))
            })?,
        None if index.manifests().len() == 1 => &index.manifests()[0],
        None => {
            return Err(Error::Reference {
                input: dir.display().to_string(),
                reason: format!(
                    "the layout holds several images; name one with oci:DIR:TAG (tags: {})",
                    tags.join(", ")
                ),
            })
        }
    };
    let mut digest = from_oci(chosen.digest())?;
    let what = format!("manifest {digest} in {}", dir.display());
    let mut body = layout.read_small(&digest, &what)?;
    if manifest::classify(Some(chosen.media_type().as_ref()), &body)? == ManifestKind::Index {
        digest = manifest::select(&body, platform, &dir.display().to_string())?;
        body = layout.read_small(&digest, &format!("manifest {digest} in {}", dir.display()))?;
    }
    let source = match tag {
        Some(t) => format!("oci:{}:{t}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    Ok((
        layout,
        Resolved {
            manifest_bytes: body,
            digest,
            source,
            names: Vec::new(),
        },
    ))
}

pub(crate) fn import(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
    names: Vec<String>,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    let dir = super::source_path(dir, "open OCI layout")?;
    if !super::open_beneath(&dir, "oci-layout")
        .ok()
        .and_then(|f| f.metadata().ok())
        .is_some_and(|m| m.is_file())
    {
        return Err(Error::format(
            format!("OCI layout {}", dir.display()),
            "no oci-layout file",
        ));
    }
    let (layout, mut resolved) = resolve(&dir, tag, &store.options().registry.platform)?;
    resolved.names = names;
    store.install(resolved, &layout, progress)
}
