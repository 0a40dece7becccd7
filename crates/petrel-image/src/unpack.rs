//! Safe unpacking of (possibly hostile) layer tarballs into a directory.
//!
//! Every entry is created with `*at` system calls relative to a directory file
//! descriptor obtained by walking the entry's parent path one component at a time with
//! `O_NOFOLLOW | O_DIRECTORY`, starting at the layer root. So no entry can reach outside
//! the root: absolute paths and `..` components are refused before any walk, a symlink
//! anywhere in the parent path is refused (the walk never follows one), hardlink targets
//! are resolved the same way, and the final component is created with `O_EXCL |
//! O_NOFOLLOW` (an existing entry is unlinked first, never written through). Each
//! refusal is an [`Error::UnsafeEntry`] naming the layer and the entry.
//!
//! Whiteouts (`.wh.NAME`) and opaque-directory markers (`.wh..wh..opq`) are not created;
//! they are returned in [`Whiteouts`] and applied when layers are stacked
//! (`store::rootfs`). Ownership is kept when `preserve_owner` (root); otherwise everything
//! belongs to the invoking user and directories get `u+rwx` so the user can always delete
//! the tree.
//!
//! **Nothing privileged lands on the host.** The store is a directory on the host, and a
//! root store is unpacked by root: a `-rwsr-xr-x root` program or a `crw-rw-rw-` device
//! node from a layer would sit there for any local user who can reach it (the
//! CVE-2021-41091 class). So, as rootless Podman and Charliecloud do, setuid and setgid
//! bits are cleared, file capabilities (`security.capability`) are not applied, and
//! block and character devices are not created; each one is listed in
//! [`UnpackReport::dropped`] (and so in `image inspect`). Jobs get their `/dev` from the
//! runtime, so nothing they need is lost. Other xattrs are applied where the kernel
//! allows, failures counted.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use serde::{Deserialize, Serialize};

use crate::digest::{is_limit, LimitReader};
use crate::error::{Error, IoContext, Result};

/// How to unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Keep the uid/gid recorded in the tarball (only meaningful as root).
    pub preserve_owner: bool,
    /// Refuse a layer whose decompressed stream exceeds this many bytes; the store also
    /// refuses an image whose layers together unpack to more.
    pub max_bytes: u64,
}

/// The default cap on an image's unpacked size.
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 64 << 30;

/// The environment variable that sets the cap (bytes, or with a K/M/G/T suffix).
pub const MAX_UNPACKED_ENV: &str = "PETREL_IMAGE_MAX_UNPACKED_SIZE";

impl Default for UnpackOptions {
    fn default() -> Self {
        let root = rustix::process::geteuid().is_root();
        let max_bytes = match std::env::var(MAX_UNPACKED_ENV) {
            Ok(v) => parse_size(&v).unwrap_or_else(|| {
                tracing::warn!(
                    "{MAX_UNPACKED_ENV}={v:?} is not a size; using {DEFAULT_MAX_UNPACKED_BYTES}"
                );
                DEFAULT_MAX_UNPACKED_BYTES
            }),
            Err(_) => DEFAULT_MAX_UNPACKED_BYTES,
        };
        UnpackOptions {
            preserve_owner: root,
            max_bytes,
        }
    }
}

/// A size in bytes, optionally with a binary K, M, G or T suffix (`512M`, `20G`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 10),
        (i, 'm' | 'M') => (&s[..i], 20),
        (i, 'g' | 'G') => (&s[..i], 30),
        (i, 't' | 'T') => (&s[..i], 40),
        _ => (s, 0),
    };
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(1u64 << shift).filter(|&b| b > 0)
}

/// Whiteouts found in a layer, as paths relative to the root.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Whiteouts {
    /// Paths removed from the layers below (`dir/.wh.name` gives `dir/name`).
    pub files: Vec<String>,
    /// Directories whose lower content is hidden (`dir/.wh..wh..opq` gives `dir`).
    pub opaque: Vec<String>,
}

/// What an unpack did.
#[derive(Debug, Clone, Default)]
pub struct UnpackReport {
    /// Entries created.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Whiteouts to apply to the layers below.
    pub whiteouts: Whiteouts,
    /// What was not stored as the layer had it: device nodes not created, setuid/setgid
    /// bits cleared, file capabilities not applied; one line each, naming the path.
    pub dropped: Vec<String>,
    /// Extended attributes the kernel refused.
    pub xattr_failures: u64,
}

/// Opens `reader` through the right decompressor, sniffing the magic number:
/// gzip (`1f 8b`), zstd (`28 b5 2f fd`) or a plain tar.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let head = buf.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buf)?)
    } else {
        Box::new(buf)
    })
}

/// Unpacks the (decompressed) tar stream `reader` into the existing directory `dest`.
/// `layer` names the layer in errors.
pub fn unpack_layer<R: Read>(
    reader: R,
    dest: &Path,
    layer: &str,
    opts: &UnpackOptions,
) -> Result<UnpackReport> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open layer directory", dest)?;
    let mut u = Unpacker {
        root: Rc::new(root),
        umask: process_umask(),
        euid: rustix::process::geteuid().as_raw(),
        egid: rustix::process::getegid().as_raw(),
        dest,
        layer,
        opts,
        report: UnpackReport::default(),
        cache: None,
        dirs: Vec::new(),
    };
    let limited = LimitReader::new(reader, opts.max_bytes);
    let mut archive = tar::Archive::new(limited);
    let read_err = |e: io::Error| {
        if is_limit(&e) {
            Error::TooLarge {
                what: format!("layer {layer} (decompressed)"),
                limit: opts.max_bytes,
            }
        } else {
            Error::Layer {
                layer: layer.to_string(),
                reason: format!("reading tar: {e}"),
            }
        }
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        u.entry(&mut entry).map_err(|e| match e {
            Error::Io { ref source, .. } if is_limit(source) => {
                read_err(io::Error::other(crate::digest::LimitExceeded))
            }
            other => other,
        })?;
    }
    u.finish_dirs()?;
    Ok(u.report)
}

struct DeferredDir {
    path: Vec<OsString>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

struct Unpacker<'a> {
    root: Rc<OwnedFd>,
    /// The process umask: modes it would not change need no `fchmod`.
    umask: u32,
    euid: u32,
    egid: u32,
    dest: &'a Path,
    layer: &'a str,
    opts: &'a UnpackOptions,
    report: UnpackReport,
    /// The last parent directory opened, by its component path.
    cache: Option<(Vec<OsString>, Rc<OwnedFd>)>,
    dirs: Vec<DeferredDir>,
}

/// Splits an entry path into normal components, refusing absolute paths and `..`.
fn components(path: &Path) -> std::result::Result<Vec<OsString>, &'static str> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err("'..' path components are refused"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute paths are refused"),
        }
    }
    Ok(out)
}

impl Unpacker<'_> {
    fn refuse(&self, entry: &Path, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    fn io_err(&self, entry: &Path, what: &str, e: impl Into<io::Error>) -> Error {
        Error::io(
            format!(
                "layer {}: entry {:?}: {what}",
                self.layer,
                entry.display().to_string()
            ),
            e.into(),
        )
    }

    /// Opens the directory at `comps` under the root without following any symlink,
    /// creating missing directories when `create`.
    fn open_dir(&mut self, entry: &Path, comps: &[OsString], create: bool) -> Result<Rc<OwnedFd>> {
        if let Some((p, fd)) = &self.cache {
            if p.as_slice() == comps {
                return Ok(fd.clone());
            }
        }
        let mut cur = self.root.clone();
        for (i, c) in comps.iter().enumerate() {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let next = match rfs::openat(&*cur, c.as_os_str(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) if create => {
                    match rfs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(self.io_err(entry, "create parent directory", e)),
                    }
                    rfs::openat(&cur, c.as_os_str(), flags, Mode::empty())
                        .map_err(|e| self.io_err(entry, "open parent directory", e))?
                }
                Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::NOTDIR) => {
                    let shown: PathBuf = comps[..=i].iter().collect();
                    let is_link = rfs::statat(&cur, c.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
                        .unwrap_or(false);
                    return Err(self.refuse(
                        entry,
                        if is_link {
                            format!(
                                "parent {} is a symlink; writing through it is refused",
                                shown.display()
                            )
                        } else {
                            format!("parent {} is not a directory", shown.display())
                        },
                    ));
                }
                Err(e) => return Err(self.io_err(entry, "open parent directory", e)),
            };
            cur = Rc::new(next);
        }
        if create {
            self.cache = Some((comps.to_vec(), cur.clone()));
        }
        Ok(cur)
    }

    /// Removes whatever is at `name` in `parent`, so a new entry can take its place.
    fn clear(
        &mut self,
        entry: &Path,
        parent: &OwnedFd,
        comps: &[OsString],
        keep_dir: bool,
    ) -> Result<bool> {
        let name = comps[comps.len() - 1].as_os_str();
        let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(self.io_err(entry, "stat", e)),
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(true);
        }
        self.cache = None;
        if is_dir {
            let full: PathBuf = comps.iter().collect();
            std::fs::remove_dir_all(self.dest.join(full))
                .map_err(|e| self.io_err(entry, "remove existing directory", e))?;
        } else {
            rfs::unlinkat(parent, name, AtFlags::empty())
                .map_err(|e| self.io_err(entry, "remove existing entry", e))?;
        }
        Ok(false)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let path = entry
            .path()
            .map_err(|e| Error::Layer {
                layer: self.layer.to_string(),
                reason: format!("bad entry path: {e}"),
            })?
            .into_owned();
        let comps = components(&path).map_err(|r| self.refuse(&path, r))?;
        let Some(name) = comps.last().cloned() else {
            return Ok(()); // the root directory itself
        };
        let header = entry.header();
        let kind = header.entry_type();
        let mut mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0);
        let parent_comps = &comps[..comps.len() - 1];

        // Whiteouts are recorded, not created.
        let name_bytes = name.as_bytes();
        if let Some(target) = name_bytes.strip_prefix(b".wh.") {
            self.open_dir(&path, parent_comps, true)?;
            let parent: PathBuf = parent_comps.iter().collect();
            if target == b".wh..opq" {
                self.report
                    .whiteouts
                    .opaque
                    .push(parent.to_string_lossy().into_owned());
            } else if target.starts_with(b".wh.") || target.is_empty() {
                tracing::debug!(layer = self.layer, entry = %path.display(), "skipping aufs metadata entry");
            } else {
                let t = parent.join(OsStr::from_bytes(target));
                self.report
                    .whiteouts
                    .files
                    .push(t.to_string_lossy().into_owned());
            }
            return Ok(());
        }

        let parent = self.open_dir(&path, parent_comps, true)?;
        let n = name.as_os_str();
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                let exists = self.clear(&path, &parent, &comps, true)?;
                if !exists {
                    rfs::mkdirat(&parent, n, Mode::from_raw_mode(0o700))
                        .map_err(|e| self.io_err(&path, "create directory", e))?;
                }
                self.dirs.push(DeferredDir {
                    path: comps.clone(),
                    mode,
                    uid,
                    gid,
                    mtime,
                });
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                if kind == T::GNUSparse {
                    return Err(self.refuse(&path, "GNU sparse files are not supported"));
                }
                mode = self.without_setid(&path, mode);
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                // Created with its final mode where the umask allows (then no
                // fchmod); an existing entry is removed first, never opened.
                let create_mode = (mode & 0o777) | 0o600;
                let fd = match rfs::openat(&*parent, n, flags, Mode::from_raw_mode(create_mode)) {
                    Err(rustix::io::Errno::EXIST) => {
                        self.clear(&path, &parent, &comps, false)?;
                        rfs::openat(&*parent, n, flags, Mode::from_raw_mode(create_mode))
                    }
                    other => other,
                }
                .map_err(|e| self.io_err(&path, "create file", e))?;
                let mut file = std::fs::File::from(fd);
                let n =
                    io::copy(entry, &mut file).map_err(|e| self.io_err(&path, "write file", e))?;
                self.report.bytes += n;
                let fd = OwnedFd::from(file);
                self.apply_xattrs(entry, &fd);
                let created = create_mode & !self.umask;
                self.set_owner_mode_if_needed(&path, &fd, (mode, created), uid, gid)?;
                let ts = timestamps(mtime);
                rfs::futimens(&fd, &ts).map_err(|e| self.io_err(&path, "set mtime", e))?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.refuse(&path, "symlink without a target"))?;
                let target = OsStr::from_bytes(&target).to_os_string();
                self.clear(&path, &parent, &comps, false)?;
                rfs::symlinkat(target.as_os_str(), &parent, n)
                    .map_err(|e| self.io_err(&path, "create symlink", e))?;
                if self.opts.preserve_owner {
                    rfs::chownat(
                        &parent,
                        n,
                        Some(uid_of(uid)),
                        Some(gid_of(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| self.io_err(&path, "chown symlink", e))?;
                }
                let _ = rfs::utimensat(&parent, n, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW);
            }
            T::Link => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| self.refuse(&path, "hardlink without a target"))?
                    .into_owned();
                let tcomps = components(&target).map_err(|r| {
                    self.refuse(&path, format!("hardlink target {}: {r}", target.display()))
                })?;
                let Some(tname) = tcomps.last() else {
                    return Err(self.refuse(&path, "hardlink to the root directory"));
                };
                let tparent = self
                    .open_dir(&path, &tcomps[..tcomps.len() - 1], false)
                    .map_err(|e| match e {
                        Error::UnsafeEntry { reason, .. } => self.refuse(
                            &path,
                            format!("hardlink target {}: {reason}", target.display()),
                        ),
                        Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                            self.refuse(
                                &path,
                                format!(
                                    "hardlink target {} is not in this layer",
                                    target.display()
                                ),
                            )
                        }
                        other => other,
                    })?;
                match rfs::statat(&tparent, tname.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        return Err(self.refuse(
                            &path,
                            format!("hardlink target {} is a directory", target.display()),
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(self.refuse(
                            &path,
                            format!("hardlink target {} is not in this layer", target.display()),
                        ))
                    }
                }
                if tcomps == comps {
                    return Ok(());
                }
                self.clear(&path, &parent, &comps, false)?;
                rfs::linkat(&tparent, tname.as_os_str(), &parent, n, AtFlags::empty())
                    .map_err(|e| self.io_err(&path, "create hardlink", e))?;
            }
            T::Char | T::Block => {
                tracing::info!(layer = self.layer, entry = %path.display(), "device node not stored");
                self.report
                    .dropped
                    .push(format!("device node {}", path.display()));
                return Ok(());
            }
            T::Fifo => {
                mode = self.without_setid(&path, mode);
                self.clear(&path, &parent, &comps, false)?;
                rfs::mknodat(&parent, n, FileType::Fifo, Mode::from_raw_mode(mode), 0)
                    .map_err(|e| self.io_err(&path, "create special file", e))?;
                if self.opts.preserve_owner {
                    rfs::chownat(
                        &parent,
                        n,
                        Some(uid_of(uid)),
                        Some(gid_of(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| self.io_err(&path, "chown", e))?;
                }
                rfs::chmodat(&parent, n, Mode::from_raw_mode(mode), AtFlags::empty())
                    .map_err(|e| self.io_err(&path, "chmod", e))?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(()),
            other => {
                tracing::info!(layer = self.layer, entry = %path.display(), kind = ?other, "unsupported tar entry type skipped");
                return Ok(());
            }
        }
        self.report.entries += 1;
        Ok(())
    }

    /// `mode` without its setuid and setgid bits, noting the entry when it had any.
    fn without_setid(&mut self, path: &Path, mode: u32) -> u32 {
        let setid = mode & 0o6000;
        if setid != 0 {
            let what = match setid {
                0o4000 => "setuid bit",
                0o2000 => "setgid bit",
                _ => "setuid and setgid bits",
            };
            self.report
                .dropped
                .push(format!("{what} of {}", path.display()));
        }
        mode & !0o6000
    }

    /// Like [`Self::set_owner_mode`], skipping calls that would change nothing;
    /// `modes` is (wanted, got at creation).
    fn set_owner_mode_if_needed(
        &self,
        path: &Path,
        fd: &OwnedFd,
        modes: (u32, u32),
        uid: u64,
        gid: u64,
    ) -> Result<()> {
        let chown = self.opts.preserve_owner
            && (uid != u64::from(self.euid) || gid != u64::from(self.egid));
        if chown {
            rfs::fchown(fd, Some(uid_of(uid)), Some(gid_of(gid)))
                .map_err(|e| self.io_err(path, "chown", e))?;
        }
        if chown || modes.0 != modes.1 {
            rfs::fchmod(fd, Mode::from_raw_mode(modes.0))
                .map_err(|e| self.io_err(path, "chmod", e))?;
        }
        Ok(())
    }

    fn set_owner_mode(
        &self,
        path: &Path,
        fd: &OwnedFd,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Result<()> {
        if self.opts.preserve_owner {
            rfs::fchown(fd, Some(uid_of(uid)), Some(gid_of(gid)))
                .map_err(|e| self.io_err(path, "chown", e))?;
        }
        // After chown, which clears setuid/setgid bits.
        rfs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(|e| self.io_err(path, "chmod", e))
    }

    fn apply_xattrs<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, fd: &OwnedFd) {
        let shown = entry_path_lossy(entry);
        let Ok(Some(exts)) = entry.pax_extensions() else {
            return;
        };
        for ext in exts.flatten() {
            let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            if name == b"security.capability" {
                self.report
                    .dropped
                    .push(format!("file capabilities of {shown}"));
                continue;
            }
            let name = OsStr::from_bytes(name);
            if rfs::fsetxattr(
                fd.as_fd(),
                name,
                ext.value_bytes(),
                rfs::XattrFlags::empty(),
            )
            .is_err()
            {
                self.report.xattr_failures += 1;
            }
        }
    }

    /// Applies directory modes, owners and times last, deepest first, so a read-only
    /// directory does not stop its own children from being written.
    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        self.cache = None;
        for d in dirs.iter().rev() {
            let path: PathBuf = d.path.iter().collect();
            let fd = match self.open_dir(&path, &d.path, false) {
                Ok(fd) => fd,
                // Replaced by a later entry or under a later symlink: nothing to fix.
                Err(_) => continue,
            };
            let mode = if self.opts.preserve_owner {
                d.mode
            } else {
                d.mode | 0o700
            };
            self.set_owner_mode(&path, &fd, mode, d.uid, d.gid)?;
            let _ = rfs::futimens(&fd, &timestamps(d.mtime));
        }
        Ok(())
    }
}

/// Takes out of a tree another tool unpacked (`unsquashfs`) what [`unpack_layer`] never
/// creates: device nodes are removed, setuid/setgid bits cleared, file capabilities
/// removed. Symlinks are never followed. Returns what was dropped, one line each.
pub(crate) fn defuse_tree(root: &Path) -> Result<Vec<String>> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let mut dropped = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).ctx("read", &dir)? {
            let e = e.ctx("read", &dir)?;
            let p = e.path();
            let shown = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            let ft = e.file_type().ctx("stat", &p)?;
            if ft.is_symlink() {
                continue;
            }
            if ft.is_dir() {
                stack.push(p);
                continue;
            }
            if ft.is_block_device() || ft.is_char_device() {
                std::fs::remove_file(&p).ctx("remove device node", &p)?;
                dropped.push(format!("device node {shown}"));
                continue;
            }
            let mode = std::fs::symlink_metadata(&p)
                .ctx("stat", &p)?
                .permissions()
                .mode();
            if mode & 0o6000 != 0 {
                let what = match mode & 0o6000 {
                    0o4000 => "setuid bit",
                    0o2000 => "setgid bit",
                    _ => "setuid and setgid bits",
                };
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o1777))
                    .ctx("chmod", &p)?;
                dropped.push(format!("{what} of {shown}"));
            }
            let mut probe: [u8; 0] = [];
            if rfs::lgetxattr(&p, "security.capability", &mut probe[..]).is_ok() {
                rfs::lremovexattr(&p, "security.capability").ctx("remove file capabilities", &p)?;
                dropped.push(format!("file capabilities of {shown}"));
            }
        }
    }
    dropped.sort();
    Ok(dropped)
}

fn entry_path_lossy<R: Read>(entry: &tar::Entry<'_, R>) -> String {
    String::from_utf8_lossy(&entry.path_bytes()).into_owned()
}

/// The umask, read without changing it (`umask(2)` would race with other threads).
fn process_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o777)
}

fn uid_of(uid: u64) -> rfs::Uid {
    rfs::Uid::from_raw(u32::try_from(uid).unwrap_or(u32::MAX - 1))
}

fn gid_of(gid: u64) -> rfs::Gid {
    rfs::Gid::from_raw(u32::try_from(gid).unwrap_or(u32::MAX - 1))
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(0),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_escape() {
        assert!(components(Path::new("/etc/passwd")).is_err());
        assert!(components(Path::new("a/../../b")).is_err());
        assert_eq!(components(Path::new("./a/b")).unwrap().len(), 2);
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size(" 20G "), Some(20 << 30));
        assert_eq!(parse_size("1t"), Some(1 << 40));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
