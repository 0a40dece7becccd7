//! Shared helpers for tests that run real containers: a busybox root filesystem, the
//! `petrel` binary, and an unprivileged user to run it as.
#![allow(dead_code)]

pub mod pool;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The unprivileged user the rootless tests run as (created when missing).
pub const TEST_USER: &str = "petrel-test";
/// A second unprivileged user: the other local user in tests of what one user can do to
/// another through root's pool (created when missing).
pub const OTHER_USER: &str = "petrel-test2";

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

/// Where `program` is on `PATH`, if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A world-readable scratch area (tempdirs are 0700, which the test user could not enter).
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("petrel-test-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Builds a busybox root filesystem in `dir/rootfs`; `None` (skip) without busybox.
pub fn busybox_rootfs(dir: &Path) -> Option<PathBuf> {
    let bb = busybox()?;
    let root = dir.join("rootfs");
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "srv", "root", "usr/bin", "sbin",
    ] {
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
    Some(root)
}

/// The petrel binary, copied where the unprivileged test user can execute it: one copy
/// per build, which every test process (nextest runs each test in its own) shares; a
/// copy per process was never removed and filled /tmp.
pub fn petrel_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let built = PathBuf::from(env!("CARGO_BIN_EXE_petrel"));
        let meta = fs::metadata(&built).expect("the petrel binary");
        let mut build = std::collections::hash_map::DefaultHasher::new();
        (&built, meta.len(), meta.modified().ok()).hash(&mut build);
        let top = std::env::temp_dir().join("petrel-test-bin");
        let dir = top.join(format!("{:016x}", build.finish()));
        fs::create_dir_all(&dir).expect("mkdir");
        for d in [&top, &dir] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let bin = dir.join("petrel");
        if !bin.exists() {
            // Copied under a name of its own, then renamed: a process that finds the
            // binary finds it whole.
            let part = dir.join(format!(".petrel-{}", std::process::id()));
            fs::copy(&built, &part).expect("copy petrel");
            fs::set_permissions(&part, fs::Permissions::from_mode(0o755)).expect("chmod");
            fs::rename(&part, &bin).expect("rename petrel");
        }
        bin
    })
}

/// The test user's (uid, gid), creating the user when running as root.
pub fn test_user() -> Option<(u32, u32)> {
    static USER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *USER.get_or_init(|| system_user(TEST_USER))
}

/// The second test user's (uid, gid), creating the user when running as root.
pub fn other_user() -> Option<(u32, u32)> {
    static USER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *USER.get_or_init(|| system_user(OTHER_USER))
}

/// `name`'s (uid, gid), creating it as a system user without a home when missing.
fn system_user(name: &str) -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let lookup = || {
        let out = Command::new("id").args(["-u", name]).output().ok()?;
        let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        let out = Command::new("id").args(["-g", name]).output().ok()?;
        let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        Some((uid, gid))
    };
    if let Some(ids) = lookup() {
        return Some(ids);
    }
    // Two test processes may race to create it; whichever loses finds it made.
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .status();
    lookup()
}

/// Who runs petrel in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Root,
    User,
    /// The second unprivileged user ([`other_user`]).
    Other,
}

impl As {
    /// The (uid, gid) this runs as when the tests run as root; `None` for root itself.
    pub fn ids(self) -> Option<(u32, u32)> {
        match self {
            As::Root => None,
            As::User => Some(test_user().expect("test user")),
            As::Other => Some(other_user().expect("second test user")),
        }
    }

    /// The uid this runs as (0 for root).
    pub fn uid(self) -> u32 {
        self.ids().map_or(0, |(uid, _)| uid)
    }

    /// The user's name, as `Owner` records it.
    pub fn name(self) -> &'static str {
        match self {
            As::Root => "root",
            As::User => TEST_USER,
            As::Other => OTHER_USER,
        }
    }
}

/// The modes this machine can test: root (when we are root) and the unprivileged user.
pub fn modes() -> Vec<As> {
    let mut modes = Vec::new();
    if is_root() {
        modes.push(As::Root);
        if need(test_user().is_some(), "creating the unprivileged test user") {
            modes.push(As::User);
        }
    } else {
        modes.push(As::User);
    }
    modes
}

/// `program` run as `who` (through `setpriv` when the tests run as root and `who` is a
/// test user; as the caller otherwise), with no supplementary groups.
pub fn run_as(who: As, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match (who.ids(), is_root()) {
        (Some((uid, gid)), true) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                // Not --init-groups: that looks the user up by name, which races with
                // tests elsewhere that remove and create the user again.
                "--clear-groups".into(),
                "--".into(),
            ]);
            c.arg(program);
            c.env_remove("XDG_RUNTIME_DIR");
            c
        }
        _ => Command::new(program),
    }
}

/// A `petrel` command run as `who`.
pub fn petrel(who: As) -> Command {
    let mut cmd = run_as(who, petrel_bin());
    cmd.stdin(Stdio::null());
    cmd
}

/// Makes `path` (and what is under it) owned by the test user, for scratch directories.
pub fn give_to_user(path: &Path, who: As) {
    if let (Some((uid, gid)), true) = (who.ids(), is_root()) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .expect("chown");
        assert!(status.success());
    }
}

pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `petrel run [opts] ROOTFS -- sh -c SCRIPT` as `who`.
pub fn run_sh(who: As, rootfs: &Path, opts: &[&str], script: &str) -> Ran {
    let out = petrel(who)
        .arg("run")
        .args(opts)
        .arg(rootfs)
        .args(["--", "/bin/sh", "-c", script])
        .output()
        .expect("run petrel");
    out.into()
}

/// A busybox image in Docker's own store, named `REPO:PID`, removed when dropped.
pub struct DockerImage(pub String);

impl DockerImage {
    pub fn import(rootfs: &Path, repo: &str) -> DockerImage {
        let name = format!("{repo}:{}", std::process::id());
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C '{}' -c . | docker import - {name} >/dev/null",
                rootfs.display()
            ))
            .status()
            .expect("docker import");
        assert!(status.success(), "docker import failed");
        DockerImage(name)
    }
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "--force", &self.0])
            .output();
    }
}
