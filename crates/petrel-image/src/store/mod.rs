//! The image store: a directory, no daemon, shared safely by concurrent processes.
//!
//! ```text
//! <root>/blobs/sha256/<hex>        content-addressed blobs (manifests, configs, layers)
//! <root>/layers/<diff_id hex>/     unpack cache: root/ (one layer, unpacked) + meta.json
//! <root>/images/<digest hex>/      rootfs/ (layers flattened with hardlinks), meta.json, last-used
//! <root>/names/<name>              the digest a name (tag) points at: a registry name
//!                                  (`docker.io/library/busybox:latest`) only ever for
//!                                  content pulled from that registry; everything else
//!                                  under `local/` (see [`LOCAL_PREFIX`])
//! <root>/locks/                    flock files: store.lock, image-*, install-*, layer-*
//! <root>/tmp/                      staging directories, each with a held .lock
//! <root>/mounts/                   squashfs mount points (when mounting is used)
//! ```
//!
//! **Crash safety.** Everything is built in a staging directory under `tmp/` and renamed
//! into `blobs/`, `layers/` or `images/` last, so a `kill -9` at any point leaves
//! either the whole thing or an unlocked staging directory, which the next
//! [`Store::open`] removes. A blob is renamed in only after its digest matched.
//!
//! **Permissions.** A root store is shared by every local user's jobs, so it keeps what
//! users must not browse to itself: the root, `images/` and `mounts/` are `0711` (a job
//! running as its owner, e.g. under `ch-run`, reaches its image's `rootfs` by a path it
//! is given but cannot list what else is stored), everything else `0700`. Stored
//! images hold no setuid/setgid bits and no device nodes (see [`crate::unpack`]).
//!
//! **Concurrency.** `locks/store.lock` is held shared by pulls and prepares and
//! exclusively by GC and `rm`. Installing an image holds `install-<digest>`, and
//! unpacking a layer `layer-<diff_id>`, exclusively: a second process pulling the
//! same image waits and then finds it done. A [`PreparedImage`] holds a shared lock
//! on `image-<digest>` (its lease); GC skips images whose lock it cannot take.

mod blobs;
mod gc;
mod index;
mod install;
mod lock;
mod rootfs;

use std::path::{Path, PathBuf};

pub use blobs::MAX_METADATA_BYTES;
pub use gc::{GcOptions, GcReport};
pub(crate) use index::{now_secs, touch};
pub use index::{ImageInfo, ImageKind, ImageMeta, LayerMeta};
pub use install::PullOutcome;
pub(crate) use install::{BlobSource, Resolved};
pub use lock::FileLock;
pub(crate) use lock::{remove_tree, Staging};

/// Reads a small blob (manifest, index, config) and checks its digest.
pub(crate) fn read_blob_verified(r: impl std::io::Read, d: &Digest, what: &str) -> Result<Vec<u8>> {
    blobs::read_verified(r, d, MAX_METADATA_BYTES, what)
}

/// The store size GC counts for these images.
pub(crate) fn gc_size(images: &[ImageInfo]) -> u64 {
    gc::store_size(images)
}

use crate::config::{ImageConfig, NoProgress, Progress};
use crate::digest::Digest;
use crate::distribution::RegistryOptions;
use crate::error::{Error, IoContext, Result};
use crate::reference::{DockerRef, ImageRef};
use crate::unpack::UnpackOptions;

/// Where names that do not come from a registry live: `--name`, an archive's `RepoTags`,
/// a layout's tags. No `docker://` reference resolves here (a registry reference's
/// canonical form always starts with its registry, and `local` is not one).
pub const LOCAL_PREFIX: &str = "local/";

/// `name` in the local namespace.
pub fn local_name(name: &str) -> String {
    let bare = name.strip_prefix(LOCAL_PREFIX).unwrap_or(name);
    format!("{LOCAL_PREFIX}{bare}")
}

/// Options of a [`Store`].
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// How layers are unpacked (ownership, devices, size cap).
    pub unpack: UnpackOptions,
    /// Registry access (credentials, insecure registries, concurrency).
    pub registry: RegistryOptions,
    /// How squashfs and SIF images are made usable.
    pub squashfs: crate::formats::squashfs::SquashfsMode,
}

/// An image store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    opts: StoreOptions,
}

/// An image ready to run: an unpacked root file system and its config. While this
/// value lives, the image cannot be garbage-collected (it holds a shared lock), and a
/// squashfs mount made for it stays mounted.
#[derive(Debug)]
pub struct PreparedImage {
    /// The root file system (use read-only; mount `nosuid,nodev`).
    pub rootfs: PathBuf,
    /// How to run it.
    pub config: ImageConfig,
    /// The stored image's digest; `None` for a plain directory used in place.
    pub digest: Option<Digest>,
    /// What was asked for, canonicalised.
    pub source: String,
    /// How the root file system was provided (`store`, `directory`, `squashfuse`, …).
    pub method: &'static str,
    pub(crate) _lease: Option<FileLock>,
    pub(crate) _mount: Option<crate::formats::squashfs::Mount>,
}

impl Store {
    /// Opens (creating if needed) a store at `root`, removing what crashed processes
    /// left in `tmp/`.
    pub fn open(root: &Path) -> Result<Store> {
        Self::open_with(root, StoreOptions::default())
    }

    /// Opens the per-user default store: `$XDG_DATA_HOME/petrel/images`, else
    /// `~/.local/share/petrel/images`; `/var/lib/petrel/images` for root.
    pub fn open_default() -> Result<Store> {
        Self::open(&Self::default_root()?)
    }

    /// The directory [`Store::open_default`] uses.
    pub fn default_root() -> Result<PathBuf> {
        if rustix::process::geteuid().is_root() {
            return Ok(PathBuf::from("/var/lib/petrel/images"));
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return Ok(PathBuf::from(x).join("petrel/images"));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::Unsupported("neither XDG_DATA_HOME nor HOME is set".into()))?;
        Ok(PathBuf::from(home).join(".local/share/petrel/images"))
    }

    /// Opens a store with explicit options.
    pub fn open_with(root: &Path, opts: StoreOptions) -> Result<Store> {
        use std::os::unix::fs::PermissionsExt;
        for sub in [
            "blobs/sha256",
            "layers",
            "images",
            "names",
            "locks",
            "tmp",
            "mounts",
        ] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).ctx("create store directory", &p)?;
        }
        // Set on every open, so a store made before these modes were kept gets them too.
        for (sub, mode) in [
            ("", 0o711),
            ("images", 0o711),
            ("mounts", 0o711),
            ("blobs", 0o700),
            ("layers", 0o700),
            ("names", 0o700),
            ("locks", 0o700),
            ("tmp", 0o700),
        ] {
            let p = root.join(sub);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .ctx("set the mode of store directory", &p)?;
        }
        let store = Store {
            root: root.to_path_buf(),
            opts,
        };
        lock::clean_stale(&store.tmp())?;
        crate::formats::squashfs::clean_stale_mounts(&store.root.join("mounts"));
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options in force.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn image_dir(&self, d: &Digest) -> PathBuf {
        self.root.join("images").join(d.hex())
    }

    pub(crate) fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        blobs::blob_path(&self.root, d)
    }

    pub(crate) fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    pub(crate) fn store_lock_shared(&self) -> Result<FileLock> {
        FileLock::shared(&self.lock_path("store"))
    }

    pub(crate) fn staging(&self, what: &str) -> Result<Staging> {
        Staging::new(&self.tmp(), what)
    }

    /// Pulls `reference` from its registry: the tag is always resolved again; layers
    /// and images already stored are not fetched again.
    pub fn pull(&self, reference: &DockerRef, progress: &dyn Progress) -> Result<PullOutcome> {
        crate::distribution::pull(self, reference, progress)
    }

    /// Imports an OCI layout, a `docker save` archive, a SIF or a squashfs file into the
    /// store, naming it `local/<name>` if given and an archive's own tags `local/<tag>`:
    /// a name a user chose, or an archive claims, never answers a registry reference.
    pub fn import(
        &self,
        image: &ImageRef,
        name: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<PullOutcome> {
        crate::formats::import(self, image, name, progress)
    }

    /// Turns any reference into a root file system the runtime can use: fetches or
    /// imports what is missing (a registry tag already in the store is used as is),
    /// and returns it with a lease that keeps GC away.
    pub fn prepare(&self, image: &ImageRef) -> Result<PreparedImage> {
        self.prepare_with(image, &NoProgress)
    }

    /// [`Store::prepare`] with progress reporting.
    pub fn prepare_with(&self, image: &ImageRef, progress: &dyn Progress) -> Result<PreparedImage> {
        match image {
            ImageRef::Dir(path) => crate::formats::rootfs_dir::prepare(path),
            ImageRef::Stored(_) => {
                let d = self
                    .resolve(image)?
                    .ok_or_else(|| Error::NotFound(image.to_string()))?;
                self.lease(&d, image.to_string())
            }
            ImageRef::Docker(r) => {
                let d = match self.resolve(image)? {
                    Some(d) => d,
                    None => self.pull(r, progress)?.info.digest,
                };
                self.lease(&d, image.to_string())
            }
            ImageRef::Sif(_) | ImageRef::Squashfs(_) => {
                crate::formats::squashfs::prepare(self, image, progress)
            }
            ImageRef::OciLayout { .. } | ImageRef::DockerArchive(_) => {
                // Stored by digest alone: what a job brings names nothing for anyone else.
                let d = crate::formats::import_unnamed(self, image, progress)?
                    .info
                    .digest;
                self.lease(&d, image.to_string())
            }
        }
    }

    /// Takes the lease on a stored image and returns it prepared.
    pub(crate) fn lease(&self, d: &Digest, source: String) -> Result<PreparedImage> {
        let _store = self.store_lock_shared()?;
        let lease = FileLock::shared(&self.lock_path(&format!("image-{}", d.hex())))?;
        let dir = self.image_dir(d);
        let meta = self.meta(d)?;
        index::touch(&dir.join("last-used"))?;
        Ok(PreparedImage {
            rootfs: dir.join("rootfs"),
            config: meta.config,
            digest: Some(d.clone()),
            source,
            method: "store",
            _lease: Some(lease),
            _mount: None,
        })
    }

    pub(crate) fn meta(&self, d: &Digest) -> Result<ImageMeta> {
        let p = self.image_dir(d).join("meta.json");
        if !p.exists() {
            return Err(Error::NotFound(d.to_string()));
        }
        index::read_json(&p, MAX_METADATA_BYTES)
    }

    /// The digest of a stored image a reference names, if stored. Registry tags and
    /// bare names are looked up by name; digests and paths by content or identity.
    pub fn resolve(&self, image: &ImageRef) -> Result<Option<Digest>> {
        let candidates: Vec<String> = match image {
            ImageRef::Docker(r) => {
                // A pinned manifest digest is the image itself (its content verified
                // by that digest, whoever brought it); a pinned index digest was stored
                // under its name. A squashfs image's digest names a file, not content,
                // so it never answers.
                if let Some(d) = &r.digest {
                    if matches!(self.meta(d), Ok(m) if matches!(m.kind, ImageKind::Layers { .. })) {
                        return Ok(Some(d.clone()));
                    }
                }
                vec![r.to_string()]
            }
            ImageRef::Stored(n) => {
                // A bare name is first what the user (or root) imported under it, then
                // what was pulled under it.
                let mut c = vec![n.clone(), local_name(n), crate::formats::normalise_name(n)];
                if let Ok(r) = DockerRef::parse(n) {
                    c.push(r.to_string());
                }
                if let Some(d) = self.find_by_digest_prefix(n)? {
                    return Ok(Some(d));
                }
                c
            }
            _ => vec![image.to_string()],
        };
        for name in candidates {
            let p = self.root.join("names").join(index::encode_name(&name));
            if let Ok(text) = std::fs::read_to_string(&p) {
                if let Ok(d) = Digest::parse(text.trim()) {
                    if self.image_dir(&d).join("meta.json").exists() {
                        return Ok(Some(d));
                    }
                }
            }
        }
        Ok(None)
    }

    fn find_by_digest_prefix(&self, s: &str) -> Result<Option<Digest>> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() < 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let dir = self.root.join("images");
        let mut found = None;
        for e in std::fs::read_dir(&dir).ctx("read", &dir)?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(hex) {
                if found.is_some() {
                    return Err(Error::Reference {
                        input: s.to_string(),
                        reason: "ambiguous digest prefix".into(),
                    });
                }
                found = Digest::parse(&format!("sha256:{n}")).ok();
            }
        }
        Ok(found)
    }

    /// Points `name` at `d`.
    pub(crate) fn set_name(&self, name: &str, d: &Digest) -> Result<()> {
        let p = self.root.join("names").join(index::encode_name(name));
        index::write_atomic(&p, d.as_str().as_bytes())
    }

    fn names(&self) -> Result<Vec<(String, Digest)>> {
        let dir = self.root.join("names");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).ctx("read", &dir)?.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if file.starts_with(".tmp-") {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                if let Ok(d) = Digest::parse(text.trim()) {
                    out.push((index::decode_name(&file), d));
                }
            }
        }
        Ok(out)
    }

    /// Every stored image, most recently used first.
    pub fn list(&self) -> Result<Vec<ImageInfo>> {
        let names = self.names()?;
        let dir = self.root.join("images");
        let mut metas = Vec::new();
        for e in std::fs::read_dir(&dir).ctx("read", &dir)?.flatten() {
            let Ok(d) = Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy()))
            else {
                continue;
            };
            if let Ok(meta) = self.meta(&d) {
                metas.push(meta);
            }
        }
        // A layer's size is charged to an image only when no other image uses it.
        let mut users: std::collections::HashMap<Digest, usize> = Default::default();
        for m in &metas {
            if let ImageKind::Layers { layers, .. } = &m.kind {
                for l in layers {
                    *users.entry(l.diff_id.clone()).or_default() += 1;
                }
            }
        }
        let mut out: Vec<ImageInfo> = metas
            .into_iter()
            .map(|m| {
                let blob_size = match &m.kind {
                    ImageKind::Layers { layers, .. } => layers
                        .iter()
                        .filter(|l| users.get(&l.diff_id) == Some(&1))
                        .map(|l| l.size + l.unpacked_size)
                        .sum(),
                    ImageKind::Squashfs { .. } => m.size,
                };
                let mut n: Vec<String> = names
                    .iter()
                    .filter(|(_, d)| *d == m.digest)
                    .map(|(n, _)| n.clone())
                    .collect();
                n.sort();
                ImageInfo {
                    dropped: m.all_dropped(),
                    last_used: index::mtime_secs(&self.image_dir(&m.digest).join("last-used")),
                    names: n,
                    blob_size,
                    digest: m.digest,
                    source: m.source,
                    size: m.size,
                    created: m.created,
                    config: m.config,
                    kind: m.kind,
                }
            })
            .collect();
        out.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.digest.cmp(&b.digest)));
        Ok(out)
    }

    /// The stored image a reference names.
    pub fn inspect(&self, image: &ImageRef) -> Result<ImageInfo> {
        let d = self
            .resolve(image)?
            .ok_or_else(|| Error::NotFound(image.to_string()))?;
        self.list()?
            .into_iter()
            .find(|i| i.digest == d)
            .ok_or_else(|| Error::NotFound(image.to_string()))
    }

    /// Removes a name; the image itself goes when no name is left (unless in use, in
    /// which case only the name goes and GC removes the image later). Returns the digest.
    pub fn remove(&self, image: &ImageRef) -> Result<Digest> {
        let d = self
            .resolve(image)?
            .ok_or_else(|| Error::NotFound(image.to_string()))?;
        let _store = FileLock::exclusive(&self.lock_path("store"))?;
        let names = self.names()?;
        let by_digest = matches!(image, ImageRef::Stored(s) if d.as_str().contains(s.strip_prefix("sha256:").unwrap_or(s)));
        for (n, nd) in &names {
            let matches_name = match image {
                ImageRef::Stored(s) => {
                    n == s
                        || *n == local_name(s)
                        || crate::formats::normalise_name(s) == *n
                        || DockerRef::parse(s)
                            .map(|r| r.to_string() == *n)
                            .unwrap_or(false)
                }
                other => *n == other.to_string() || other.to_string().ends_with(n.as_str()),
            };
            if *nd == d && (by_digest || matches_name) {
                let p = self.root.join("names").join(index::encode_name(n));
                std::fs::remove_file(&p).ctx("remove name", &p)?;
            }
        }
        let left = self.names()?.into_iter().any(|(_, nd)| nd == d);
        if !left {
            gc::remove_image(self, &d)?;
            gc::sweep(self)?;
        }
        Ok(d)
    }

    /// Removes images by LRU and size budget; see [`GcOptions`].
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        gc::run(self, opts)
    }

    /// The cache ad (see [`crate::cache_ad`]).
    pub fn cache_ad(&self) -> Result<String> {
        Ok(crate::cache_ad::render(&self.list()?))
    }
}
