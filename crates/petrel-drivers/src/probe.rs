//! Probing a runtime by running real test jobs, as HTCondor does before it advertises
//! Docker or Singularity (its test program must exit with status 37).
//!
//! The test image is a root file system petrel builds itself from the host's static
//! busybox, so a probe needs no registry and no network. Each runtime runs up to four
//! jobs from it, each checked from the outside:
//! 1. **basic**: it starts; the scratch directory is mounted and writable at the target
//!    directory, which is the working directory; the environment arrives; the uid is the
//!    one asked for; the exit status (37) comes back;
//! 2. **signal**: SIGTERM sent through the driver reaches the job (its trap exits 38);
//! 3. **memory**: where the driver claims limits, a job that allocates past a 32 MiB
//!    limit is killed and reported as out of memory;
//! 4. **squashfs**: where the driver takes squashfs files itself, the basic job again from
//!    a squashfs copy of the image (when `mksquashfs` is installed); failing it only drops
//!    the squashfs claim.
//!
//! A runtime is available only if the first three pass. Otherwise the probe's reason is
//! one line: the program is missing, its version could not be read, or which check failed
//! and what the job or runtime said.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{one_line, DriverError, ErrorKind};
use crate::job_spec::{JobImage, JobSpec, Limits, Stdio, User};
use crate::runtime::{Capabilities, ExitInfo, Handle, ImageKind, JobStatus, Runtime};

/// The status HTCondor's test program exits with.
pub const PROBE_EXIT_STATUS: i32 = 37;
/// The status the signal test's trap exits with.
const SIGNAL_EXIT_STATUS: i32 = 38;
/// The memory limit of the memory test.
const PROBE_MEMORY_LIMIT: u64 = 32 << 20;

/// Nomad's three states of a driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// The runtime's program is not installed (or its daemon does not answer).
    Undetected,
    /// It is installed, but a test job failed.
    Unhealthy,
    /// Every test job passed.
    Healthy,
}

/// One check of a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// What was seen (one line).
    pub detail: String,
}

/// What probing one runtime found.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub runtime: String,
    pub health: Health,
    pub version: Option<String>,
    /// Why the runtime is not available (one line); `None` when it is.
    pub reason: Option<String>,
    pub checks: Vec<Check>,
    /// The image kinds the runtime can run here (empty unless available).
    pub image_kinds: Vec<ImageKind>,
    pub capabilities: Capabilities,
    pub seconds: f64,
}

impl Probe {
    pub fn available(&self) -> bool {
        self.health == Health::Healthy
    }

    /// A probe result saying `runtime` is unavailable for `reason`, without running anything.
    pub fn unavailable<R: Runtime + ?Sized>(
        runtime: &R,
        health: Health,
        reason: impl Into<String>,
    ) -> Probe {
        Probe {
            runtime: runtime.name().to_string(),
            health,
            version: None,
            reason: Some(one_line(&reason.into())),
            checks: Vec::new(),
            image_kinds: Vec::new(),
            capabilities: runtime.capabilities(),
            seconds: 0.0,
        }
    }
}

/// How to probe: where to build the test image, as whom to run the test jobs.
#[derive(Debug)]
pub struct ProbeContext {
    /// Where the probe's image and scratch directories are made (in a fresh directory).
    pub work_dir: PathBuf,
    /// A statically linked busybox for the test image.
    pub busybox: Option<PathBuf>,
    /// Who the test jobs run as. As root the default is `nobody` (65534), so the probe
    /// checks that the runtime can run a job as another user, as the pool does.
    pub user: Option<User>,
    /// Where the scratch directory appears inside the container.
    pub target_dir: String,
    /// How long each test job may take.
    pub timeout: Duration,
    image: OnceLock<Result<ProbeImage, String>>,
}

impl Default for ProbeContext {
    fn default() -> Self {
        ProbeContext::new()
    }
}

impl ProbeContext {
    /// Defaults: the system's temporary directory, the host's static busybox, `nobody`
    /// when root (else the caller), `/srv`, 30 seconds per job.
    pub fn new() -> ProbeContext {
        let root = User::current().uid == 0;
        ProbeContext {
            work_dir: std::env::temp_dir(),
            busybox: crate::host::static_busybox(),
            user: root.then_some(User {
                uid: 65534,
                gid: 65534,
            }),
            target_dir: crate::job_spec::DEFAULT_TARGET_DIR.to_string(),
            timeout: Duration::from_secs(30),
            image: OnceLock::new(),
        }
    }

    /// The test image, built on first use and shared by every runtime probed with this
    /// context.
    pub fn image(&self) -> Result<&ProbeImage, String> {
        self.image
            .get_or_init(|| {
                ProbeImage::build(&self.work_dir, self.busybox.as_deref(), &self.target_dir)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn expected_uid(&self) -> u32 {
        self.user.unwrap_or_else(User::current).uid
    }
}

/// The probe's busybox root file system (and a squashfs copy of it when possible).
#[derive(Debug)]
pub struct ProbeImage {
    dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub squashfs: Option<PathBuf>,
}

impl ProbeImage {
    fn build(
        work_dir: &Path,
        busybox: Option<&Path>,
        target_dir: &str,
    ) -> Result<ProbeImage, String> {
        let busybox = busybox.ok_or(
            "no statically linked busybox to build the probe image from (install busybox-static)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("petrel-probe.")
            .tempdir_in(work_dir)
            .map_err(|e| format!("creating a probe directory in {}: {e}", work_dir.display()))?;
        let rootfs = dir.path().join("rootfs");
        build_busybox_rootfs(&rootfs, busybox, target_dir)?;
        // Readable by the probe's user, whoever owns it.
        set_mode(dir.path(), 0o755)?;
        let squashfs = crate::process::find_program("mksquashfs").and_then(|mk| {
            let out = dir.path().join("rootfs.sqfs");
            let result = crate::process::run_captured(
                std::process::Command::new(mk).arg(&rootfs).arg(&out).args([
                    "-noappend",
                    "-quiet",
                    "-no-progress",
                    "-all-root",
                ]),
                None,
                Duration::from_secs(60),
            );
            match result {
                Ok(o) if o.success() => Some(out),
                Ok(o) => {
                    tracing::info!("no squashfs probe image: mksquashfs: {}", o.message());
                    None
                }
                Err(e) => {
                    tracing::info!("no squashfs probe image: {e}");
                    None
                }
            }
        });
        Ok(ProbeImage {
            dir,
            rootfs,
            squashfs,
        })
    }

    /// The directory holding the image; scratch directories go here too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// Builds a root file system at `dir` from a static `busybox`: the binary, one symlink per
/// applet, the usual top-level directories (mount points for the runtimes), the target
/// directory, and `/etc/passwd` and `/etc/group`. The same layout as
/// `scripts/make-busybox-rootfs.sh`.
pub fn build_busybox_rootfs(dir: &Path, busybox: &Path, target_dir: &str) -> Result<(), String> {
    let mkdir =
        |p: &Path| std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()));
    for sub in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "srv", "root", "home", "var/tmp", "usr/bin",
        "usr/sbin", "sbin", "run", "mnt",
    ] {
        mkdir(&dir.join(sub))?;
    }
    mkdir(&dir.join(target_dir.trim_start_matches('/')))?;
    let bb = dir.join("bin/busybox");
    std::fs::copy(busybox, &bb).map_err(|e| format!("copying {}: {e}", busybox.display()))?;
    set_mode(&bb, 0o755)?;
    let list = crate::process::run_captured(
        std::process::Command::new(busybox).arg("--list"),
        None,
        crate::process::SHORT,
    )
    .map_err(|e| e.message)?;
    for applet in list
        .stdout
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/'))
    {
        let link = dir.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)
                .map_err(|e| format!("symlink {}: {e}", link.display()))?;
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .map_err(|e| format!("writing /etc/passwd: {e}"))?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(|e| format!("writing /etc/group: {e}"))?;
    for sticky in ["tmp", "var/tmp"] {
        set_mode(&dir.join(sticky), 0o1777)?;
    }
    Ok(())
}

/// What the probe gives each test job.
struct TestJob<'a, R: ?Sized> {
    runtime: &'a R,
    ctx: &'a ProbeContext,
    image: &'a ProbeImage,
}

/// A test job's scratch directory and the files around it.
struct Run {
    /// The value of `PETREL_PROBE_TOKEN` the job was given.
    token: String,
    scratch: PathBuf,
    stderr: PathBuf,
    result: Result<ExitInfo, DriverError>,
}

impl Run {
    fn scratch_file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.scratch.join(name))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// The job's status, or a one-line account of how it failed.
    fn status(&self) -> Result<JobStatus, String> {
        match &self.result {
            Ok(info) => Ok(info.status),
            Err(e) => Err(e.message.clone()),
        }
    }

    fn stderr_line(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let line = one_line(&text);
        if line.is_empty() {
            String::new()
        } else {
            format!(" (stderr: {line})")
        }
    }
}

impl<R: Runtime + ?Sized> TestJob<'_, R> {
    /// Runs `script` under `sh -c`; `during` runs while the job does (to signal it).
    fn run(
        &self,
        check: &str,
        image: JobImage,
        script: &str,
        limits: Limits,
        during: impl FnOnce(&dyn Handle, &Path) -> Result<(), String>,
    ) -> Result<Run, String> {
        // Unique across probe rounds of one process (a pool probes again and again): a
        // runtime keys its state by the name.
        static ROUND_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = ROUND_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let name = format!(
            "petrel_probe_{}_{}_{n}",
            self.runtime.name(),
            std::process::id()
        );
        let scratch = self
            .image
            .dir()
            .join(format!("{}-{check}", self.runtime.name()));
        // What an earlier round left (the signal test's `ready` file) must not pass for
        // this round's.
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("mkdir {}: {e}", scratch.display()))?;
        let user = self.ctx.user.unwrap_or_else(User::current);
        if User::current().uid == 0 {
            crate::host::give_to(user, &[&scratch]).map_err(|e| e.message)?;
        }
        let stderr = self
            .image
            .dir()
            .join(format!("{}-{check}.err", self.runtime.name()));
        let mut spec = JobSpec::new(
            name,
            image,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        let token = format!("{n}-{}", std::process::id());
        spec.env.push(format!("PETREL_PROBE_TOKEN={token}"));
        spec.scratch = Some(scratch.clone());
        spec.target_dir = self.ctx.target_dir.clone();
        spec.user = self.ctx.user;
        spec.limits = limits;
        spec.stderr = Stdio::File(stderr.clone());
        let handle = self.runtime.start(&spec).map_err(|e| e.message)?;
        let during = during(handle.as_ref(), &scratch);
        let result = match handle.wait_timeout(Some(self.ctx.timeout)) {
            Ok(Some(info)) => Ok(info),
            Ok(None) => Err(DriverError::slot(
                ErrorKind::Timeout,
                format!(
                    "the {check} test job did not end within {}s",
                    self.ctx.timeout.as_secs()
                ),
            )),
            Err(e) => Err(e),
        };
        if let Err(e) = handle.destroy() {
            tracing::warn!(
                "{}: cleaning up the {check} test job: {e}",
                self.runtime.name()
            );
        }
        during?;
        Ok(Run {
            token,
            scratch,
            stderr,
            result,
        })
    }
}

const BASIC_SCRIPT: &str = "echo \"$PETREL_PROBE_TOKEN\" > probe-token || exit 10; \
     id -u > probe-uid; pwd > probe-cwd; exit 37";

fn basic<R: Runtime + ?Sized>(job: &TestJob<'_, R>, image: JobImage, check: &'static str) -> Check {
    let outcome = job
        .run(check, image, BASIC_SCRIPT, Limits::default(), |_, _| Ok(()))
        .and_then(|run| {
            let status = run.status()?;
            if status != JobStatus::Exited(PROBE_EXIT_STATUS) {
                return Err(format!(
                    "the test job {status}, expected exit status {PROBE_EXIT_STATUS}{}",
                    run.stderr_line()
                ));
            }
            match run.scratch_file("probe-token") {
                Some(t) if t == run.token => {}
                Some(t) => {
                    return Err(format!(
                        "the job saw PETREL_PROBE_TOKEN={t}, expected {}",
                        run.token
                    ))
                }
                None => {
                    return Err(format!(
                        "the scratch directory was not writable at {}",
                        job.ctx.target_dir
                    ))
                }
            }
            let cwd = run.scratch_file("probe-cwd").unwrap_or_default();
            if cwd != job.ctx.target_dir {
                return Err(format!(
                    "the job started in {cwd}, not in the scratch directory {}",
                    job.ctx.target_dir
                ));
            }
            let uid = run.scratch_file("probe-uid").unwrap_or_default();
            let expected = job.ctx.expected_uid().to_string();
            if uid != expected {
                return Err(format!("the job ran as uid {uid}, expected {expected}"));
            }
            Ok(format!(
                "exit {PROBE_EXIT_STATUS}, scratch writable at {}, uid {uid}",
                job.ctx.target_dir
            ))
        });
    check_from(check, outcome)
}

fn signal<R: Runtime + ?Sized>(job: &TestJob<'_, R>, image: JobImage) -> Check {
    let script =
        format!("trap 'exit {SIGNAL_EXIT_STATUS}' TERM; touch ready; while :; do sleep 0.05; done");
    let timeout = job.ctx.timeout;
    let outcome = job
        .run(
            "signal",
            image,
            &script,
            Limits::default(),
            |handle, scratch| {
                let deadline = Instant::now() + timeout;
                while !scratch.join("ready").exists() {
                    if Instant::now() >= deadline
                        || handle
                            .wait_timeout(Some(Duration::ZERO))
                            .ok()
                            .flatten()
                            .is_some()
                    {
                        return Err("the signal test job never got ready".to_string());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                handle
                    .signal(crate::process::SIGTERM)
                    .map_err(|e| format!("sending SIGTERM: {e}"))
            },
        )
        .and_then(|run| match run.status()? {
            JobStatus::Exited(SIGNAL_EXIT_STATUS) => Ok("SIGTERM reached the job".to_string()),
            other => Err(format!(
                "after SIGTERM the test job {other}, expected its trap's exit status \
                 {SIGNAL_EXIT_STATUS}{}",
                run.stderr_line()
            )),
        });
    check_from("signal", outcome)
}

fn memory<R: Runtime + ?Sized>(job: &TestJob<'_, R>, image: JobImage) -> Check {
    let limits = Limits {
        memory_bytes: Some(PROBE_MEMORY_LIMIT),
        ..Limits::default()
    };
    let script = "x=0123456789abcdef; while :; do x=$x$x; done";
    let outcome = job
        .run("memory", image, script, limits, |_, _| Ok(()))
        .and_then(|run| match &run.result {
            Ok(info) if info.oom_killed => Ok(format!(
                "a job past a {} MiB limit was killed for memory",
                PROBE_MEMORY_LIMIT >> 20
            )),
            Ok(info) => Err(format!(
                "a job past a {} MiB limit {} without an out-of-memory kill being reported",
                PROBE_MEMORY_LIMIT >> 20,
                info.status
            )),
            Err(e) => Err(e.message.clone()),
        });
    check_from("memory", outcome)
}

fn check_from(name: &'static str, outcome: Result<String, String>) -> Check {
    match outcome {
        Ok(detail) => Check {
            name,
            passed: true,
            detail,
        },
        Err(detail) => Check {
            name,
            passed: false,
            detail: one_line(&detail),
        },
    }
}

/// Probes `runtime` with test jobs (see the module docs); [`Runtime::probe`]'s default.
pub fn run_probe<R: Runtime + ?Sized>(runtime: &R, ctx: &ProbeContext) -> Probe {
    let started = Instant::now();
    let version = match runtime.version() {
        Ok(v) => v,
        Err(e) => {
            // Not installed at all, or installed but not answering.
            let health = if e.kind == ErrorKind::Unavailable {
                Health::Undetected
            } else {
                Health::Unhealthy
            };
            return Probe::unavailable(runtime, health, e.message);
        }
    };
    let mut probe = Probe {
        runtime: runtime.name().to_string(),
        health: Health::Unhealthy,
        version: Some(version),
        reason: None,
        checks: Vec::new(),
        image_kinds: Vec::new(),
        capabilities: runtime.capabilities(),
        seconds: 0.0,
    };
    let image = match ctx.image() {
        Ok(image) => image,
        Err(e) => {
            probe.reason = Some(one_line(&format!("cannot build the probe image: {e}")));
            return probe;
        }
    };
    let job = TestJob {
        runtime,
        ctx,
        image,
    };
    let rootfs = JobImage::Rootfs(image.rootfs.clone());
    probe.checks.push(basic(&job, rootfs.clone(), "basic"));
    if probe.checks[0].passed && probe.capabilities.signals {
        probe.checks.push(signal(&job, rootfs.clone()));
    }
    if probe.checks.iter().all(|c| c.passed) && probe.capabilities.limits {
        probe.checks.push(memory(&job, rootfs.clone()));
    }
    runtime.release_image(&rootfs);
    let failed = probe.checks.iter().find(|c| !c.passed);
    match failed {
        Some(check) => {
            probe.reason = Some(one_line(&format!(
                "{} test failed: {}",
                check.name, check.detail
            )));
        }
        None => {
            probe.health = Health::Healthy;
            probe.image_kinds = runtime.image_kinds().to_vec();
            if let (Some(sqfs), true) = (
                &image.squashfs,
                runtime.accepts(&JobImage::Squashfs(PathBuf::new())),
            ) {
                let check = basic(&job, JobImage::Squashfs(sqfs.clone()), "squashfs");
                if !check.passed {
                    probe.image_kinds.retain(|k| *k != ImageKind::Squashfs);
                }
                probe.checks.push(check);
            }
        }
    }
    probe.seconds = started.elapsed().as_secs_f64();
    probe
}

/// Probes every runtime, in parallel, sharing one test image.
pub fn probe_all(runtimes: &[Box<dyn Runtime>], ctx: &ProbeContext) -> Vec<Probe> {
    // Build the image once, before the threads race for it.
    let _ = ctx.image();
    std::thread::scope(|s| {
        let handles: Vec<_> = runtimes
            .iter()
            .map(|rt| s.spawn(move || rt.probe(ctx)))
            .collect();
        handles
            .into_iter()
            .zip(runtimes)
            .map(|(h, rt)| {
                h.join().unwrap_or_else(|_| {
                    Probe::unavailable(rt.as_ref(), Health::Unhealthy, "the probe panicked")
                })
            })
            .collect()
    })
}
