//! Robustness against a real `docker-registry` on loopback: the bearer-token dance,
//! dropped connections, `kill -9` at any point, unprivileged users, mirrors.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::{oci_image, push_busybox, store, store_with, tools, Comp, Layer, Registry};
use petrel_image::distribution::Platform;
use petrel_image::{DockerRef, ImageRef, NoProgress};

#[test]
fn bearer_token_dance() {
    if !tools("bearer_token_dance") {
        return;
    }
    let reg = Registry::start(None);
    let _layout = push_busybox(&reg, "tok/bb", None);
    let front = common::Front::start(reg.port, true, None);
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let out = s
        .pull(
            &DockerRef::parse(&format!("{}/tok/bb:v1", front.host())).unwrap(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(out.layers_unpacked, 2);
    assert!(front.token_requests.load(Ordering::SeqCst) >= 1);
}

#[test]
fn dropped_connection_is_resumed_with_range() {
    if !tools("dropped_connection_is_resumed_with_range") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    // One big layer, so the cut lands inside it whichever blob is fetched first.
    let l = Layer::new()
        .host_file("bin/busybox", Path::new("/bin/busybox"))
        .tar();
    oci_image(
        layout.path(),
        Some("v1"),
        &[(l, Comp::Gzip)],
        &[],
        &Platform::host().architecture,
    );
    reg.push(layout.path(), "v1", "resume/bb", None);
    let front = common::Front::start(reg.port, false, Some(100_000));
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let out = s
        .pull(
            &DockerRef::parse(&format!("{}/resume/bb:v1", front.host())).unwrap(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(out.layers_unpacked, 1);
    assert_eq!(
        front.range_requests.load(Ordering::SeqCst),
        1,
        "resumed once with Range"
    );
    let img = s
        .prepare(&ImageRef::Stored(out.info.digest.to_string()))
        .unwrap();
    assert_eq!(
        std::fs::read(img.rootfs.join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
}

/// Run by `kill_9_at_any_point_leaves_a_usable_store` in a child process.
#[test]
#[ignore = "helper: run in a child process and killed"]
fn kill_helper_pull() {
    let (Ok(dir), Ok(r)) = (
        std::env::var("PETREL_KILL_STORE"),
        std::env::var("PETREL_KILL_REF"),
    ) else {
        return;
    };
    let s = store(Path::new(&dir));
    s.pull(&DockerRef::parse(&r).unwrap(), &NoProgress).unwrap();
}

#[test]
fn kill_9_at_any_point_leaves_a_usable_store() {
    if !tools("kill_9_at_any_point_leaves_a_usable_store") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let mut big = Layer::new();
    for i in 0..8 {
        let data: Vec<u8> = (0..2_000_000u32)
            .map(|x| (x.wrapping_mul(2_654_435_761).rotate_left(i) >> 7) as u8)
            .collect();
        big.file(&format!("data{i}"), &data);
    }
    let small = Layer::new().file("small", b"s").tar();
    oci_image(
        layout.path(),
        Some("v1"),
        &[(big.tar(), Comp::Gzip), (small, Comp::Zstd)],
        &[],
        &Platform::host().architecture,
    );
    reg.push(layout.path(), "v1", "kill/img", None);
    let r = format!("{}/kill/img:v1", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    for delay_ms in [5u64, 30, 80, 150, 250, 400] {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "kill_helper_pull", "--ignored", "--quiet"])
            .env("PETREL_KILL_STORE", dir.path())
            .env("PETREL_KILL_REF", &r)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever is visible is whole: every image and layer has its metadata.
        for sub in ["images", "layers"] {
            for n in common::names(&dir.path().join(sub)) {
                assert!(
                    dir.path().join(sub).join(&n).join("meta.json").exists(),
                    "half {sub}/{n} after kill at {delay_ms} ms"
                );
            }
        }
        eprintln!(
            "after kill -9 at {delay_ms} ms: staging {:?}, layers {}, images {}",
            common::names(&dir.path().join("tmp")),
            common::names(&dir.path().join("layers")).len(),
            common::names(&dir.path().join("images")).len()
        );
        // The next open removes the dead process's staging directories.
        let s = store(dir.path());
        assert!(
            common::names(&dir.path().join("tmp")).is_empty(),
            "staging left after kill at {delay_ms} ms"
        );
        if delay_ms == 250 {
            // And a pull now completes (finishing or reusing what was done).
            let out = s.pull(&DockerRef::parse(&r).unwrap(), &NoProgress).unwrap();
            let img = s
                .prepare(&ImageRef::Stored(out.info.digest.to_string()))
                .unwrap();
            assert_eq!(
                std::fs::metadata(img.rootfs.join("data7")).unwrap().len(),
                2_000_000
            );
            drop(img);
            s.remove(&ImageRef::Stored(out.info.digest.to_string()))
                .unwrap();
        }
    }
}

/// Run by `unprivileged_pull_gives_a_user_owned_deletable_rootfs` as user `nobody`.
#[test]
#[ignore = "helper: run in a child process as an unprivileged user"]
fn rootless_helper_pull() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (Ok(dir), Ok(r)) = (
        std::env::var("PETREL_ROOTLESS_STORE"),
        std::env::var("PETREL_ROOTLESS_REF"),
    ) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    assert_ne!(me, 0, "helper must run unprivileged");
    let s = store(Path::new(&dir));
    let img = s
        .prepare(&ImageRef::parse(&format!("docker://{r}")).unwrap())
        .unwrap();
    let root = &img.rootfs;
    let su = std::fs::metadata(root.join("usr/bin/su")).unwrap();
    assert_eq!(su.uid(), me, "files belong to the user");
    assert_eq!(
        su.permissions().mode() & 0o7777,
        0o755,
        "setuid cleared (as for root: a store holds no setuid program)"
    );
    assert!(!root.join("dev/null").exists(), "device nodes not stored");
    assert_eq!(
        std::fs::metadata(root.join("locked"))
            .unwrap()
            .permissions()
            .mode()
            & 0o700,
        0o700
    );
    assert_eq!(std::fs::read_to_string(root.join("locked/f")).unwrap(), "x");
    drop(img);
    assert!(s.inspect(&ImageRef::parse(&r).unwrap()).is_ok());
    // Everything in the store (images, layers, blobs) can be deleted by its
    // unprivileged owner with a plain recursive delete.
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        std::fs::remove_dir_all(&p).unwrap_or_else(|err| panic!("remove {}: {err}", p.display()));
    }
}

#[test]
fn unprivileged_pull_gives_a_user_owned_deletable_rootfs() {
    if !tools("unprivileged_pull_gives_a_user_owned_deletable_rootfs") {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP unprivileged_pull_gives_a_user_owned_deletable_rootfs: needs root to switch to nobody");
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let l = Layer::new()
        .dir("usr/")
        .dir("usr/bin/")
        .file_owned("usr/bin/su", b"#!su", 0o4755, 0)
        .dir("dev/")
        .chardev("dev/null")
        .dir_mode("locked/", 0o555)
        .file("locked/f", b"x")
        .tar();
    oci_image(
        layout.path(),
        Some("v1"),
        &[(l, Comp::Gzip)],
        &[],
        &Platform::host().architecture,
    );
    reg.push(layout.path(), "v1", "rootless/img", None);
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(
        base.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rootless_helper_pull",
            "--ignored",
            "--nocapture",
        ])
        .env("PETREL_ROOTLESS_STORE", &dir)
        .env(
            "PETREL_ROOTLESS_REF",
            format!("{}/rootless/img:v1", reg.host()),
        )
        .env("HOME", base.path())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
    assert!(
        common::names(&dir).is_empty(),
        "the user could delete the whole store"
    );
}

#[test]
fn mirrors_are_tried_first() {
    if !tools("mirrors_are_tried_first") {
        return;
    }
    let mirror = Registry::start(None);
    let _layout = push_busybox(&mirror, "library/bb", None);
    // The "real" registry is a closed port: only the mirror can answer.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let s = store_with(dir.path(), |o| {
        o.registry.mirrors = vec![(dead.clone(), mirror.host())]
    });
    let r = DockerRef::parse(&format!("{dead}/library/bb:v1")).unwrap();
    let out = s.pull(&r, &NoProgress).unwrap();
    assert_eq!(
        out.info.names,
        vec![r.to_string()],
        "stored under the name asked for"
    );
    assert_eq!(out.layers_unpacked, 2);
}
