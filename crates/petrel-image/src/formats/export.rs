//! Exporting a stored image: as an OCI layout, a tar of the root file system, or a
//! squashfs file (`mksquashfs`).

use std::path::Path;
use std::process::Command;

use crate::error::{Error, IoContext, Result};
use crate::reference::ImageRef;
use crate::store::{ImageKind, Store};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// An OCI image layout directory (blobs copied or hardlinked from the store).
    Oci,
    /// A tar archive of the flattened root file system.
    RootfsTar,
    /// A squashfs file of the root file system.
    Squashfs,
}

/// Writes the stored image `image` to `out` in `format`.
pub fn export(store: &Store, image: &ImageRef, format: ExportFormat, out: &Path) -> Result<()> {
    let prepared = store.prepare(image)?;
    let digest = prepared.digest.clone().ok_or_else(|| {
        Error::Unsupported(format!(
            "{image} is a plain directory; export it with tar or mksquashfs"
        ))
    })?;
    match format {
        ExportFormat::RootfsTar => {
            let f = std::fs::File::create(out).ctx("create", out)?;
            let mut b = tar::Builder::new(std::io::BufWriter::new(f));
            b.follow_symlinks(false);
            b.append_dir_all(".", &prepared.rootfs)
                .ctx("archive", &prepared.rootfs)?;
            b.into_inner()
                .ctx("write", out)?
                .into_inner()
                .map_err(|e| Error::io(format!("write {}", out.display()), e.into_error()))?;
            Ok(())
        }
        ExportFormat::Squashfs => {
            let status = Command::new("mksquashfs")
                .arg(&prepared.rootfs)
                .arg(out)
                .args(["-noappend", "-quiet", "-no-progress"])
                .output()
                .map_err(|e| Error::io("run mksquashfs (squashfs-tools)", e))?;
            if !status.status.success() {
                return Err(Error::Unsupported(format!(
                    "mksquashfs failed: {}",
                    String::from_utf8_lossy(&status.stderr).trim()
                )));
            }
            Ok(())
        }
        ExportFormat::Oci => {
            let meta = store.meta(&digest)?;
            let ImageKind::Layers {
                config_digest,
                layers,
            } = &meta.kind
            else {
                return Err(Error::Unsupported(format!(
                    "{image} came from a squashfs; export it as squashfs or rootfs-tar"
                )));
            };
            let blobs = out.join("blobs/sha256");
            std::fs::create_dir_all(&blobs).ctx("create", &blobs)?;
            let mut digests = vec![digest.clone(), config_digest.clone()];
            digests.extend(layers.iter().map(|l| l.digest.clone()));
            for d in &digests {
                let src = store.blob_path(d);
                let dst = blobs.join(d.hex());
                if dst.exists() {
                    continue;
                }
                if std::fs::hard_link(&src, &dst).is_err() {
                    std::fs::copy(&src, &dst).ctx("copy blob", &dst)?;
                }
            }
            let manifest =
                std::fs::read(store.blob_path(&digest)).ctx("read", &store.blob_path(&digest))?;
            let tag = store
                .inspect(image)
                .ok()
                .and_then(|i| i.names.first().cloned())
                .and_then(|n| n.rsplit_once(':').map(|(_, t)| t.to_string()))
                .filter(|t| !t.contains('/'))
                .unwrap_or_else(|| "latest".into());
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": crate::distribution::manifest::OCI_INDEX,
                "manifests": [{
                    "mediaType": crate::distribution::manifest::OCI_MANIFEST,
                    "digest": digest.as_str(),
                    "size": manifest.len(),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }],
            });
            std::fs::write(out.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
                .ctx("write", out)?;
            let bytes = serde_json::to_vec_pretty(&index).map_err(|e| Error::format("index", e))?;
            std::fs::write(out.join("index.json"), bytes).ctx("write", out)
        }
    }
}
