//! Shared helpers for the tests that run real containers through the drivers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use petrel_drivers::{driver, JobImage, JobSpec, Runtime, User};

/// How long any test job may take before the test fails.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

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
    User::current().uid == 0
}

/// A busybox root file system in a fresh directory, readable by any user, with the
/// scratch targets `/srv` and `/work`; and a scratch directory beside it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub scratch: PathBuf,
    runtime: Option<Box<dyn Runtime>>,
}

impl Fixture {
    /// The fixture for runtime `name`, or `None` (after skipping) when the runtime or a
    /// static busybox is missing, or the test is not run as root.
    pub fn new(name: &str) -> Option<Fixture> {
        if !need(
            is_root(),
            "running as root (the conformance suite switches users)",
        ) {
            return None;
        }
        let busybox = petrel_drivers::host::static_busybox();
        if !need(
            busybox.is_some(),
            "a static busybox (apt-get install busybox-static)",
        ) {
            return None;
        }
        let runtime = driver(name).expect("a known driver");
        if let Err(e) = runtime.version() {
            need(false, &format!("runtime {name}: {e}"));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("petrel-drivers-test.")
            .tempdir()
            .expect("tempdir");
        chmod(dir.path(), 0o755);
        let rootfs = dir.path().join("rootfs");
        petrel_drivers::probe::build_busybox_rootfs(&rootfs, &busybox.unwrap(), "/work")
            .expect("busybox rootfs");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).expect("scratch");
        chmod(&scratch, 0o777);
        Some(Fixture {
            dir,
            rootfs,
            scratch,
            runtime: Some(runtime),
        })
    }

    pub fn runtime(&self) -> &dyn Runtime {
        self.runtime.as_deref().expect("runtime")
    }

    pub fn image(&self) -> JobImage {
        JobImage::Rootfs(self.rootfs.clone())
    }

    /// A spec for `sh -c script` with the scratch directory at `/srv`.
    pub fn spec(&self, case: &str, script: &str) -> JobSpec {
        let name = format!(
            "petrel_t_{case}_{}_{}",
            self.runtime().name(),
            std::process::id()
        );
        let mut spec = JobSpec::new(
            name,
            self.image(),
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        spec.scratch = Some(self.scratch.clone());
        spec
    }

    pub fn scratch_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.scratch.join(name))
            .unwrap_or_else(|e| panic!("{}: scratch file {name}: {e}", self.runtime().name()))
    }

    /// Waits until the job has created `name` in its scratch directory.
    pub fn await_file(&self, handle: &dyn petrel_drivers::Handle, name: &str) {
        let deadline = Instant::now() + JOB_TIMEOUT;
        while !self.scratch.join(name).exists() {
            if let Ok(Some(exit)) = handle.wait_timeout(Some(Duration::ZERO)) {
                panic!(
                    "{}: the job ended ({}) before creating {name}",
                    self.runtime().name(),
                    exit.status
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: {name} never appeared",
                self.runtime().name()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Engines keep what they imported; the test's image goes with the fixture.
impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.release_image(&JobImage::Rootfs(self.rootfs.clone()));
        }
    }
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
