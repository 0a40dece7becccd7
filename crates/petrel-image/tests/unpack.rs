//! The hostile-layer corpus: every entry that tries to leave the root is refused with
//! an error naming the layer and entry, in plain, gzip and zstd layers, and nothing
//! lands outside.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{compress, Comp, Layer};
use petrel_image::unpack::{decompress, unpack_layer, UnpackOptions};
use petrel_image::Error;

struct Sandbox {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b/root");
    let outside = tmp.path().join("a/outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("target"), "original").unwrap();
    Sandbox {
        root,
        outside,
        _tmp: tmp,
    }
}

fn unpack(
    tar: &[u8],
    comp: Comp,
    root: &Path,
    opts: &UnpackOptions,
) -> petrel_image::Result<petrel_image::unpack::UnpackReport> {
    let blob = compress(tar, comp);
    let r = decompress(&blob[..]).unwrap();
    unpack_layer(r, root, "sha256:test", opts)
}

fn outside_untouched(s: &Sandbox) {
    assert_eq!(common::names(&s.outside), vec!["target".to_string()]);
    assert_eq!(
        std::fs::read_to_string(s.outside.join("target")).unwrap(),
        "original"
    );
    assert_eq!(
        common::names(s.root.parent().unwrap()),
        vec!["root".to_string()]
    );
    assert!(!Path::new("/evil").exists() && !Path::new("/tmp/evil").exists());
}

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("absolute path", Layer::new().file("/tmp/evil", b"x").tar()),
        ("dot-dot", Layer::new().file("../evil", b"x").tar()),
        (
            "nested dot-dot",
            Layer::new().dir("d/").file("d/../../../evil", b"x").tar(),
        ),
        (
            "symlink then write",
            Layer::new()
                .symlink("link", "../outside")
                .file("link/evil", b"x")
                .tar(),
        ),
        (
            "absolute symlink then write",
            Layer::new()
                .symlink("link", "/tmp")
                .file("link/evil", b"x")
                .tar(),
        ),
        (
            "symlinked parent dir",
            Layer::new()
                .dir("d/")
                .symlink("d/up", "../../..")
                .file("d/up/outside/evil", b"x")
                .tar(),
        ),
        (
            "hardlink to absolute",
            Layer::new().hardlink("h", "/etc/passwd").tar(),
        ),
        (
            "hardlink with dot-dot",
            Layer::new().hardlink("h", "../outside/target").tar(),
        ),
        (
            "hardlink through symlink",
            Layer::new()
                .symlink("s", "../outside")
                .hardlink("h", "s/target")
                .tar(),
        ),
        (
            "whiteout outside",
            Layer::new().whiteout("../.wh.target").tar(),
        ),
        (
            "symlink then dir entry under it",
            Layer::new().symlink("l", "/").dir("l/tmp/").tar(),
        ),
    ]
}

#[test]
fn hostile_entries_are_refused_in_every_compression() {
    for comp in [Comp::None, Comp::Gzip, Comp::Zstd] {
        for (name, tar) in corpus() {
            let s = sandbox();
            let err = unpack(&tar, comp, &s.root, &UnpackOptions::default()).expect_err(name);
            match &err {
                Error::UnsafeEntry {
                    layer,
                    entry,
                    reason,
                } => {
                    assert_eq!(layer, "sha256:test");
                    assert!(!entry.is_empty() && !reason.is_empty(), "{name}: {err}");
                }
                other => panic!("{name} ({comp:?}): expected UnsafeEntry, got {other}"),
            }
            let msg = err.to_string();
            assert!(
                msg.contains("sha256:test") && msg.contains("entry"),
                "{msg}"
            );
            outside_untouched(&s);
        }
    }
}

#[test]
fn symlink_replaced_by_file_is_not_written_through() {
    let s = sandbox();
    let tar = Layer::new()
        .symlink("f", "../outside/target")
        .file("f", b"inside")
        .tar();
    unpack(&tar, Comp::Gzip, &s.root, &UnpackOptions::default()).unwrap();
    assert!(std::fs::symlink_metadata(s.root.join("f"))
        .unwrap()
        .is_file());
    assert_eq!(std::fs::read_to_string(s.root.join("f")).unwrap(), "inside");
    outside_untouched(&s);
}

#[test]
fn ordinary_layer_unpacks_with_links_modes_and_whiteouts() {
    let s = sandbox();
    let tar = Layer::new()
        .dir("usr/")
        .dir("usr/bin/")
        .file_mode("usr/bin/su", b"#!suid", 0o4755)
        .hardlink("usr/bin/su2", "usr/bin/su")
        .symlink("bin", "usr/bin")
        .dir_mode("ro/", 0o555)
        .file("ro/inside", b"in a read-only dir")
        .whiteout("etc/.wh.gone")
        .whiteout("var/.wh..wh..opq")
        .file("implicit/parent/file", b"x")
        .tar();
    let report = unpack(&tar, Comp::Zstd, &s.root, &UnpackOptions::default()).unwrap();
    let su = std::fs::metadata(s.root.join("usr/bin/su")).unwrap();
    // A stored image holds no setuid program: the bit is cleared and reported.
    assert_eq!(
        su.permissions().mode() & 0o7777,
        0o755,
        "setuid bit cleared"
    );
    assert_eq!(report.dropped, vec!["setuid bit of usr/bin/su".to_string()]);
    assert_eq!(
        su.ino(),
        std::fs::metadata(s.root.join("usr/bin/su2")).unwrap().ino()
    );
    assert_eq!(
        std::fs::read_link(s.root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("ro/inside")).unwrap(),
        "in a read-only dir"
    );
    assert_eq!(report.whiteouts.files, vec!["etc/gone".to_string()]);
    assert_eq!(report.whiteouts.opaque, vec!["var".to_string()]);
    assert!(!s.root.join("etc/.wh.gone").exists());
    assert_eq!(
        std::fs::read_to_string(s.root.join("implicit/parent/file")).unwrap(),
        "x"
    );
}

#[test]
fn rootless_mode_skips_devices_and_keeps_dirs_deletable() {
    let s = sandbox();
    let opts = UnpackOptions {
        preserve_owner: false,
        ..UnpackOptions::default()
    };
    let tar = Layer::new()
        .dir("dev/")
        .chardev("dev/null")
        .dir_mode("locked/", 0o500)
        .file("locked/f", b"x")
        .tar();
    let report = unpack(&tar, Comp::None, &s.root, &opts).unwrap();
    assert_eq!(report.dropped, vec!["device node dev/null".to_string()]);
    assert!(!s.root.join("dev/null").exists());
    let mode = std::fs::metadata(s.root.join("locked"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o700, 0o700, "owner can always delete");
    let me = rustix::process::geteuid().as_raw();
    assert_eq!(
        std::fs::metadata(s.root.join("locked/f")).unwrap().uid(),
        me
    );
}

#[test]
fn ownership_is_kept_as_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP ownership_is_kept_as_root: not root");
        return;
    }
    let s = sandbox();
    let tar = Layer::new()
        .file_owned("owned", b"x", 0o2755, 1234)
        .file_owned("sticky", b"x", 0o1755, 1234)
        .tar();
    unpack(&tar, Comp::Gzip, &s.root, &UnpackOptions::default()).unwrap();
    let m = std::fs::metadata(s.root.join("owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 1234));
    assert_eq!(m.permissions().mode() & 0o7777, 0o755, "setgid cleared");
    let m = std::fs::metadata(s.root.join("sticky")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o1755, "other bits kept");
}

#[test]
fn xattrs_are_applied_where_allowed() {
    let s = sandbox();
    let tar = Layer::new()
        .file_xattr("with-xattr", b"x", "user.petrel", "yes")
        .tar();
    let report = unpack(&tar, Comp::Gzip, &s.root, &UnpackOptions::default()).unwrap();
    let mut buf = [0u8; 16];
    match rustix::fs::getxattr(s.root.join("with-xattr"), "user.petrel", &mut buf) {
        Ok(n) => assert_eq!(&buf[..n], b"yes"),
        // A file system without user xattrs: the failure is counted, not fatal.
        Err(e) => {
            eprintln!("xattr not readable here ({e}); failure counted");
            assert_eq!(report.xattr_failures, 1)
        }
    }
}

#[test]
fn decompression_bomb_is_stopped() {
    let s = sandbox();
    let big = vec![0u8; 8 << 20];
    let tar = Layer::new().file("zeros", &big).tar();
    let opts = UnpackOptions {
        max_bytes: 1 << 20,
        ..UnpackOptions::default()
    };
    for comp in [Comp::Gzip, Comp::Zstd] {
        let err = unpack(&tar, comp, &s.root, &opts).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }
}
