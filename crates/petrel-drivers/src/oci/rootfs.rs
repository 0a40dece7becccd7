//! A root file system runc and crun can mount into without writing to the image.
//!
//! Before it makes the root read-only, runc creates the mount point of every bind it was
//! given (the scratch directory, validation scripts, the init) inside the root. An image
//! that lacks one is then written to: a user's own directory, bind-mounted read-only by
//! the starter, refuses it ("read-only file system"), and a stored image shared by every
//! job would be changed for all of them. So when a mount point is missing, a root driver
//! gives the runtime an overlay instead, with the image below and the upper layer in the
//! job's bundle; the image is never touched. Images that have every mount point (the
//! common case) are used as they are, at no cost.

use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;
use rustix::mount::{MountFlags, UnmountFlags};

use crate::error::{DriverError, ErrorKind};

/// True when each of `targets` (absolute paths in the container) already exists in
/// `rootfs` as a real directory chain: no component missing and none a symlink (which
/// runc would follow within the root and might have to create at the other end).
pub fn has_mount_points<'a>(rootfs: &Path, targets: impl IntoIterator<Item = &'a str>) -> bool {
    targets.into_iter().all(|target| {
        let mut at = rootfs.to_path_buf();
        let parts: Vec<Component> = Path::new(target).components().collect();
        for (i, part) in parts.iter().enumerate() {
            match part {
                Component::RootDir | Component::CurDir => continue,
                Component::Normal(name) => at.push(name),
                // `JobSpec::validate` allows no `..`; be safe rather than wrong.
                Component::ParentDir | Component::Prefix(_) => return false,
            }
            let Ok(st) = rustix::fs::lstat(&at) else {
                return false;
            };
            let kind = FileType::from_raw_mode(st.st_mode);
            let last = i + 1 == parts.len();
            if kind == FileType::Symlink || (!last && kind != FileType::Directory) {
                return false;
            }
        }
        true
    })
}

/// An overlay of an image with a writable layer in the bundle, unmounted when dropped.
#[derive(Debug)]
pub struct Overlay {
    point: PathBuf,
}

impl Overlay {
    /// Mounts `lower` (read-only, never written) under a new upper layer in `bundle`.
    /// Needs root in the host's mount namespace.
    pub fn mount(lower: &Path, bundle: &Path) -> Result<Overlay, DriverError> {
        let io = |what: &str, e: std::io::Error| {
            DriverError::slot(ErrorKind::Io, format!("{what}: {e}"))
        };
        // The overlay's options are one comma-separated string; paths that would split
        // it are refused rather than escaped (they are petrel's own paths: the store's
        // and the bundle's, never a user's).
        for p in [lower, bundle] {
            let s = p.to_string_lossy();
            if s.contains([',', ':', '\\', '\n']) {
                return Err(DriverError::slot(
                    ErrorKind::Io,
                    format!("cannot overlay {s}: the path holds ',', ':' or '\\'"),
                ));
            }
        }
        let upper = bundle.join("upper");
        let work = bundle.join("work");
        let point = bundle.join("rootfs");
        for dir in [&upper, &work, &point] {
            std::fs::create_dir(dir).map_err(|e| io(&format!("mkdir {}", dir.display()), e))?;
        }
        let options = std::ffi::CString::new(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        ))
        .map_err(|_| DriverError::slot(ErrorKind::Io, "a NUL byte in an overlay path"))?;
        rustix::mount::mount(
            "overlay",
            &point,
            "overlay",
            MountFlags::NOSUID | MountFlags::NODEV,
            Some(options.as_c_str()),
        )
        .map_err(|e| {
            io(
                &format!("mounting an overlay of {} for the job", lower.display()),
                e.into(),
            )
        })?;
        Ok(Overlay { point })
    }

    /// Where the combined root is mounted.
    pub fn path(&self) -> &Path {
        &self.point
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        // Detached: a process of the job still holding it open must not keep the bundle.
        if let Err(e) = rustix::mount::unmount(&self.point, UnmountFlags::DETACH) {
            tracing::warn!("unmounting {}: {e}", self.point.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_must_be_real_directories_or_final_entries() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("srv/data")).unwrap();
        std::fs::write(r.join("srv/file"), b"").unwrap();
        std::os::unix::fs::symlink("/srv", r.join("link")).unwrap();
        assert!(has_mount_points(r, ["/srv", "/srv/data", "/srv/file"]));
        assert!(has_mount_points(r, []));
        assert!(!has_mount_points(r, ["/srv", "/.petrel/validate/0-x.sh"]));
        assert!(!has_mount_points(r, ["/link/data"]));
        assert!(!has_mount_points(r, ["/link"]));
        assert!(!has_mount_points(r, ["/srv/file/below"]));
        assert!(!has_mount_points(r, ["/srv/../srv"]));
    }

    #[test]
    fn the_overlay_takes_writes_and_leaves_the_image_alone() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let image = tempfile::tempdir().unwrap();
        std::fs::write(image.path().join("etc"), b"image").unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let overlay = match Overlay::mount(image.path(), bundle.path()) {
            Ok(o) => o,
            // Some container file systems cannot be an overlay's upper layer.
            Err(e) if e.to_string().contains("Invalid argument") => return,
            Err(e) => panic!("{e}"),
        };
        std::fs::create_dir_all(overlay.path().join(".petrel/validate")).unwrap();
        assert_eq!(std::fs::read(overlay.path().join("etc")).unwrap(), b"image");
        assert!(!image.path().join(".petrel").exists());
        let point = overlay.path().to_path_buf();
        drop(overlay);
        assert!(!point.join("etc").exists(), "still mounted");
    }
}
