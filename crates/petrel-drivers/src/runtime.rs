//! The driver interface, modelled on Nomad's task drivers: a [`Runtime`] probes itself and
//! starts jobs; each started job is a [`Handle`] to wait on, signal, exec into, measure
//! and destroy.

use std::time::Duration;

use serde::Serialize;

use crate::error::DriverError;
use crate::job_spec::{JobImage, JobSpec};
use crate::probe::{Probe, ProbeContext};

/// The kinds of image a job can name (`container_image`), as the slot ad advertises them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ImageKind {
    /// `docker://…`: HTCondor's `HasDockerURL`.
    DockerUrl,
    /// `*.sif`: HTCondor's `HasSIF`.
    Sif,
    /// A directory: HTCondor's `HasSandboxImage`.
    SandboxDir,
    /// A squashfs file (`*.sqfs`, `*.squashfs`): petrel's `HasSquashfs`.
    Squashfs,
    /// An OCI image layout (`oci:DIR[:TAG]` or a directory holding `oci-layout`):
    /// petrel's `HasOCILayout`.
    OciLayout,
}

impl ImageKind {
    pub const ALL: [ImageKind; 5] = [
        ImageKind::DockerUrl,
        ImageKind::Sif,
        ImageKind::SandboxDir,
        ImageKind::Squashfs,
        ImageKind::OciLayout,
    ];

    /// The kind of a `container_image` value, by HTCondor's rule (`docker:` prefix, `.sif`
    /// suffix, else a directory) plus petrel's squashfs and OCI-layout forms. `oci:` and
    /// `squashfs:`/`sif:`/`dir:` prefixes are petrel's explicit forms; an existing directory
    /// with an `oci-layout` file is a layout.
    pub fn from_container_image(image: &str) -> ImageKind {
        let image = image.trim();
        let lower = image.to_ascii_lowercase();
        if lower.starts_with("docker:") {
            ImageKind::DockerUrl
        } else if lower.starts_with("oci:") {
            ImageKind::OciLayout
        } else if lower.starts_with("sif:") || lower.ends_with(".sif") {
            ImageKind::Sif
        } else if lower.starts_with("squashfs:")
            || lower.ends_with(".sqfs")
            || lower.ends_with(".squashfs")
        {
            ImageKind::Squashfs
        } else if std::path::Path::new(image.trim_start_matches("dir:"))
            .join("oci-layout")
            .is_file()
        {
            ImageKind::OciLayout
        } else {
            ImageKind::SandboxDir
        }
    }

    /// A short name for people: `docker://`, `sif`, `directory`, `squashfs`, `oci layout`.
    pub fn label(self) -> &'static str {
        match self {
            ImageKind::DockerUrl => "docker://",
            ImageKind::Sif => "sif",
            ImageKind::SandboxDir => "directory",
            ImageKind::Squashfs => "squashfs",
            ImageKind::OciLayout => "oci layout",
        }
    }

    /// The slot attribute that says a slot can run this kind.
    pub fn attribute(self) -> &'static str {
        match self {
            ImageKind::DockerUrl => "HasDockerURL",
            ImageKind::Sif => "HasSIF",
            ImageKind::SandboxDir => "HasSandboxImage",
            ImageKind::Squashfs => "HasSquashfs",
            ImageKind::OciLayout => "HasOCILayout",
        }
    }

    /// The kind a [`JobImage`] is of (an engine image name counts as a registry image).
    pub fn of(image: &JobImage) -> ImageKind {
        match image {
            JobImage::Rootfs(_) => ImageKind::SandboxDir,
            JobImage::Sif(_) => ImageKind::Sif,
            JobImage::Squashfs(_) => ImageKind::Squashfs,
            JobImage::OciLayout { .. } => ImageKind::OciLayout,
            JobImage::Engine(_) => ImageKind::DockerUrl,
        }
    }
}

/// What a driver can do, declared rather than guessed (Nomad's `Capabilities`). The
/// probe checks every claim it can before the slot advertises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// `Handle::signal` reaches the job.
    pub signals: bool,
    /// `Handle::exec` runs a command inside the running container.
    pub exec: bool,
    /// Memory, CPU and pids limits are enforced (by the runtime or by a cgroup petrel makes).
    pub limits: bool,
    /// The job gets its own pid namespace (HTCondor's `HasPidNamespaces`).
    pub pid_namespace: bool,
    /// `NetMode::None` is honoured.
    pub network_isolation: bool,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

impl JobStatus {
    pub fn exit_code(self) -> Option<i32> {
        match self {
            JobStatus::Exited(code) => Some(code),
            JobStatus::Signaled(_) => None,
        }
    }

    pub fn signal(self) -> Option<i32> {
        match self {
            JobStatus::Signaled(sig) => Some(sig),
            JobStatus::Exited(_) => None,
        }
    }

    /// A shell's view: the exit code, or 128 + the signal.
    pub fn shell_status(self) -> i32 {
        match self {
            JobStatus::Exited(code) => code,
            JobStatus::Signaled(sig) => 128 + sig,
        }
    }

    /// Reads a status that a runtime reports as a shell would (runc, Docker, Podman give
    /// 128 + n for a job killed by signal n). Such a code is taken as a signal only when it
    /// matches one the driver itself delivered or the OOM killer's SIGKILL, so a job that
    /// really exits 143 is not misreported.
    pub(crate) fn from_shell_status(code: i32, sent: &[i32], oom_killed: bool) -> JobStatus {
        let sig = code - 128;
        if (1..=64).contains(&sig) && (sent.contains(&sig) || (oom_killed && sig == 9)) {
            JobStatus::Signaled(sig)
        } else {
            JobStatus::Exited(code)
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobStatus::Exited(code) => write!(f, "exited with status {code}"),
            JobStatus::Signaled(sig) => write!(f, "killed by signal {sig}"),
        }
    }
}

/// What a finished job did and used. Usage figures are `None` where the runtime gives no
/// way to measure them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitInfo {
    pub status: JobStatus,
    /// The kernel's OOM killer killed a process of the job because of its memory limit.
    pub oom_killed: bool,
    /// The memory limit in force, if any.
    pub memory_limit_bytes: Option<u64>,
    pub peak_memory_bytes: Option<u64>,
    pub user_cpu_seconds: Option<f64>,
    pub system_cpu_seconds: Option<f64>,
    pub wall_seconds: f64,
}

/// A running job's current resource use.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub memory_bytes: Option<u64>,
    pub peak_memory_bytes: Option<u64>,
    pub user_cpu_seconds: Option<f64>,
    pub system_cpu_seconds: Option<f64>,
    pub pids: Option<u64>,
}

/// A running job as another process knows it: what its starter recorded.
#[derive(Debug, Clone)]
pub struct RunningJob {
    /// The container's name.
    pub name: String,
    /// The pid [`Handle::pid`] gave.
    pub pid: Option<u32>,
    pub user: crate::User,
    pub workdir: String,
}

/// A container runtime petrel can run jobs with.
pub trait Runtime: Send + Sync {
    /// The runtime's name: `embedded`, `runc`, `crun`, `docker`, `podman`, `apptainer`,
    /// `singularity`, `charliecloud`. Used in `ContainerRuntimes` and `container_runtime`.
    fn name(&self) -> &'static str;

    /// The `container_image` kinds this runtime can run (after [`crate::prepare_image`]
    /// turns the image into a form it takes).
    fn image_kinds(&self) -> &'static [ImageKind];

    /// Whether [`Runtime::start`] takes this image form as it is.
    fn accepts(&self, image: &JobImage) -> bool;

    /// What the driver can do.
    fn capabilities(&self) -> Capabilities;

    /// Runs real test containers and reports whether the runtime works here, with the
    /// attributes to advertise, or the one-line reason it does not.
    fn probe(&self, ctx: &ProbeContext) -> Probe {
        crate::probe::run_probe(self, ctx)
    }

    /// The runtime's version, or why it cannot be used at all: `ErrorKind::Unavailable`
    /// when it is not installed, `ErrorKind::Runtime` when it is but does not answer (a
    /// daemon that is down, a program that fails).
    fn version(&self) -> Result<String, DriverError>;

    /// Starts the job and returns at once; the job runs until it ends or is destroyed.
    fn start(&self, spec: &JobSpec) -> Result<Box<dyn Handle>, DriverError>;

    /// Runs `argv` inside `job`, a container this driver started from another process
    /// (`petrel ssh` reaches a job its starter runs), as the job's user in its working
    /// directory, with the caller's stdio; `tty` asks for a terminal.
    fn exec_running(
        &self,
        job: &RunningJob,
        argv: &[String],
        tty: bool,
    ) -> Result<JobStatus, DriverError> {
        let _ = (job, argv, tty);
        Err(DriverError::slot(
            crate::ErrorKind::Unsupported,
            format!("{}: entering a running job is not supported", self.name()),
        ))
    }

    /// Says the caller no longer needs `image`: an engine drops the copy it imported for
    /// it (Docker, Podman). Engines keep imports between jobs until then, so a pool can
    /// run many jobs from one image with one import.
    fn release_image(&self, image: &JobImage) {
        let _ = image;
    }
}

/// A started job. Every method may be called from any thread, while another waits.
pub trait Handle: Send + Sync {
    /// The container's name.
    fn name(&self) -> &str;

    /// The host pid of the process the driver started (the runtime's CLI, or the
    /// container's init for the embedded runtime).
    fn pid(&self) -> Option<u32>;

    /// Waits for the job to end, at most `timeout` (`None`: for ever); `Ok(None)` when the
    /// time ran out. Once the job has ended, every call returns the same result. An error
    /// means the runtime could not run the job at all; its blame says why.
    fn wait_timeout(&self, timeout: Option<Duration>) -> Result<Option<ExitInfo>, DriverError>;

    /// Waits for the job to end.
    fn wait(&self) -> Result<ExitInfo, DriverError> {
        self.wait_timeout(None)?.ok_or_else(|| {
            DriverError::slot(
                crate::ErrorKind::Timeout,
                "wait without a timeout timed out",
            )
        })
    }

    /// Sends signal `sig` to the job.
    fn signal(&self, sig: i32) -> Result<(), DriverError>;

    /// Runs `argv` inside the running container, as the job's user in its working
    /// directory, with the caller's stdio (`petrel ssh`); `tty` asks for a terminal.
    fn exec(&self, argv: &[String], tty: bool) -> Result<JobStatus, DriverError>;

    /// The job's current resource use.
    fn stats(&self) -> Result<Stats, DriverError>;

    /// Kills whatever is left of the job and removes the container and everything the
    /// driver made for it. Safe to call more than once, and after the job ended. Dropping
    /// a handle destroys it too.
    fn destroy(&self) -> Result<(), DriverError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_container_image() {
        use ImageKind::*;
        assert_eq!(
            ImageKind::from_container_image("docker://busybox"),
            DockerUrl
        );
        assert_eq!(ImageKind::from_container_image("  /x/img.sif "), Sif);
        assert_eq!(ImageKind::from_container_image("/x/img.sqfs"), Squashfs);
        assert_eq!(
            ImageKind::from_container_image("oci:/x/layout:1"),
            OciLayout
        );
        assert_eq!(ImageKind::from_container_image("/x/rootfs/"), SandboxDir);
        assert_eq!(ImageKind::from_container_image("centos7"), SandboxDir);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oci-layout"), "{}").unwrap();
        assert_eq!(
            ImageKind::from_container_image(dir.path().to_str().unwrap()),
            OciLayout
        );
    }

    #[test]
    fn shell_status_is_a_signal_only_when_one_was_sent() {
        assert_eq!(
            JobStatus::from_shell_status(143, &[], false),
            JobStatus::Exited(143)
        );
        assert_eq!(
            JobStatus::from_shell_status(143, &[15], false),
            JobStatus::Signaled(15)
        );
        assert_eq!(
            JobStatus::from_shell_status(137, &[], true),
            JobStatus::Signaled(9)
        );
        assert_eq!(
            JobStatus::from_shell_status(37, &[9], false),
            JobStatus::Exited(37)
        );
        assert_eq!(JobStatus::Signaled(9).shell_status(), 137);
    }
}
