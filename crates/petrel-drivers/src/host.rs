//! Facts about the host the drivers share: where petrel keeps runtime state, whether a
//! program is statically linked, which static init is installed.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Petrel's directory for one driver's runtime state (bundles, `--root` state, the files
/// a job's runtime reads as the job's user): `/run/petrel-drivers/<driver>` for root (not
/// under the embedded runtime's private `/run/petrel`, which only root may enter), else
/// `$XDG_RUNTIME_DIR/petrel-drivers/<driver>`, else `/tmp/petrel-drivers-<uid>/<driver>`.
pub fn state_dir(driver: &str) -> PathBuf {
    let uid = rustix::process::geteuid().as_raw();
    let base = if uid == 0 {
        PathBuf::from("/run/petrel-drivers")
    } else if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(dir).join("petrel-drivers")
    } else {
        PathBuf::from(format!("/tmp/petrel-drivers-{uid}"))
    };
    if uid == 0 {
        open_to_job_users(&base);
    }
    base.join(driver)
}

/// Makes root's state directory traversable by the users jobs run as (their gate FIFOs
/// and environment files live below it). It must be done here, not left to whoever makes
/// it first: runc creates its `--root` with `MkdirAll(…, 0700)`, parents included.
fn open_to_job_users(base: &Path) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(base);
    if let Ok(meta) = std::fs::metadata(base) {
        if meta.permissions().mode() & 0o777 != 0o755 {
            let _ = std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// A fresh private directory for job `name`'s files under `parent` (`<name>.XXXXXX`),
/// removed when dropped. What an earlier run of the same job left there (a petrel that
/// crashed) is removed first: a name belongs to one job on one slot at a time.
pub(crate) fn job_dir(parent: &Path, name: &str) -> Result<tempfile::TempDir, crate::DriverError> {
    std::fs::create_dir_all(parent)
        .map_err(|e| crate::DriverError::io(format!("creating {}", parent.display()), e))?;
    let prefix = format!("{name}.");
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                tracing::info!(
                    "removing {}, left by an earlier run",
                    entry.path().display()
                );
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!("removing {}: {e}", entry.path().display());
                }
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(parent)
        .map_err(|e| {
            crate::DriverError::io(format!("creating a directory in {}", parent.display()), e)
        })
}

/// Hands files petrel made for a job to the user the job (or its runtime) runs as.
pub(crate) fn give_to(user: crate::User, paths: &[&Path]) -> Result<(), crate::DriverError> {
    for path in paths {
        rustix::fs::chown(
            *path,
            Some(rustix::process::Uid::from_raw(user.uid)),
            Some(rustix::process::Gid::from_raw(user.gid)),
        )
        .map_err(|e| crate::DriverError::io(format!("chown {}", path.display()), e.into()))?;
    }
    Ok(())
}

/// Whether `path` is an ELF executable without a program interpreter, so it runs inside
/// any image, even one without a C library.
pub fn is_static_elf(path: &Path) -> bool {
    const PT_INTERP: u32 = 3;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut data = Vec::new();
    // Program headers sit near the start; 64 KiB covers them in any real binary.
    if file.by_ref().take(64 << 10).read_to_end(&mut data).is_err() {
        return false;
    }
    // 64-bit little-endian ELF only: the architectures petrel supports.
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    if phentsize < 4 {
        return false;
    }
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        data.get(at..at + 4)
            .is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != PT_INTERP)
    })
}

/// A statically linked init that forwards signals and reaps (tini, Docker's copy of it,
/// catatonit), for runtimes that have none of their own.
pub fn static_init() -> Option<PathBuf> {
    const CANDIDATES: [&str; 5] = [
        "/usr/bin/tini-static",
        "/usr/bin/docker-init",
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
        "/sbin/tini-static",
    ];
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .filter_map(|p| p.canonicalize().ok())
        .find(|p| is_static_elf(p))
}

/// A statically linked busybox on the host, from which probe images are built.
pub fn static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .chain(crate::process::find_program("busybox"))
        .filter_map(|p| p.canonicalize().ok())
        .find(|p| is_static_elf(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic() {
        // /bin/sh is dynamically linked on every Debian system.
        assert!(!is_static_elf(Path::new("/bin/sh")));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
        assert!(!is_static_elf(Path::new("/nonexistent")));
        match static_busybox() {
            Some(bb) => assert!(is_static_elf(&bb)),
            None => eprintln!("no static busybox here (apt-get install busybox-static)"),
        }
    }
}
