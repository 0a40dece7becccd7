//! Writing files and directories at their destination.
//!
//! Two kinds of destination:
//!
//! * The scratch directory (input transfer). Files are created by descriptor, beneath
//!   the scratch directory, with `O_NOFOLLOW` at every component, so nothing already in
//!   it (a spool restored from an earlier run) can redirect a write.
//! * The submit side (output transfer): `Iwd`, a remap's destination, the spool. These
//!   are the submitter's own directories, and a symbolic link the submitter made there is
//!   followed like any path they named. The final file is written under a temporary name
//!   in the destination directory and renamed over the destination, so a failed transfer
//!   never leaves a truncated file, and a link at the destination name is replaced, not
//!   written through.
//!
//! Contents are copied with `std::io::copy`, which uses `copy_file_range` between files
//! (a reflink where the file system can, no user-space copy otherwise). Permission bits
//! are kept, but never set-user-ID, set-group-ID or sticky: a file made by an untrusted
//! job must not become a set-user-ID program of whoever runs the transfer.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, Gid, Mode, OFlags, Uid};

use crate::beneath::open_dir_at;

/// Permission bits kept from a source: read, write and execute for all, nothing else.
pub(crate) const PERM_BITS: u32 = 0o777;

/// Sets ownership, when the transfer creates files for another user.
pub(crate) fn chown_fd(fd: BorrowedFd<'_>, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rfs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    }
    Ok(())
}

/// Sets the permission bits of an open file or directory.
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    rfs::fchmod(fd, Mode::from_raw_mode(mode & PERM_BITS))?;
    Ok(())
}

/// Opens directory `name` in `dir`, creating it (owner-only until its contents are in)
/// when missing; `created` says which. Never follows a symbolic link.
pub(crate) fn make_dir_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    owner: Option<(u32, u32)>,
) -> io::Result<(OwnedFd, bool)> {
    match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => {
            let fd = open_dir_at(dir, name)?;
            chown_fd(fd.as_fd(), owner)?;
            Ok((fd, true))
        }
        Err(rustix::io::Errno::EXIST) => Ok((open_dir_at(dir, name)?, false)),
        Err(e) => Err(e.into()),
    }
}

/// Opens (creating as needed) the directory `rel` beneath `root`, one component at a
/// time. `rel` is relative and has no `..` (the plan guarantees it).
pub(crate) fn make_dirs_beneath(
    root: BorrowedFd<'_>,
    rel: &Path,
    owner: Option<(u32, u32)>,
) -> io::Result<OwnedFd> {
    let mut cur = rfs::openat(
        root,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for c in rel.components() {
        match c {
            Component::Normal(n) => cur = make_dir_at(cur.as_fd(), n, owner)?.0,
            Component::CurDir => {}
            _ => return Err(io::Error::from_raw_os_error(crate::error::EPERM)),
        }
    }
    Ok(cur)
}

/// Copies `src` into a new file `name` in `dir` (replacing a regular file of that name,
/// never writing through a link), with permission bits `mode`. Returns the bytes copied.
pub(crate) fn write_file_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    src: &mut File,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<u64> {
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::TRUNC
        | OFlags::NOFOLLOW
        | OFlags::NOCTTY
        | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?;
    let mut dst = File::from(fd);
    let n = io::copy(src, &mut dst)?;
    chown_fd(dst.as_fd(), owner)?;
    chmod_fd(dst.as_fd(), mode)?;
    Ok(n)
}

/// A number that makes temporary names unique within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Copies `src` to the path `dest`, through a temporary file in the same directory that
/// is renamed over `dest` once complete. Returns the bytes copied.
pub(crate) fn write_file_replacing(
    dest: &Path,
    src: &mut File,
    mode: u32,
    owner: Option<(u32, u32)>,
    fsync: bool,
) -> io::Result<u64> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(io::Error::from_raw_os_error(crate::error::EINVAL));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let (tmp, mut file) = loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".petrel-part.{}.{n}", std::process::id()));
        let tmp = parent.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        let n = io::copy(src, &mut file)?;
        chown_fd(file.as_fd(), owner)?;
        chmod_fd(file.as_fd(), mode)?;
        if fsync {
            file.sync_all()?;
        }
        fs::rename(&tmp, dest)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `O_NOFOLLOW` for `OpenOptions::custom_flags`.
fn libc_o_nofollow() -> i32 {
    OFlags::NOFOLLOW.bits() as i32
}

/// Creates the directory `dest` (owner-only until filled), or accepts an existing
/// directory there. Returns whether it was created.
pub(crate) fn make_dir_path(dest: &Path, owner: Option<(u32, u32)>) -> io::Result<bool> {
    match fs::DirBuilder::new().mode(0o700).create(dest) {
        Ok(()) => {
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(dest, Some(uid), Some(gid))?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::metadata(dest)?.is_dir() {
                Ok(false)
            } else {
                Err(io::Error::from_raw_os_error(20))
            }
        }
        Err(e) => Err(e),
    }
}

/// Sets the permission bits of a directory made by [`make_dir_path`], once it is filled.
pub(crate) fn chmod_path(dest: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(dest, fs::Permissions::from_mode(mode & PERM_BITS))
}
