//! What to run: the runtime-neutral description of one container.

use std::path::PathBuf;

/// `PATH` inside the container when neither the image nor the caller sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the job's scratch directory appears inside the container (HTCondor's and
/// GlideinWMS's convention); it is also the working directory.
pub const DEFAULT_TARGET_DIR: &str = "/srv";

/// One container to run.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The root filesystem: a directory on the host, mounted read-only.
    pub rootfs: PathBuf,
    /// A writable layer over the root filesystem, if any.
    pub overlay: Overlay,
    /// The command and its arguments; `argv[0]` is looked up in the container's `PATH`.
    pub argv: Vec<String>,
    /// The complete environment (`KEY=VALUE`); nothing is inherited from the caller.
    pub env: Vec<String>,
    /// Working directory inside the container; defaults to the scratch target, else `/`.
    pub workdir: Option<String>,
    /// The job scratch directory on the host, bind-mounted read-write at `target_dir`.
    pub scratch: Option<PathBuf>,
    /// Where the scratch directory appears inside the container.
    pub target_dir: String,
    /// Further bind mounts, applied in order after the scratch directory.
    pub binds: Vec<Bind>,
    /// Hostname inside the container; `None` keeps the host's.
    pub hostname: Option<String>,
    /// Network namespace.
    pub net: NetMode,
    /// How ids map into the user namespace.
    pub id_mapping: IdMapping,
    /// The user the command runs as, inside the user namespace; `None` keeps the mapped caller.
    pub user: Option<User>,
    /// Capability names (`CAP_NET_RAW` or `net_raw`) the job keeps; only honoured for root.
    pub cap_add: Vec<String>,
    /// cgroup limits.
    pub limits: Limits,
    /// Install the default seccomp filter (on unless the caller turns it off).
    pub seccomp: bool,
    /// A name for the container, used for the cgroup and logs (`petrel_<cluster>_<proc>_<slot>`).
    pub name: Option<String>,
    /// The job's stdin, stdout and stderr; `None` keeps the caller's own. (Shared handles,
    /// so a spec stays cheap to clone; they are only read while the container starts.)
    pub stdio: [Option<std::sync::Arc<std::fs::File>>; 3],
}

impl ContainerSpec {
    /// A spec with petrel's defaults: read-only root, clean environment with a default `PATH`,
    /// host network, the caller's own ids, no limits, seccomp on.
    pub fn new(rootfs: impl Into<PathBuf>, argv: Vec<String>) -> Self {
        ContainerSpec {
            rootfs: rootfs.into(),
            overlay: Overlay::None,
            argv,
            env: vec![format!("PATH={DEFAULT_PATH}")],
            workdir: None,
            scratch: None,
            target_dir: DEFAULT_TARGET_DIR.to_string(),
            binds: Vec::new(),
            hostname: None,
            net: NetMode::Host,
            id_mapping: IdMapping::Identity,
            user: None,
            cap_add: Vec::new(),
            limits: Limits::default(),
            seccomp: true,
            name: None,
            stdio: [None, None, None],
        }
    }
}

/// A bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

impl Bind {
    /// Parses `SRC:DST[:ro|:rw]` (or `SRC` alone, mounted at the same path).
    pub fn parse(text: &str) -> Result<Bind, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [src] => (*src, *src, None),
            [src, dst] => (*src, *dst, None),
            [src, dst, mode] => (*src, *dst, Some(*mode)),
            _ => return Err(format!("'{text}': expected SRC:DST[:ro]")),
        };
        if source.is_empty() || target.is_empty() {
            return Err(format!(
                "'{text}': expected SRC:DST[:ro], with neither part empty"
            ));
        }
        if !target.starts_with('/') {
            return Err(format!(
                "'{text}': the target '{target}' must be an absolute path inside the container"
            ));
        }
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => {
                return Err(format!(
                    "'{text}': unknown mode '{other}', expected ro or rw"
                ))
            }
        };
        Ok(Bind {
            source: PathBuf::from(source),
            target: target.to_string(),
            read_only,
        })
    }
}

/// A writable layer over the read-only root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// The root filesystem is read-only.
    None,
    /// Writes go to a temporary layer that is discarded when the container exits.
    Discard,
    /// Writes are kept under this directory (`upper/` holds the changes, `work/` is overlayfs's).
    Keep(PathBuf),
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// Share the host's network namespace.
    Host,
    /// A new network namespace with only a loopback interface.
    None,
}

/// How the caller's ids appear inside the user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMapping {
    /// The caller's uid and gid map to themselves.
    Identity,
    /// The caller's uid and gid map to 0 (root inside, as `apptainer --fakeroot` and
    /// `ch-run --uid 0` do); the job still has only the caller's rights on the host.
    FakeRoot,
}

/// A user inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// Resource limits, applied through cgroups (v1 or v2, whichever the host runs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Hard memory limit in bytes; swap is not allowed on top of it.
    pub memory_bytes: Option<u64>,
    /// CPU bandwidth quota, in CPUs (1.5 = one and a half CPUs' worth of time).
    pub cpus: Option<f64>,
    /// Relative CPU weight, 1..=10000 (cgroup v2's scale; 100 is the default).
    pub cpu_weight: Option<u32>,
    /// Maximum number of processes and threads.
    pub pids: Option<u64>,
}

impl Limits {
    /// Whether any limit is set, so a cgroup is needed.
    pub fn any(&self) -> bool {
        self.memory_bytes.is_some()
            || self.cpus.is_some()
            || self.cpu_weight.is_some()
            || self.pids.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        let b = Bind::parse("/data:/in:ro").unwrap();
        assert_eq!(b.source, PathBuf::from("/data"));
        assert_eq!(b.target, "/in");
        assert!(b.read_only);
        assert!(!Bind::parse("/data:/in").unwrap().read_only);
        assert_eq!(Bind::parse("/data").unwrap().target, "/data");
        assert!(Bind::parse("/data:in").unwrap_err().contains("absolute"));
        assert!(Bind::parse("/data:/in:rx")
            .unwrap_err()
            .contains("unknown mode"));
        assert!(Bind::parse(":/in").is_err());
    }
}
