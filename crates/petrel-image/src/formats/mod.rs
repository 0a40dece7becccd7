//! Image formats other than registries: OCI layouts, `docker save` archives, plain
//! root file system directories, squashfs files and SIF files; and exporting.

pub mod docker_archive;
pub mod export;
pub mod oci_layout;
pub mod rootfs_dir;
pub mod sif;
pub mod squashfs;

use std::io::Read;

use crate::config::Progress;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageRef;
use crate::store::{PullOutcome, Store};

/// Imports `image` into `store`, pointing `name` at it.
pub(crate) fn import(
    store: &Store,
    image: &ImageRef,
    name: Option<&str>,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    let names: Vec<String> = name.map(normalise_name).into_iter().collect();
    match image {
        ImageRef::OciLayout { path, tag } => {
            oci_layout::import(store, path, tag.as_deref(), names, progress)
        }
        ImageRef::DockerArchive(path) => docker_archive::import(store, path, names, progress),
        ImageRef::Dir(path) => rootfs_dir::import(store, path, names, progress),
        ImageRef::Sif(_) | ImageRef::Squashfs(_) => squashfs::import(store, image, names, progress),
        ImageRef::Docker(r) => {
            let out = store.pull(r, progress)?;
            for n in &names {
                store.set_name(n, &out.info.digest)?;
            }
            Ok(out)
        }
        ImageRef::Stored(_) => Err(Error::Unsupported(format!(
            "{image} is a name, not a file or directory to import"
        ))),
    }
}

/// Names given with `--name` are stored in Docker's canonical form when they parse as one.
pub(crate) fn normalise_name(name: &str) -> String {
    crate::reference::DockerRef::parse(name).map_or_else(|_| name.to_string(), |r| r.to_string())
}

/// Builds an OCI image manifest around a config and layers, returning bytes and digest.
pub(crate) fn synth_manifest(
    config: (&Digest, u64),
    layers: &[(Digest, u64, &str)],
) -> Result<(Vec<u8>, Digest)> {
    let layer_json: Vec<_> = layers
        .iter()
        .map(|(d, s, mt)| serde_json::json!({"mediaType": mt, "digest": d.as_str(), "size": s}))
        .collect();
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::distribution::manifest::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0.as_str(), "size": config.1},
        "layers": layer_json,
    });
    let bytes = serde_json::to_vec(&doc).map_err(|e| Error::format("manifest", e))?;
    let d = Digest::of(&bytes);
    Ok((bytes, d))
}

/// Layer media type from its first bytes.
pub(crate) fn sniff_layer_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
}

/// Reads a whole small file, refusing more than `cap` bytes.
pub(crate) fn read_capped(mut r: impl Read, cap: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut r)
        .take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(format!("read {what}"), e))?;
    if buf.len() as u64 > cap {
        return Err(Error::TooLarge {
            what: what.to_string(),
            limit: cap,
        });
    }
    Ok(buf)
}
