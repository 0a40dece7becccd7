//! Installing an image from any source (a registry, an OCI layout, a `docker save`
//! archive): fetch the config, then stream each layer once through
//! hash ▸ blob file ▸ decompress ▸ diff_id hash ▸ safe unpack, with several layers in
//! flight, verify both digests, rename blob and layer into the store, and flatten.

use std::io::{self, BufWriter, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde::{Deserialize, Serialize};

use super::blobs::{self, MAX_METADATA_BYTES};
use super::index::{self, ImageInfo, ImageKind, ImageMeta, LayerMeta};
use super::{rootfs, FileLock, Store};
use crate::config::{ImageConfig, Progress};
use crate::digest::{from_oci, Digest, HashingReader, TeeReader};
use crate::error::{Error, IoContext, Result};
use crate::unpack::{decompress, unpack_layer, Whiteouts};

/// Where blobs come from.
pub(crate) trait BlobSource: Sync {
    /// Opens the blob `digest` (of `size` bytes when known) for streaming.
    fn open_blob(&self, digest: &Digest, size: Option<u64>) -> Result<Box<dyn Read + Send + '_>>;
}

/// A manifest chosen by a source, ready to install.
pub(crate) struct Resolved {
    /// The image manifest (never an index).
    pub manifest_bytes: Vec<u8>,
    /// Its digest: the image's identity.
    pub digest: Digest,
    /// Where it came from, for `ls`.
    pub source: String,
    /// Names to point at it.
    pub names: Vec<String>,
}

/// What a pull or import did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The stored image.
    pub info: ImageInfo,
    /// True when the image was already stored and nothing was fetched.
    pub cached: bool,
    /// Compressed bytes fetched from the source.
    pub fetched_bytes: u64,
    /// Layers unpacked by this call (others came from the unpack cache).
    pub layers_unpacked: usize,
}

#[derive(Serialize, Deserialize)]
struct LayerRecord {
    layer: LayerMeta,
    whiteouts: Whiteouts,
}

impl Store {
    pub(crate) fn install(
        &self,
        r: Resolved,
        src: &dyn BlobSource,
        progress: &dyn Progress,
    ) -> Result<PullOutcome> {
        let _store = self.store_lock_shared()?;
        if let Some(out) = self.already_stored(&r)? {
            return Ok(out);
        }
        let _install =
            FileLock::exclusive(&self.lock_path(&format!("install-{}", r.digest.hex())))?;
        if let Some(out) = self.already_stored(&r)? {
            return Ok(out);
        }
        let what = format!("manifest {}", r.digest);
        let manifest = ImageManifest::from_reader(&r.manifest_bytes[..])
            .map_err(|e| Error::format(&what, e))?;
        let cdesc = manifest.config();
        let config_digest = from_oci(cdesc.digest())?;
        if cdesc.size() > MAX_METADATA_BYTES {
            return Err(Error::TooLarge {
                what: format!("config {config_digest}"),
                limit: MAX_METADATA_BYTES,
            });
        }
        let config_bytes = match std::fs::read(self.blob_path(&config_digest)) {
            Ok(b) if Digest::of(&b) == config_digest => b,
            _ => blobs::read_verified(
                src.open_blob(&config_digest, Some(cdesc.size()))?,
                &config_digest,
                MAX_METADATA_BYTES,
                &format!("config {config_digest}"),
            )?,
        };
        let config = ImageConfiguration::from_reader(&config_bytes[..])
            .map_err(|e| Error::format(format!("config {config_digest}"), e))?;
        let diff_ids = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>>>()?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::format(
                &what,
                format!(
                    "{} layers but the config lists {} diff_ids",
                    manifest.layers().len(),
                    diff_ids.len()
                ),
            ));
        }
        let mut jobs = Vec::new();
        for (desc, diff_id) in manifest.layers().iter().zip(&diff_ids) {
            jobs.push((
                from_oci(desc.digest())?,
                desc.size(),
                desc.media_type().to_string(),
                diff_id.clone(),
            ));
        }

        let fetched = AtomicU64::new(0);
        let unpacked = AtomicUsize::new(0);
        let records = self.ensure_layers(&jobs, src, progress, &fetched, &unpacked)?;
        // Each layer was capped while it unpacked; the image as a whole is capped too,
        // before anything of it is built.
        let total: u64 = records.iter().map(|rec| rec.layer.unpacked_size).sum();
        let cap = self.opts.unpack.max_bytes;
        if total > cap {
            return Err(Error::TooLarge {
                what: format!("image {} (unpacked, {total} bytes)", r.source),
                limit: cap,
            });
        }

        // Flatten into a staged image directory, then rename it in.
        let staging = self.staging("image")?;
        let img = staging.path().join("image");
        let root = img.join("rootfs");
        std::fs::create_dir_all(&root).ctx("create", &root)?;
        let stack: Vec<_> = records
            .iter()
            .map(|rec| {
                (
                    self.layer_dir(&rec.layer.diff_id).join("root"),
                    rec.whiteouts.clone(),
                )
            })
            .collect();
        rootfs::flatten(&stack, &root, self.opts.unpack.preserve_owner)?;
        blobs::put_bytes(&self.root, &self.tmp(), &config_digest, &config_bytes)?;
        blobs::put_bytes(&self.root, &self.tmp(), &r.digest, &r.manifest_bytes)?;
        let meta = ImageMeta {
            digest: r.digest.clone(),
            source: r.source.clone(),
            config: ImageConfig::from_oci(&config),
            size: records.iter().map(|rec| rec.layer.unpacked_size).sum(),
            created: index::now_secs(),
            kind: ImageKind::Layers {
                config_digest,
                layers: records.into_iter().map(|rec| rec.layer).collect(),
            },
            dropped: Vec::new(),
        };
        let meta_json =
            serde_json::to_vec_pretty(&meta).map_err(|e| Error::format("image metadata", e))?;
        std::fs::write(img.join("meta.json"), meta_json).ctx("write", &img.join("meta.json"))?;
        index::touch(&img.join("last-used"))?;
        let dest = self.image_dir(&r.digest);
        if let Err(e) = std::fs::rename(&img, &dest) {
            if !dest.join("meta.json").exists() {
                return Err(Error::io(
                    format!("rename image into {}", dest.display()),
                    e,
                ));
            }
        }
        drop(staging);
        for n in &r.names {
            self.set_name(n, &r.digest)?;
        }
        let info = self.info_of(&r.digest)?;
        Ok(PullOutcome {
            info,
            cached: false,
            fetched_bytes: fetched.load(Ordering::Relaxed),
            layers_unpacked: unpacked.load(Ordering::Relaxed),
        })
    }

    fn info_of(&self, d: &Digest) -> Result<ImageInfo> {
        self.list()?
            .into_iter()
            .find(|i| i.digest == *d)
            .ok_or_else(|| Error::NotFound(d.to_string()))
    }

    fn already_stored(&self, r: &Resolved) -> Result<Option<PullOutcome>> {
        if !self.image_dir(&r.digest).join("meta.json").exists() {
            return Ok(None);
        }
        for n in &r.names {
            self.set_name(n, &r.digest)?;
        }
        index::touch(&self.image_dir(&r.digest).join("last-used"))?;
        Ok(Some(PullOutcome {
            info: self.info_of(&r.digest)?,
            cached: true,
            fetched_bytes: 0,
            layers_unpacked: 0,
        }))
    }

    /// Makes sure every layer is in the unpack cache, a bounded number at a time.
    fn ensure_layers(
        &self,
        jobs: &[(Digest, u64, String, Digest)],
        src: &dyn BlobSource,
        progress: &dyn Progress,
        fetched: &AtomicU64,
        unpacked: &AtomicUsize,
    ) -> Result<Vec<LayerRecord>> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<LayerRecord>>>> =
            Mutex::new((0..jobs.len()).map(|_| None).collect());
        let workers = self
            .opts
            .registry
            .max_concurrent_downloads
            .clamp(1, 16)
            .min(jobs.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let (digest, size, media, diff_id) = &jobs[i];
                    let res = self.ensure_layer(
                        digest, *size, media, diff_id, src, progress, fetched, unpacked,
                    );
                    if res.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(res);
                    }
                });
            }
        });
        let results = results
            .into_inner()
            .map_err(|_| Error::Unsupported("layer worker panicked".into()))?;
        let mut out = Vec::new();
        let mut first_err = None;
        for r in results {
            match r {
                Some(Ok(rec)) => out.push(rec),
                Some(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                None => {}
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ensure_layer(
        &self,
        digest: &Digest,
        size: u64,
        media_type: &str,
        diff_id: &Digest,
        src: &dyn BlobSource,
        progress: &dyn Progress,
        fetched: &AtomicU64,
        unpacked: &AtomicUsize,
    ) -> Result<LayerRecord> {
        let dir = self.layer_dir(diff_id);
        let record_path = dir.join("meta.json");
        let _lock = FileLock::exclusive(&self.lock_path(&format!("layer-{}", diff_id.hex())))?;
        if record_path.exists() {
            progress.layer_finished(digest, true);
            let mut rec: LayerRecord = index::read_json(&record_path, 64 << 20)?;
            // The same diff_id may arrive under another compression: keep this image's blob.
            rec.layer.digest = digest.clone();
            rec.layer.size = size;
            rec.layer.media_type = media_type.to_string();
            return Ok(rec);
        }
        progress.layer_started(digest, Some(size));
        let staging = self.staging("layer")?;
        let stage = staging.path().join("layer");
        let root = stage.join("root");
        std::fs::create_dir_all(&root).ctx("create", &root)?;
        let blob_final = self.blob_path(digest);
        let have_blob = blob_final.exists();
        let (reader, blob_tmp): (Box<dyn Read + Send>, Option<_>) = if have_blob {
            let f = std::fs::File::open(&blob_final).ctx("open", &blob_final)?;
            (Box::new(f), None)
        } else {
            let p = staging.path().join("blob");
            (src.open_blob(digest, Some(size))?, Some(p))
        };
        let out: Box<dyn Write> = match &blob_tmp {
            Some(p) => Box::new(BufWriter::with_capacity(
                256 * 1024,
                std::fs::File::create(p).ctx("create", p)?,
            )),
            None => Box::new(io::sink()),
        };
        let layer_name = digest.to_string();
        let mut tee = TeeReader::new(reader, out, |n| progress.layer_bytes(digest, n));
        let unpacked_result = (|| {
            let dec = decompress(&mut tee).map_err(|e| Error::Layer {
                layer: layer_name.clone(),
                reason: format!("reading: {e}"),
            })?;
            let mut diff = HashingReader::new(dec);
            let report = unpack_layer(&mut diff, &root, &layer_name, &self.opts.unpack)?;
            diff.drain().map_err(|e| Error::Layer {
                layer: layer_name.clone(),
                reason: format!("reading: {e}"),
            })?;
            Ok::<_, Error>((report, diff.finish().0))
        })();
        // Read what is left of the blob either way: when unpacking failed because the
        // bytes were not the ones named, the digest mismatch is the error to report.
        let drained = io::copy(&mut tee, &mut io::sink());
        let (actual, n, mut out) = tee.finish();
        let (report, actual_diff) = match unpacked_result {
            Ok(r) => r,
            Err(e) => {
                if drained.is_ok() {
                    digest.verify(&actual, || format!("layer {digest}"))?;
                }
                return Err(e);
            }
        };
        drained.map_err(|e| Error::Layer {
            layer: layer_name.clone(),
            reason: format!("reading: {e}"),
        })?;
        digest.verify(&actual, || format!("layer {digest}"))?;
        diff_id.verify(&actual_diff, || {
            format!("layer {digest} (uncompressed diff_id)")
        })?;
        out.flush()
            .map_err(|e| Error::io(format!("write blob {digest}"), e))?;
        drop(out);
        if n != size {
            return Err(Error::format(
                format!("layer {digest}"),
                format!("size {n}, manifest says {size}"),
            ));
        }
        if !have_blob {
            fetched.fetch_add(n, Ordering::Relaxed);
        }
        for d in &report.dropped {
            progress.note(&format!("layer {}: {d} not stored", digest.short()));
        }
        let rec = LayerRecord {
            layer: LayerMeta {
                digest: digest.clone(),
                diff_id: diff_id.clone(),
                size,
                unpacked_size: report.bytes,
                media_type: media_type.to_string(),
                dropped: report.dropped,
            },
            whiteouts: report.whiteouts,
        };
        let json = serde_json::to_vec(&rec).map_err(|e| Error::format("layer metadata", e))?;
        std::fs::write(stage.join("meta.json"), json).ctx("write", &stage.join("meta.json"))?;
        if let Some(p) = blob_tmp {
            std::fs::rename(&p, &blob_final).ctx("store blob", &blob_final)?;
        }
        if let Err(e) = std::fs::rename(&stage, &dir) {
            if !record_path.exists() {
                return Err(Error::io(format!("rename layer into {}", dir.display()), e));
            }
        }
        unpacked.fetch_add(1, Ordering::Relaxed);
        progress.layer_finished(digest, false);
        Ok(rec)
    }
}
