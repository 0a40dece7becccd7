//! Reading the scratch directory without trusting it.
//!
//! The job owns its scratch directory and may leave anything there: a symbolic link to
//! `/etc/shadow` named like an output, a directory swapped for a link to `/`. Every path
//! in the scratch directory is therefore resolved here one component at a time from a
//! descriptor of the scratch directory, with `O_NOFOLLOW` at every step: a symbolic link
//! is read with `readlinkat` and followed by hand only while it stays inside (a relative
//! target, or an absolute one under the container mount point that means the scratch
//! directory); `..` is handled on our own stack of descriptors and can never climb above
//! the scratch directory. A file is opened `O_NOFOLLOW | O_NONBLOCK` and checked with
//! `fstat` to be the same regular file that was looked at, so neither a FIFO (which would
//! block) nor a device node (which must not be opened) is ever read, and a swap between
//! the look and the open is caught.
//!
//! This does the same as `openat2(RESOLVE_BENEATH)`, but needs no kernel feature (5.6+)
//! that a seccomp profile may hide, and gives the same answers everywhere.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags, Stat};

/// Symbolic links followed while resolving one path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// A directory every path is resolved beneath.
pub(crate) struct Root {
    fd: OwnedFd,
    /// Where the directory appears inside the job's container, if anywhere.
    mount: Option<PathBuf>,
}

/// What a path named.
pub(crate) enum Found {
    /// A directory, opened for listing.
    Dir(OwnedFd),
    /// A regular file, opened for reading, and its status.
    File(File, Stat),
    /// A FIFO, socket or device node: not opened.
    Special,
}

/// Why a path could not be resolved.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// An I/O error (`ENOENT` for a missing name, `ENOTDIR`, `ELOOP` after too many
    /// links, ...).
    Io(io::Error),
    /// A symbolic link (or `..`) leads outside the root.
    Escape,
}

impl From<io::Error> for ResolveError {
    fn from(e: io::Error) -> Self {
        ResolveError::Io(e)
    }
}

impl From<rustix::io::Errno> for ResolveError {
    fn from(e: rustix::io::Errno) -> Self {
        ResolveError::Io(e.into())
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens `name` in `dir` as a directory, never through a symbolic link.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rfs::openat(dir, name, dir_flags(), Mode::empty())?)
}

/// Opens the regular file `name` in `dir` for reading, checking that it is the file
/// `expect` describes (same device and inode) and regular.
pub(crate) fn open_file_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    expect: &Stat,
) -> io::Result<(File, Stat)> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name, flags, Mode::empty())?;
    let st = rfs::fstat(&fd)?;
    if st.st_dev != expect.st_dev
        || st.st_ino != expect.st_ino
        || FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
    {
        // the entry was replaced between the look and the open
        return Err(io::Error::from_raw_os_error(libc_estale()));
    }
    Ok((File::from(fd), st))
}

/// `ESTALE`: the file looked at is not the file opened.
fn libc_estale() -> i32 {
    116
}

/// The status of `name` in `dir`, not following a symbolic link.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    Ok(rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// The names in a directory (without `.` and `..`), sorted so transfers are repeatable.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

impl Root {
    /// Opens the root directory itself. Its own path is trusted (the starter made it).
    pub(crate) fn open(path: &Path, mount: Option<&Path>) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            mount: mount.map(Path::to_path_buf),
        })
    }

    /// The root's descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `rel` beneath the root, following symbolic links (the last one too) while
    /// they stay inside.
    pub(crate) fn resolve(&self, rel: &Path) -> Result<Found, ResolveError> {
        // the chain of directories walked so far: `..` pops it, never past the root
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, rel, &mut stack, self.mount.as_deref())?;
        let mut links = 0;
        // `pending` is a stack: its last element is the next component
        while let Some(name) = pending.pop() {
            let dir = stack.last().map_or(self.fd.as_fd(), |d| d.as_fd());
            if name == ".." {
                if stack.pop().is_none() {
                    return Err(ResolveError::Escape);
                }
                continue;
            }
            let last = pending.is_empty();
            let st = lstat_at(dir, &name)?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    let target = rfs::readlinkat(dir, name.as_os_str(), Vec::new())?;
                    let target = PathBuf::from(OsStr::from_bytes(target.to_bytes()));
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(ResolveError::Io(io::Error::from_raw_os_error(40)));
                    }
                    push_components(&mut pending, &target, &mut stack, self.mount.as_deref())?;
                }
                FileType::Directory => {
                    let fd = open_dir_at(dir, &name)?;
                    if last {
                        return Ok(Found::Dir(fd));
                    }
                    stack.push(fd);
                }
                FileType::RegularFile if last => {
                    let (f, st) = open_file_at(dir, &name, &st)?;
                    return Ok(Found::File(f, st));
                }
                _ if last => return Ok(Found::Special),
                _ => return Err(ResolveError::Io(io::Error::from_raw_os_error(20))),
            }
        }
        // the path named the root itself (empty, `.`, or a link back to it)
        let fd = match stack.pop() {
            Some(fd) => fd,
            None => rfs::openat(self.fd.as_fd(), ".", dir_flags(), Mode::empty())?,
        };
        Ok(Found::Dir(fd))
    }
}

/// Queues `path`'s components to be walked next. An absolute path restarts at the root
/// when it is under the container mount point, and escapes otherwise.
fn push_components(
    pending: &mut Vec<OsString>,
    path: &Path,
    stack: &mut Vec<OwnedFd>,
    mount: Option<&Path>,
) -> Result<(), ResolveError> {
    let rel = if path.is_absolute() {
        match mount.and_then(|m| path.strip_prefix(m).ok()) {
            Some(rest) => {
                stack.clear();
                rest
            }
            None => return Err(ResolveError::Escape),
        }
    } else {
        path
    };
    let mut comps: Vec<OsString> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => comps.push(n.to_os_string()),
            Component::ParentDir => comps.push(OsString::from("..")),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(ResolveError::Escape),
        }
    }
    pending.extend(comps.into_iter().rev());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn found_kind(f: &Result<Found, ResolveError>) -> &'static str {
        match f {
            Ok(Found::Dir(_)) => "dir",
            Ok(Found::File(..)) => "file",
            Ok(Found::Special) => "special",
            Err(ResolveError::Escape) => "escape",
            Err(ResolveError::Io(e)) if e.raw_os_error() == Some(2) => "missing",
            Err(ResolveError::Io(_)) => "io",
        }
    }

    #[test]
    fn links_are_followed_only_inside() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "s").expect("write");
        let t = tempfile::tempdir().expect("tempdir");
        let s = t.path();
        std::fs::create_dir(s.join("d")).expect("mkdir");
        std::fs::write(s.join("d/f"), "x").expect("write");
        symlink("d/f", s.join("in")).expect("link");
        symlink("../d/f", s.join("d/up")).expect("link");
        symlink(outside.path().join("secret"), s.join("abs")).expect("link");
        symlink("../../../../../../etc/passwd", s.join("rel_out")).expect("link");
        symlink(outside.path(), s.join("dirout")).expect("link");
        symlink("/srv/d/f", s.join("mounted")).expect("link");
        symlink("loop", s.join("loop")).expect("link");
        let root = Root::open(s, Some(Path::new("/srv"))).expect("root");
        assert_eq!(found_kind(&root.resolve(Path::new("in"))), "file");
        assert_eq!(found_kind(&root.resolve(Path::new("d/up"))), "file");
        assert_eq!(found_kind(&root.resolve(Path::new("abs"))), "escape");
        assert_eq!(found_kind(&root.resolve(Path::new("rel_out"))), "escape");
        assert_eq!(
            found_kind(&root.resolve(Path::new("dirout/secret"))),
            "escape"
        );
        assert_eq!(found_kind(&root.resolve(Path::new("mounted"))), "file");
        assert_eq!(found_kind(&root.resolve(Path::new("loop"))), "io");
        assert_eq!(found_kind(&root.resolve(Path::new("nope"))), "missing");
        assert_eq!(found_kind(&root.resolve(Path::new("../x"))), "escape");
        assert_eq!(found_kind(&root.resolve(Path::new("d/../d"))), "dir");
        assert_eq!(found_kind(&root.resolve(Path::new("."))), "dir");
        let no_mount = Root::open(s, None).expect("root");
        assert_eq!(
            found_kind(&no_mount.resolve(Path::new("mounted"))),
            "escape"
        );
    }

    #[test]
    fn fifo_is_not_opened() {
        let t = tempfile::tempdir().expect("tempdir");
        rfs::mknodat(
            rfs::CWD,
            t.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let root = Root::open(t.path(), None).expect("root");
        assert_eq!(found_kind(&root.resolve(Path::new("fifo"))), "special");
    }
}
