//! Whether a pool directory is one this user may trust.
//!
//! A client hands a pool its jobs, their environments and their secrets, and a daemon
//! runs what the pool's `config` names: a pool in a directory another user could have
//! made or can change would be that user's. So before a client connects (or starts a
//! daemon) and before a daemon runs, the pool directory and every directory above it
//! must belong to this user or to root, and none may be writable by others, except a
//! sticky directory of root's such as `/tmp` (where others may add entries, but not
//! replace this user's). After connecting, the client checks with `SO_PEERCRED` that
//! the daemon runs as this user or as root.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::error::PoolError;

/// This process's uid, whose pools it may trust besides root's.
fn me() -> u32 {
    rustix::process::getuid().as_raw()
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == me()
}

fn untrusted(dir: &Path, why: String) -> PoolError {
    PoolError::Refused(format!(
        "refusing the pool in {}: {why}; another user could have planted it or could \
         change it (set PETREL_POOL_DIR to a directory of your own)",
        dir.display()
    ))
}

/// Checks `dir` (which need not exist yet: then what exists above it) and its socket.
pub fn check_pool_dir(dir: &Path) -> Result<(), PoolError> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| PoolError::io("finding the current directory", e))?
            .join(dir)
    };
    // The directories are checked where they really are: a symlink on the way is only
    // as good as what it points to.
    let mut missing = Vec::new();
    let mut existing = absolute.clone();
    let real = loop {
        match existing.canonicalize() {
            Ok(p) => break p,
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    missing.push(name.to_owned());
                    existing = parent.to_path_buf();
                }
                _ => return Err(untrusted(dir, "no part of the path exists".into())),
            },
        }
    };
    let is_pool_dir = missing.is_empty();
    let mut probe: Option<&Path> = Some(&real);
    let mut first = true;
    while let Some(p) = probe {
        let meta = std::fs::metadata(p)
            .map_err(|e| PoolError::io(format!("checking {}", p.display()), e))?;
        if !trusted_owner(meta.uid()) {
            return Err(untrusted(
                dir,
                format!(
                    "{} is owned by uid {}, not by you (uid {}) or root",
                    p.display(),
                    meta.uid(),
                    me()
                ),
            ));
        }
        let others_write = meta.mode() & 0o022 != 0;
        let sticky_root = meta.mode() & 0o1000 != 0 && meta.uid() == 0;
        // The pool directory itself may not be shared even when sticky: another user
        // could make its socket before the daemon does.
        if others_write && (!sticky_root || (first && is_pool_dir)) {
            return Err(untrusted(
                dir,
                format!(
                    "{} is writable by other users (mode {:o})",
                    p.display(),
                    meta.mode() & 0o7777
                ),
            ));
        }
        first = false;
        probe = p.parent();
    }
    if is_pool_dir {
        let socket = real.join("pool.sock");
        if let Ok(meta) = std::fs::symlink_metadata(&socket) {
            if !meta.file_type().is_socket() || !trusted_owner(meta.uid()) {
                return Err(untrusted(
                    dir,
                    format!(
                        "{} is not a socket of yours or root's (owner uid {})",
                        socket.display(),
                        meta.uid()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that the daemon on the other end of `stream` runs as this user or as root.
pub fn check_daemon(stream: &UnixStream, socket: &Path) -> Result<(), PoolError> {
    let cred = rustix::net::sockopt::socket_peercred(stream)
        .map_err(|e| PoolError::io("reading the pool daemon's credentials", e.into()))?;
    let uid = cred.uid.as_raw();
    if !trusted_owner(uid) {
        return Err(PoolError::Refused(format!(
            "refusing the pool daemon on {}: it runs as uid {uid}, not as you (uid {}) or \
             root",
            socket.display(),
            me()
        )));
    }
    Ok(())
}

/// The pool directory under a private runtime directory (`$XDG_RUNTIME_DIR`), when it
/// is one: absolute, this user's, and theirs alone.
pub fn runtime_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?);
    let meta = std::fs::metadata(&dir).ok()?;
    (dir.is_absolute() && meta.is_dir() && meta.uid() == me() && meta.mode() & 0o077 == 0)
        .then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_pool_dir_must_be_private_up_to_a_sticky_root_dir() {
        let top = tempfile::tempdir().unwrap();
        let pool = top.path().join("a/pool");
        // Not made yet: what exists above it is checked.
        check_pool_dir(&pool).unwrap();
        std::fs::create_dir_all(&pool).unwrap();
        check_pool_dir(&pool).unwrap();
        chmod(&pool, 0o777);
        let e = check_pool_dir(&pool).unwrap_err().to_string();
        assert!(e.contains("writable by other users"), "{e}");
        // Sticky does not make the pool directory itself safe.
        chmod(&pool, 0o1777);
        check_pool_dir(&pool).unwrap_err();
        chmod(&pool, 0o700);
        chmod(&top.path().join("a"), 0o757);
        let e = check_pool_dir(&pool).unwrap_err().to_string();
        assert!(e.contains("/a is writable"), "{e}");
        chmod(&top.path().join("a"), 0o755);
        // A file where the socket goes is not a daemon.
        std::fs::write(pool.join("pool.sock"), b"").unwrap();
        let e = check_pool_dir(&pool).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
        std::fs::remove_file(pool.join("pool.sock")).unwrap();
        // A symlink is judged by where it leads.
        let link = top.path().join("link");
        std::os::unix::fs::symlink(&pool, &link).unwrap();
        check_pool_dir(&link).unwrap();
        chmod(&pool, 0o777);
        check_pool_dir(&link).unwrap_err();
    }

    #[test]
    fn a_daemon_of_this_user_is_trusted() {
        let (a, _b) = UnixStream::pair().unwrap();
        check_daemon(&a, Path::new("pool.sock")).unwrap();
    }
}
