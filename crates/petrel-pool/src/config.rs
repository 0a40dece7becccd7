//! Where a pool keeps its state, and its settings.
//!
//! A pool lives in one directory: `queue.db` (SQLite, WAL), `pool.sock` (the API),
//! `execute/` (job scratch directories), `spool/` (per-job starter files) and
//! `daemon.log`. A user's own pool is `$XDG_STATE_HOME/petrel/pool` (or
//! `~/.local/state/petrel/pool`, else under a private `$XDG_RUNTIME_DIR`, else
//! `/tmp/petrel-UID`); root's is the system pool `/var/lib/petrel/pool`.
//! `PETREL_POOL_DIR` names another (a shared system pool, a test's private pool).
//!
//! Settings come from `<dir>/config` (HTCondor style: `NAME = value` lines, `#` comments)
//! and are overridden by `PETREL_<NAME>` environment variables of the daemon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::PoolError;
use crate::policy::{ContainerPolicy, PoolPolicy};

/// The directory of the pool this process talks to.
pub fn default_pool_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PETREL_POOL_DIR") {
        return PathBuf::from(dir);
    }
    if rustix::process::getuid().is_root() {
        return PathBuf::from("/var/lib/petrel/pool");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .or_else(crate::trust::runtime_dir)
        // Checked before use (`trust`): another user may have made it first.
        .unwrap_or_else(|| {
            PathBuf::from(format!(
                "/tmp/petrel-{}",
                rustix::process::getuid().as_raw()
            ))
        });
    state.join("petrel/pool")
}

/// The pool's files.
#[derive(Debug, Clone)]
pub struct PoolPaths {
    pub dir: PathBuf,
}

impl PoolPaths {
    pub fn new(dir: impl Into<PathBuf>) -> PoolPaths {
        PoolPaths { dir: dir.into() }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("pool.sock")
    }
    pub fn database(&self) -> PathBuf {
        self.dir.join("queue.db")
    }
    pub fn execute(&self) -> PathBuf {
        self.dir.join("execute")
    }
    pub fn spool(&self) -> PathBuf {
        self.dir.join("spool")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }
}

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// CPUs of the partitionable slot (`NUM_CPUS`; default: the CPUs this process may use).
    pub cpus: u32,
    /// Memory of the slot in MiB (`MEMORY`; default: physical memory).
    pub memory_mib: u64,
    /// Disk of the slot in KiB (`DISK`; default: free space of the execute directory).
    pub disk_kib: u64,
    /// How often `periodic_*` expressions are evaluated (`PERIODIC_EXPR_INTERVAL`, s).
    pub periodic_interval: Duration,
    /// The longest a negotiation cycle waits when nothing happens (`NEGOTIATOR_INTERVAL`, s);
    /// submits and finished jobs start a cycle at once.
    pub negotiator_interval: Duration,
    /// Users who may act on every job besides root (`QUEUE_SUPER_USERS`, comma list).
    pub super_users: Vec<String>,
    /// Where job scratch directories are made (`EXECUTE`).
    pub execute_dir: PathBuf,
    /// Extra slot attributes (`STARTD_ATTRS`-like: `SLOT_ATTR_<Name> = expr`).
    pub slot_attrs: Vec<(String, String)>,
    /// The `petrel` binary that runs as the starter.
    pub starter_program: PathBuf,
    /// Container runtimes to probe and use, in order of preference (`CONTAINER_RUNTIMES`;
    /// default: every runtime petrel knows, its own first). A runtime left out is never
    /// used, which is how a site disables one.
    pub runtimes: Vec<String>,
    /// How often the runtimes are probed again (`RUNTIME_PROBE_INTERVAL`, s). A runtime
    /// that a failed job blames is probed again at once.
    pub probe_interval: Duration,
    /// The pool's side of the container policy (`CONTAINER_POLICY`,
    /// `CONTAINER_DEFAULT_IMAGE`, `CONTAINER_IMAGE_ALLOW`, `CONTAINER_IMAGE_DENY`).
    pub container: PoolPolicy,
    /// Execute-side hooks and validation scripts the starter runs.
    pub hooks: ExecuteHooks,
    /// How long a slot refuses an image after a validation script failed in it
    /// (`CONTAINER_VALIDATION_BLOCK_TIME`, s; default 600).
    pub validation_block: Duration,
    /// What one user's clients may cost the daemon.
    pub clients: ClientLimits,
    /// The most processes and threads one job may have at once (`JOB_PIDS_LIMIT`; 0: no
    /// limit). HTCondor sets none; petrel does, so that a fork bomb in one job cannot take
    /// the host's pid space from every other user. The default leaves room for any real
    /// job (parallel builds, thread pools of a many-core node) while staying far below the
    /// kernel's usual `pid_max` (32768 to 4194304).
    pub job_pids_limit: Option<u64>,
}

/// Bounds on what clients may hold of the daemon, so that no user can starve it for
/// the others. Root and the daemon's own user are held only to the timeouts and the
/// protocol's largest message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// Open connections per user (`MAX_CONNECTIONS_PER_USER`, default 64).
    pub connections_per_user: usize,
    /// Bytes of unfinished messages per user, over all their connections
    /// (`MAX_CLIENT_MEMORY_PER_USER`, MiB, default 512: a submit of a million procs).
    pub memory_per_user: usize,
    /// How long a connection may wait between messages (`CLIENT_IDLE_TIMEOUT`, s,
    /// default 120).
    pub idle: Duration,
    /// How long a message may take to arrive once begun, and an answer to be taken
    /// (`CLIENT_MESSAGE_TIMEOUT`, s, default 60).
    pub message: Duration,
    /// Jobs one user may have in the queue (`MAX_JOBS_PER_OWNER`, default 100000, as
    /// HTCondor's schedd).
    pub jobs_per_owner: usize,
    /// Jobs in the queue, of all users (`MAX_JOBS_SUBMITTED`, default 1000000).
    pub jobs_submitted: usize,
    /// Bytes of job ads one user may have in the queue, as stored
    /// (`MAX_QUEUE_MEMORY_PER_OWNER`, MiB, default 1024): the job count alone does not
    /// bound what a user's ads cost the daemon, since an attribute may be large.
    pub queue_bytes_per_owner: usize,
}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            connections_per_user: 64,
            memory_per_user: 512 << 20,
            idle: Duration::from_secs(120),
            message: Duration::from_secs(60),
            jobs_per_owner: 100_000,
            jobs_submitted: 1_000_000,
            queue_bytes_per_owner: 1 << 30,
        }
    }
}

/// `JOB_PIDS_LIMIT` when the configuration does not set it.
pub const DEFAULT_JOB_PIDS_LIMIT: u64 = 4096;

/// Programs the starter runs around a job, all host paths.
///
/// The hooks are HTCondor's starter hooks: `HOOK_PREPARE_JOB` and `HOOK_JOB_EXIT`, or
/// `<K>_HOOK_PREPARE_JOB` and `<K>_HOOK_JOB_EXIT` when `STARTER_DEFAULT_JOB_HOOK_KEYWORD =
/// K`. `CONTAINER_VALIDATION_SCRIPTS` (comma list) run inside the job's container before
/// the job, as GlideinWMS's validation scripts do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteHooks {
    pub prepare: Option<PathBuf>,
    pub exit: Option<PathBuf>,
    #[serde(default)]
    pub validation: Vec<PathBuf>,
}

impl PoolConfig {
    /// Reads `<dir>/config` and `PETREL_*` overrides, filling in what the machine has.
    pub fn load(paths: &PoolPaths) -> Result<PoolConfig, PoolError> {
        let mut settings = HashMap::new();
        let file = paths.config();
        match std::fs::read_to_string(&file) {
            Ok(text) => parse_config(&text, &file, &mut settings)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(PoolError::io(format!("reading {}", file.display()), e)),
        }
        for (key, value) in std::env::vars() {
            if let Some(name) = key.strip_prefix("PETREL_") {
                settings.insert(name.to_ascii_uppercase(), value);
            }
        }
        let get = |name: &str| settings.get(name).map(|s| s.trim().to_string());
        let number = |name: &str| -> Result<Option<u64>, PoolError> {
            get(name)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        PoolError::Config(format!("{name} = {v}: expected a whole number"))
                    })
                })
                .transpose()
        };
        let execute_dir = get("EXECUTE")
            .map(PathBuf::from)
            .unwrap_or_else(|| paths.execute());
        let cpus = match number("NUM_CPUS")? {
            Some(n) if n >= 1 => n as u32,
            Some(_) => return Err(PoolError::Config("NUM_CPUS must be at least 1".into())),
            None => std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
        };
        let memory_mib = match number("MEMORY")? {
            Some(m) => m,
            None => physical_memory_mib(),
        };
        let disk_kib = match number("DISK")? {
            Some(d) => d,
            None => free_disk_kib(execute_dir.parent().unwrap_or(Path::new("/"))),
        };
        let secs = |name: &str, default: u64| -> Result<Duration, PoolError> {
            Ok(Duration::from_secs(number(name)?.unwrap_or(default).max(1)))
        };
        let slot_attrs = settings
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("SLOT_ATTR_")
                    .map(|n| (n.to_string(), v.clone()))
            })
            .collect();
        let starter_program = match get("STARTER") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .map_err(|e| PoolError::io("finding the petrel binary for the starter", e))?,
        };
        Ok(PoolConfig {
            cpus,
            memory_mib,
            disk_kib,
            periodic_interval: secs("PERIODIC_EXPR_INTERVAL", 60)?,
            negotiator_interval: secs("NEGOTIATOR_INTERVAL", 20)?,
            super_users: list(get("QUEUE_SUPER_USERS")),
            execute_dir,
            slot_attrs,
            starter_program,
            runtimes: match get("CONTAINER_RUNTIMES").filter(|v| !v.is_empty()) {
                Some(v) => petrel_drivers::parse_preference(&v)
                    .map_err(|e| PoolError::Config(format!("CONTAINER_RUNTIMES = {v}: {e}")))?,
                None => petrel_drivers::DEFAULT_PREFERENCE.to_vec(),
            }
            .into_iter()
            .map(str::to_string)
            .collect(),
            probe_interval: secs("RUNTIME_PROBE_INTERVAL", 1200)?,
            container: container_policy(&get)?,
            hooks: execute_hooks(&get)?,
            validation_block: Duration::from_secs(
                number("CONTAINER_VALIDATION_BLOCK_TIME")?.unwrap_or(600),
            ),
            clients: client_limits(&number)?,
            job_pids_limit: job_pids_limit(&get)?,
        })
    }
}

fn client_limits(
    number: &dyn Fn(&str) -> Result<Option<u64>, PoolError>,
) -> Result<ClientLimits, PoolError> {
    let d = ClientLimits::default();
    let at_least_1 = |name: &str, default: usize| -> Result<usize, PoolError> {
        match number(name)? {
            None => Ok(default),
            Some(0) => Err(PoolError::Config(format!("{name} must be at least 1"))),
            Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    };
    let secs = |name: &str, default: Duration| -> Result<Duration, PoolError> {
        at_least_1(name, default.as_secs() as usize).map(|s| Duration::from_secs(s as u64))
    };
    Ok(ClientLimits {
        connections_per_user: at_least_1("MAX_CONNECTIONS_PER_USER", d.connections_per_user)?,
        memory_per_user: at_least_1("MAX_CLIENT_MEMORY_PER_USER", d.memory_per_user >> 20)?
            .saturating_mul(1 << 20),
        idle: secs("CLIENT_IDLE_TIMEOUT", d.idle)?,
        message: secs("CLIENT_MESSAGE_TIMEOUT", d.message)?,
        jobs_per_owner: at_least_1("MAX_JOBS_PER_OWNER", d.jobs_per_owner)?,
        jobs_submitted: at_least_1("MAX_JOBS_SUBMITTED", d.jobs_submitted)?,
        queue_bytes_per_owner: at_least_1(
            "MAX_QUEUE_MEMORY_PER_OWNER",
            d.queue_bytes_per_owner >> 20,
        )?
        .saturating_mul(1 << 20),
    })
}

/// `JOB_PIDS_LIMIT`: a whole number, 0 for no limit, [`DEFAULT_JOB_PIDS_LIMIT`] unset.
fn job_pids_limit(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<u64>, PoolError> {
    let Some(v) = get("JOB_PIDS_LIMIT") else {
        return Ok(Some(DEFAULT_JOB_PIDS_LIMIT));
    };
    match v.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(PoolError::Config(format!(
            "JOB_PIDS_LIMIT = {v}: expected a whole number (0: no limit)"
        ))),
    }
}

fn container_policy(get: &dyn Fn(&str) -> Option<String>) -> Result<PoolPolicy, PoolError> {
    let policy = match get("CONTAINER_POLICY").filter(|v| !v.is_empty()) {
        None => ContainerPolicy::Optional,
        Some(v) => ContainerPolicy::parse(&v).ok_or_else(|| {
            PoolError::Config(format!(
                "CONTAINER_POLICY = {v}: expected REQUIRED, PREFERRED, OPTIONAL or NEVER"
            ))
        })?,
    };
    let default_image = get("CONTAINER_DEFAULT_IMAGE").filter(|v| !v.is_empty());
    if let Some(image) = &default_image {
        if !image.contains("://") && !image.starts_with('/') {
            return Err(PoolError::Config(format!(
                "CONTAINER_DEFAULT_IMAGE = {image}: expected an absolute path or a \
                 docker:// reference"
            )));
        }
    }
    Ok(PoolPolicy {
        policy,
        default_image,
        allow: comma_list(get("CONTAINER_IMAGE_ALLOW")),
        deny: comma_list(get("CONTAINER_IMAGE_DENY")),
    })
}

fn execute_hooks(get: &dyn Fn(&str) -> Option<String>) -> Result<ExecuteHooks, PoolError> {
    let prefix = get("STARTER_DEFAULT_JOB_HOOK_KEYWORD")
        .filter(|k| !k.is_empty())
        .map(|k| format!("{}_", k.to_ascii_uppercase()))
        .unwrap_or_default();
    let path = |name: String| -> Result<Option<PathBuf>, PoolError> {
        match get(&name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if v.starts_with('/') => Ok(Some(PathBuf::from(v))),
            Some(v) => Err(PoolError::Config(format!(
                "{name} = {v}: expected an absolute path"
            ))),
        }
    };
    let mut validation = Vec::new();
    for script in comma_list(get("CONTAINER_VALIDATION_SCRIPTS")) {
        if !script.starts_with('/') {
            return Err(PoolError::Config(format!(
                "CONTAINER_VALIDATION_SCRIPTS: {script} is not an absolute path"
            )));
        }
        validation.push(PathBuf::from(script));
    }
    Ok(ExecuteHooks {
        prepare: path(format!("{prefix}HOOK_PREPARE_JOB"))?,
        exit: path(format!("{prefix}HOOK_JOB_EXIT"))?,
        validation,
    })
}

/// A comma-separated list (items may hold spaces: paths, patterns).
fn comma_list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn parse_config(
    text: &str,
    file: &Path,
    out: &mut HashMap<String, String>,
) -> Result<(), PoolError> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(PoolError::Config(format!(
                "{}:{}: expected NAME = value, found '{line}'",
                file.display(),
                n + 1
            )));
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(PoolError::Config(format!(
                "{}:{}: '{k}' is not a setting name (letters, digits and _)",
                file.display(),
                n + 1
            )));
        }
        out.insert(k.to_ascii_uppercase(), v.trim().to_string());
    }
    Ok(())
}

fn physical_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib / 1024)
        .unwrap_or(1024)
}

fn free_disk_kib(dir: &Path) -> u64 {
    let mut probe = dir;
    loop {
        if let Ok(st) = rustix::fs::statvfs(probe) {
            return st.f_bavail.saturating_mul(st.f_frsize) / 1024;
        }
        match probe.parent() {
            Some(p) => probe = p,
            None => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines() {
        let mut m = HashMap::new();
        parse_config(
            "# c\nNUM_CPUS = 4\n\nqueue_super_users = a, b\n",
            Path::new("f"),
            &mut m,
        )
        .unwrap();
        assert_eq!(m["NUM_CPUS"], "4");
        assert_eq!(list(m.get("QUEUE_SUPER_USERS").cloned()), vec!["a", "b"]);
        let e = parse_config("ok = 1\nbroken line\n", Path::new("f"), &mut m).unwrap_err();
        assert!(e.to_string().contains("f:2"), "{e}");
    }

    fn settings(text: &str) -> impl Fn(&str) -> Option<String> {
        let mut m = HashMap::new();
        parse_config(text, Path::new("config"), &mut m).unwrap();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn container_policy_settings() {
        let get = settings(
            "CONTAINER_POLICY = preferred\nCONTAINER_DEFAULT_IMAGE = /cvmfs/el9\n\
             CONTAINER_IMAGE_ALLOW = docker://localhost:5000/*, /cvmfs/*\n\
             CONTAINER_IMAGE_DENY = *.sif\n",
        );
        let p = container_policy(&get).unwrap();
        assert_eq!(p.policy, ContainerPolicy::Preferred);
        assert_eq!(p.default_image.as_deref(), Some("/cvmfs/el9"));
        assert_eq!(p.allow, ["docker://localhost:5000/*", "/cvmfs/*"]);
        assert_eq!(p.deny, ["*.sif"]);
        assert_eq!(
            container_policy(&settings("")).unwrap(),
            PoolPolicy::default()
        );
        let e = container_policy(&settings("CONTAINER_POLICY = mostly\n")).unwrap_err();
        assert!(e.to_string().contains("mostly"), "{e}");
        let e = container_policy(&settings("CONTAINER_DEFAULT_IMAGE = el9\n")).unwrap_err();
        assert!(e.to_string().contains("absolute path"), "{e}");
    }

    #[test]
    fn pids_limit_has_a_default_and_zero_turns_it_off() {
        assert_eq!(
            job_pids_limit(&settings("")).unwrap(),
            Some(DEFAULT_JOB_PIDS_LIMIT)
        );
        assert_eq!(
            job_pids_limit(&settings("JOB_PIDS_LIMIT = 64\n")).unwrap(),
            Some(64)
        );
        assert_eq!(
            job_pids_limit(&settings("JOB_PIDS_LIMIT = 0\n")).unwrap(),
            None
        );
        let e = job_pids_limit(&settings("JOB_PIDS_LIMIT = lots\n")).unwrap_err();
        assert!(e.to_string().contains("lots"), "{e}");
    }

    #[test]
    fn hook_settings_follow_htcondor_names() {
        let hooks = execute_hooks(&settings(
            "HOOK_PREPARE_JOB = /etc/petrel/prepare\nHOOK_JOB_EXIT = /etc/petrel/exit\n\
             CONTAINER_VALIDATION_SCRIPTS = /a/check one.sh, /b/two\n",
        ))
        .unwrap();
        assert_eq!(hooks.prepare, Some(PathBuf::from("/etc/petrel/prepare")));
        assert_eq!(hooks.exit, Some(PathBuf::from("/etc/petrel/exit")));
        assert_eq!(
            hooks.validation,
            [PathBuf::from("/a/check one.sh"), PathBuf::from("/b/two")]
        );
        // With a hook keyword, HTCondor's <Keyword>_HOOK_* names.
        let keyed = execute_hooks(&settings(
            "STARTER_DEFAULT_JOB_HOOK_KEYWORD = site\nSITE_HOOK_PREPARE_JOB = /p\n\
             HOOK_PREPARE_JOB = /ignored\n",
        ))
        .unwrap();
        assert_eq!(keyed.prepare, Some(PathBuf::from("/p")));
        let e = execute_hooks(&settings("HOOK_JOB_EXIT = exit.sh\n")).unwrap_err();
        assert!(e.to_string().contains("HOOK_JOB_EXIT"), "{e}");
    }

    #[test]
    fn client_limit_settings() {
        let number = |text: &'static str| {
            let get = settings(text);
            move |name: &str| -> Result<Option<u64>, PoolError> {
                Ok(get(name).map(|v| v.parse().unwrap()))
            }
        };
        assert_eq!(client_limits(&number("")).unwrap(), ClientLimits::default());
        let l = client_limits(&number(
            "MAX_CONNECTIONS_PER_USER = 5\nMAX_CLIENT_MEMORY_PER_USER = 16\n\
             CLIENT_IDLE_TIMEOUT = 2\nMAX_JOBS_PER_OWNER = 10\n",
        ))
        .unwrap();
        assert_eq!(l.connections_per_user, 5);
        assert_eq!(l.memory_per_user, 16 << 20);
        assert_eq!(l.idle, Duration::from_secs(2));
        assert_eq!(l.jobs_per_owner, 10);
        let e = client_limits(&number("MAX_JOBS_PER_OWNER = 0\n")).unwrap_err();
        assert!(e.to_string().contains("MAX_JOBS_PER_OWNER"), "{e}");
    }
}
