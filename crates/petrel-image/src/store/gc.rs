//! Garbage collection: least-recently-used images go first until the store fits its
//! budget; images whose lease is held (a running job) are never removed; blobs and
//! unpacked layers no remaining image uses are swept.
//!
//! Sizes are computed from the store's metadata: each distinct layer counts its blob
//! plus its unpacked file content once, however many images share it (the flattened
//! image trees are hardlinks and cost only their directories).

use std::collections::HashSet;
use std::time::Duration;

use super::index::{ImageInfo, ImageKind};
use super::{remove_tree, FileLock, Store};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Remove least-recently-used images until the store is at most this many bytes.
    pub max_size: Option<u64>,
    /// Remove images not used for this long.
    pub older_than: Option<Duration>,
    /// Only report what would be removed.
    pub dry_run: bool,
}

/// What a collection did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    /// Images removed (or that would be, in a dry run).
    pub removed: Vec<Digest>,
    /// Images that qualified but are in use.
    pub in_use: Vec<Digest>,
    /// Store size before, in bytes.
    pub size_before: u64,
    /// Store size after, in bytes.
    pub size_after: u64,
}

/// The store's size as GC counts it, for the given images.
pub(crate) fn store_size(images: &[ImageInfo]) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    for i in images {
        match &i.kind {
            ImageKind::Layers { layers, .. } => {
                for l in layers {
                    if seen.insert(l.diff_id.clone()) {
                        total += l.size + l.unpacked_size;
                    }
                }
            }
            ImageKind::Squashfs { .. } => total += i.size,
        }
    }
    total
}

pub(crate) fn run(store: &Store, opts: &GcOptions) -> Result<GcReport> {
    let _store = FileLock::exclusive(&store.lock_path("store"))?;
    let mut images = store.list()?;
    // Oldest use first.
    images.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(a.digest.cmp(&b.digest)));
    let mut report = GcReport {
        size_before: store_size(&images),
        ..GcReport::default()
    };
    let now = super::index::now_secs();
    let mut keep: Vec<ImageInfo> = Vec::new();
    let mut candidates = Vec::new();
    for img in images {
        let old = opts
            .older_than
            .is_some_and(|age| now.saturating_sub(img.last_used) >= age.as_secs());
        if old {
            candidates.push(img);
        } else {
            keep.push(img);
        }
    }
    // Then by budget, LRU first, among the images not already chosen.
    if let Some(max) = opts.max_size {
        while store_size(&keep) > max && !keep.is_empty() {
            candidates.push(keep.remove(0));
        }
    }
    for img in candidates {
        let removed = if opts.dry_run {
            lease_free(store, &img.digest)?
        } else {
            match remove_image(store, &img.digest) {
                Ok(()) => true,
                Err(Error::InUse(_)) => false,
                Err(e) => return Err(e),
            }
        };
        if removed {
            report.removed.push(img.digest);
        } else {
            report.in_use.push(img.digest.clone());
            keep.push(img);
        }
    }
    if !opts.dry_run {
        sweep(store)?;
    }
    report.size_after = store_size(&keep);
    Ok(report)
}

fn lease_free(store: &Store, d: &Digest) -> Result<bool> {
    Ok(FileLock::try_exclusive(&store.lock_path(&format!("image-{}", d.hex())))?.is_some())
}

/// Removes one image (the caller holds the store lock exclusively).
pub(crate) fn remove_image(store: &Store, d: &Digest) -> Result<()> {
    let lock_path = store.lock_path(&format!("image-{}", d.hex()));
    let Some(lock) = FileLock::try_exclusive(&lock_path)? else {
        return Err(Error::InUse(d.to_string()));
    };
    let dir = store.image_dir(d);
    // Rename away first, so the image disappears at once even if removal is slow or cut.
    let staging = store.staging("remove")?;
    let grave = staging.path().join("image");
    std::fs::rename(&dir, &grave).ctx("remove image", &dir)?;
    drop(staging);
    for (n, nd) in store.names()? {
        if nd == *d {
            let p = store.root.join("names").join(super::index::encode_name(&n));
            let _ = std::fs::remove_file(p);
        }
    }
    let _ = std::fs::remove_file(&lock_path);
    drop(lock);
    Ok(())
}

/// Removes layers and blobs that no stored image refers to.
pub(crate) fn sweep(store: &Store) -> Result<()> {
    let images = store.list()?;
    let mut layers = HashSet::new();
    let mut blobs = HashSet::new();
    for i in &images {
        blobs.insert(i.digest.hex().to_string());
        if let ImageKind::Layers {
            config_digest,
            layers: ls,
        } = &i.kind
        {
            blobs.insert(config_digest.hex().to_string());
            for l in ls {
                layers.insert(l.diff_id.hex().to_string());
                blobs.insert(l.digest.hex().to_string());
            }
        }
    }
    let ldir = store.root.join("layers");
    for e in std::fs::read_dir(&ldir).ctx("read", &ldir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !layers.contains(&name) {
            remove_tree(&e.path()).ctx("remove layer", &e.path())?;
            let _ = std::fs::remove_file(store.lock_path(&format!("layer-{name}")));
        }
    }
    let bdir = store.root.join("blobs/sha256");
    for e in std::fs::read_dir(&bdir).ctx("read", &bdir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !blobs.contains(&name) {
            std::fs::remove_file(e.path()).ctx("remove blob", &e.path())?;
        }
    }
    let locks = store.root.join("locks");
    for e in std::fs::read_dir(&locks).ctx("read", &locks)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(hex) = name
            .strip_prefix("install-")
            .and_then(|n| n.strip_suffix(".lock"))
        {
            if !blobs.contains(hex) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}
