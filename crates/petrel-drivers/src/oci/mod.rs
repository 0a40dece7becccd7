//! runc and crun: the job as an OCI bundle (a `config.json` pointing at the prepared root
//! file system), run in the foreground with `RUNTIME --root STATE run --bundle B NAME`.
//!
//! The runtime's state lives under a private `--root`, so petrel's containers never mix
//! with another tool's. Its log goes to a file in the bundle (JSON), which is how a
//! failure to start (a command not in the image, a broken runtime) is told apart from the
//! job's own stderr. As root the container's cgroup is `/petrel/<name>/ctr`: runc keeps it
//! after the job (`--keep`) until petrel has read the OOM count, and the parent
//! `/petrel/<name>` keeps the peak memory and CPU time for crun, which has no `--keep`.

pub mod config;
pub mod rootfs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cgroupfs::CgroupPath;
use crate::error::{DriverError, ErrorKind};
use crate::handle::{init_diagnostic, init_exec_error, shell_status, Ended, JobProcess};
use crate::job_spec::{JobImage, JobSpec, User};
use crate::process::{self, run_captured, Child, SHORT};
use crate::runtime::{Capabilities, ExitInfo, Handle, ImageKind, JobStatus, Runtime, Stats};

pub use config::{ConfigOptions, INIT_TARGET};

/// Which OCI runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciFlavor {
    Runc,
    Crun,
}

impl OciFlavor {
    pub fn name(self) -> &'static str {
        match self {
            OciFlavor::Runc => "runc",
            OciFlavor::Crun => "crun",
        }
    }
}

/// The runc or crun driver.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    flavor: OciFlavor,
    program: String,
    state_dir: PathBuf,
    init: Option<PathBuf>,
}

impl OciRuntime {
    /// The driver for `flavor`, found in `PATH`, with state under [`crate::host::state_dir`]
    /// and the host's static init, if any.
    pub fn new(flavor: OciFlavor) -> OciRuntime {
        OciRuntime {
            flavor,
            program: flavor.name().to_string(),
            state_dir: crate::host::state_dir(flavor.name()),
            init: crate::host::static_init(),
        }
    }

    /// Uses this program (a name in `PATH` or a path) instead of the default.
    pub fn with_program(mut self, program: impl Into<String>) -> Self {
        self.program = program.into();
        self
    }

    /// Keeps the runtime's state and the bundles under `dir`.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Uses this static init in front of jobs (`None`: no init).
    pub fn with_init(mut self, init: Option<PathBuf>) -> Self {
        self.init = init;
        self
    }

    /// The `config.json` this driver would give the runtime for `spec`.
    pub fn config_for(&self, spec: &JobSpec) -> Result<oci_spec::runtime::Spec, DriverError> {
        config::config(spec, &self.config_options(spec))
    }

    fn config_options(&self, spec: &JobSpec) -> ConfigOptions {
        let caller = User::current();
        ConfigOptions {
            caller,
            init: self.init.clone(),
            cgroups_path: (caller.uid == 0).then(|| format!("{}/ctr", cgroup_parent(&spec.name))),
        }
    }

    /// The command line that runs the job from bundle `bundle`.
    pub fn run_args(&self, spec: &JobSpec, bundle: &Path) -> Vec<String> {
        let log = bundle.join("runtime.log");
        let mut args = self.global_args();
        match self.flavor {
            OciFlavor::Runc => args.extend([
                "--log".to_string(),
                log.display().to_string(),
                "--log-format".to_string(),
                "json".to_string(),
            ]),
            OciFlavor::Crun => args.extend([
                format!("--log=file:{}", log.display()),
                "--log-format=json".to_string(),
            ]),
        }
        args.extend(["run".to_string(), "--bundle".to_string()]);
        args.push(bundle.display().to_string());
        if self.flavor == OciFlavor::Runc {
            // Keep the stopped container (and its cgroup) until petrel has read the OOM count.
            args.push("--keep".to_string());
        }
        args.push(spec.name.clone());
        args
    }

    /// Where the runtime will mount something in the container's root.
    fn targets(&self, spec: &JobSpec) -> Vec<String> {
        let mut targets: Vec<String> = spec.all_binds().into_iter().map(|b| b.target).collect();
        if spec.init && self.init.is_some() {
            targets.push(INIT_TARGET.to_string());
        }
        targets
    }

    fn global_args(&self) -> Vec<String> {
        vec![
            "--root".to_string(),
            self.state_root().display().to_string(),
        ]
    }

    fn state_root(&self) -> PathBuf {
        self.state_dir.join("state")
    }

    fn program_path(&self) -> Result<PathBuf, DriverError> {
        process::require_program(self.flavor.name(), &self.program)
    }

    fn shared(&self) -> Result<Arc<Shared>, DriverError> {
        Ok(Arc::new(Shared {
            flavor: self.flavor,
            program: self.program_path()?,
            global: self.global_args(),
        }))
    }
}

/// The cgroup under which a job's container cgroup is made.
fn cgroup_parent(name: &str) -> String {
    format!("/petrel/{name}")
}

impl Runtime for OciRuntime {
    fn name(&self) -> &'static str {
        self.flavor.name()
    }

    fn image_kinds(&self) -> &'static [ImageKind] {
        &[
            ImageKind::DockerUrl,
            ImageKind::SandboxDir,
            ImageKind::OciLayout,
        ]
    }

    fn accepts(&self, image: &JobImage) -> bool {
        matches!(image, JobImage::Rootfs(_))
    }

    fn capabilities(&self) -> Capabilities {
        let root = User::current().uid == 0;
        Capabilities {
            signals: true,
            exec: true,
            limits: root,
            pid_namespace: true,
            network_isolation: true,
        }
    }

    fn version(&self) -> Result<String, DriverError> {
        let program = self.program_path()?;
        let out = run_captured(Command::new(&program).arg("--version"), None, SHORT)?;
        let first = out.stdout.lines().next().unwrap_or("").trim().to_string();
        let prefix = format!("{} version ", self.flavor.name());
        match first.strip_prefix(&prefix) {
            Some(v) if out.success() => Ok(v.trim().to_string()),
            _ => Err(DriverError::slot(
                ErrorKind::Runtime,
                format!("`{} --version` said '{}'", program.display(), out.message()),
            )),
        }
    }

    fn exec_running(
        &self,
        job: &crate::RunningJob,
        argv: &[String],
        tty: bool,
    ) -> Result<JobStatus, DriverError> {
        let shared = self.shared()?;
        process::run_interactive(shared.exec_command(&job.name, job.user, &job.workdir, argv, tty))
    }

    fn start(&self, spec: &JobSpec) -> Result<Box<dyn Handle>, DriverError> {
        spec.validate()?;
        let shared = self.shared()?;
        let mut oci = self.config_for(spec)?;
        spec.image.check_present()?;
        shared.remove_stale(&spec.name);
        let root = User::current().uid == 0;
        let bundle = crate::host::job_dir(&self.state_dir.join("bundles"), &spec.name)?;
        let overlay = match &spec.image {
            JobImage::Rootfs(dir)
                if root
                    && !rootfs::has_mount_points(
                        dir,
                        self.targets(spec).iter().map(String::as_str),
                    ) =>
            {
                Some(rootfs::Overlay::mount(dir, bundle.path())?)
            }
            _ => None,
        };
        if let (Some(overlay), Some(r)) = (&overlay, oci.root()) {
            let mut r = r.clone();
            r.set_path(overlay.path().to_path_buf());
            oci.set_root(Some(r));
        }
        oci.save(bundle.path().join("config.json")).map_err(|e| {
            DriverError::slot(
                ErrorKind::Io,
                format!("writing the bundle's config.json: {e}"),
            )
        })?;
        let mut cmd = Command::new(&shared.program);
        cmd.args(self.run_args(spec, bundle.path()));
        let uses_init = spec.init && self.init.is_some();
        let child = Child::spawn(
            cmd,
            &spec.stdin,
            &spec.stdout,
            &spec.stderr,
            uses_init.then_some(init_diagnostic as fn(&str) -> bool),
        )?;
        let user = spec.user.unwrap_or(User::current());
        Ok(Box::new(OciHandle {
            shared,
            job: JobProcess::new(&spec.name, child),
            overlay: Mutex::new(overlay),
            bundle: Mutex::new(Some(bundle)),
            cgroup: root.then(|| CgroupPath::new(&cgroup_parent(&spec.name))),
            leaf: root.then(|| CgroupPath::new(&format!("{}/ctr", cgroup_parent(&spec.name)))),
            user,
            workdir: spec.workdir().to_string(),
            memory_limit: spec.limits.memory_bytes.filter(|_| root),
        }))
    }
}

/// What a handle needs of its driver.
struct Shared {
    flavor: OciFlavor,
    program: PathBuf,
    global: Vec<String>,
}

impl Shared {
    /// `exec` into container `name` as `user` in `workdir` (`petrel ssh`).
    fn exec_command(
        &self,
        name: &str,
        user: User,
        workdir: &str,
        argv: &[String],
        tty: bool,
    ) -> Command {
        let mut cmd = self.command();
        cmd.arg("exec");
        if tty {
            cmd.arg("--tty");
        }
        // Values in their options' own arguments; the container's name is petrel's
        // (`valid_name`), and runc reads everything after it as the command.
        cmd.arg(format!("--cwd={workdir}"))
            .arg(format!("--user={}:{}", user.uid, user.gid))
            .arg(name)
            .args(argv);
        cmd
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.global);
        cmd
    }

    /// Removes a stopped or orphaned container of this name left by a crashed petrel.
    fn remove_stale(&self, name: &str) {
        let exists = run_captured(self.command().args(["state", name]), None, SHORT)
            .is_ok_and(|o| o.success());
        if exists {
            tracing::info!(
                "{}: removing a stale container named {name}",
                self.flavor.name()
            );
            self.delete(name);
        }
    }

    fn delete(&self, name: &str) {
        match run_captured(
            self.command().args(["delete", "--force", name]),
            None,
            SHORT,
        ) {
            Ok(out) if out.success() => {}
            Ok(out)
                if out.message().contains("does not exist")
                    || out.message().contains("not found") => {}
            Ok(out) => tracing::warn!("{} delete {name}: {}", self.flavor.name(), out.message()),
            Err(e) => tracing::warn!("{} delete {name}: {e}", self.flavor.name()),
        }
    }
}

struct OciHandle {
    shared: Arc<Shared>,
    job: JobProcess,
    /// The job's root when the image lacked a mount point; inside the bundle.
    overlay: Mutex<Option<rootfs::Overlay>>,
    bundle: Mutex<Option<tempfile::TempDir>>,
    /// `/petrel/<name>`: outlives the container's own cgroup, keeping peak memory and CPU.
    cgroup: Option<CgroupPath>,
    /// `/petrel/<name>/ctr`: the container's cgroup, where the OOM kills are counted.
    leaf: Option<CgroupPath>,
    user: User,
    workdir: String,
    memory_limit: Option<u64>,
}

impl OciHandle {
    fn finish(&self, ended: Ended<'_>) -> Result<ExitInfo, DriverError> {
        let name = self.shared.flavor.name();
        let log_error = self
            .bundle
            .lock()
            .ok()
            .and_then(|b| b.as_ref().map(|b| b.path().join("runtime.log")))
            .and_then(|log| last_log_error(&log));
        let oom_killed = self.leaf.as_ref().is_some_and(|c| c.oom_kills() > 0)
            || self.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
        let (user_cpu, system_cpu) = self.cgroup.as_ref().map_or((None, None), |c| c.cpu());
        let peak = self.cgroup.as_ref().and_then(CgroupPath::peak_memory_bytes);
        let status = shell_status(&ended, oom_killed);
        self.cleanup();
        if let (false, Some(message)) = (ended.status.success(), log_error) {
            return Err(DriverError::from_runtime_message(name, &message));
        }
        if matches!(status, JobStatus::Exited(126 | 127)) {
            if let Some(err) = init_exec_error(name, &self.job.child.diagnostics()) {
                return Err(err);
            }
        }
        Ok(ExitInfo {
            status,
            oom_killed,
            memory_limit_bytes: self.memory_limit,
            peak_memory_bytes: peak,
            user_cpu_seconds: user_cpu.map(|d| d.as_secs_f64()),
            system_cpu_seconds: system_cpu.map(|d| d.as_secs_f64()),
            wall_seconds: ended.wall.as_secs_f64(),
        })
    }

    /// Removes the container, its cgroups and its bundle.
    fn cleanup(&self) {
        self.shared.delete(&self.job.name);
        if let Some(leaf) = &self.leaf {
            leaf.remove();
        }
        if let Some(cg) = &self.cgroup {
            cg.remove();
        }
        if let Ok(mut overlay) = self.overlay.lock() {
            overlay.take();
        }
        if let Ok(mut bundle) = self.bundle.lock() {
            bundle.take();
        }
    }
}

/// The message of the last error entry in a runtime's JSON log.
fn last_log_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        matches!(v["level"].as_str(), Some("error" | "fatal"))
            .then(|| v["msg"].as_str().map(str::to_string))
            .flatten()
    })
}

impl Handle for OciHandle {
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
        kill.args(["kill", &self.job.name, &sig.to_string()]);
        self.job.signal_with(sig, kill)
    }

    fn exec(&self, argv: &[String], tty: bool) -> Result<JobStatus, DriverError> {
        let cmd = self
            .shared
            .exec_command(&self.job.name, self.user, &self.workdir, argv, tty);
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
        kill.args(["kill", &self.job.name, "KILL"]);
        self.job.destroy_with(kill, |ended| self.finish(ended))
    }
}

impl Drop for OciHandle {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            tracing::warn!("{}: {e}", self.job.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_for_runc_and_crun() {
        let spec = JobSpec::new(
            "petrel_7_0_slot1",
            JobImage::Rootfs("/images/bb".into()),
            vec!["true".into()],
        );
        let runc = OciRuntime::new(OciFlavor::Runc).with_state_dir("/run/p/runc");
        assert_eq!(
            runc.run_args(&spec, Path::new("/run/p/runc/bundles/b")),
            [
                "--root",
                "/run/p/runc/state",
                "--log",
                "/run/p/runc/bundles/b/runtime.log",
                "--log-format",
                "json",
                "run",
                "--bundle",
                "/run/p/runc/bundles/b",
                "--keep",
                "petrel_7_0_slot1"
            ]
        );
        let crun = OciRuntime::new(OciFlavor::Crun).with_state_dir("/run/p/crun");
        assert_eq!(
            crun.run_args(&spec, Path::new("/b")),
            [
                "--root",
                "/run/p/crun/state",
                "--log=file:/b/runtime.log",
                "--log-format=json",
                "run",
                "--bundle",
                "/b",
                "petrel_7_0_slot1"
            ]
        );
    }

    #[test]
    fn reads_the_last_log_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(
            &log,
            "{\"level\":\"warning\",\"msg\":\"w\"}\nnot json\n\
             {\"level\":\"error\",\"msg\":\"runc run failed: exec: \\\"nope\\\": executable file not found in $PATH\"}\n",
        )
        .unwrap();
        let msg = last_log_error(&log).unwrap();
        assert!(msg.ends_with("executable file not found in $PATH"));
        let err = DriverError::from_runtime_message("runc", &msg);
        assert_eq!(err.kind, ErrorKind::Command);
        assert!(last_log_error(&dir.path().join("none")).is_none());
    }
}
