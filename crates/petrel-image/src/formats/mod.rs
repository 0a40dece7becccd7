//! Image formats other than registries: OCI layouts, `docker save` archives, plain
//! root file system directories, squashfs files and SIF files; and exporting.

pub mod docker_archive;
pub mod export;
pub mod oci_layout;
pub mod rootfs_dir;
pub mod sif;
pub mod squashfs;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::config::Progress;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::reference::ImageRef;
use crate::store::{PullOutcome, Store};

/// Imports `image` into `store`, pointing `local/<name>` at it (and, for an archive,
/// `local/<tag>` for each of its own tags).
pub(crate) fn import(
    store: &Store,
    image: &ImageRef,
    name: Option<&str>,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    import_named(store, image, name, true, progress)
}

/// Imports `image` by digest alone: no name at all, not even the archive's own tags.
pub(crate) fn import_unnamed(
    store: &Store,
    image: &ImageRef,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    import_named(store, image, None, false, progress)
}

fn import_named(
    store: &Store,
    image: &ImageRef,
    name: Option<&str>,
    own_tags: bool,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    let names: Vec<String> = name.map(normalise_name).into_iter().collect();
    match image {
        ImageRef::OciLayout { path, tag } => {
            oci_layout::import(store, path, tag.as_deref(), names, progress)
        }
        ImageRef::DockerArchive(path) => {
            docker_archive::import(store, path, names, own_tags, progress)
        }
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

/// A name given with `--name` or found in an archive: in the local namespace, in
/// Docker's canonical form when it parses as one (so `busybox` and
/// `docker.io/library/busybox:latest` are one local name). Never a registry name: only a
/// pull binds those.
pub(crate) fn normalise_name(name: &str) -> String {
    let bare = name
        .strip_prefix(crate::store::LOCAL_PREFIX)
        .unwrap_or(name);
    let canonical = crate::reference::DockerRef::parse(bare)
        .map_or_else(|_| bare.to_string(), |r| r.to_string());
    crate::store::local_name(&canonical)
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

/// True for `/proc/<pid>/fd/<n>` (or `/proc/self/fd/<n>`): a descriptor the caller opened.
pub fn is_fd_path(p: &Path) -> bool {
    let c: Vec<Component<'_>> = p.components().collect();
    let num = |c: &Component<'_>| {
        c.as_os_str()
            .to_str()
            .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    };
    c.len() == 5
        && c[0] == Component::RootDir
        && c[1].as_os_str() == "proc"
        && (num(&c[2]) || c[2].as_os_str() == "self")
        && c[3].as_os_str() == "fd"
        && num(&c[4])
}

/// The path to read an image file or directory at. A descriptor path is one the caller
/// opened with the right credentials (a root starter opens a job's image as its owner):
/// it is used as it is, because resolving it to a name again would follow whatever the
/// user has put at that name since.
pub(crate) fn source_path(p: &Path, what: &str) -> Result<PathBuf> {
    if is_fd_path(p) {
        return Ok(p.to_path_buf());
    }
    std::fs::canonicalize(p).ctx(what, p)
}

/// Opens `rel` inside the directory `dir` for reading, never leaving it: no `..` out, no
/// absolute symlink, no magic link. An image directory belongs to whoever supplied it,
/// and a symlink in it must not make the store read a file elsewhere.
pub(crate) fn open_beneath(dir: &Path, rel: &str) -> Result<std::fs::File> {
    let d = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", dir)?;
    let f: OwnedFd = rustix::fs::openat2(
        &d,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .ctx("open", &dir.join(rel))?;
    Ok(std::fs::File::from(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_paths_are_recognised() {
        assert!(is_fd_path(Path::new("/proc/self/fd/3")));
        assert!(is_fd_path(Path::new("/proc/1234/fd/17")));
        assert!(!is_fd_path(Path::new("/proc/1234/fd/17/x")));
        assert!(!is_fd_path(Path::new("/proc/1234/cwd")));
        assert!(!is_fd_path(Path::new("/home/u/proc/1/fd/3")));
        assert!(!is_fd_path(Path::new("proc/self/fd/3")));
    }

    #[test]
    fn names_are_local() {
        assert_eq!(
            normalise_name("busybox"),
            "local/docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalise_name("local/docker.io/library/busybox:latest"),
            "local/docker.io/library/busybox:latest"
        );
        assert_eq!(normalise_name("My Image"), "local/My Image");
    }
}
