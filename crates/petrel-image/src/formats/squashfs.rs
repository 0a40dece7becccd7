//! Squashfs images and SIF files (whose root file system is a squashfs partition).
//!
//! [`SquashfsMode::Auto`] picks, at run time, the first way that works:
//! 1. **squashfuse** — when `squashfuse` is installed and `/dev/fuse` can be opened
//!    for writing (on many machines `/dev/fuse` is root-only, so unprivileged users
//!    fall through), the file is mounted in `mounts/` for as long as the
//!    [`PreparedImage`] lives: no copy at all;
//! 2. **kernel squashfs** — as root, `mount -t squashfs -o ro,nosuid,nodev,loop,offset=N`;
//! 3. **extract** — `unsquashfs` into the store, once per file identity
//!    (device, inode, size, mtime, offset); later prepares reuse it. Devices, setuid/setgid
//!    bits and file capabilities are taken out of the extracted tree, as for layers.
//!
//! The choice is in [`PreparedImage::method`]. `PETREL_SQUASHFS=auto|squashfuse|kernel|extract`
//! forces one. `import` always extracts, so the image outlives the file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{ImageConfig, Progress};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::reference::ImageRef;
use crate::store::{FileLock, ImageKind, ImageMeta, PreparedImage, PullOutcome, Staging, Store};

/// How squashfs and SIF images are made available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquashfsMode {
    /// Mount if possible, else extract.
    Auto,
    /// Only squashfuse.
    Squashfuse,
    /// Only a kernel squashfs mount (root).
    Kernel,
    /// Always extract with `unsquashfs`.
    Extract,
}

impl Default for SquashfsMode {
    fn default() -> Self {
        match std::env::var("PETREL_SQUASHFS").as_deref() {
            Ok("squashfuse") => SquashfsMode::Squashfuse,
            Ok("kernel") => SquashfsMode::Kernel,
            Ok("extract") => SquashfsMode::Extract,
            _ => SquashfsMode::Auto,
        }
    }
}

/// A squashfs mount held for a [`PreparedImage`]; unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    dir: PathBuf,
    fuse: bool,
    lock: Option<FileLock>,
}

impl Mount {
    /// A mount (not FUSE) at `dir`, alive while `lock` is held.
    pub(crate) fn new(dir: PathBuf, lock: Option<FileLock>) -> Mount {
        Mount {
            dir,
            fuse: false,
            lock,
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        unmount(&self.dir, self.fuse);
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(l) = self.lock.take() {
            let _ = std::fs::remove_file(l.path());
        }
    }
}

fn unmount(dir: &Path, fuse: bool) {
    if fuse {
        for tool in ["fusermount3", "fusermount"] {
            if Command::new(tool)
                .arg("-u")
                .arg("-z")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success())
            {
                return;
            }
        }
    }
    let _ = rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH);
}

/// Unmounts and removes mount points whose owner died (their lock is free).
pub(crate) fn clean_stale_mounts(mounts: &Path) {
    let Ok(rd) = std::fs::read_dir(mounts) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Some(base) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".lock"))
        else {
            continue;
        };
        if let Ok(Some(_l)) = FileLock::try_exclusive(&p) {
            let dir = mounts.join(base);
            unmount(&dir, true);
            let _ = std::fs::remove_dir(&dir);
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// The squashfs inside `image`: (file, offset, size when a SIF partition).
fn locate(image: &ImageRef) -> Result<(PathBuf, u64, Option<u64>, &'static str)> {
    match image {
        ImageRef::Sif(p) => {
            let p = super::source_path(p, "open SIF file")?;
            let part = super::sif::find_root_partition(&p)?;
            Ok((p, part.offset, Some(part.size), "sif"))
        }
        ImageRef::Squashfs(p) => Ok((
            super::source_path(p, "open squashfs file")?,
            0,
            None,
            "squashfs",
        )),
        other => Err(Error::Unsupported(format!(
            "{other} is not a squashfs or SIF image"
        ))),
    }
}

/// A digest of the file's identity, so an unchanged file is extracted once. Not its
/// name: a file may be reached by a descriptor path, different each time. The owner and
/// the change time are in it because no user can set them: a file made later on a
/// reused inode, with the same size and a forged mtime, never maps onto another user's
/// extraction. (The key is not secret, since anyone may stat a file they can reach; so
/// it is never looked up by prefix, see `Store::resolve`.)
fn identity(file: &Path, offset: u64) -> Result<Digest> {
    let m = std::fs::metadata(file).ctx("stat", file)?;
    let key = format!(
        "squashfs\0{}\0{}\0{}\0{}.{}\0{}.{}\0{}\0{offset}",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.uid()
    );
    Ok(Digest::of(key.as_bytes()))
}

fn tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

fn fuse_usable() -> bool {
    tool("squashfuse")
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok()
}

/// Config of an Apptainer image: labels from `/.singularity.d/labels.json`, the
/// runscript as command.
fn sif_config(rootfs: &Path) -> ImageConfig {
    let mut c = ImageConfig::default();
    if let Ok(bytes) = std::fs::read(rootfs.join(".singularity.d/labels.json")) {
        if bytes.len() < (1 << 20) {
            if let Ok(m) = serde_json::from_slice::<
                std::collections::BTreeMap<String, serde_json::Value>,
            >(&bytes)
            {
                c.labels = m
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect();
            }
        }
    }
    if std::fs::symlink_metadata(rootfs.join(".singularity.d/runscript")).is_ok() {
        c.cmd = Some(vec!["/.singularity.d/runscript".into()]);
    }
    c
}

pub(crate) fn prepare(
    store: &Store,
    image: &ImageRef,
    progress: &dyn Progress,
) -> Result<PreparedImage> {
    let (file, offset, size, _) = locate(image)?;
    let key = identity(&file, offset)?;
    let mode = store.options().squashfs;
    if store.image_dir(&key).join("meta.json").exists()
        && mode != SquashfsMode::Squashfuse
        && mode != SquashfsMode::Kernel
    {
        let mut p = store.lease(&key, image.to_string())?;
        p.method = "extracted";
        return Ok(p);
    }
    let attempts: &[&str] = match mode {
        SquashfsMode::Auto => &["squashfuse", "kernel"],
        SquashfsMode::Squashfuse => &["squashfuse"],
        SquashfsMode::Kernel => &["kernel"],
        SquashfsMode::Extract => &[],
    };
    let mut why = Vec::new();
    for how in attempts {
        match try_mount(store, &file, offset, size, how) {
            Ok(m) => {
                return Ok(PreparedImage {
                    rootfs: m.dir.clone(),
                    config: sif_config(&m.dir),
                    digest: Some(key),
                    source: image.to_string(),
                    method: if *how == "kernel" {
                        "kernel-squashfs"
                    } else {
                        "squashfuse"
                    },
                    _lease: None,
                    _mount: Some(m),
                })
            }
            Err(e) => why.push(format!("{how}: {e}")),
        }
    }
    if mode != SquashfsMode::Auto && mode != SquashfsMode::Extract {
        return Err(Error::Unsupported(format!(
            "cannot mount {}: {}",
            file.display(),
            why.join("; ")
        )));
    }
    if !why.is_empty() {
        tracing::debug!(file = %file.display(), reasons = %why.join("; "), "mounting not possible, extracting");
    }
    let out = extract(store, image, Vec::new(), progress)?;
    let mut p = store.lease(&out.info.digest, image.to_string())?;
    p.method = "extracted";
    Ok(p)
}

fn try_mount(
    store: &Store,
    file: &Path,
    offset: u64,
    size: Option<u64>,
    how: &str,
) -> Result<Mount> {
    let root = rustix::process::geteuid().is_root();
    match how {
        "squashfuse" if !fuse_usable() => {
            return Err(Error::Unsupported(
                "squashfuse or a writable /dev/fuse is missing".into(),
            ))
        }
        "kernel" if !root => {
            return Err(Error::Unsupported(
                "kernel squashfs mounts need root".into(),
            ))
        }
        _ => {}
    }
    let mounts = store.root().join("mounts");
    // The staging directory becomes the mount point; its lock marks it alive.
    let (dir, lock) = Staging::new(&mounts, "mnt")?.into_parts();
    let mut m = Mount {
        dir: dir.clone(),
        fuse: how == "squashfuse",
        lock,
    };
    let status = if how == "squashfuse" {
        // As root, a FUSE mount would honour setuid bits and devices unless told not to,
        // and only root could enter it: the job runs as its owner, so others may, with
        // the kernel checking the image's own modes.
        let mut o = format!("offset={offset},nosuid,nodev");
        if root {
            o.push_str(",allow_other,default_permissions");
        }
        Command::new("squashfuse")
            .arg("-o")
            .arg(o)
            .arg(file)
            .arg(&dir)
            .output()
    } else {
        let mut o = format!("ro,nosuid,nodev,loop,offset={offset}");
        if let Some(s) = size {
            o.push_str(&format!(",sizelimit={s}"));
        }
        Command::new("mount")
            .args(["-t", "squashfs", "-o", &o])
            .arg(file)
            .arg(&dir)
            .output()
    }
    .map_err(|e| Error::io(format!("run {how}"), e))?;
    if !status.status.success() {
        m.fuse = false;
        return Err(Error::Unsupported(
            String::from_utf8_lossy(&status.stderr).trim().to_string(),
        ));
    }
    if std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
    {
        return Err(Error::Unsupported(format!(
            "{how} mounted nothing at {}",
            dir.display()
        )));
    }
    Ok(m)
}

/// Extracts the squashfs into the store with `unsquashfs`, once per file identity.
pub(crate) fn extract(
    store: &Store,
    image: &ImageRef,
    names: Vec<String>,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    let (file, offset, _, kind) = locate(image)?;
    let key = identity(&file, offset)?;
    let _install = FileLock::exclusive(&store.lock_path(&format!("install-{}", key.hex())))?;
    let _store = store.store_lock_shared()?;
    if !store.image_dir(&key).join("meta.json").exists() {
        if !tool("unsquashfs") {
            return Err(Error::Unsupported(
                "unsquashfs (squashfs-tools) is needed to extract squashfs and SIF images here"
                    .into(),
            ));
        }
        // A small squashfs can hold far more than it takes: refuse it before writing.
        let listed = listed_size(&file, offset)?;
        let cap = store.options().unpack.max_bytes;
        if listed > cap {
            return Err(Error::TooLarge {
                what: format!("{kind} image {} (unpacked, {listed} bytes)", file.display()),
                limit: cap,
            });
        }
        progress.note(&format!("extracting {} with unsquashfs", file.display()));
        let staging = store.staging("squashfs")?;
        let img = staging.path().join("image");
        std::fs::create_dir(&img).ctx("create", &img)?;
        let rootfs = img.join("rootfs");
        let mut cmd = Command::new("unsquashfs");
        cmd.args(["-no-progress", "-quiet", "-f", "-d"])
            .arg(&rootfs);
        if offset > 0 {
            cmd.args(["-o", &offset.to_string()]);
        }
        // No extended attributes, as root either: `trusted.*` ones (overlayfs keeps its
        // own there) from a hostile image must not sit in trees used as overlay layers.
        cmd.arg("-no-xattrs");
        let out = cmd
            .arg(&file)
            .output()
            .map_err(|e| Error::io("run unsquashfs", e))?;
        if !out.status.success() {
            return Err(Error::format(
                format!("{kind} image {}", file.display()),
                format!(
                    "unsquashfs failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        // unsquashfs (as root) made the image's devices, setuid programs and file
        // capabilities as they were: take them out before the image is stored.
        let dropped = crate::unpack::defuse_tree(&rootfs)?;
        let size = du(&rootfs);
        let cap = store.options().unpack.max_bytes;
        if size > cap {
            return Err(Error::TooLarge {
                what: format!("{kind} image {} (unpacked, {size} bytes)", file.display()),
                limit: cap,
            });
        }
        let meta = ImageMeta {
            digest: key.clone(),
            source: image.to_string(),
            config: sif_config(&rootfs),
            size,
            created: crate::store::now_secs(),
            kind: ImageKind::Squashfs {
                file: file.clone(),
                offset,
            },
            dropped,
        };
        let json =
            serde_json::to_vec_pretty(&meta).map_err(|e| Error::format("image metadata", e))?;
        std::fs::write(img.join("meta.json"), json).ctx("write", &img.join("meta.json"))?;
        crate::store::touch(&img.join("last-used"))?;
        let dest = store.image_dir(&key);
        std::fs::rename(&img, &dest).ctx("rename image into place", &dest)?;
    }
    for n in &names {
        store.set_name(n, &key)?;
    }
    let info = store.inspect(&ImageRef::Stored(key.to_string()))?;
    Ok(PullOutcome {
        info,
        cached: false,
        fetched_bytes: 0,
        layers_unpacked: 0,
    })
}

pub(crate) fn import(
    store: &Store,
    image: &ImageRef,
    names: Vec<String>,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    extract(store, image, names, progress)
}

/// The bytes of regular-file content a squashfs lists (`unsquashfs -lls`).
fn listed_size(file: &Path, offset: u64) -> Result<u64> {
    let mut cmd = Command::new("unsquashfs");
    cmd.arg("-lls");
    if offset > 0 {
        cmd.args(["-o", &offset.to_string()]);
    }
    let out = cmd
        .arg(file)
        .output()
        .map_err(|e| Error::io("run unsquashfs", e))?;
    if !out.status.success() {
        return Err(Error::format(
            format!("squashfs {}", file.display()),
            format!(
                "unsquashfs cannot list it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(sum_listing(&String::from_utf8_lossy(&out.stdout)))
}

/// Sums the sizes of regular files in an `unsquashfs -lls` listing
/// (`-rw-r--r-- root/root 3000000 2024-01-01 00:00 squashfs-root/zeros`).
fn sum_listing(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .fold(0u64, u64::saturating_add)
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                if m.is_dir() {
                    stack.push(e.path());
                } else if m.is_file() {
                    total += m.len();
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn listing_sizes_add_up_regular_files_only() {
        let text = "drwxr-xr-x root/root                33 2026-12-05 09:23 squashfs-root\n\
                    -rw-r--r-- root/root           3000000 2026-12-05 09:23 squashfs-root/d/zeros\n\
                    lrwxrwxrwx root/root                 7 2026-12-05 09:23 squashfs-root/l -> busybox\n\
                    -rwxr-xr-x root/root                 3 2026-12-05 09:23 squashfs-root/x\n";
        assert_eq!(super::sum_listing(text), 3_000_003);
    }
}
