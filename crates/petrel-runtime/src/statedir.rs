//! A private per-run directory on the host for what the container needs besides its image:
//! generated `/etc` files and a discarded overlay's upper layer. Removed when the run ends.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::RuntimeError;

pub(crate) struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Creates the directory `name` (unique per run) under the user's runtime directory.
    pub(crate) fn create(name: &str) -> Result<StateDir, RuntimeError> {
        let base = base_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)
            .map_err(|e| {
                RuntimeError::io(format!("creating state directory {}", base.display()), e)
            })?;
        check_private(&base)?;
        let path = base.join(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| {
                RuntimeError::io(format!("creating state directory {}", path.display()), e)
            })?;
        Ok(StateDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        // overlayfs leaves `work/work` with mode 000; make everything removable first.
        make_writable(&self.path);
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// Refuses a base directory that another user made (or a symlink planted in `/tmp`).
fn check_private(dir: &Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| RuntimeError::io(format!("checking state directory {}", dir.display()), e))?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(RuntimeError::InvalidSpec(format!(
            "state directory {} is not a private directory owned by uid {uid}; remove it",
            dir.display()
        )));
    }
    Ok(())
}

fn make_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                make_writable(&entry.path());
            }
        }
    }
}

/// `$XDG_RUNTIME_DIR/petrel` when usable, `/run/petrel` for root, else `/tmp/petrel-<uid>`.
fn base_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        let dir = PathBuf::from(dir);
        if dir.is_dir() {
            return dir.join("petrel");
        }
    }
    if uid == 0 && Path::new("/run").is_dir() {
        return PathBuf::from("/run/petrel");
    }
    PathBuf::from(format!("/tmp/petrel-{uid}"))
}
