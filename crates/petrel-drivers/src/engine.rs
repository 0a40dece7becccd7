//! Docker and Podman, through their command-line clients: `create` with the job's
//! settings as flags, then `start --attach` with the job's stdio, then `inspect` for the
//! exit code, the OOM flag and the runtime's error, then `rm`.
//!
//! A root file system petrel prepared is imported once (`import` of a tar stream) as
//! `petrel_rootfs:<hash>` and kept for later jobs until [`Runtime::release_image`]: no
//! registry is needed. `DOCKER_HOST` (Podman: `CONTAINER_HOST`) is honoured, from the
//! environment or [`EngineRuntime::with_host`]. As root with the `cgroupfs` cgroup driver,
//! each container's cgroup parent is `/petrel/<name>`, which keeps the job's peak memory
//! and CPU time after the engine has removed the container's own cgroup.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::Digest as _;

use crate::cgroupfs::CgroupPath;
use crate::error::{one_line, DriverError, ErrorKind};
use crate::handle::{init_diagnostic, init_exec_error, Ended, JobProcess};
use crate::job_spec::{EngineRef, JobImage, JobSpec, NetMode, Stdio, User};
use crate::process::{self, run_captured, Child, Feeder, SHORT};
use crate::runtime::{Capabilities, ExitInfo, Handle, ImageKind, JobStatus, Runtime, Stats};

/// How long importing a root file system may take.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineFlavor {
    Docker,
    Podman,
}

impl EngineFlavor {
    pub fn name(self) -> &'static str {
        match self {
            EngineFlavor::Docker => "docker",
            EngineFlavor::Podman => "podman",
        }
    }

    /// The repository imported root file systems are tagged in.
    fn import_repository(self) -> &'static str {
        match self {
            EngineFlavor::Docker => "petrel_rootfs",
            // Podman qualifies unqualified names with a registry; local images live in
            // `localhost/`.
            EngineFlavor::Podman => "localhost/petrel_rootfs",
        }
    }
}

/// The Docker or Podman driver.
#[derive(Debug)]
pub struct EngineRuntime {
    flavor: EngineFlavor,
    program: String,
    host: Option<String>,
    /// Podman's `--init-path`: its own init (catatonit) is a separate package, so petrel
    /// names the host's static init when there is one.
    init_path: Option<PathBuf>,
    /// The engine's cgroup driver (`cgroupfs`, `systemd`), asked once.
    cgroup_driver: OnceLock<Option<String>>,
}

impl EngineRuntime {
    pub fn new(flavor: EngineFlavor) -> EngineRuntime {
        EngineRuntime {
            flavor,
            program: flavor.name().to_string(),
            host: None,
            init_path: match flavor {
                EngineFlavor::Docker => None,
                EngineFlavor::Podman => crate::host::static_init(),
            },
            cgroup_driver: OnceLock::new(),
        }
    }

    /// Uses this program (a name in `PATH` or a path) instead of the default.
    pub fn with_program(mut self, program: impl Into<String>) -> Self {
        self.program = program.into();
        self
    }

    /// Talks to this engine endpoint (`unix:///run/docker.sock`, `tcp://host:2375`) rather
    /// than `DOCKER_HOST`/`CONTAINER_HOST` from the environment.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    fn program_path(&self) -> Result<PathBuf, DriverError> {
        process::require_program(self.flavor.name(), &self.program)
    }

    /// Uses this init binary for `--init` (Podman's `--init-path`; `None`: the engine's own).
    pub fn with_init_path(mut self, init: Option<PathBuf>) -> Self {
        self.init_path = init;
        self
    }

    fn shared(&self) -> Result<Arc<Shared>, DriverError> {
        let host_env = self.host.as_ref().map(|host| {
            let var = match self.flavor {
                EngineFlavor::Docker => "DOCKER_HOST",
                EngineFlavor::Podman => "CONTAINER_HOST",
            };
            (var, host.clone())
        });
        Ok(Arc::new(Shared {
            flavor: self.flavor,
            program: self.program_path()?,
            host_env,
        }))
    }

    /// Whether containers get `/petrel/<name>` as cgroup parent (root, `cgroupfs` driver).
    fn uses_cgroup_parent(&self, shared: &Shared) -> bool {
        if User::current().uid != 0 {
            return false;
        }
        let driver = self.cgroup_driver.get_or_init(|| {
            let format = match self.flavor {
                EngineFlavor::Docker => "{{.CgroupDriver}}",
                EngineFlavor::Podman => "{{.Host.CgroupManager}}",
            };
            run_captured(
                shared.command().args(["info", "--format", format]),
                None,
                SHORT,
            )
            .ok()
            .filter(|o| o.success())
            .map(|o| o.stdout.trim().to_string())
        });
        driver.as_deref() == Some("cgroupfs")
    }

    /// The tag a root file system directory is imported as: a hash of its canonical path
    /// and its identity and change time, so a directory changed in place is imported anew.
    pub fn import_tag(&self, rootfs: &Path) -> Result<String, DriverError> {
        use std::os::unix::fs::MetadataExt;
        let canonical = rootfs.canonicalize().map_err(|e| {
            DriverError::job(
                ErrorKind::Image,
                format!("root file system {}: {e}", rootfs.display()),
            )
        })?;
        let meta = std::fs::metadata(&canonical).map_err(|e| {
            DriverError::job(ErrorKind::Image, format!("{}: {e}", canonical.display()))
        })?;
        let mut hash = sha2::Sha256::new();
        hash.update(canonical.as_os_str().as_encoded_bytes());
        hash.update(format!(
            ":{}:{}:{}.{}",
            meta.dev(),
            meta.ino(),
            meta.ctime(),
            meta.ctime_nsec()
        ));
        let digest = hash.finalize();
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(format!("{}:{hex}", self.flavor.import_repository()))
    }

    /// Imports the root file system `rootfs` into the engine (once; later calls find the
    /// tag) and returns the image name.
    pub fn import_rootfs(&self, rootfs: &Path) -> Result<EngineRef, DriverError> {
        let shared = self.shared()?;
        let tag = self.import_tag(rootfs)?;
        let image = EngineRef::parse(&tag)?;
        if shared.image_exists(&tag) {
            return Ok(image);
        }
        let dir = rootfs.to_path_buf();
        let feeder: Feeder = Box::new(move |w| {
            let mut tar = tar::Builder::new(w);
            tar.follow_symlinks(false);
            tar.append_dir_all(".", &dir)?;
            tar.finish()
        });
        let out = run_captured(
            shared.command().args(["import", "-", &tag]),
            Some(feeder),
            IMPORT_TIMEOUT,
        )?;
        if !out.success() {
            return Err(DriverError::slot(
                ErrorKind::Runtime,
                format!(
                    "{} import of {}: {}",
                    self.flavor.name(),
                    rootfs.display(),
                    out.message()
                ),
            ));
        }
        Ok(image)
    }

    /// The arguments of `create` for `spec` with image `image` (already resolved).
    ///
    /// Every value rides in its option's own argument (`--opt=value`), and `--` ends the
    /// options before the image, so nothing from the job can be read as an option: the
    /// image is a checked reference and the job's argv comes after it.
    pub fn create_args(
        &self,
        spec: &JobSpec,
        image: &EngineRef,
        cgroup_parent: Option<&str>,
    ) -> Vec<String> {
        let user = spec.effective_user();
        let mut a: Vec<String> = vec!["create".into(), format!("--name={}", spec.name)];
        a.push("--label=org.petrel.job=1".into());
        if spec.init {
            a.push("--init".into());
            if let Some(init) = &self.init_path {
                a.push(format!("--init-path={}", init.display()));
            }
        }
        if !matches!(spec.stdin, Stdio::Null) {
            a.push("--interactive".into());
        }
        for bind in spec.all_binds() {
            let mode = if bind.read_only { "ro" } else { "rw" };
            a.push(format!(
                "--volume={}:{}:{mode}",
                bind.source.display(),
                bind.target
            ));
        }
        a.push(format!("--workdir={}", spec.workdir()));
        a.push(format!("--user={}:{}", user.uid, user.gid));
        if let Some(bytes) = spec.limits.memory_bytes {
            a.push(format!("--memory={bytes}"));
            a.push(format!("--memory-swap={bytes}"));
        }
        if let Some(cpus) = spec.limits.cpus {
            a.push(format!("--cpus={cpus}"));
        }
        if let Some(pids) = spec.limits.pids {
            a.push(format!("--pids-limit={pids}"));
        }
        a.push(
            match spec.network {
                NetMode::Host => "--network=host",
                NetMode::None => "--network=none",
            }
            .into(),
        );
        if let Some(host) = &spec.hostname {
            a.push(format!("--hostname={host}"));
        }
        if spec.gpus {
            a.push("--gpus=all".into());
        }
        if let Some(parent) = cgroup_parent {
            a.push(format!("--cgroup-parent={parent}"));
        }
        a.extend([
            "--cap-drop=ALL".into(),
            "--security-opt=no-new-privileges".into(),
            // The argv is the whole command: an image's ENTRYPOINT must not wrap it.
            "--entrypoint=".into(),
        ]);
        // Always NAME=VALUE (validated): a bare NAME would copy petrel's own variable.
        a.extend(spec.env.iter().map(|kv| format!("--env={kv}")));
        a.push("--".into());
        a.push(image.as_str().to_string());
        a.extend(spec.argv.iter().cloned());
        a
    }
}

impl Runtime for EngineRuntime {
    fn name(&self) -> &'static str {
        self.flavor.name()
    }

    fn image_kinds(&self) -> &'static [ImageKind] {
        &[ImageKind::DockerUrl, ImageKind::OciLayout]
    }

    fn accepts(&self, image: &JobImage) -> bool {
        matches!(image, JobImage::Engine(_) | JobImage::Rootfs(_))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            signals: true,
            exec: true,
            limits: true,
            pid_namespace: true,
            network_isolation: true,
        }
    }

    fn version(&self) -> Result<String, DriverError> {
        let shared = self.shared()?;
        let format = match self.flavor {
            EngineFlavor::Docker => "{{.Server.Version}}",
            EngineFlavor::Podman => "{{.Client.Version}}",
        };
        let out = run_captured(
            shared.command().args(["version", "--format", format]),
            None,
            SHORT,
        )?;
        let version = out.stdout.trim();
        if out.success() && !version.is_empty() {
            Ok(version.to_string())
        } else {
            // Installed, but no daemon answers (HTCondor's DockerOfflineReason case).
            Err(DriverError::slot(
                ErrorKind::Runtime,
                format!("{} version: {}", self.flavor.name(), out.message()),
            ))
        }
    }

    fn exec_running(
        &self,
        job: &crate::RunningJob,
        argv: &[String],
        tty: bool,
    ) -> Result<JobStatus, DriverError> {
        let mut cmd = self.shared()?.command();
        cmd.args(["exec", "--interactive"]);
        if tty {
            cmd.arg("--tty");
        }
        cmd.arg(format!("--user={}:{}", job.user.uid, job.user.gid))
            .arg(format!("--workdir={}", job.workdir))
            .arg("--")
            .arg(&job.name)
            .args(argv);
        process::run_interactive(cmd)
    }

    fn start(&self, spec: &JobSpec) -> Result<Box<dyn Handle>, DriverError> {
        spec.validate()?;
        let shared = self.shared()?;
        let image = match &spec.image {
            JobImage::Engine(image) => image.clone(),
            JobImage::Rootfs(dir) => self.import_rootfs(dir)?,
            other => {
                return Err(DriverError::job(
                    ErrorKind::Spec,
                    format!(
                        "{} takes an engine image or a root file system, not a {}",
                        self.flavor.name(),
                        other.describe()
                    ),
                ))
            }
        };
        let parent = self
            .uses_cgroup_parent(&shared)
            .then(|| format!("/petrel/{}", spec.name));
        let create = || {
            run_captured(
                shared
                    .command()
                    .args(self.create_args(spec, &image, parent.as_deref())),
                None,
                IMPORT_TIMEOUT,
            )
        };
        let mut out = create()?;
        if !out.success() && out.message().contains("already in use") {
            // A container of this name left by a crashed petrel: names are unique to a
            // job on a slot, so it is stale.
            tracing::info!("{}: removing a stale {}", self.flavor.name(), spec.name);
            shared.remove(&spec.name);
            out = create()?;
        }
        if !out.success() {
            return Err(DriverError::from_runtime_message(
                self.flavor.name(),
                &out.message(),
            ));
        }
        let mut start = shared.command();
        start.args(["start", "--attach"]);
        if !matches!(spec.stdin, Stdio::Null) {
            start.arg("--interactive");
        }
        start.arg(&spec.name);
        let child = Child::spawn(
            start,
            &spec.stdin,
            &spec.stdout,
            &spec.stderr,
            Some(|l: &str| init_diagnostic(l) || l.starts_with("Error") || l.starts_with("Error:")),
        )
        .inspect_err(|_| shared.remove(&spec.name))?;
        Ok(Box::new(EngineHandle {
            shared,
            job: JobProcess::new(&spec.name, child),
            cgroup: parent.map(|p| CgroupPath::new(&p)),
            memory_limit: spec.limits.memory_bytes,
        }))
    }

    fn release_image(&self, image: &JobImage) {
        let JobImage::Rootfs(dir) = image else {
            return;
        };
        let (Ok(shared), Ok(tag)) = (self.shared(), self.import_tag(dir)) else {
            return;
        };
        if shared.image_exists(&tag) {
            match run_captured(shared.command().args(["rmi", "--force", &tag]), None, SHORT) {
                Ok(out) if out.success() => {}
                Ok(out) => tracing::warn!("{} rmi {tag}: {}", self.flavor.name(), out.message()),
                Err(e) => tracing::warn!("{} rmi {tag}: {e}", self.flavor.name()),
            }
        }
    }
}

/// What a handle needs of its driver.
struct Shared {
    flavor: EngineFlavor,
    program: PathBuf,
    /// The endpoint variable to set, when the driver was given one.
    host_env: Option<(&'static str, String)>,
}

impl Shared {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some((var, host)) = &self.host_env {
            cmd.env(var, host);
        }
        cmd
    }

    fn image_exists(&self, image: &str) -> bool {
        run_captured(
            self.command()
                .args(["image", "inspect", "--format", "{{.Id}}", image]),
            None,
            SHORT,
        )
        .is_ok_and(|o| o.success())
    }

    fn remove(&self, name: &str) {
        match run_captured(self.command().args(["rm", "--force", name]), None, SHORT) {
            Ok(out) if out.success() => {}
            Ok(out) => tracing::warn!("{} rm {name}: {}", self.flavor.name(), out.message()),
            Err(e) => tracing::warn!("{} rm {name}: {e}", self.flavor.name()),
        }
    }
}

struct EngineHandle {
    shared: Arc<Shared>,
    job: JobProcess,
    cgroup: Option<CgroupPath>,
    memory_limit: Option<u64>,
}

/// The container state `inspect` reports (Docker and Podman spell these alike).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct State {
    exit_code: i32,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    error: String,
}

impl EngineHandle {
    fn finish(&self, ended: Ended<'_>) -> Result<ExitInfo, DriverError> {
        let engine = self.shared.flavor.name();
        let name = &self.job.name;
        let state = run_captured(
            self.shared.command().args([
                "container",
                "inspect",
                "--format",
                "{{json .State}}",
                name,
            ]),
            None,
            SHORT,
        );
        let (user_cpu, system_cpu) = self.cgroup.as_ref().map_or((None, None), |c| c.cpu());
        let peak = self.cgroup.as_ref().and_then(CgroupPath::peak_memory_bytes);
        self.shared.remove(name);
        if let Some(cg) = &self.cgroup {
            cg.remove();
        }
        let state: State = match state {
            Ok(out) if out.success() => serde_json::from_str(out.stdout.trim()).map_err(|e| {
                DriverError::slot(ErrorKind::Runtime, format!("{engine} inspect {name}: {e}"))
            })?,
            Ok(out) => {
                return Err(DriverError::slot(
                    ErrorKind::Runtime,
                    format!("{engine} inspect {name}: {}", out.message()),
                ))
            }
            Err(e) => return Err(e),
        };
        if !state.error.is_empty() {
            return Err(DriverError::from_runtime_message(engine, &state.error));
        }
        if matches!(state.exit_code, 126 | 127) {
            if let Some(err) = init_exec_error(engine, &self.job.child.diagnostics()) {
                return Err(err);
            }
        }
        if state.exit_code == 0 && !ended.status.success() {
            // `start --attach` failed on its own (the engine went away mid-job).
            let said = one_line(&self.job.child.diagnostics().join("\n"));
            return Err(DriverError::slot(
                ErrorKind::Runtime,
                format!(
                    "{engine} start --attach {name} failed ({}): {said}",
                    ended.status
                ),
            ));
        }
        // The engine reports the job's status as a shell would.
        let status = JobStatus::from_shell_status(state.exit_code, ended.sent, state.oom_killed);
        Ok(ExitInfo {
            status,
            oom_killed: state.oom_killed,
            memory_limit_bytes: self.memory_limit,
            peak_memory_bytes: peak,
            user_cpu_seconds: user_cpu.map(|d| d.as_secs_f64()),
            system_cpu_seconds: system_cpu.map(|d| d.as_secs_f64()),
            wall_seconds: ended.wall.as_secs_f64(),
        })
    }
}

impl Handle for EngineHandle {
    fn name(&self) -> &str {
        &self.job.name
    }

    fn pid(&self) -> Option<u32> {
        Some(self.job.child.pid())
    }

    fn wait_timeout(&self, timeout: Option<Duration>) -> Result<Option<ExitInfo>, DriverError> {
        self.job.wait_with(timeout, |ended| self.finish(ended))
    }

    fn signal(&self, sig: i32) -> Result<(), DriverError> {
        let mut kill = self.shared.command();
        kill.args(["kill", &format!("--signal={sig}"), &self.job.name]);
        self.job.signal_with(sig, kill)
    }

    fn exec(&self, argv: &[String], tty: bool) -> Result<JobStatus, DriverError> {
        let mut cmd = self.shared.command();
        cmd.args(["exec", "--interactive"]);
        if tty {
            cmd.arg("--tty");
        }
        cmd.arg("--").arg(&self.job.name).args(argv);
        process::run_interactive(cmd)
    }

    fn stats(&self) -> Result<Stats, DriverError> {
        Ok(self
            .cgroup
            .as_ref()
            .map(CgroupPath::stats)
            .unwrap_or_default())
    }

    fn destroy(&self) -> Result<(), DriverError> {
        let mut kill = self.shared.command();
        kill.args(["kill", "--signal=KILL", &self.job.name]);
        self.job.destroy_with(kill, |ended| self.finish(ended))
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            tracing::warn!("{}: {e}", self.job.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job_spec::{Bind, Limits};

    fn image(name: &str) -> EngineRef {
        EngineRef::parse(name).unwrap()
    }

    fn sample() -> JobSpec {
        let mut spec = JobSpec::new(
            "petrel_7_0_slot1",
            JobImage::Engine(EngineRef::parse("busybox:1.36").unwrap()),
            vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        );
        spec.env = vec!["PATH=/bin".into(), "A=1 2".into()];
        spec.scratch = Some("/scratch/7.0".into());
        spec.binds = vec![Bind {
            source: "/data".into(),
            target: "/in".into(),
            read_only: true,
        }];
        spec.user = Some(User {
            uid: 1000,
            gid: 100,
        });
        spec.limits = Limits {
            cpus: Some(1.5),
            memory_bytes: Some(64 << 20),
            pids: Some(100),
        };
        spec.network = NetMode::None;
        spec
    }

    #[test]
    fn create_args_for_a_sample_job() {
        let expected = [
            "create",
            "--name=petrel_7_0_slot1",
            "--label=org.petrel.job=1",
            "--init",
            "--volume=/scratch/7.0:/srv:rw",
            "--volume=/data:/in:ro",
            "--workdir=/srv",
            "--user=1000:100",
            "--memory=67108864",
            "--memory-swap=67108864",
            "--cpus=1.5",
            "--pids-limit=100",
            "--network=none",
            "--cgroup-parent=/petrel/petrel_7_0_slot1",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--entrypoint=",
            "--env=PATH=/bin",
            "--env=A=1 2",
            "--",
            "busybox:1.36",
            "/bin/sh",
            "-c",
            "exit 3",
        ];
        for flavor in [EngineFlavor::Docker, EngineFlavor::Podman] {
            let engine = EngineRuntime::new(flavor).with_init_path(None);
            assert_eq!(
                engine.create_args(
                    &sample(),
                    &image("busybox:1.36"),
                    Some("/petrel/petrel_7_0_slot1")
                ),
                expected,
                "{flavor:?}"
            );
        }
    }

    #[test]
    fn create_args_with_stdin_gpus_and_hostname() {
        let mut spec = sample();
        spec.stdin = Stdio::File("/in.txt".into());
        spec.gpus = true;
        spec.hostname = Some("node".into());
        spec.init = false;
        let podman = EngineRuntime::new(EngineFlavor::Podman)
            .with_init_path(Some("/usr/bin/tini-static".into()));
        let args = podman.create_args(&spec, &image("img"), None);
        assert!(args.contains(&"--interactive".to_string()));
        assert!(!args.contains(&"--init".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--init-path")));
        spec.init = true;
        let args = podman.create_args(&spec, &image("img"), None);
        let at = args.iter().position(|a| a == "--init").unwrap();
        assert_eq!(args[at + 1], "--init-path=/usr/bin/tini-static");
        spec.init = false;
        assert!(args.contains(&"--gpus=all".to_string()));
        assert!(args.contains(&"--hostname=node".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--cgroup-parent")));
    }

    #[test]
    fn import_tags_follow_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let docker = EngineRuntime::new(EngineFlavor::Docker);
        let tag = docker.import_tag(dir.path()).unwrap();
        assert!(tag.starts_with("petrel_rootfs:"), "{tag}");
        assert_eq!(tag.len(), "petrel_rootfs:".len() + 16);
        assert_eq!(tag, docker.import_tag(dir.path()).unwrap());
        let other = tempfile::tempdir().unwrap();
        assert_ne!(tag, docker.import_tag(other.path()).unwrap());
        let podman = EngineRuntime::new(EngineFlavor::Podman);
        assert!(podman
            .import_tag(dir.path())
            .unwrap()
            .starts_with("localhost/petrel_rootfs:"));
        let err = docker
            .import_tag(Path::new("/nonexistent/rootfs"))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Image);
    }

    /// The job's own text (argv, environment values, mount targets) lands only as data:
    /// in its option's argument or after `--` and the image, never as an option.
    #[test]
    fn hostile_job_text_is_only_data() {
        let mut spec = sample();
        spec.argv = vec![
            "--user=0:0".into(),
            "--volume=/:/host".into(),
            "--privileged".into(),
            "-v".into(),
            "/:/host".into(),
        ];
        spec.env = vec!["X=--privileged".into(), "Y= --volume=/:/host".into()];
        spec.target_dir = "/work".into();
        for flavor in [EngineFlavor::Docker, EngineFlavor::Podman] {
            let engine = EngineRuntime::new(flavor);
            hostile_create_args(
                &engine.create_args(&spec, &image("anyimage:latest"), None),
                &spec,
            );
        }
    }

    fn hostile_create_args(args: &[String], spec: &JobSpec) {
        let end = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[end + 1], "anyimage:latest");
        assert_eq!(args[end + 2..], spec.argv[..]);
        for a in &args[1..end] {
            // Each option before `--` is one of petrel's own, its value joined by `=`.
            assert!(a.starts_with("--"), "{a}");
            assert!(
                !["--privileged", "-v", "--user=0:0", "--volume=/:/host"].contains(&a.as_str()),
                "{a} before the image"
            );
        }
        assert!(args.contains(&"--env=X=--privileged".to_string()));
        assert!(args.contains(&"--env=Y= --volume=/:/host".to_string()));
        assert_eq!(
            args[..end]
                .iter()
                .filter(|a| a.starts_with("--user"))
                .count(),
            1
        );
        assert!(args[..end].iter().all(|a| !a.starts_with("--volume=/:")));
    }
}
