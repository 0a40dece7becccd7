//! Shared helpers for tests that start real containers through the library, as root and as
//! an unprivileged user.
//!
//! The library runs in the test process itself, so the unprivileged case runs the same test
//! again in a copy of this test binary, started with `setpriv` as the test user: a test
//! body given to [`as_root_and_user`] runs once as root and once as that user.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The unprivileged user the rootless cases run as (created when missing).
pub const TEST_USER: &str = "petrel-test";

/// Set in the copy of the test binary that runs as the test user.
const INNER: &str = "PETREL_RUNTIME_TEST_AS_USER";

/// Whether a missing tool must fail the test (CI sets this) rather than skip it.
pub fn required() -> bool {
    std::env::var_os("PETREL_REQUIRE_ALL").is_some_and(|v| v == "1")
}

/// Skips (returns false after saying why) or fails when a precondition is missing.
pub fn need(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(!required(), "required for this test: {what}");
        eprintln!("skipped: {what}");
    }
    ok
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Who runs the test body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Root,
    User,
}

/// Who this process is.
pub fn me() -> As {
    if is_root() {
        As::Root
    } else {
        As::User
    }
}

/// Runs `body` as root (when the test runs as root) and as the unprivileged test user.
/// `test` is the test function's name, to run it again in a copy of this binary.
pub fn as_root_and_user(test: &str, body: impl Fn()) {
    if std::env::var_os(INNER).is_some() || !is_root() {
        body();
        return;
    }
    body();
    run_as_user(test, &[]);
}

/// Runs test `test` again in a copy of this binary as the unprivileged test user, with
/// `envs` set; fails unless it ran and passed. Only as root (else it skips).
pub fn run_as_user(test: &str, envs: &[(&str, String)]) {
    let Some((uid, gid)) = test_user() else {
        need(false, "creating the unprivileged test user (needs root)");
        return;
    };
    let out = Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            // Not --init-groups: that looks the user up by name, which races with tests
            // elsewhere that create the user.
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(test_binary())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env("TMPDIR", "/tmp")
        .env_remove("XDG_RUNTIME_DIR")
        .current_dir("/")
        .output()
        .expect("run the test binary with setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} as {TEST_USER}: {}\n{stdout}\n{stderr}",
        out.status
    );
}

/// This test binary, copied where the test user can execute it (once per build).
fn test_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let built = std::env::current_exe().expect("current_exe");
        let meta = fs::metadata(&built).expect("stat the test binary");
        let stamp = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let name = built.file_name().expect("file name").to_string_lossy();
        let dir = PathBuf::from("/tmp/petrel-runtime-test-bin");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let bin = dir.join(format!("{name}-{stamp}-{}", meta.len()));
        if !bin.exists() {
            // Copied under a private name and renamed, so a parallel test never runs a
            // half-written copy.
            let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
            fs::copy(&built, &partial).expect("copy the test binary");
            fs::set_permissions(&partial, fs::Permissions::from_mode(0o755)).expect("chmod");
            fs::rename(&partial, &bin).expect("rename");
            // Copies of earlier builds of this binary are no longer needed.
            let prefix = format!("{name}-");
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let old = entry.file_name().to_string_lossy().into_owned();
                if old.starts_with(&prefix) && entry.path() != bin {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        bin
    })
}

/// The test user's (uid, gid), creating the user when running as root.
pub fn test_user() -> Option<(u32, u32)> {
    static USER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *USER.get_or_init(|| {
        let lookup = || {
            let id = |flag: &str| -> Option<u32> {
                let out = Command::new("id").args([flag, TEST_USER]).output().ok()?;
                String::from_utf8_lossy(&out.stdout).trim().parse().ok()
            };
            Some((id("-u")?, id("-g")?))
        };
        if let Some(ids) = lookup() {
            return Some(ids);
        }
        if !is_root() {
            return None;
        }
        // Two test processes may race to create it; whichever loses finds it made.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                TEST_USER,
            ])
            .status();
        lookup()
    })
}

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A temporary directory with a busybox root filesystem in `rootfs/` and an empty scratch
/// directory in `scratch/`; `None` (skip) without busybox.
pub fn busybox_dir() -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let bb = busybox();
    if !need(bb.is_some(), "busybox (apt-get install busybox-static)") {
        return None;
    }
    let bb = bb?;
    let dir = tempfile::Builder::new()
        .prefix("petrel-rt-test-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let root = dir.path().join("rootfs");
    for d in ["bin", "dev", "etc", "proc", "sys", "tmp", "srv", "root"] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    fs::copy(&bb, root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", link).expect("symlink");
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    )
    .expect("passwd");
    fs::write(root.join("etc/group"), "root:x:0:\n").expect("group");
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    let scratch = dir.path().join("scratch");
    fs::create_dir(&scratch).expect("mkdir scratch");
    Some((dir, root, scratch))
}

/// Host processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(marker) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Waits up to `secs` seconds for `done` to hold.
pub fn eventually(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done()
}
