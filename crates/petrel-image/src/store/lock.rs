//! `flock(2)` locks and staging directories that a crash cannot leave half-used.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, IoContext, Result};

/// A held `flock` on a file; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    fn open(path: &Path) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .ctx("open lock file", path)
    }

    /// Waits for a shared lock.
    pub fn shared(path: &Path) -> Result<FileLock> {
        Self::take(path, FlockOperation::LockShared)
    }

    /// Waits for an exclusive lock.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        Self::take(path, FlockOperation::LockExclusive)
    }

    /// An exclusive lock if nobody holds any lock on `path`, else `None`.
    pub fn try_exclusive(path: &Path) -> Result<Option<FileLock>> {
        let file = Self::open(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(FileLock {
                _file: file,
                path: path.to_path_buf(),
            })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e).ctx("lock", path),
        }
    }

    fn take(path: &Path, op: FlockOperation) -> Result<FileLock> {
        let file = Self::open(path)?;
        loop {
            match flock(&file, op) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e).ctx("lock", path),
            }
        }
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the store's `tmp/`, guarded by an exclusive lock on a
/// sibling `.lock` file for as long as it lives. Work is staged here and renamed into
/// place last; a crash leaves only an unlocked staging directory, which
/// [`clean_stale`] removes.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    lock: Option<FileLock>,
}

impl Staging {
    pub fn new(tmp: &Path, what: &str) -> Result<Staging> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("{what}-{}-{n}-{nanos:x}", std::process::id());
        let lock = FileLock::exclusive(&tmp.join(format!("{name}.lock")))?;
        let dir = tmp.join(&name);
        std::fs::create_dir(&dir).ctx("create staging directory", &dir)?;
        Ok(Staging {
            dir,
            lock: Some(lock),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Keeps the directory and hands over its lock (used for mount points, which live
    /// as long as the lock is held).
    pub fn into_parts(mut self) -> (PathBuf, Option<FileLock>) {
        let lock = self.lock.take();
        let dir = std::mem::take(&mut self.dir);
        (dir, lock)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() && self.dir.exists() {
            let _ = remove_tree(&self.dir);
        }
        if let Some(lock) = self.lock.take() {
            let _ = std::fs::remove_file(lock.path());
        }
    }
}

/// Removes staging directories whose owner died (their lock is free).
pub fn clean_stale(tmp: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(tmp) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("read {}", tmp.display()), e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if let Some(base) = name.strip_suffix(".lock") {
            if let Some(lock) = FileLock::try_exclusive(&path)? {
                let dir = tmp.join(base);
                tracing::info!(path = %dir.display(), "removing staging directory left by a crashed process");
                let _ = remove_tree(&dir);
                let _ = std::fs::remove_file(&path);
                drop(lock);
            }
        } else if !tmp.join(format!("{name}.lock")).exists() {
            // A staging entry whose lock file is gone: its owner finished or died.
            let _ = remove_tree(&path);
        }
    }
    Ok(())
}

/// Removes a tree that may hold read-only directories (images made unprivileged keep
/// owner-write on directories, but trees from other tools may not).
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            make_writable(path);
            std::fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        if meta.is_dir() {
            let mode = meta.permissions().mode() | 0o700;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode));
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}
