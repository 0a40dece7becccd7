//! Image formats: registry manifests, indexes and configs, layer tarballs, SIF headers
//! and `docker save` archives, all written by whoever built or serves the image.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Cursor;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use petrel_image::distribution::manifest::{self, ManifestKind, Platform};
use petrel_image::formats::{docker_archive as archive, sif as sif_format};
use petrel_image::unpack::{decompress, unpack_layer, UnpackOptions};
use petrel_image::{Digest, ImageConfig};

/// Caps the decompressed size of a fuzzed layer: a compression bomb must be refused
/// at the cap, and the cap keeps each input fast.
const LAYER_CAP: u64 = 16 << 20;

/// A manifest, index or config document (one input tried as each, as a registry's
/// answer is classified and then parsed as what it claims to be).
pub fn oci_manifest(data: &[u8]) {
    let kind = manifest::classify(None, data);
    let _ = manifest::classify(Some(manifest::OCI_INDEX), data);
    let _ = manifest::classify(
        Some("application/vnd.oci.image.manifest.v1+json; q=1"),
        data,
    );
    for want in [
        Platform::host(),
        Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        },
    ] {
        let _ = manifest::select(data, &want, "fuzz");
    }
    if let Ok(m) = ImageManifest::from_reader(data) {
        // Every digest the store would fetch by goes through the one digest parser, which
        // must only accept names that are safe as file names in the blob directory.
        check_digest(m.config().digest().as_ref());
        for l in m.layers() {
            check_digest(l.digest().as_ref());
        }
        if kind.is_ok() {
            assert!(
                matches!(kind, Ok(ManifestKind::Image) | Ok(ManifestKind::Index)),
                "classify gave no kind"
            );
        }
    }
    if let Ok(index) = ImageIndex::from_reader(data) {
        for m in index.manifests() {
            check_digest(m.digest().as_ref());
        }
    }
    if let Ok(c) = ImageConfiguration::from_reader(data) {
        for d in c.rootfs().diff_ids() {
            check_digest(d);
        }
        // The store keeps the runtime's view of the config in its metadata file.
        let ours = ImageConfig::from_oci(&c);
        let json = serde_json::to_vec(&ours).expect("an image config serialises");
        let back: ImageConfig = serde_json::from_slice(&json).expect("an image config reads back");
        assert_eq!(back, ours, "image config does not round-trip");
    }
}

fn check_digest(s: &str) {
    if let Ok(d) = Digest::parse(s) {
        let hex = d.hex();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "digest {s:?} accepted with hex {hex:?}"
        );
    }
}

/// A layer tarball (gzip, zstd or plain) unpacked by the store's unpacker into a fresh
/// directory that has a sibling holding a file: afterwards the sibling must be as it
/// was, nothing may have appeared beside the two, and no entry of the layer may be a
/// hard link to the file outside.
pub fn tar_layer(data: &[u8]) {
    let scratch = crate::Scratch::new();
    let base = scratch.path();
    let root = base.join("root");
    let outside = base.join("outside");
    let secret = outside.join("secret");
    std::fs::create_dir(&root).expect("create the layer directory");
    std::fs::create_dir(&outside).expect("create the outside directory");
    std::fs::write(&secret, b"secret").expect("create the outside file");
    let before = std::fs::symlink_metadata(&secret).expect("stat the outside file");

    let opts = UnpackOptions {
        max_bytes: LAYER_CAP,
        ..UnpackOptions::default()
    };
    let report = decompress(data)
        .ok()
        .and_then(|r| unpack_layer(r, &root, "fuzz", &opts).ok());

    assert_eq!(
        names(base),
        BTreeSet::from(["outside".into(), "root".into()]),
        "the layer created something beside its directory"
    );
    assert_eq!(
        names(&outside),
        BTreeSet::from(["secret".into()]),
        "the layer created something in a sibling directory"
    );
    let after = std::fs::symlink_metadata(&secret).expect("stat the outside file");
    assert!(after.file_type().is_file(), "the outside file was replaced");
    assert_eq!(
        (after.ino(), after.nlink(), after.mode(), after.uid()),
        (before.ino(), before.nlink(), before.mode(), before.uid()),
        "the outside file was linked to or changed"
    );
    assert_eq!(
        std::fs::read(&secret).expect("read the outside file"),
        b"secret",
        "the outside file was written"
    );
    if let Some(report) = report {
        // Whiteouts are applied to the layers below by path: each must stay inside.
        for p in report
            .whiteouts
            .files
            .iter()
            .chain(&report.whiteouts.opaque)
        {
            assert!(
                Path::new(p)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
                "whiteout {p:?} leaves the layer"
            );
        }
    }
}

fn names(dir: &Path) -> BTreeSet<OsString> {
    std::fs::read_dir(dir)
        .expect("list a scratch directory")
        .map(|e| e.expect("read a scratch directory").file_name())
        .collect()
}

/// A SIF file's global header and descriptor table.
pub fn sif(data: &[u8]) {
    let len = data.len() as u64;
    if let Ok(p) = sif_format::read_root_partition(&mut Cursor::new(data), len, "fuzz") {
        assert!(p.size > 0, "an empty root partition was accepted");
        assert!(
            p.offset.checked_add(p.size).is_some_and(|end| end <= len),
            "partition {p:?} lies outside the {len}-byte file"
        );
    }
}

/// A `docker save` archive (the whole tar): its `manifest.json`, config and layers are
/// located and turned into the manifest the store would install, which must be one
/// the store accepts.
pub fn docker_archive(data: &[u8]) {
    let scratch = crate::Scratch::new();
    let path = scratch.path().join("archive.tar");
    std::fs::write(&path, data).expect("write the archive");
    if let Ok((bytes, _names)) = archive::inspect(&path) {
        let m = ImageManifest::from_reader(&bytes[..]).unwrap_or_else(|e| {
            panic!(
                "synthesised manifest {} does not parse: {e}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(
            manifest::classify(None, &bytes).ok(),
            Some(ManifestKind::Image)
        );
        check_digest(m.config().digest().as_ref());
        for l in m.layers() {
            assert!(
                Digest::parse(l.digest().as_ref()).is_ok(),
                "synthesised manifest names layer digest {}",
                l.digest()
            );
        }
    }
}
