//! What a root store must never hold or do for a user: setuid/setgid programs, file
//! capabilities and device nodes from an image's layers (dropped, and listed for
//! `image inspect`); an image bigger unpacked than the cap (refused, nothing left
//! behind); a registry name bound to content a user supplied; directories other users
//! can list.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{busybox_layer, oci_image, require, store, store_with, Comp, Layer};
use petrel_image::{Error, ImageRef, NoProgress, Store};

fn layout_with(dir: &Path, layers: &[(Vec<u8>, Comp)]) -> ImageRef {
    oci_image(dir, Some("v1"), layers, &["PATH=/bin"], "amd64");
    ImageRef::OciLayout {
        path: dir.to_path_buf(),
        tag: Some("v1".into()),
    }
}

fn privileged_layer() -> Vec<u8> {
    Layer::new()
        .dir("bin/")
        .file_owned("bin/su", b"#!/bin/sh\n", 0o4755, 0)
        .file_owned("bin/wall", b"#!/bin/sh\n", 0o2755, 0)
        .file_owned("bin/both", b"#!/bin/sh\n", 0o6755, 0)
        .file_xattr("bin/ping", b"x", "security.capability", "fake")
        .dir("dev/")
        .chardev("dev/mem")
        .blockdev("dev/sda")
        .file_mode("bin/plain", b"x", 0o755)
        .tar()
}

fn all_entries(dir: &Path, out: &mut Vec<(String, std::fs::Metadata)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.path().symlink_metadata().unwrap();
        if m.is_dir() {
            all_entries(&e.path(), out);
        }
        out.push((e.path().display().to_string(), m));
    }
}

/// Nothing anywhere under the store is setuid, setgid or a device node.
fn store_is_defused(root: &Path) {
    let mut all = Vec::new();
    all_entries(root, &mut all);
    for (p, m) in &all {
        assert!(
            m.is_dir() || m.mode() & 0o6000 == 0,
            "{p} keeps mode {:o}",
            m.mode()
        );
        assert!(
            !m.file_type().is_block_device() && !m.file_type().is_char_device(),
            "{p} is a device node"
        );
    }
}

#[test]
fn setuid_bits_capabilities_and_devices_are_dropped_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let image = layout_with(
        &tmp.path().join("layout"),
        &[(privileged_layer(), Comp::Gzip)],
    );
    let s = store(&tmp.path().join("store"));
    let out = s.import(&image, Some("priv"), &NoProgress).unwrap();
    let p = s.prepare(&ImageRef::Stored("local/priv".into())).unwrap();
    for f in ["bin/su", "bin/wall", "bin/both"] {
        let m = std::fs::metadata(p.rootfs.join(f)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755, "{f}");
    }
    assert_eq!(
        std::fs::metadata(p.rootfs.join("bin/plain"))
            .unwrap()
            .mode()
            & 0o7777,
        0o755
    );
    assert!(!p.rootfs.join("dev/mem").exists() && !p.rootfs.join("dev/sda").exists());
    let mut probe = [0u8; 64];
    assert!(
        rustix::fs::getxattr(
            p.rootfs.join("bin/ping"),
            "security.capability",
            &mut probe[..]
        )
        .is_err(),
        "file capabilities were applied"
    );
    store_is_defused(s.root());
    let info = s.inspect(&ImageRef::Stored("local/priv".into())).unwrap();
    assert_eq!(info.digest, out.info.digest);
    let dropped = info.dropped.join("\n");
    for want in [
        "setuid bit of bin/su",
        "setgid bit of bin/wall",
        "setuid and setgid bits of bin/both",
        "file capabilities of bin/ping",
        "device node dev/mem",
        "device node dev/sda",
    ] {
        assert!(dropped.contains(want), "{want} not in {dropped}");
    }
    assert!(!dropped.contains("bin/plain"), "{dropped}");
    // The same layer used by a second image comes from the unpack cache, record and all.
    let again = layout_with(
        &tmp.path().join("layout2"),
        &[
            (privileged_layer(), Comp::Gzip),
            (Layer::new().file("x", b"y").tar(), Comp::None),
        ],
    );
    let out2 = s.import(&again, None, &NoProgress).unwrap();
    assert_eq!(out2.layers_unpacked, 1);
    assert!(out2
        .info
        .dropped
        .join("\n")
        .contains("setuid bit of bin/su"));
}

#[test]
fn squashfs_extraction_drops_setuid_bits_and_devices() {
    if !require(
        "mksquashfs",
        "squashfs_extraction_drops_setuid_bits_and_devices",
    ) || !require(
        "unsquashfs",
        "squashfs_extraction_drops_setuid_bits_and_devices",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::write(rootfs.join("bin/su"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        rootfs.join("bin/su"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let sqfs = tmp.path().join("img.sqfs");
    // Pseudo definitions add the device nodes without needing to make them here.
    let st = Command::new("mksquashfs")
        .arg(&rootfs)
        .arg(&sqfs)
        .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
        .args(["-p", "dev d 755 0 0", "-p", "dev/mem c 666 0 0 1 1"])
        .args(["-p", "dev/sda b 660 0 0 8 0"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let s = store_with(&tmp.path().join("store"), |o| {
        o.squashfs = petrel_image::formats::squashfs::SquashfsMode::Extract
    });
    let image = ImageRef::Squashfs(sqfs.clone());
    let p = s.prepare(&image).unwrap();
    assert_eq!(p.method, "extracted");
    assert_eq!(
        std::fs::metadata(p.rootfs.join("bin/su")).unwrap().mode() & 0o7777,
        0o755
    );
    assert!(std::fs::symlink_metadata(p.rootfs.join("dev/mem")).is_err());
    assert!(std::fs::symlink_metadata(p.rootfs.join("dev/sda")).is_err());
    store_is_defused(s.root());
    let info = s
        .inspect(&ImageRef::Stored(p.digest.clone().unwrap().to_string()))
        .unwrap();
    let dropped = info.dropped.join("\n");
    for want in [
        "setuid bit of bin/su",
        "device node dev/mem",
        "device node dev/sda",
    ] {
        assert!(dropped.contains(want), "{want} not in {dropped}");
    }
}

/// A small gzip layer that holds one large file of zeros (a "bomb").
fn bomb(bytes: usize) -> Vec<u8> {
    Layer::new().file("zeros", &vec![0u8; bytes]).tar()
}

fn store_holds_no_image(s: &Store) {
    for sub in ["images", "layers", "tmp"] {
        let left: Vec<_> = std::fs::read_dir(s.root().join(sub))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{sub}/ keeps {left:?}");
    }
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn an_image_over_the_unpacked_size_cap_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let image = layout_with(&layout, &[(bomb(16 << 20), Comp::Gzip)]);
    let blob_bytes: u64 = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(blob_bytes < 1 << 20, "the bomb is small: {blob_bytes}");
    let s = store_with(&tmp.path().join("store"), |o| o.unpack.max_bytes = 4 << 20);
    let err = s.import(&image, Some("bomb"), &NoProgress).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit, .. } if limit == 4 << 20),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("exceeds the limit of 4194304 bytes"),
        "{err}"
    );
    store_holds_no_image(&s);
    // A squashfs file likewise, before anything is extracted.
    if require("mksquashfs", "cap") && require("unsquashfs", "cap") {
        let tree = tmp.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("zeros"), vec![0u8; 16 << 20]).unwrap();
        let sqfs = tmp.path().join("bomb.sqfs");
        let st = Command::new("mksquashfs")
            .arg(&tree)
            .arg(&sqfs)
            .args(["-noappend", "-quiet", "-no-progress"])
            .output()
            .unwrap();
        assert!(st.status.success());
        assert!(std::fs::metadata(&sqfs).unwrap().len() < 1 << 20);
        let sq = store_with(&tmp.path().join("store-sq"), |o| {
            o.unpack.max_bytes = 4 << 20;
            o.squashfs = petrel_image::formats::squashfs::SquashfsMode::Extract;
        });
        let err = sq.prepare(&ImageRef::Squashfs(sqfs)).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        store_holds_no_image(&sq);
    }
    // Several layers under the cap each, over it together.
    let layout2 = tmp.path().join("layout2");
    let image2 = layout_with(
        &layout2,
        &[
            (bomb(3 << 20), Comp::Gzip),
            (
                Layer::new().file("more", &vec![0u8; 3 << 20]).tar(),
                Comp::Zstd,
            ),
        ],
    );
    let err = s.import(&image2, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("unpacked"), "{err}");
    assert!(s.list().unwrap().is_empty());
    // The store still works.
    let ok = layout_with(&tmp.path().join("ok"), &[(busybox_layer(), Comp::Gzip)]);
    s.import(&ok, Some("ok"), &NoProgress).unwrap();
    assert!(s
        .prepare(&ImageRef::Stored("ok".into()))
        .unwrap()
        .rootfs
        .join("bin/busybox")
        .is_file());
}

/// A `docker save` archive whose `RepoTags` claims `busybox:latest`.
fn archive_claiming_busybox(path: &Path) {
    let layer = Layer::new().file("owned-by-a", b"A's content\n").tar();
    let diff_id = petrel_image::Digest::of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "cfg.json", "RepoTags": ["busybox:latest"], "Layers": ["l/layer.tar"]}]))
    .unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [
        ("l/layer.tar", &layer),
        ("cfg.json", &config),
        ("manifest.json", &manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

fn registry_names_left(s: &Store) -> Vec<String> {
    s.list()
        .unwrap()
        .into_iter()
        .flat_map(|i| i.names)
        .filter(|n| !n.starts_with(petrel_image::store::LOCAL_PREFIX))
        .collect()
}

#[test]
fn supplied_images_are_never_bound_to_a_registry_name() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store"));
    let busybox = ImageRef::parse("docker://busybox:latest").unwrap();
    // A job's archive, prepared: stored by digest, named nothing at all.
    let archive = tmp.path().join("a.tar");
    archive_claiming_busybox(&archive);
    let a = ImageRef::DockerArchive(archive.clone());
    let prepared = s.prepare(&a).unwrap();
    assert!(prepared.rootfs.join("owned-by-a").is_file());
    assert!(s.list().unwrap().iter().all(|i| i.names.is_empty()));
    assert_eq!(s.resolve(&busybox).unwrap(), None);
    // Imported explicitly, even named as the registry image: local names only.
    let out = s
        .import(&a, Some("docker.io/library/busybox:latest"), &NoProgress)
        .unwrap();
    assert_eq!(
        out.info.names,
        vec!["local/docker.io/library/busybox:latest".to_string()]
    );
    assert_eq!(s.resolve(&busybox).unwrap(), None);
    assert_eq!(
        s.resolve(&ImageRef::parse("docker://docker.io/library/busybox").unwrap())
            .unwrap(),
        None
    );
    // A directory, an OCI layout and a squashfs file, named the same way.
    let dir = tmp.path().join("rootfs");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/x"), b"x").unwrap();
    s.import(&ImageRef::Dir(dir.clone()), Some("busybox"), &NoProgress)
        .unwrap();
    let layout = layout_with(&tmp.path().join("layout"), &[(busybox_layer(), Comp::Gzip)]);
    s.import(&layout, Some("busybox:latest"), &NoProgress)
        .unwrap();
    if require(
        "mksquashfs",
        "supplied_images_are_never_bound_to_a_registry_name",
    ) {
        let sqfs = tmp.path().join("x.sqfs");
        let st = Command::new("mksquashfs")
            .arg(&dir)
            .arg(&sqfs)
            .args(["-noappend", "-quiet", "-no-progress"])
            .output()
            .unwrap();
        assert!(st.status.success());
        s.import(&ImageRef::Squashfs(sqfs), Some("busybox"), &NoProgress)
            .unwrap();
    }
    assert_eq!(s.resolve(&busybox).unwrap(), None);
    assert!(
        registry_names_left(&s).is_empty(),
        "{:?}",
        registry_names_left(&s)
    );
    // A pinned digest answers only with content that digest verifies: the archive's
    // image is that, a squashfs (named by file identity) never.
    let pinned = ImageRef::parse(&format!("docker://busybox@{}", out.info.digest)).unwrap();
    assert_eq!(s.resolve(&pinned).unwrap(), Some(out.info.digest.clone()));
    for i in s.list().unwrap() {
        if matches!(i.kind, petrel_image::store::ImageKind::Squashfs { .. }) {
            let r = ImageRef::parse(&format!("docker://busybox@{}", i.digest)).unwrap();
            assert_eq!(s.resolve(&r).unwrap(), None);
        }
    }
}

#[test]
fn store_directories_are_not_listable_by_others() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store"));
    let mode = |sub: &str| std::fs::metadata(s.root().join(sub)).unwrap().mode() & 0o777;
    assert_eq!(mode(""), 0o711);
    assert_eq!(mode("images"), 0o711);
    assert_eq!(mode("mounts"), 0o711);
    for sub in ["blobs", "layers", "names", "locks", "tmp"] {
        assert_eq!(mode(sub), 0o700, "{sub}");
    }
    // An old store opened again gets the modes back.
    std::fs::set_permissions(s.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        s.root().join("layers"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let _reopened = store(s.root());
    assert_eq!(mode(""), 0o711);
    assert_eq!(mode("layers"), 0o700);
}

/// What a root starter hands the store for a job's OCI layout or archive: a descriptor
/// path. It is read as it is (never resolved to a name again), and nothing in the
/// layout can send the store's reads outside it.
#[test]
fn layouts_and_archives_are_read_through_descriptors_and_never_outside() {
    use std::os::fd::AsRawFd;
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp.path().join("store"));
    let layout = tmp.path().join("layout");
    layout_with(&layout, &[(busybox_layer(), Comp::Gzip)]);
    let dir = std::fs::File::open(&layout).unwrap();
    let via_fd = std::path::PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let out = s
        .import(
            &ImageRef::OciLayout {
                path: via_fd.clone(),
                tag: Some("v1".into()),
            },
            None,
            &NoProgress,
        )
        .unwrap();
    assert!(
        out.info.source.contains("/proc/self/fd/"),
        "{}",
        out.info.source
    );
    // A layout whose index and blobs are symlinks to files elsewhere is refused.
    let evil = tmp.path().join("evil");
    layout_with(&evil, &[(Layer::new().file("x", b"y").tar(), Comp::None)]);
    let outside = tmp.path().join("outside.json");
    std::fs::copy(evil.join("index.json"), &outside).unwrap();
    std::fs::remove_file(evil.join("index.json")).unwrap();
    std::os::unix::fs::symlink(&outside, evil.join("index.json")).unwrap();
    let err = s
        .import(
            &ImageRef::OciLayout {
                path: evil.clone(),
                tag: Some("v1".into()),
            },
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(err.to_string().contains("index.json"), "{err}");
    std::fs::remove_file(evil.join("index.json")).unwrap();
    std::fs::copy(&outside, evil.join("index.json")).unwrap();
    for e in std::fs::read_dir(evil.join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        let moved = tmp.path().join(e.file_name());
        std::fs::rename(e.path(), &moved).unwrap();
        std::os::unix::fs::symlink(&moved, e.path()).unwrap();
    }
    assert!(s
        .import(
            &ImageRef::OciLayout {
                path: evil,
                tag: Some("v1".into())
            },
            None,
            &NoProgress
        )
        .is_err());
    // An archive through a descriptor, likewise.
    let archive = tmp.path().join("a.tar");
    archive_claiming_busybox(&archive);
    let f = std::fs::File::open(&archive).unwrap();
    let p = s
        .prepare(&ImageRef::DockerArchive(
            format!("/proc/self/fd/{}", f.as_raw_fd()).into(),
        ))
        .unwrap();
    assert!(p.rootfs.join("owned-by-a").is_file());
}
