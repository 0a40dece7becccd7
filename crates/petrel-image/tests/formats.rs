//! Formats other than registries: OCI layouts, `docker save` archives, plain
//! directories, squashfs and SIF files; exports; metadata size caps.

mod common;

use std::path::Path;
use std::process::Command;

use common::{busybox_layer, oci_image, require, Comp, Layer};
use petrel_image::distribution::Platform;
use petrel_image::formats::sif;
use petrel_image::formats::squashfs::SquashfsMode;
use petrel_image::{Error, ExportFormat, ImageRef, NoProgress, Store, StoreOptions};

fn store_with_mode(dir: &Path, mode: SquashfsMode) -> Store {
    let opts = StoreOptions {
        squashfs: mode,
        ..Default::default()
    };
    Store::open_with(dir, opts).unwrap()
}

fn busybox_layout(dir: &Path) {
    oci_image(
        dir,
        Some("v1"),
        &[
            (busybox_layer(), Comp::Gzip),
            (Layer::new().file("etc/hello", b"layout").tar(), Comp::Zstd),
        ],
        &["A=1"],
        &Platform::host().architecture,
    );
}

#[test]
fn oci_layout_import_and_prepare() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    busybox_layout(&layout);
    let s = Store::open(&tmp.path().join("store")).unwrap();
    let out = s
        .import(
            &ImageRef::parse(&format!("oci:{}:v1", layout.display())).unwrap(),
            Some("mine:1"),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(
        out.info.names,
        vec!["local/docker.io/library/mine:1".to_string()]
    );
    // A layout directory given as a path is recognised, and its tag is the only one.
    let p = s
        .prepare(&ImageRef::parse(layout.to_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(p.digest.as_ref(), Some(&out.info.digest));
    assert_eq!(
        std::fs::read_to_string(p.rootfs.join("etc/hello")).unwrap(),
        "layout"
    );
    assert_eq!(p.config.env, vec!["A=1"]);
    let err = s
        .import(
            &ImageRef::parse(&format!("oci:{}:nope", layout.display())).unwrap(),
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(err.to_string().contains("v1"), "lists the tags: {err}");
}

#[test]
fn oversized_metadata_is_refused_before_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    busybox_layout(&layout);
    // A 5 MiB index.json.
    let mut big = std::fs::read(layout.join("index.json")).unwrap();
    big.truncate(big.len() - 1);
    big.extend(vec![b' '; 5 << 20]);
    big.push(b'}');
    std::fs::write(layout.join("index.json"), big).unwrap();
    let s = Store::open(&tmp.path().join("store")).unwrap();
    let err = s
        .import(
            &ImageRef::parse(layout.to_str().unwrap()).unwrap(),
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    // A 5 MiB config blob referenced by a manifest.
    let l2 = tmp.path().join("layout2");
    let (md, _) = oci_image(
        &l2,
        Some("v1"),
        &[(Layer::new().file("x", b"x").tar(), Comp::None)],
        &[],
        "amd64",
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l2.join("blobs/sha256").join(md.hex())).unwrap())
            .unwrap();
    let cfg = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut bytes = std::fs::read(l2.join("blobs/sha256").join(&cfg)).unwrap();
    bytes.extend(vec![b' '; 5 << 20]);
    std::fs::write(l2.join("blobs/sha256").join(&cfg), bytes).unwrap();
    let err = s
        .import(
            &ImageRef::parse(l2.to_str().unwrap()).unwrap(),
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(s.list().unwrap().is_empty());
}

/// Writes a `docker save` style archive (legacy layout: `<id>/layer.tar`).
fn docker_archive(path: &Path) {
    docker_archive_with(path, None)
}

fn docker_archive_with(path: &Path, lie: Option<petrel_image::Digest>) {
    let layer = busybox_layer();
    let diff_id = lie.unwrap_or_else(|| petrel_image::Digest::of(&layer));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["FROM=archive"], "Entrypoint": ["/bin/sh", "-c"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "cfg.json", "RepoTags": ["saved/app:2"], "Layers": ["abc123/layer.tar"]}]))
    .unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [
        ("abc123/layer.tar", &layer),
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

#[test]
fn docker_archive_import() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("saved.tar");
    docker_archive(&archive);
    let s = Store::open(&tmp.path().join("store")).unwrap();
    let image = ImageRef::parse(archive.to_str().unwrap()).unwrap();
    assert!(matches!(image, ImageRef::DockerArchive(_)));
    let out = s.import(&image, None, &NoProgress).unwrap();
    // The archive's own tag is a local name, never the registry's.
    assert_eq!(
        out.info.names,
        vec!["local/docker.io/saved/app:2".to_string()]
    );
    assert!(s
        .resolve(&ImageRef::parse("docker://saved/app:2").unwrap())
        .unwrap()
        .is_none());
    let p = s.prepare(&ImageRef::parse("saved/app:2").unwrap()).unwrap();
    assert_eq!(
        p.config.entrypoint,
        Some(vec!["/bin/sh".to_string(), "-c".to_string()])
    );
    assert!(p.rootfs.join("bin/busybox").is_file());
    // Importing again is a no-op.
    assert!(s.import(&image, None, &NoProgress).unwrap().cached);
}

#[test]
fn docker_archive_with_a_wrong_diff_id_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("lying.tar");
    docker_archive_with(&archive, Some(petrel_image::Digest::of(b"something else")));
    let s = Store::open(&tmp.path().join("store")).unwrap();
    let err = s
        .import(&ImageRef::DockerArchive(archive), None, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn oci_layout_index_picks_the_host_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let mut ms = Vec::new();
    let host = Platform::host().architecture;
    for arch in ["ppc64le", host.as_str(), "s390x"] {
        let (d, size) = oci_image(
            &layout,
            None,
            &[(Layer::new().file("arch", arch.as_bytes()).tar(), Comp::Gzip)],
            &[],
            arch,
        );
        ms.push((d, size, arch));
    }
    common::oci_index(&layout, "multi", &ms);
    let s = Store::open(&tmp.path().join("store")).unwrap();
    let p = s
        .prepare(&ImageRef::parse(&format!("oci:{}:multi", layout.display())).unwrap())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(p.rootfs.join("arch")).unwrap(),
        Platform::host().architecture
    );
}

#[test]
fn plain_directory_is_used_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("rootfs/bin")).unwrap();
    let s = Store::open(&tmp.path().join("store")).unwrap();
    let p = s
        .prepare(&ImageRef::parse(tmp.path().join("rootfs").to_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(p.rootfs, tmp.path().join("rootfs").canonicalize().unwrap());
    assert_eq!(p.digest, None);
    assert_eq!(p.config, petrel_image::ImageConfig::default());
    assert!(s.list().unwrap().is_empty());
}

fn busybox_squashfs(tmp: &Path) -> std::path::PathBuf {
    let rootfs = tmp.join("sq-rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join(".singularity.d")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::write(
        rootfs.join(".singularity.d/labels.json"),
        r#"{"maintainer":"petrel"}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink("/bin/sh", rootfs.join(".singularity.d/runscript")).unwrap();
    let out = tmp.join("img.sqfs");
    let st = Command::new("mksquashfs")
        .arg(&rootfs)
        .arg(&out)
        .args(["-noappend", "-quiet", "-no-progress"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    out
}

/// Wraps a squashfs in a SIF file as sylabs/sif lays it out: header, one descriptor
/// (primary system partition), then the data at an aligned offset.
fn write_sif(squashfs: &Path, out: &Path) {
    let data = std::fs::read(squashfs).unwrap();
    let desc_off = 4096u64;
    let total = 48u64;
    let data_off = desc_off + total * sif::DESCRIPTOR_LEN as u64;
    let data_off = data_off.div_ceil(4096) * 4096;
    let mut h = vec![0u8; sif::HEADER_LEN];
    h[..31].copy_from_slice(b"#!/usr/bin/env run-singularity\n");
    h[32..42].copy_from_slice(sif::MAGIC);
    h[42..45].copy_from_slice(b"01\0");
    h[45..48].copy_from_slice(b"02\0");
    let put = |h: &mut Vec<u8>, at: usize, v: i64| h[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut h, 64, 1_700_000_000);
    put(&mut h, 72, 1_700_000_000);
    put(&mut h, 80, total as i64 - 1);
    put(&mut h, 88, total as i64);
    put(&mut h, 96, desc_off as i64);
    put(&mut h, 104, (total * sif::DESCRIPTOR_LEN as u64) as i64);
    put(&mut h, 112, data_off as i64);
    put(&mut h, 120, data.len() as i64);
    let mut d = vec![0u8; sif::DESCRIPTOR_LEN];
    d[0..4].copy_from_slice(&sif::DATA_PARTITION.to_le_bytes());
    d[4] = 1;
    d[5..9].copy_from_slice(&1u32.to_le_bytes());
    d[17..25].copy_from_slice(&(data_off as i64).to_le_bytes());
    d[25..33].copy_from_slice(&(data.len() as i64).to_le_bytes());
    d[33..41].copy_from_slice(&(data.len() as i64).to_le_bytes());
    d[73..80].copy_from_slice(b"rootfs\0");
    d[201..205].copy_from_slice(&sif::FS_SQUASH.to_le_bytes());
    d[205..209].copy_from_slice(&sif::PART_PRIMSYS.to_le_bytes());
    d[209..212].copy_from_slice(b"02\0");
    let mut file = vec![0u8; data_off as usize];
    file[..h.len()].copy_from_slice(&h);
    file[desc_off as usize..desc_off as usize + d.len()].copy_from_slice(&d);
    file.extend_from_slice(&data);
    std::fs::write(out, file).unwrap();
}

#[test]
fn squashfs_and_sif_extract_and_mount() {
    if !require("mksquashfs", "squashfs_and_sif_extract_and_mount")
        || !require("unsquashfs", "squashfs_and_sif_extract_and_mount")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sqfs = busybox_squashfs(tmp.path());
    let sif_path = tmp.path().join("img.sif");
    write_sif(&sqfs, &sif_path);
    let part = sif::find_root_partition(&sif_path).unwrap();
    assert_eq!(
        (part.fs_type, part.part_type),
        (sif::FS_SQUASH, sif::PART_PRIMSYS)
    );
    let store_dir = tmp.path().join("store");
    for path in [&sqfs, &sif_path] {
        let image = ImageRef::parse(path.to_str().unwrap()).unwrap();
        // Extraction works everywhere.
        let s = store_with_mode(&store_dir, SquashfsMode::Extract);
        let p = s.prepare(&image).unwrap();
        assert_eq!(p.method, "extracted");
        assert_eq!(
            std::fs::read(p.rootfs.join("bin/busybox")).unwrap(),
            std::fs::read("/bin/busybox").unwrap()
        );
        assert_eq!(
            p.config.labels.get("maintainer").map(String::as_str),
            Some("petrel")
        );
        assert_eq!(
            p.config.cmd,
            Some(vec!["/.singularity.d/runscript".to_string()])
        );
        let again = s.prepare(&image).unwrap();
        assert_eq!(again.digest, p.digest, "extracted once, reused");
        // Auto: mounts when the machine allows it, else falls back to the extracted copy.
        let s = store_with_mode(&store_dir, SquashfsMode::Auto);
        let p = s.prepare(&image).unwrap();
        eprintln!("{}: prepared by {}", path.display(), p.method);
        assert!(p.rootfs.join("bin/busybox").is_file());
    }
    // A SIF with no squashfs partition is a clear error.
    let bad = tmp.path().join("bad.sif");
    let mut bytes = std::fs::read(&sif_path).unwrap();
    bytes[4096 + 201] = 4; // fs type "raw"
    std::fs::write(&bad, bytes).unwrap();
    let err = sif::find_root_partition(&bad).unwrap_err();
    assert!(
        err.to_string().contains("no squashfs system partition"),
        "{err}"
    );
}

#[test]
fn squashfs_mount_when_possible() {
    if !require("mksquashfs", "squashfs_mount_when_possible") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sqfs = busybox_squashfs(tmp.path());
    let store_dir = tmp.path().join("store");
    for mode in [SquashfsMode::Squashfuse, SquashfsMode::Kernel] {
        let s = store_with_mode(&store_dir, mode);
        match s.prepare(&ImageRef::Squashfs(sqfs.clone())) {
            Ok(p) => {
                assert!(p.rootfs.join("bin/busybox").is_file());
                let mnt = p.rootfs.clone();
                drop(p);
                assert!(!mnt.exists(), "unmounted and removed on drop");
            }
            Err(e) => eprintln!("SKIP {mode:?} mount on this machine: {e}"),
        }
    }
}

#[test]
fn export_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    busybox_layout(&layout);
    let s = Store::open(&tmp.path().join("store")).unwrap();
    let out = s
        .import(
            &ImageRef::parse(layout.to_str().unwrap()).unwrap(),
            Some("rt:1"),
            &NoProgress,
        )
        .unwrap();
    let image = ImageRef::parse("rt:1").unwrap();
    let oci = tmp.path().join("exported");
    petrel_image::export(&s, &image, ExportFormat::Oci, &oci).unwrap();
    let s2 = Store::open(&tmp.path().join("store2")).unwrap();
    let back = s2
        .import(
            &ImageRef::parse(oci.to_str().unwrap()).unwrap(),
            None,
            &NoProgress,
        )
        .unwrap();
    assert_eq!(back.info.digest, out.info.digest);
    let tarf = tmp.path().join("rootfs.tar");
    petrel_image::export(&s, &image, ExportFormat::RootfsTar, &tarf).unwrap();
    let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(&tarf).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n.ends_with("bin/busybox")),
        "{names:?}"
    );
    if require("mksquashfs", "export_round_trips") {
        let sq = tmp.path().join("x.sqfs");
        petrel_image::export(&s, &image, ExportFormat::Squashfs, &sq).unwrap();
        assert!(matches!(
            ImageRef::parse(sq.to_str().unwrap()).unwrap(),
            ImageRef::Squashfs(_)
        ));
    }
    // rm drops the name, and the image with its last name.
    s.remove(&image).unwrap();
    assert!(s.list().unwrap().is_empty());
}
