//! Test helpers: tarball and image builders, OCI layouts, a real `docker-registry` on
//! loopback, and skopeo pushes.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use petrel_image::Digest;

/// True when `tool` is on PATH. When missing, prints a skip line, or panics under
/// `PETREL_REQUIRE_ALL=1` (CI).
pub fn require(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var("PETREL_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("{test}: required tool {tool} is missing (PETREL_REQUIRE_ALL=1)");
        }
        eprintln!("SKIP {test}: {tool} not installed");
    }
    found
}

/// A tar layer built entry by entry; names are written raw, so hostile paths
/// (absolute, `..`) can be expressed.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn raw(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            assert!(path.len() < 100, "test paths must be short");
            old.name = [0; 100];
            old.name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(l) = link {
                old.linkname = [0; 100];
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.raw(path, tar::EntryType::Regular, 0o644, data, None)
    }
    pub fn file_mode(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.raw(path, tar::EntryType::Regular, mode, data, None)
    }
    pub fn file_owned(&mut self, path: &str, data: &[u8], mode: u32, uid: u64) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }
    /// A file preceded by a PAX header carrying the xattr `name=value`.
    pub fn file_xattr(&mut self, path: &str, data: &[u8], name: &str, value: &str) -> &mut Self {
        let body = format!(" SCHILY.xattr.{name}={value}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        let record = format!("{len}{body}");
        self.raw(
            "PaxHeader",
            tar::EntryType::XHeader,
            0o644,
            record.as_bytes(),
            None,
        );
        self.file(path, data)
    }
    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Directory, 0o755, b"", None)
    }
    pub fn dir_mode(&mut self, path: &str, mode: u32) -> &mut Self {
        self.raw(path, tar::EntryType::Directory, mode, b"", None)
    }
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Symlink, 0o777, b"", Some(target))
    }
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Link, 0o644, b"", Some(target))
    }
    pub fn chardev(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Char, 0o666, b"", None)
    }
    pub fn blockdev(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Block, 0o660, b"", None)
    }
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Regular, 0o644, b"", None)
    }
    /// Appends a file from the host (e.g. /bin/busybox) under `path`.
    pub fn host_file(&mut self, path: &str, host: &Path) -> &mut Self {
        let mut f = std::fs::File::open(host).unwrap();
        self.b.append_file(path, &mut f).unwrap();
        self
    }
    pub fn tar(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(data: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => data.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(data, 1).unwrap(),
    }
}

fn media(c: Comp) -> &'static str {
    match c {
        Comp::None => "application/vnd.oci.image.layer.v1.tar",
        Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

fn put_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    let p = dir.join("blobs/sha256");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join(d.hex()), bytes).unwrap();
    d
}

/// Writes an image (manifest, config, layers) into the OCI layout `dir` and returns
/// the manifest digest and size; `tag` adds it to index.json when given.
pub fn oci_image(
    dir: &Path,
    tag: Option<&str>,
    layers: &[(Vec<u8>, Comp)],
    env: &[&str],
    arch: &str,
) -> (Digest, usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, c) in layers {
        diff_ids.push(Digest::of(tar).to_string());
        let blob = compress(tar, *c);
        let d = put_blob(dir, &blob);
        descs.push(
            serde_json::json!({"mediaType": media(*c), "digest": d.as_str(), "size": blob.len()}),
        );
    }
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": env, "Cmd": ["/bin/sh"], "WorkingDir": "/work", "Labels": {"test": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cd = put_blob(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let md = put_blob(dir, &manifest);
    if let Some(t) = tag {
        add_to_index(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            &md,
            manifest.len(),
            t,
        );
    }
    (md, manifest.len())
}

/// Writes an OCI index of per-platform manifests and tags it.
pub fn oci_index(dir: &Path, tag: &str, manifests: &[(Digest, usize, &str)]) {
    let ms: Vec<_> = manifests
        .iter()
        .map(|(d, s, arch)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d.as_str(), "size": s,
                "platform": {"os": "linux", "architecture": arch}})
        })
        .collect();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms}))
    .unwrap();
    let d = put_blob(dir, &index);
    add_to_index(
        dir,
        "application/vnd.oci.image.index.v1+json",
        &d,
        index.len(),
        tag,
    );
}

fn add_to_index(dir: &Path, media: &str, d: &Digest, size: usize, tag: &str) {
    let p = dir.join("index.json");
    let mut index: serde_json::Value = std::fs::read(&p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": media, "digest": d.as_str(), "size": size,
        "annotations": {"org.opencontainers.image.ref.name": tag}}));
    std::fs::write(p, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A busybox-static root file system layer: /bin/busybox plus applet symlinks.
pub fn busybox_layer() -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("bin/").dir("etc/").dir("tmp/");
    l.host_file("bin/busybox", Path::new("/bin/busybox"));
    for applet in ["sh", "ls", "cat", "echo", "true"] {
        l.symlink(&format!("bin/{applet}"), "busybox");
    }
    l.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n");
    l.tar()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry` on loopback, killed on drop.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// Starts a registry; with `htpasswd` = (user, password), basic auth is required.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut auth = String::new();
        if let Some((u, p)) = htpasswd {
            let hash = bcrypt::hash(p, 4).unwrap();
            let f = dir.path().join("htpasswd");
            std::fs::write(&f, format!("{u}:{hash}\n")).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                f.display()
            );
        }
        let conf = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        let conf_path = dir.path().join("config.yml");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { port, dir, child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes `oci:layout:tag` as `name:tag` with skopeo (all platforms).
    pub fn push(&self, layout: &Path, tag: &str, name: &str, creds: Option<&str>) {
        self.push_as(layout, tag, name, creds, None)
    }

    /// Like [`Registry::push`], converting manifests to `format` (`v2s2`: Docker schema 2).
    pub fn push_as(
        &self,
        layout: &Path,
        tag: &str,
        name: &str,
        creds: Option<&str>,
        format: Option<&str>,
    ) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--insecure-policy",
            "--all",
            "--dest-tls-verify=false",
        ]);
        if let Some(f) = format {
            cmd.args(["--format", f]);
        }
        if let Some(c) = creds {
            cmd.args(["--dest-creds", c]);
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}:{tag}", self.host()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Path of a blob in the registry's storage.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lists a directory's entry names, sorted (empty when missing).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A tiny HTTP front for a registry: optionally demands a bearer token (served by its
/// own `/token` endpoint, the `WWW-Authenticate: Bearer realm=…` dance), and
/// optionally cuts the first blob download after some bytes (to test resuming).
pub struct Front {
    pub port: u16,
    pub token_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub range_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Front {
    pub fn start(upstream: u16, require_token: bool, cut_blob_after: Option<usize>) -> Front {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let token_requests = Arc::new(AtomicUsize::new(0));
        let range_requests = Arc::new(AtomicUsize::new(0));
        let cut_done = Arc::new(AtomicBool::new(false));
        let (tr, rr) = (token_requests.clone(), range_requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { continue };
                let (tr, rr, cut_done) = (tr.clone(), rr.clone(), cut_done.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match c.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = text.split("\r\n");
                    let request_line = lines.next().unwrap_or("").to_string();
                    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| {
                            l.split_once(':')
                                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        })
                        .collect();
                    let get =
                        |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
                    if path.starts_with("/token") {
                        tr.fetch_add(1, Ordering::SeqCst);
                        let ok = path.contains("service=test-registry")
                            && path.contains("scope=repository");
                        let body = if ok {
                            r#"{"token":"tok-123"}"#
                        } else {
                            r#"{"errors":"bad"}"#
                        };
                        let status = if ok { "200 OK" } else { "400 Bad Request" };
                        let _ = write!(c, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                        return;
                    }
                    if require_token && get("authorization").as_deref() != Some("Bearer tok-123") {
                        let repo = path
                            .trim_start_matches("/v2/")
                            .split("/manifests/")
                            .next()
                            .unwrap_or("")
                            .split("/blobs/")
                            .next()
                            .unwrap_or("");
                        let _ = write!(
                            c,
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\",scope=\"repository:{repo}:pull\"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                        );
                        return;
                    }
                    if get("range").is_some() {
                        rr.fetch_add(1, Ordering::SeqCst);
                    }
                    let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                        return;
                    };
                    let mut req = format!("{request_line}\r\n");
                    for (k, v) in &headers {
                        if k != "authorization" && k != "connection" {
                            req.push_str(&format!("{k}: {v}\r\n"));
                        }
                    }
                    req.push_str("connection: close\r\n\r\n");
                    if up.write_all(req.as_bytes()).is_err() {
                        return;
                    }
                    let mut resp = Vec::new();
                    let _ = up.read_to_end(&mut resp);
                    let is_blob =
                        path.contains("/blobs/sha256:") && request_line.starts_with("GET");
                    if let (true, Some(n)) = (is_blob, cut_blob_after) {
                        let body_at = resp
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .map_or(0, |p| p + 4);
                        if resp.len() > body_at + n && !cut_done.swap(true, Ordering::SeqCst) {
                            let _ = c.write_all(&resp[..body_at + n]);
                            return; // drop the connection mid-body
                        }
                    }
                    let _ = c.write_all(&resp);
                });
            }
        });
        Front {
            port,
            token_requests,
            range_requests,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

// ---- store and registry helpers shared by the registry test files ----

use petrel_image::distribution::Platform;
use petrel_image::{Store, StoreOptions};

/// Both tools the registry tests need.
pub fn tools(test: &str) -> bool {
    require("docker-registry", test) && require("skopeo", test)
}

pub fn store_with(dir: &Path, f: impl FnOnce(&mut StoreOptions)) -> Store {
    let mut opts = StoreOptions::default();
    opts.registry.auth_files = Vec::new();
    f(&mut opts);
    Store::open_with(dir, opts).unwrap()
}

pub fn store(dir: &Path) -> Store {
    store_with(dir, |_| {})
}

/// The busybox image: busybox layer (gzip) + a layer with a config file (zstd).
pub fn push_busybox(reg: &Registry, name: &str, creds: Option<&str>) -> tempfile::TempDir {
    let layout = tempfile::tempdir().unwrap();
    let extra = Layer::new()
        .dir("etc/")
        .file("etc/motd", b"hello from petrel\n")
        .tar();
    oci_image(
        layout.path(),
        Some("v1"),
        &[(busybox_layer(), Comp::Gzip), (extra, Comp::Zstd)],
        &["PATH=/bin", "GREETING=hi"],
        &Platform::host().architecture,
    );
    reg.push(layout.path(), "v1", name, creds);
    layout
}
