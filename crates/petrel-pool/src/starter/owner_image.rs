//! Finding a job's image with its owner's rights, in a root starter.
//!
//! The image a user names (a directory, a SIF or squashfs file, a `docker save`
//! archive, an OCI layout; by an absolute path, relative to `initialdir`, through
//! symlinks or `..`) is resolved and opened on a thread that has switched to the
//! owner's ids ([`crate::creds::as_user`]). So root reads nothing the owner could not,
//! and every error is one the owner could have got by trying themselves: it tells them
//! nothing about root-only paths. What was opened is then used only through its
//! descriptor: a directory is bind-mounted from it ([`petrel_image::formats::rootfs_dir::
//! prepare_fd`]), a file is read by the store as `/proc/<pid>/fd/<n>`. Nothing is looked
//! up by name again, so no symlink swapped in after the check is ever followed.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use petrel_image::ImageRef;
use rustix::fs::{Mode, OFlags};

/// An image path opened as the job's owner.
#[derive(Debug)]
pub(crate) struct OwnedPath {
    /// The open directory or file (kept open until the image is prepared).
    pub fd: OwnedFd,
    /// The reference as the user spelled it (for runtimes that run as the owner and
    /// resolve it themselves, and for messages).
    pub named: ImageRef,
    /// The same reference with its path replaced by the descriptor's.
    pub via_fd: ImageRef,
}

impl OwnedPath {
    /// `/proc/<pid>/fd/<n>`: usable by this process and, as root, by the tools it runs.
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    /// `message` with the descriptor's path put back as the user's own.
    pub fn explain(&self, message: &str) -> String {
        match path_of(&self.named) {
            Some(p) => message.replace(
                &self.fd_path().display().to_string(),
                &p.display().to_string(),
            ),
            None => message.to_string(),
        }
    }
}

/// What the owner's resolution found.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// A plain directory, opened for reading.
    Dir(OwnedPath),
    /// A file or layout the store reads.
    Store(OwnedPath),
    /// A name, not a path (a registry or stored image).
    Name(ImageRef),
}

fn path_of(r: &ImageRef) -> Option<&Path> {
    match r {
        ImageRef::Dir(p)
        | ImageRef::Sif(p)
        | ImageRef::Squashfs(p)
        | ImageRef::DockerArchive(p)
        | ImageRef::OciLayout { path: p, .. } => Some(p),
        ImageRef::Docker(_) | ImageRef::Stored(_) => None,
    }
}

fn with_path(r: &ImageRef, p: PathBuf) -> ImageRef {
    match r {
        ImageRef::Dir(_) => ImageRef::Dir(p),
        ImageRef::Sif(_) => ImageRef::Sif(p),
        ImageRef::Squashfs(_) => ImageRef::Squashfs(p),
        ImageRef::DockerArchive(_) => ImageRef::DockerArchive(p),
        ImageRef::OciLayout { tag, .. } => ImageRef::OciLayout {
            path: p,
            tag: tag.clone(),
        },
        other => other.clone(),
    }
}

/// Resolves the image `location` (relative ones against `iwd`) and opens it. Must run
/// with the owner's ids: every lookup and open here is the owner's.
pub(crate) fn resolve(location: &str, iwd: &Path) -> Result<Resolved, String> {
    let path = if location.contains("://") || location.starts_with('/') {
        None
    } else {
        let in_iwd = iwd.join(location);
        Some(if in_iwd.exists() {
            in_iwd
        } else {
            PathBuf::from(location)
        })
    };
    let reference = match &path {
        Some(p) if p.exists() => p.to_string_lossy().into_owned(),
        _ => location.to_string(),
    };
    let named = ImageRef::parse(&reference).map_err(|e| e.to_string())?;
    let Some(p) = path_of(&named) else {
        return Ok(Resolved::Name(named));
    };
    let dir = matches!(named, ImageRef::Dir(_) | ImageRef::OciLayout { .. });
    let flags = if dir {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
    } else {
        OFlags::RDONLY | OFlags::CLOEXEC
    };
    let fd = rustix::fs::open(p, flags, Mode::empty())
        .map_err(|e| format!("cannot open {}: {}", p.display(), std::io::Error::from(e)))?;
    if !dir {
        let st = rustix::fs::fstat(&fd).map_err(|e| e.to_string())?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(format!("{} is not a regular file", p.display()));
        }
    }
    if matches!(named, ImageRef::OciLayout { .. }) {
        // Root reads the layout's files later, by name beneath this directory: each must
        // be one the owner can read now.
        owner_can_read_tree(&fd, p, &mut 0)?;
    }
    let mut owned = OwnedPath {
        fd,
        via_fd: named.clone(),
        named,
    };
    owned.via_fd = with_path(&owned.named, owned.fd_path());
    Ok(match owned.named {
        ImageRef::Dir(_) => Resolved::Dir(owned),
        _ => Resolved::Store(owned),
    })
}

/// Most entries an image layout may have (blobs, directories).
const MAX_LAYOUT_ENTRIES: usize = 100_000;

/// Checks, with the caller's (the owner's) rights, that every regular file beneath the
/// open directory `dir` can be opened for reading and every directory searched. Walks
/// from the descriptor (never by name again), follows no symlinks (the store's reads
/// refuse any that leave the layout, and one inside it names a file checked here), and
/// opens without blocking, so a FIFO costs nothing.
fn owner_can_read_tree(dir: &OwnedFd, shown: &Path, seen: &mut usize) -> Result<(), String> {
    use rustix::fs::{Dir, FileType};
    let unreadable = |what: &Path, e: rustix::io::Errno| {
        format!(
            "cannot read {}: {}",
            what.display(),
            std::io::Error::from(e)
        )
    };
    let listing = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .and_then(Dir::new)
    .map_err(|e| unreadable(shown, e))?;
    for entry in listing {
        let entry = entry.map_err(|e| unreadable(shown, e))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        *seen += 1;
        if *seen > MAX_LAYOUT_ENTRIES {
            return Err(format!(
                "{} has more than {MAX_LAYOUT_ENTRIES} entries",
                shown.display()
            ));
        }
        let path = shown.join(name.to_string_lossy().as_ref());
        let common = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let kind = match entry.file_type() {
            // Some file systems leave the type out of the listing.
            FileType::Unknown => {
                rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode))
                    .map_err(|e| unreadable(&path, e))?
            }
            known => known,
        };
        match kind {
            FileType::Directory => {
                let sub = rustix::fs::openat(dir, name, common | OFlags::DIRECTORY, Mode::empty())
                    .map_err(|e| unreadable(&path, e))?;
                owner_can_read_tree(&sub, &path, seen)?;
            }
            FileType::RegularFile => {
                rustix::fs::openat(dir, name, common, Mode::empty())
                    .map_err(|e| unreadable(&path, e))?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_opened_and_read_through_the_descriptor() {
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("img");
        std::fs::create_dir(&img).unwrap();
        std::fs::write(img.join("marker"), b"x").unwrap();
        let Resolved::Dir(d) = resolve("img", tmp.path()).unwrap() else {
            panic!("a directory")
        };
        assert!(d.fd_path().join("marker").exists());
        assert!(d
            .explain(&d.fd_path().display().to_string())
            .ends_with("img"));
        // The squashfs magic is all the kind is decided by.
        let mut sqfs = b"hsqs".to_vec();
        sqfs.resize(512, 0);
        std::fs::write(tmp.path().join("x.sqfs"), sqfs).unwrap();
        match resolve("x.sqfs", tmp.path()) {
            Ok(Resolved::Store(o)) => {
                assert!(matches!(o.via_fd, ImageRef::Squashfs(ref p) if p == &o.fd_path()))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            resolve("docker://busybox", tmp.path()).unwrap(),
            Resolved::Name(ImageRef::Docker(_))
        ));
        let err = resolve(&tmp.path().join("nope").display().to_string(), tmp.path()).unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }
}
