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
    Engine(EngineRef),
}

/// An image name for Docker or Podman, built only by [`EngineRef::parse`], which holds it
/// to Docker's reference grammar: it never starts with `-` and holds no whitespace, so the
/// engine's CLI can never read it as an option (HTCondor's `docker_image` is one reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineRef(String);

impl EngineRef {
    /// Checks `text` (a `docker://` prefix is dropped) and keeps it as written, for the
    /// engine to resolve by its own rules (Podman's search registries, say).
    pub fn parse(text: &str) -> Result<EngineRef, crate::DriverError> {
        let text = text.trim();
        let text = text.strip_prefix("docker://").unwrap_or(text);
        petrel_image::DockerRef::parse(text)
            .map_err(|e| crate::DriverError::job(crate::ErrorKind::Image, e.to_string()))?;
        Ok(EngineRef(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EngineRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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
        let spec_err = |m: String| Err(DriverError::job(ErrorKind::Spec, m));
        if let Some(path) = self.image.path() {
            // A relative path could start with `-` and be read as a runtime's option.
            if !path.is_absolute() {
                return Err(DriverError::job(
                    ErrorKind::Image,
                    format!("{} is not an absolute path", self.image.describe()),
                ));
            }
        }
        check_mount_path("target dir", &self.target_dir)?;
        if let Some(cwd) = &self.cwd {
            check_mount_path("working directory", cwd)?;
        }
        for bind in &self.binds {
            check_mount_path("bind target", &bind.target)?;
            check_mount_path("bind source", &bind.source.to_string_lossy())?;
        }
        if let Some(source) = &self.scratch {
            check_mount_path("scratch directory", &source.to_string_lossy())?;
        }
        for kv in &self.env {
            let Some((key, value)) = kv.split_once('=') else {
                return spec_err(format!("environment entry '{kv}' is not KEY=VALUE"));
            };
            if key.is_empty() || key.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return spec_err(format!(
                    "environment variable name {key:?} is empty or holds whitespace or \
                     control characters"
                ));
            }
            if value.contains('\0') {
                return spec_err(format!("environment variable {key} holds a NUL byte"));
            }
        }
        if let Some(argv0) = self.argv.iter().find(|a| a.contains('\0')) {
            return spec_err(format!("command argument {argv0:?} holds a NUL byte"));
        }
        if let Some(host) = &self.hostname {
            let ok = !host.is_empty()
                && host.len() <= 64
                && host.as_bytes()[0].is_ascii_alphanumeric()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return spec_err(format!("hostname {host:?} is not a host name"));
            }
        }
        Ok(())
    }
}

/// A path a runtime's mount option carries (`--volume=SRC:DST:ro`, `--bind=SRC:DST,…`):
/// absolute, and without the characters those options split on (`:`, `,`) or any
/// control character, so no part of it can become another mount or option.
fn check_mount_path(what: &str, path: &str) -> Result<(), crate::DriverError> {
    let bad = if !path.starts_with('/') {
        Some("is not an absolute path")
    } else if path.contains([':', ',']) {
        Some("holds ':' or ',', which runtimes read as mount separators")
    } else if path.chars().any(char::is_control) {
        Some("holds a control character")
    } else {
        None
    };
    match bad {
        Some(why) => Err(crate::DriverError::job(
            crate::ErrorKind::Spec,
            format!("{what} {path:?} {why}"),
        )),
        None => Ok(()),
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

    fn engine(name: &str) -> JobImage {
        JobImage::Engine(EngineRef::parse(name).unwrap())
    }

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
        let mut spec = JobSpec::new("j", engine("x"), vec!["true".into()]);
        assert_eq!(spec.workdir(), "/");
        spec.scratch = Some("/tmp/s".into());
        assert_eq!(spec.workdir(), "/srv");
        assert_eq!(spec.all_binds()[0].target, "/srv");
        spec.cwd = Some("/tmp".into());
        assert_eq!(spec.workdir(), "/tmp");
    }

    #[test]
    fn validation_names_the_problem() {
        let mut spec = JobSpec::new("j", engine("x"), vec![]);
        assert!(spec.validate().unwrap_err().message.contains("no command"));
        spec.argv = vec!["true".into()];
        spec.env.push("NOEQUALS".into());
        assert!(spec.validate().unwrap_err().message.contains("NOEQUALS"));
    }

    #[test]
    fn engine_refs_are_references_not_options() {
        assert_eq!(
            EngineRef::parse(" docker://busybox:1.36 ")
                .unwrap()
                .as_str(),
            "busybox:1.36"
        );
        for bad in ["--volume=/:/host", "-v", "--privileged", "a b", "", "x\ny"] {
            let err = EngineRef::parse(bad).unwrap_err();
            assert_eq!(
                (err.blame, err.kind),
                (crate::Blame::Job, crate::ErrorKind::Image),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn validation_refuses_what_a_runtime_could_read_as_more() {
        let ok = || {
            let mut spec = JobSpec::new("j", JobImage::Rootfs("/r".into()), vec!["true".into()]);
            spec.scratch = Some("/scratch/1".into());
            spec
        };
        assert!(ok().validate().is_ok());
        let mut cases: Vec<(JobSpec, &str)> = Vec::new();
        let mut s = ok();
        s.image = JobImage::Sif("--bind=/:/host".into());
        cases.push((s, "absolute"));
        let mut s = ok();
        s.target_dir = "/srv,/:/host".into();
        cases.push((s, "separators"));
        let mut s = ok();
        s.target_dir = "/srv:/host".into();
        cases.push((s, "separators"));
        let mut s = ok();
        s.cwd = Some("/x\n".into());
        cases.push((s, "control"));
        let mut s = ok();
        s.binds.push(Bind {
            source: "/a".into(),
            target: "relative".into(),
            read_only: true,
        });
        cases.push((s, "absolute"));
        let mut s = ok();
        s.env.push("=x".into());
        cases.push((s, "name"));
        let mut s = ok();
        s.env.push("A\nB=x".into());
        cases.push((s, "name"));
        let mut s = ok();
        s.hostname = Some("--privileged".into());
        cases.push((s, "host name"));
        for (spec, said) in cases {
            let err = spec.validate().unwrap_err();
            assert!(err.message.contains(said), "{said}: {}", err.message);
        }
    }
}
