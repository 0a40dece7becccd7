//! What to run: one runtime-neutral description of a container job, which every driver
//! translates into its own terms (a petrel-runtime spec, an OCI `config.json`, CLI flags).

use std::path::{Path, PathBuf};

/// Where the job's scratch directory appears inside every runtime, and the working
/// directory (HTCondor's and GlideinWMS's convention; `container_target_dir` changes it).
pub const DEFAULT_TARGET_DIR: &str = "/srv";

/// `PATH` for jobs whose environment sets none.
pub const DEFAULT_PATH: &str = petrel_runtime::DEFAULT_PATH;

/// The image a job runs, in the form a runtime takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobImage {
    /// An unpacked root file system: a directory from `petrel_image::Store::prepare`, or a
    /// sandbox directory the user named. Used read-only.
    Rootfs(PathBuf),
    /// A SIF file (Apptainer/Singularity).
    Sif(PathBuf),
    /// A squashfs file holding a root file system.
    Squashfs(PathBuf),
    /// An OCI image layout directory and the tag to pick.
    OciLayout { path: PathBuf, tag: Option<String> },
    /// An image name the engine resolves in its own store (`busybox:1.36`,
    /// `localhost/petrel_rootfs:…`): only Docker and Podman take these.
    Engine(String),
}

impl JobImage {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            JobImage::Rootfs(p) => format!("root file system {}", p.display()),
            JobImage::Sif(p) => format!("SIF {}", p.display()),
            JobImage::Squashfs(p) => format!("squashfs {}", p.display()),
            JobImage::OciLayout { path, tag } => match tag {
                Some(t) => format!("OCI layout {}:{t}", path.display()),
                None => format!("OCI layout {}", path.display()),
            },
            JobImage::Engine(name) => format!("engine image {name}"),
        }
    }

    /// Checks that a local image is there (a root file system must be a directory), so a
    /// missing image fails at start, blaming the job, whichever runtime runs it.
    pub fn check_present(&self) -> Result<(), crate::DriverError> {
        let missing = match self {
            JobImage::Rootfs(dir) => !dir.is_dir(),
            JobImage::Engine(_) => false,
            other => other.path().is_some_and(|p| !p.exists()),
        };
        if missing {
            return Err(crate::DriverError::job(
                crate::ErrorKind::Image,
                format!("{} does not exist", self.describe()),
            ));
        }
        Ok(())
    }

    /// The file or directory the image lives in, if it is on the local file system.
    pub fn path(&self) -> Option<&Path> {
        match self {
            JobImage::Rootfs(p) | JobImage::Sif(p) | JobImage::Squashfs(p) => Some(p),
            JobImage::OciLayout { path, .. } => Some(path),
            JobImage::Engine(_) => None,
        }
    }
}

/// A bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// A user inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// The calling process's effective ids.
    pub fn current() -> User {
        User {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }
}

/// Resource limits. Every driver that claims a limit in its capabilities enforces it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// CPU bandwidth, in CPUs (1.5 = one and a half CPUs' worth of time).
    pub cpus: Option<f64>,
    /// Hard memory limit in bytes, with no swap on top.
    pub memory_bytes: Option<u64>,
    /// Maximum number of processes and threads.
    pub pids: Option<u64>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.cpus.is_some() || self.memory_bytes.is_some() || self.pids.is_some()
    }
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetMode {
    /// The host's network (HTCondor's default for container jobs).
    #[default]
    Host,
    /// Only a loopback interface.
    None,
}

/// Where one of the job's standard streams goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Stdio {
    /// `/dev/null`.
    #[default]
    Null,
    /// The caller's own stream (interactive use, `petrel run`-like callers).
    Inherit,
    /// A file: read for stdin; created or truncated for stdout and stderr.
    File(PathBuf),
}

/// One job to run in a container.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The container's name, `petrel_<cluster>_<proc>_<slot>` ([`container_name`]); unique
    /// among running jobs, because engines and runc key their state by it.
    pub name: String,
    pub image: JobImage,
    /// The command and its arguments; `argv[0]` is looked up in the container's `PATH`.
    pub argv: Vec<String>,
    /// The complete environment (`KEY=VALUE`); nothing is inherited from the caller.
    pub env: Vec<String>,
    /// Working directory inside the container; `None` means the scratch target when there
    /// is a scratch directory, else `/`.
    pub cwd: Option<String>,
    /// The job's scratch directory on the host, mounted read-write at `target_dir`.
    pub scratch: Option<PathBuf>,
    pub target_dir: String,
    /// Further bind mounts, after the scratch directory.
    pub binds: Vec<Bind>,
    /// Who the job runs as; `None` means the calling process's own ids.
    pub user: Option<User>,
    pub limits: Limits,
    pub network: NetMode,
    /// Hostname inside the container, for runtimes that give it its own UTS namespace.
    pub hostname: Option<String>,
    /// Give the job the host's GPUs (`--nv` for Apptainer, `--gpus all` for Docker).
    pub gpus: bool,
    /// Put an init process in front of the job as pid 1 (reaps orphans and, above all,
    /// forwards signals: a job that is pid 1 itself ignores an unhandled SIGTERM). The
    /// embedded runtime always has one; Docker and Podman use `--init`; runc and crun get
    /// the host's static `tini`/`catatonit` when one is installed.
    pub init: bool,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl JobSpec {
    /// A spec with petrel's defaults: a clean environment with a default `PATH`, no
    /// scratch directory, the caller's ids, no limits, host network, an init, stdio to
    /// `/dev/null`.
    pub fn new(name: impl Into<String>, image: JobImage, argv: Vec<String>) -> JobSpec {
        JobSpec {
            name: name.into(),
            image,
            argv,
            env: vec![format!("PATH={DEFAULT_PATH}")],
            cwd: None,
            scratch: None,
            target_dir: DEFAULT_TARGET_DIR.to_string(),
            binds: Vec::new(),
            user: None,
            limits: Limits::default(),
            network: NetMode::Host,
            hostname: None,
            gpus: false,
            init: true,
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
        }
    }

    /// The working directory the job starts in.
    pub fn workdir(&self) -> &str {
        match &self.cwd {
            Some(dir) => dir,
            None if self.scratch.is_some() => &self.target_dir,
            None => "/",
        }
    }

    /// The user the job runs as: the one asked for, or the caller.
    pub fn effective_user(&self) -> User {
        self.user.unwrap_or_else(User::current)
    }

    /// Every mount, scratch first, as `(source, target, read_only)`.
    pub fn all_binds(&self) -> Vec<Bind> {
        let mut out = Vec::with_capacity(self.binds.len() + 1);
        if let Some(scratch) = &self.scratch {
            out.push(Bind {
                source: scratch.clone(),
                target: self.target_dir.clone(),
                read_only: false,
            });
        }
        out.extend(self.binds.iter().cloned());
        out
    }

    /// Checks what every driver needs; drivers add their own checks.
    pub fn validate(&self) -> Result<(), crate::DriverError> {
        use crate::{DriverError, ErrorKind};
        if self.argv.is_empty() {
            return Err(DriverError::job(ErrorKind::Spec, "no command given"));
        }
        if !valid_name(&self.name) {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!(
                    "container name '{}' must be 1-128 characters of [A-Za-z0-9_.-], \
                     starting with a letter or digit",
                    self.name
                ),
            ));
        }
        if !self.target_dir.starts_with('/') {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!("target dir '{}' is not an absolute path", self.target_dir),
            ));
        }
        for bind in &self.binds {
            if !bind.target.starts_with('/') {
                return Err(DriverError::job(
                    ErrorKind::Spec,
                    format!("bind target '{}' is not an absolute path", bind.target),
                ));
            }
        }
        if let Some(kv) = self.env.iter().find(|kv| !kv.contains('=')) {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!("environment entry '{kv}' is not KEY=VALUE"),
            ));
        }
        Ok(())
    }
}

/// The container name for job `cluster.proc` on slot `slot`, as HTCondor names them.
pub fn container_name(cluster: u64, proc: u64, slot: &str) -> String {
    let slot: String = slot
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("petrel_{cluster}_{proc}_{slot}")
}

/// Names every runtime accepts (Docker's rule is the strictest: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(container_name(12, 3, "slot1_2"), "petrel_12_3_slot1_2");
        assert_eq!(container_name(1, 0, "slot1@host"), "petrel_1_0_slot1_host");
        assert!(valid_name("petrel_1_0_slot1"));
        assert!(!valid_name("_x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn workdir_defaults_to_the_scratch_target() {
        let mut spec = JobSpec::new("j", JobImage::Engine("x".into()), vec!["true".into()]);
        assert_eq!(spec.workdir(), "/");
        spec.scratch = Some("/tmp/s".into());
        assert_eq!(spec.workdir(), "/srv");
        assert_eq!(spec.all_binds()[0].target, "/srv");
        spec.cwd = Some("/tmp".into());
        assert_eq!(spec.workdir(), "/tmp");
    }

    #[test]
    fn validation_names_the_problem() {
        let mut spec = JobSpec::new("j", JobImage::Engine("x".into()), vec![]);
        assert!(spec.validate().unwrap_err().message.contains("no command"));
        spec.argv = vec!["true".into()];
        spec.env.push("NOEQUALS".into());
        assert!(spec.validate().unwrap_err().message.contains("NOEQUALS"));
    }
}
