//! Pulls from a real `docker-registry` on loopback, with images built here and pushed
//! with skopeo.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{
    busybox_layer, oci_image, oci_index, push_busybox, store, store_with, tools, Comp, Layer,
    Registry,
};
use petrel_image::distribution::{Credentials, Platform};
use petrel_image::{DockerRef, Error, GcOptions, ImageRef, NoProgress, Progress, Store};

#[derive(Default)]
struct Count(AtomicU64);
impl Progress for Count {
    fn layer_bytes(&self, _d: &petrel_image::Digest, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

#[test]
fn pull_busybox_then_cached_repull() {
    if !tools("pull_busybox_then_cached_repull") {
        return;
    }
    let reg = Registry::start(None);
    let _layout = push_busybox(&reg, "tools/busybox", None);
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let r = DockerRef::parse(&format!("{}/tools/busybox:v1", reg.host())).unwrap();
    let progress = Count::default();
    let out = s.pull(&r, &progress).unwrap();
    assert!(!out.cached);
    assert_eq!(out.layers_unpacked, 2);
    assert!(out.fetched_bytes > 100_000 && progress.0.load(Ordering::Relaxed) == out.fetched_bytes);
    let img = s
        .prepare(&ImageRef::parse(&format!("docker://{r}")).unwrap())
        .unwrap();
    let bb = img.rootfs.join("bin/busybox");
    assert_eq!(
        std::fs::read(&bb).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::read_link(img.rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::read_to_string(img.rootfs.join("etc/motd")).unwrap(),
        "hello from petrel\n"
    );
    assert_eq!(img.config.env, vec!["PATH=/bin", "GREETING=hi"]);
    assert_eq!(img.config.working_dir.as_deref(), Some("/work"));
    let echo = std::process::Command::new(&bb)
        .args(["echo", "ran"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&echo.stdout), "ran\n");
    drop(img);

    // Re-pull: the tag is resolved again, nothing is downloaded.
    let progress = Count::default();
    let again = s.pull(&r, &progress).unwrap();
    assert!(again.cached);
    assert_eq!((again.fetched_bytes, again.layers_unpacked), (0, 0));
    assert_eq!(progress.0.load(Ordering::Relaxed), 0);
    assert_eq!(again.info.digest, out.info.digest);

    // By bare name and by digest, from the store only.
    let by_name = s
        .prepare(&ImageRef::parse(&r.to_string()).unwrap())
        .unwrap();
    assert_eq!(by_name.digest.as_ref(), Some(&out.info.digest));
    let pinned = format!("docker://{}/tools/busybox@{}", reg.host(), out.info.digest);
    assert_eq!(
        s.prepare(&ImageRef::parse(&pinned).unwrap())
            .unwrap()
            .digest,
        Some(out.info.digest.clone())
    );
    let ad = s.cache_ad().unwrap();
    assert!(
        ad.contains(&format!(
            "docker://{}/tools/busybox:v1@{}",
            reg.host(),
            out.info.digest
        )),
        "{ad}"
    );
}

#[test]
fn whiteouts_opaque_dirs_and_mixed_compression() {
    if !tools("whiteouts_opaque_dirs_and_mixed_compression") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let base = Layer::new()
        .dir("a/")
        .file("a/f1", b"1")
        .file("a/f2", b"2")
        .dir("d/")
        .file("d/x", b"x")
        .dir("d/sub/")
        .file("d/sub/y", b"y")
        .symlink("lib", "usr/lib")
        .tar();
    let mid = Layer::new()
        .whiteout("a/.wh.f1")
        .dir("d/")
        .whiteout("d/.wh..wh..opq")
        .file("d/z", b"z")
        .dir("lib/")
        .file("lib/real", b"dir replaces symlink")
        .tar();
    let top = Layer::new()
        .file("a/f2", b"two")
        .hardlink("a/f2-link", "a/f2")
        .tar();
    oci_image(
        layout.path(),
        Some("v1"),
        &[(base, Comp::Gzip), (mid, Comp::Zstd), (top, Comp::None)],
        &[],
        &Platform::host().architecture,
    );
    reg.push(layout.path(), "v1", "layers/whiteouts", None);
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let img = s
        .prepare(&ImageRef::parse(&format!("docker://{}/layers/whiteouts:v1", reg.host())).unwrap())
        .unwrap();
    let root = &img.rootfs;
    assert!(!root.join("a/f1").exists(), "whiteout removes a/f1");
    assert_eq!(std::fs::read_to_string(root.join("a/f2")).unwrap(), "two");
    assert_eq!(
        std::fs::read_to_string(root.join("a/f2-link")).unwrap(),
        "two"
    );
    assert_eq!(
        common::names(&root.join("d")),
        vec!["z".to_string()],
        "opaque dir hides lower content"
    );
    assert!(std::fs::symlink_metadata(root.join("lib"))
        .unwrap()
        .is_dir());
    assert!(!root.join("a/.wh.f1").exists());
}

#[test]
fn multi_arch_index_picks_the_platform() {
    if !tools("multi_arch_index_picks_the_platform") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let mut ms = Vec::new();
    for arch in ["amd64", "arm64"] {
        let l = Layer::new().file("arch", arch.as_bytes()).tar();
        let (d, size) = oci_image(layout.path(), None, &[(l, Comp::Gzip)], &[], arch);
        ms.push((d, size, arch));
    }
    oci_index(layout.path(), "multi", &ms);
    reg.push(layout.path(), "multi", "multi/arch", None);
    let r = DockerRef::parse(&format!("{}/multi/arch:multi", reg.host())).unwrap();
    for arch in ["amd64", "arm64"] {
        let dir = tempfile::tempdir().unwrap();
        let s = store_with(dir.path(), |o| {
            o.registry.platform = Platform::parse(&format!("linux/{arch}")).unwrap()
        });
        let out = s.pull(&r, &NoProgress).unwrap();
        let img = s
            .prepare(&ImageRef::Stored(out.info.digest.to_string()))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(img.rootfs.join("arch")).unwrap(),
            arch
        );
        assert_eq!(
            img.config.platform.as_deref(),
            Some(format!("linux/{arch}").as_str())
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store_with(dir.path(), |o| {
        o.registry.platform = Platform::parse("linux/s390x").unwrap()
    });
    let err = s.pull(&r, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::NoPlatform { .. }), "{err}");
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64"),
        "{err}"
    );
}

#[test]
fn docker_schema2_manifest_and_list() {
    if !tools("docker_schema2_manifest_and_list") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let mut ms = Vec::new();
    for arch in ["amd64", "arm64"] {
        let l = Layer::new().file("arch", arch.as_bytes()).tar();
        let (d, size) = oci_image(layout.path(), None, &[(l, Comp::Gzip)], &["V2=1"], arch);
        ms.push((d, size, arch));
    }
    oci_index(layout.path(), "multi", &ms);
    reg.push_as(layout.path(), "multi", "docker/v2s2", None, Some("v2s2"));
    let r = DockerRef::parse(&format!("{}/docker/v2s2:multi", reg.host())).unwrap();
    // The registry now serves a Docker manifest list of Docker schema 2 manifests.
    let client = petrel_image::distribution::Client::new(&Default::default(), &r).unwrap();
    let (body, ct) = client.manifest("multi").unwrap();
    assert!(
        ct.as_deref()
            .unwrap_or("")
            .contains("manifest.list.v2+json")
            || String::from_utf8_lossy(&body).contains("manifest.list.v2+json"),
        "{ct:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = store_with(dir.path(), |o| {
        o.registry.platform = Platform::parse("linux/arm64").unwrap()
    });
    let out = s.pull(&r, &NoProgress).unwrap();
    let img = s
        .prepare(&ImageRef::Stored(out.info.digest.to_string()))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(img.rootfs.join("arch")).unwrap(),
        "arm64"
    );
    assert_eq!(img.config.env, vec!["V2=1"]);
}

#[test]
fn shared_layers_unpack_once_and_concurrent_pulls_work_once() {
    if !tools("shared_layers_unpack_once_and_concurrent_pulls_work_once") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let base = busybox_layer();
    let arch = Platform::host().architecture;
    oci_image(
        layout.path(),
        Some("one"),
        &[
            (base.clone(), Comp::Gzip),
            (Layer::new().file("one", b"1").tar(), Comp::Gzip),
        ],
        &[],
        &arch,
    );
    oci_image(
        layout.path(),
        Some("two"),
        &[
            (base, Comp::Gzip),
            (Layer::new().file("two", b"2").tar(), Comp::Gzip),
        ],
        &[],
        &arch,
    );
    reg.push(layout.path(), "one", "shared/img", None);
    reg.push(layout.path(), "two", "shared/img", None);
    let dir = tempfile::tempdir().unwrap();
    let one = DockerRef::parse(&format!("{}/shared/img:one", reg.host())).unwrap();
    let two = DockerRef::parse(&format!("{}/shared/img:two", reg.host())).unwrap();
    // Two "processes" (separate Store handles, separate lock descriptors) pull the same image.
    let outs: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| store(dir.path()).pull(&one, &NoProgress).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outs.iter().map(|o| o.layers_unpacked).sum::<usize>(),
        2,
        "the work is done once"
    );
    assert_eq!(outs[0].info.digest, outs[1].info.digest);
    let s = store(dir.path());
    let out2 = s.pull(&two, &NoProgress).unwrap();
    assert_eq!(
        out2.layers_unpacked, 1,
        "the shared base layer comes from the unpack cache"
    );
    assert_eq!(common::names(&dir.path().join("layers")).len(), 3);
    let list = s.list().unwrap();
    assert_eq!(list.len(), 2);
}

#[test]
fn corrupt_blob_on_server_is_a_digest_error_and_stores_nothing() {
    if !tools("corrupt_blob_on_server_is_a_digest_error_and_stores_nothing") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let l = Layer::new().file("data", &vec![7u8; 200_000]).tar();
    let blob = common::compress(&l, Comp::Gzip);
    oci_image(
        layout.path(),
        Some("v1"),
        &[(l, Comp::Gzip)],
        &[],
        &Platform::host().architecture,
    );
    reg.push(layout.path(), "v1", "bad/blob", None);
    let d = petrel_image::Digest::of(&blob);
    let on_server = reg.blob_path(&d);
    let mut bytes = std::fs::read(&on_server).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&on_server, &bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let err = s
        .pull(
            &DockerRef::parse(&format!("{}/bad/blob:v1", reg.host())).unwrap(),
            &NoProgress,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::DigestMismatch { .. }),
        "expected a digest error, got {err}"
    );
    for sub in ["images", "layers", "blobs/sha256", "names"] {
        assert!(
            common::names(&dir.path().join(sub)).is_empty(),
            "{sub} must stay empty after {err}"
        );
    }
    assert!(
        common::names(&dir.path().join("tmp")).is_empty(),
        "staging cleaned up"
    );
}

#[test]
fn corrupt_but_valid_gzip_blob_is_a_digest_error() {
    if !tools("corrupt_but_valid_gzip_blob_is_a_digest_error") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let l = Layer::new().file("data", b"good").tar();
    let blob = common::compress(&l, Comp::Gzip);
    oci_image(
        layout.path(),
        Some("v1"),
        &[(l, Comp::Gzip)],
        &[],
        &Platform::host().architecture,
    );
    reg.push(layout.path(), "v1", "bad/plain", None);
    // Change the gzip header's MTIME: the layer still decompresses to the right tar
    // (same diff_id); only the blob digest can tell.
    let on_server = reg.blob_path(&petrel_image::Digest::of(&blob));
    let mut bytes = std::fs::read(&on_server).unwrap();
    bytes[4] ^= 0x55;
    std::fs::write(&on_server, &bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let err = s
        .pull(
            &DockerRef::parse(&format!("{}/bad/plain:v1", reg.host())).unwrap(),
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    for sub in ["images", "layers", "blobs/sha256"] {
        assert!(
            common::names(&dir.path().join(sub)).is_empty(),
            "{sub} must stay empty"
        );
    }
}

#[test]
fn basic_auth_with_credentials_from_an_auth_file() {
    if !tools("basic_auth_with_credentials_from_an_auth_file") {
        return;
    }
    let reg = Registry::start(Some(("alice", "s3cret")));
    let _layout = push_busybox(&reg, "private/bb", Some("alice:s3cret"));
    let r = DockerRef::parse(&format!("{}/private/bb:v1", reg.host())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = store(dir.path()).pull(&r, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    let wrong = store_with(dir.path(), |o| {
        o.registry.credentials = Some(Credentials {
            username: "alice".into(),
            password: "nope".into(),
        })
    });
    assert!(matches!(
        wrong.pull(&r, &NoProgress).unwrap_err(),
        Error::Auth { .. }
    ));
    let auth = dir.path().join("auth.json");
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        &auth,
        format!(r#"{{"auths":{{"{}":{{"auth":"{enc}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let s = store_with(dir.path(), |o| o.registry.auth_files = vec![auth.clone()]);
    let out = s.pull(&r, &NoProgress).unwrap();
    assert_eq!(out.layers_unpacked, 2);
}

#[test]
fn gc_respects_leases_lru_and_budget() {
    if !tools("gc_respects_leases_lru_and_budget") {
        return;
    }
    let reg = Registry::start(None);
    let layout = tempfile::tempdir().unwrap();
    let arch = Platform::host().architecture;
    for t in ["a", "b", "c"] {
        let l = Layer::new().file(t, &vec![t.as_bytes()[0]; 50_000]).tar();
        oci_image(layout.path(), Some(t), &[(l, Comp::Gzip)], &[], &arch);
        reg.push(layout.path(), t, "gc/img", None);
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let refs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|t| ImageRef::parse(&format!("docker://{}/gc/img:{t}", reg.host())).unwrap())
        .collect();
    let mut digests = Vec::new();
    for r in &refs {
        let p = s.prepare(r).unwrap();
        digests.push(p.digest.clone().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(1100)); // distinct last-used seconds
    }
    // "a" is in use; budget 0 would remove everything else.
    let lease = s.prepare(&refs[0]).unwrap();
    let report = s
        .gc(&GcOptions {
            max_size: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(report.in_use, vec![digests[0].clone()]);
    assert_eq!(report.removed.len(), 2);
    assert_eq!(s.list().unwrap().len(), 1);
    assert!(lease.rootfs.join("a").exists(), "leased image untouched");
    drop(lease);
    // Budget that fits one image keeps it; older-than removes it.
    let report = s
        .gc(&GcOptions {
            max_size: Some(1 << 30),
            ..Default::default()
        })
        .unwrap();
    assert!(report.removed.is_empty());
    let report = s
        .gc(&GcOptions {
            older_than: Some(std::time::Duration::ZERO),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(report.removed, vec![digests[0].clone()]);
    for sub in ["images", "layers", "blobs/sha256", "names"] {
        assert!(
            common::names(&dir.path().join(sub)).is_empty(),
            "{sub} swept"
        );
    }
}

#[test]
fn crashed_staging_is_repaired_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    // What a kill -9 mid-unpack leaves: a staging dir and its (now free) lock file.
    let tmp = s.root().join("tmp");
    std::fs::create_dir_all(tmp.join("layer-1-0-0/layer/root/usr")).unwrap();
    std::fs::write(tmp.join("layer-1-0-0/blob"), b"half a blob").unwrap();
    std::fs::write(tmp.join("layer-1-0-0.lock"), b"").unwrap();
    // A live one (lock held) must stay.
    let live = petrel_image::store::FileLock::exclusive(&tmp.join("live.lock")).unwrap();
    std::fs::create_dir(tmp.join("live")).unwrap();
    Store::open(dir.path()).unwrap();
    assert_eq!(
        common::names(&tmp),
        vec!["live".to_string(), "live.lock".to_string()]
    );
    drop(live);
    Store::open(dir.path()).unwrap();
    assert!(common::names(&tmp).is_empty());
    assert!(s.list().unwrap().is_empty());
}
