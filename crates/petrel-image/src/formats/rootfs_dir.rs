//! Plain root file system directories (Apptainer "sandboxes", debootstrap trees).
//! Used in place by `Store::prepare`; `import` copies one into the store as a one-layer image.

use std::io::{BufWriter, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use rustix::mount::MountFlags;

use crate::config::{ImageConfig, Progress};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::store::{BlobSource, PreparedImage, PullOutcome, Resolved, Staging, Store};

/// Returns the directory as it is, with an empty config and no lease.
pub(crate) fn prepare(path: &Path) -> Result<PreparedImage> {
    let rootfs = std::fs::canonicalize(path).ctx("open root file system", path)?;
    if !rootfs.is_dir() {
        return Err(Error::format(
            rootfs.display().to_string(),
            "not a directory",
        ));
    }
    Ok(PreparedImage {
        source: rootfs.display().to_string(),
        rootfs,
        config: ImageConfig::default(),
        digest: None,
        method: "directory",
        _lease: None,
        _mount: None,
    })
}

/// A directory used in place that the caller opened (a root starter opens a job's image
/// as the job's owner, so only what the owner may read is reached). It is bind-mounted
/// read-only, `nosuid`, `nodev` from the descriptor onto a mount point under the store's
/// `mounts/`: the runtime gets a path no user controls, naming exactly the directory that
/// was opened (no symlink swapped in between), and the mount goes when the returned image
/// is dropped (or, after a crash, when the store is next opened). Needs root.
pub fn prepare_fd(store: &Store, dir: BorrowedFd<'_>, source: String) -> Result<PreparedImage> {
    let st = rustix::fs::fstat(dir).map_err(|e| Error::io(format!("stat {source}"), e.into()))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return Err(Error::format(&source, "not a directory"));
    }
    let (point, lock) = Staging::new(&store.root().join("mounts"), "dir")?.into_parts();
    // Dropping it unmounts (nothing mounted yet is fine) and removes the mount point.
    let mount = crate::formats::squashfs::Mount::new(point.clone(), lock);
    let from = format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd());
    rustix::mount::mount_bind(from.as_str(), &point)
        .map_err(|e| Error::io(format!("bind-mount {source}"), e.into()))?;
    rustix::mount::mount_remount(
        &point,
        MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
        "",
    )
    .map_err(|e| Error::io(format!("make the mount of {source} read-only"), e.into()))?;
    Ok(PreparedImage {
        rootfs: point,
        config: ImageConfig::default(),
        digest: None,
        source,
        method: "directory",
        _lease: None,
        _mount: Some(mount),
    })
}

struct Files {
    blobs: Vec<(Digest, std::path::PathBuf)>,
}

impl BlobSource for Files {
    fn open_blob(
        &self,
        digest: &Digest,
        _size: Option<u64>,
    ) -> Result<Box<dyn std::io::Read + Send + '_>> {
        let (_, p) = self
            .blobs
            .iter()
            .find(|(d, _)| d == digest)
            .ok_or_else(|| Error::NotFound(format!("blob {digest}")))?;
        Ok(Box::new(std::fs::File::open(p).ctx("open", p)?))
    }
}

struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Tars the directory into one uncompressed layer and installs it.
pub(crate) fn import(
    store: &Store,
    dir: &Path,
    names: Vec<String>,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    let dir = std::fs::canonicalize(dir).ctx("open root file system", dir)?;
    let staging = store.staging("import")?;
    let layer_path = staging.path().join("layer.tar");
    let file = std::fs::File::create(&layer_path).ctx("create", &layer_path)?;
    let mut w = HashWriter {
        inner: BufWriter::new(file),
        hasher: Hasher::default(),
    };
    {
        let mut b = tar::Builder::new(&mut w);
        b.follow_symlinks(false);
        b.append_dir_all(".", &dir).ctx("archive", &dir)?;
        b.finish().ctx("archive", &dir)?;
    }
    w.flush().ctx("write", &layer_path)?;
    let size = w.hasher.count();
    let diff_id = w.hasher.clone().finish();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": crate::distribution::Platform::host().architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
    }))
    .map_err(|e| Error::format("config", e))?;
    let config_digest = Digest::of(&config);
    let config_path = staging.path().join("config.json");
    std::fs::write(&config_path, &config).ctx("write", &config_path)?;
    let (manifest_bytes, digest) = super::synth_manifest(
        (&config_digest, config.len() as u64),
        &[(
            diff_id.clone(),
            size,
            "application/vnd.oci.image.layer.v1.tar",
        )],
    )?;
    let files = Files {
        blobs: vec![(diff_id, layer_path), (config_digest, config_path)],
    };
    let resolved = Resolved {
        manifest_bytes,
        digest,
        source: format!("dir:{}", dir.display()),
        names,
    };
    store.install(resolved, &files, progress)
}
