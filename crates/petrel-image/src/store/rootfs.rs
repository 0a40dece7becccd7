//! Stacking unpacked layers into one image root file system.
//!
//! **Why hardlinked flat trees.** Each layer is unpacked once, into
//! `layers/<diff_id>/root`, and shared by every image that has it. An image's
//! `rootfs` is then built by walking its layers bottom-up and *hardlinking* their files
//! into one directory (directories are created, whiteouts and opaque markers
//! applied). Building costs one `link(2)` per file and no data copy; the result is a
//! single ordinary directory, so the runtime needs one read-only bind mount — no
//! overlayfs stack of N lower layers (which unprivileged users cannot always mount,
//! and which costs a lookup per layer on every path walk). Files are shared inodes
//! with the layer cache, so images must be mounted read-only (they are: writes go to
//! a per-job overlay or scratch).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::unpack::Whiteouts;

/// Stacks `layers` (root directory and whiteouts, bottom first) into `dest`, which
/// must exist and be empty. `preserve_owner` copies directory ownership.
pub(crate) fn flatten(
    layers: &[(PathBuf, Whiteouts)],
    dest: &Path,
    preserve_owner: bool,
) -> Result<()> {
    for (root, wh) in layers {
        for opq in &wh.opaque {
            if let Some(dir) = inside(dest, opq) {
                if fs::symlink_metadata(&dir)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    for e in fs::read_dir(&dir).ctx("read", &dir)?.flatten() {
                        super::lock::remove_tree(&e.path())
                            .ctx("apply opaque whiteout", &e.path())?;
                    }
                }
            }
        }
        for f in &wh.files {
            if let Some(p) = inside(dest, f) {
                super::lock::remove_tree(&p).ctx("apply whiteout", &p)?;
            }
        }
        merge_dir(root, dest, preserve_owner)?;
    }
    Ok(())
}

/// `root/rel` if every parent of it inside `root` is a real directory (never a symlink).
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut p = root.to_path_buf();
    let comps: Vec<_> = Path::new(rel).components().collect();
    for (i, c) in comps.iter().enumerate() {
        match c {
            Component::Normal(s) => p.push(s),
            Component::CurDir => continue,
            _ => return None,
        }
        if i + 1 < comps.len()
            && !fs::symlink_metadata(&p)
                .map(|m| m.is_dir())
                .unwrap_or(false)
        {
            return None;
        }
    }
    (p != root).then_some(p)
}

fn merge_dir(src: &Path, dst: &Path, preserve_owner: bool) -> Result<()> {
    for entry in fs::read_dir(src).ctx("read layer directory", src)? {
        let entry = entry.ctx("read layer directory", src)?;
        let s = entry.path();
        let d = dst.join(entry.file_name());
        // The type comes from the directory listing: no stat per entry.
        let is_dir = entry.file_type().ctx("stat", &s)?.is_dir();
        if is_dir {
            match fs::symlink_metadata(&d) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&d).ctx("replace with directory", &d)?;
                    fs::create_dir(&d).ctx("create directory", &d)?;
                }
                Err(_) => fs::create_dir(&d).ctx("create directory", &d)?,
            }
            merge_dir(&s, &d, preserve_owner)?;
            let smeta = fs::symlink_metadata(&s).ctx("stat", &s)?;
            if preserve_owner {
                std::os::unix::fs::lchown(&d, Some(smeta.uid()), Some(smeta.gid()))
                    .ctx("chown", &d)?;
            }
            fs::set_permissions(
                &d,
                fs::Permissions::from_mode(smeta.permissions().mode() & 0o7777),
            )
            .ctx("chmod", &d)?;
            continue;
        }
        // Link first; only when something is in the way look at it.
        match fs::hard_link(&s, &d) {
            Ok(()) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let m = fs::symlink_metadata(&d).ctx("stat", &d)?;
                if m.is_dir() {
                    super::lock::remove_tree(&d).ctx("replace directory", &d)?;
                } else {
                    fs::remove_file(&d).ctx("replace", &d)?;
                }
                if fs::hard_link(&s, &d).is_ok() {
                    continue;
                }
            }
            Err(_) => {}
        }
        // Too many links, or another file system: copy instead.
        tracing::debug!(path = %d.display(), "hardlink failed, copying");
        let smeta = fs::symlink_metadata(&s).ctx("stat", &s)?;
        if smeta.file_type().is_symlink() {
            let target = fs::read_link(&s).ctx("readlink", &s)?;
            std::os::unix::fs::symlink(target, &d).ctx("symlink", &d)?;
        } else {
            fs::copy(&s, &d).ctx("copy", &d)?;
        }
    }
    Ok(())
}
