//! Submit commands → one job ad, in the order condor_submit applies them.
//!
//! [`build_job`] takes the macros in force at a `queue` statement and the live variables
//! of one proc and returns that proc's full job ad: the defaults condor_submit puts in
//! every job, then universe, executable, arguments, environment, status, standard files,
//! policy expressions, resources, the simple commands of [`crate::commands::SIMPLE`],
//! file transfer, container images, `+Attr`/`MY.Attr` attributes and finally the
//! Requirements expression with the clauses condor_submit adds.

use std::path::{Path, PathBuf};

use crate::ad::JobAd;
use crate::args_env;
use crate::commands::{self, Kind};
use crate::error::ErrorKind;
use crate::macros::{Expander, LiveVars, MacroSet};
use crate::{policy, requirements, resources, transfer};

/// Values that are the same for every job of a submit: who, when, where.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `Owner`.
    pub owner: String,
    /// `QDate` and `EnteredCurrentStatus` (seconds since the epoch).
    pub qdate: i64,
    /// Directory relative paths are resolved against (the submit file's directory).
    pub submit_dir: PathBuf,
    /// `FileSystemDomain`.
    pub filesystem_domain: String,
    /// `TARGET.Arch` in the default Requirements (`X86_64`, `aarch64`...).
    pub arch: String,
    /// `TARGET.OpSys` in the default Requirements.
    pub opsys: String,
    /// `CondorVersion`.
    pub condor_version: String,
    /// `CondorPlatform`.
    pub condor_platform: String,
    /// `JobSubmitMethod` (0 = condor_submit).
    pub submit_method: i64,
    /// Inherited environment for `getenv` (name, value).
    pub environment: Vec<(String, String)>,
    /// Paths under which container images are shared and never transferred.
    pub container_shared_fs: Vec<String>,
}

/// A failure while building one job: what, and which submit key it came from.
#[derive(Debug)]
pub struct BuildError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The submit command whose value was wrong, when known.
    pub key: Option<String>,
}

pub(crate) type R<T> = Result<T, BuildError>;

pub(crate) fn err<T>(kind: ErrorKind, key: &str) -> R<T> {
    Err(BuildError {
        kind,
        key: Some(key.to_string()),
    })
}

/// Universe numbers as HTCondor numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topping {
    None,
    Container,
    Docker,
}

fn universe_number(name: &str) -> Option<(i64, Topping)> {
    Some(match name.to_ascii_lowercase().as_str() {
        "vanilla" => (5, Topping::None),
        "container" => (5, Topping::Container),
        "docker" => (5, Topping::Docker),
        "scheduler" => (7, Topping::None),
        "grid" => (9, Topping::None),
        "java" => (10, Topping::None),
        "parallel" => (11, Topping::None),
        "local" => (12, Topping::None),
        "vm" => (13, Topping::None),
        _ => return None,
    })
}

pub(crate) struct Builder<'a> {
    pub(crate) ex: Expander<'a>,
    pub(crate) macros: &'a MacroSet,
    pub(crate) s: &'a Settings,
    pub(crate) ad: JobAd,
    pub(crate) universe: i64,
    pub(crate) topping: Topping,
    pub(crate) iwd: PathBuf,
}

impl Builder<'_> {
    /// The expanded, trimmed value of `key` (or its attribute-name alternative); empty is unset.
    pub(crate) fn param(&self, key: &str, alt: Option<&str>) -> R<Option<String>> {
        let (raw, used) = match self.macros.get(key) {
            Some(v) => (v, key),
            None => match alt.and_then(|a| self.macros.get(a).map(|v| (v, a))) {
                Some(x) => x,
                None => return Ok(None),
            },
        };
        let v = self.ex.expand(raw).map_err(|kind| BuildError {
            kind,
            key: Some(used.to_string()),
        })?;
        let t = v.trim();
        Ok(if t.is_empty() {
            None
        } else {
            Some(t.to_string())
        })
    }

    pub(crate) fn bool_param(&self, key: &str, alt: Option<&str>) -> R<Option<bool>> {
        match self.param(key, alt)? {
            None => Ok(None),
            Some(v) => match parse_bool(&v) {
                Some(b) => Ok(Some(b)),
                None => err(
                    ErrorKind::BadValue {
                        command: key.into(),
                        value: v,
                        expected: "true or false".into(),
                    },
                    key,
                ),
            },
        }
    }

    pub(crate) fn path_in_iwd(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.iwd.join(path)
        }
    }
}

/// Parses HTCondor booleans: true/false, yes/no, t/f, y/n, 1/0 (case-insensitive).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "t" | "y" | "1" => Some(true),
        "false" | "no" | "f" | "n" | "0" => Some(false),
        _ => None,
    }
}

pub(crate) fn file_kb(p: &Path) -> Option<i64> {
    let m = std::fs::metadata(p).ok()?;
    if m.is_dir() {
        return None;
    }
    Some(m.len().div_ceil(1024) as i64)
}

/// Builds the full job ad of one proc.
pub fn build_job(
    macros: &MacroSet,
    defaults: &MacroSet,
    live: &LiveVars,
    s: &Settings,
) -> R<JobAd> {
    build_job_from(&base_ad(s, live), macros, defaults, live, s)
}

/// [`build_job`] starting from a prepared base ad (see [`base_ad`]); `ClusterId` and
/// `ProcId` are set from `live`.
pub(crate) fn build_job_from(
    base: &JobAd,
    macros: &MacroSet,
    defaults: &MacroSet,
    live: &LiveVars,
    s: &Settings,
) -> R<JobAd> {
    let ex = Expander {
        macros,
        live,
        defaults,
    };
    let mut b = Builder {
        ex,
        macros,
        s,
        ad: base.clone(),
        universe: 5,
        topping: Topping::None,
        iwd: s.submit_dir.clone(),
    };
    b.ad.insert_int("ClusterId", live.cluster);
    b.ad.insert_int("ProcId", live.process);
    set_universe(&mut b)?;
    set_iwd(&mut b)?;
    let exe_kb = set_executable(&mut b)?;
    set_container_policy(&mut b)?;
    set_arguments(&mut b)?;
    set_environment(&mut b)?;
    policy::set_job_status(&mut b)?;
    set_std_files(&mut b)?;
    policy::set_notification(&mut b)?;
    policy::set_rank(&mut b)?;
    policy::set_policy(&mut b)?;
    policy::set_kill_sig(&mut b)?;
    resources::set_request_resources(&mut ResourceCtx { b: &mut b })?;
    policy::set_concurrency_and_accounting(&mut b)?;
    set_simple(&mut b)?;
    set_container_runtime(&mut b)?;
    if b.ad.contains("SuccessCheckpointExitCode") {
        b.ad.insert_bool("WantFTOnCheckpoint", true);
    }
    transfer::set_transfer(&mut b, exe_kb)?;
    set_forced(&mut b)?;
    requirements::set_requirements(&mut b)?;
    Ok(b.ad)
}

/// Gives `resources.rs` access to the builder without exposing it.
pub(crate) struct ResourceCtx<'b, 'a> {
    b: &'b mut Builder<'a>,
}

impl ResourceCtx<'_, '_> {
    pub(crate) fn param(&self, key: &str, alt: Option<&str>) -> R<Option<String>> {
        self.b.param(key, alt)
    }
    pub(crate) fn ad(&mut self) -> &mut JobAd {
        &mut self.b.ad
    }
    /// Submit keys of the form `request_<tag>` other than the standard ones, as written.
    pub(crate) fn custom_request_keys(&self) -> Vec<String> {
        self.b
            .macros
            .iter()
            .filter_map(|(k, _)| {
                let lk = k.to_ascii_lowercase();
                let tag = lk.strip_prefix("request_")?;
                if matches!(
                    tag,
                    "cpus" | "memory" | "disk" | "gpus" | "cpu" | "gpu_memory" | "gpus_memory"
                ) || tag.is_empty()
                    || tag.starts_with('_')
                {
                    return None;
                }
                Some(k.to_string())
            })
            .collect()
    }
}

/// The attributes condor_submit puts in every job before any command is applied.
pub(crate) fn base_ad(s: &Settings, live: &LiveVars) -> JobAd {
    let mut base = JobAd::new();
    let ad = &mut base;
    ad.insert_string("MyType", "Job");
    ad.insert_string("TargetType", "Machine");
    ad.insert_int("ClusterId", live.cluster);
    ad.insert_int("ProcId", live.process);
    ad.insert_int("QDate", s.qdate);
    ad.insert_int("EnteredCurrentStatus", s.qdate);
    ad.insert_string("Owner", &s.owner);
    ad.insert_string("CondorVersion", &s.condor_version);
    ad.insert_string("CondorPlatform", &s.condor_platform);
    ad.insert_int("JobSubmitMethod", s.submit_method);
    ad.insert_int("JobUniverse", 5);
    ad.insert_int("JobStatus", 1);
    ad.insert_int("JobPrio", 0);
    ad.insert_int("JobNotification", 0);
    ad.insert_int("MinHosts", 1);
    ad.insert_int("MaxHosts", 1);
    ad.insert_int("CurrentHosts", 0);
    ad.insert_int("ExitStatus", 0);
    ad.insert_bool("ExitBySignal", false);
    ad.insert_bool("LeaveJobInQueue", false);
    ad.insert_int("JobLeaseDuration", 2400);
    for a in [
        "NumCkpts",
        "NumJobStarts",
        "NumJobCompletions",
        "NumRestarts",
        "NumSystemHolds",
        "TotalSuspensions",
        "LastSuspensionTime",
        "CommittedTime",
        "CommittedSlotTime",
        "CommittedSuspensionTime",
        "CumulativeSlotTime",
        "CumulativeSuspensionTime",
    ] {
        ad.insert_int(a, 0);
    }
    for a in [
        "RemoteSysCpu",
        "RemoteUserCpu",
        "CumulativeRemoteSysCpu",
        "CumulativeRemoteUserCpu",
        "RemoteWallClockTime",
    ] {
        ad.insert(a, "0.0");
    }
    ad.insert("Rank", "0.0");
    base
}

fn set_universe(b: &mut Builder) -> R<()> {
    let name = b
        .param("universe", Some("JobUniverse"))?
        .unwrap_or_else(|| "vanilla".into());
    let (n, topping) = match universe_number(&name) {
        Some(u) => u,
        None => match name.parse::<i64>() {
            Ok(n @ (5 | 7 | 9..=13)) => (n, Topping::None),
            _ => return err(ErrorKind::UnknownUniverse(name), "universe"),
        },
    };
    b.universe = n;
    b.topping = topping;
    if matches!(n, 7 | 12) {
        b.ad.remove("JobLeaseDuration");
        b.ad.insert_string("KillSig", "SIGTERM");
    }
    if n == 11 {
        set_parallel(b)?;
    }
    let container_img = b.param("container_image", Some("ContainerImage"))?;
    let docker_img = b.param("docker_image", Some("DockerImage"))?;
    if n == 5 || n == 12 {
        if topping == Topping::Docker {
            if container_img.is_some() {
                return err(
                    ErrorKind::BadValue {
                        command: "container_image".into(),
                        value: container_img.unwrap_or_default(),
                        expected: "no container_image in the docker universe (use docker_image)"
                            .into(),
                    },
                    "container_image",
                );
            }
        } else if container_img.is_some() && docker_img.is_some() {
            return err(
                ErrorKind::BadValue {
                    command: "docker_image".into(),
                    value: docker_img.unwrap_or_default(),
                    expected: "only one of docker_image and container_image".into(),
                },
                "docker_image",
            );
        } else if container_img.is_some() || docker_img.is_some() {
            b.topping = Topping::Container;
            if docker_img.is_some() {
                b.ad.insert_bool("WantDockerImage", true);
            }
        }
    }
    b.ad.insert_int("JobUniverse", n);
    Ok(())
}

/// Parallel universe: `machine_count` hosts, an I/O proxy and a sandbox.
fn set_parallel(b: &mut Builder) -> R<()> {
    let count = match b.param("machine_count", Some("MachineCount"))? {
        Some(v) => v,
        None => match b.param("node_count", None)? {
            Some(v) => v,
            None => {
                return err(
                    ErrorKind::BadValue {
                        command: "machine_count".into(),
                        value: String::new(),
                        expected: "a machine_count for parallel universe jobs".into(),
                    },
                    "universe",
                )
            }
        },
    };
    let n: i64 = match count.parse() {
        Ok(n) if n > 0 => n,
        _ => {
            return err(
                ErrorKind::BadValue {
                    command: "machine_count".into(),
                    value: count,
                    expected: "a positive integer".into(),
                },
                "machine_count",
            )
        }
    };
    b.ad.insert_int("MinHosts", n);
    b.ad.insert_int("MaxHosts", n);
    b.ad.insert_string("KillSig", "SIGTERM");
    b.ad.insert_bool("WantIOProxy", true);
    b.ad.insert_bool("JobRequiresSandbox", true);
    Ok(())
}

fn set_iwd(b: &mut Builder) -> R<()> {
    let text = match b.param("initialdir", Some("Iwd"))? {
        Some(d) => join_text(&b.s.submit_dir, &d),
        None => b.s.submit_dir.to_string_lossy().into_owned(),
    };
    let iwd = PathBuf::from(&text);
    if !iwd.is_dir() {
        return err(
            ErrorKind::File {
                what: "initialdir",
                path: iwd,
                message: "no such directory".into(),
            },
            "initialdir",
        );
    }
    b.ad.insert_string("Iwd", &text);
    b.iwd = iwd;
    Ok(())
}

/// `dir/p` as text (`p` unchanged when absolute), as HTCondor's full_path writes it.
fn join_text(dir: &Path, p: &str) -> String {
    if Path::new(p).is_absolute() {
        return p.to_string();
    }
    format!("{}/{}", dir.to_string_lossy().trim_end_matches('/'), p)
}

/// `container_runtime` (petrel's), canonicalised, so the automatic requirement can test it
/// against the slot's `ContainerRuntimes`.
fn set_container_runtime(b: &mut Builder) -> R<()> {
    if let Some(asked) = b.param("container_runtime", Some("ContainerRuntime"))? {
        let asked = asked.trim().trim_matches('"').trim().to_string();
        let Some(name) = canonical_runtime(&asked) else {
            return err(
                ErrorKind::BadValue {
                    command: "container_runtime".into(),
                    value: asked,
                    expected: format!("one of {}", RUNTIMES.join(", ")),
                },
                "container_runtime",
            );
        };
        b.ad.insert_string("ContainerRuntime", name);
    }
    Ok(())
}

/// The container runtimes petrel has drivers for, as `ContainerRuntimes` names them.
const RUNTIMES: [&str; 8] = [
    "embedded",
    "runc",
    "crun",
    "charliecloud",
    "apptainer",
    "singularity",
    "podman",
    "docker",
];

/// A runtime's name as the slot ad spells it (`ch-run` is `charliecloud`); mirrors
/// `petrel_drivers::canonical_name`, which a petrel-pool test holds it to.
pub fn canonical_runtime(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "ch-run" => Some("charliecloud"),
        "petrel" | "petrel-runtime" => Some("embedded"),
        other => RUNTIMES.iter().find(|r| **r == other).copied(),
    }
}

fn check_image(v: &str, key: &str) -> R<String> {
    let t = v.trim().trim_matches('"').trim();
    let expected = if t.is_empty() || t.contains(char::is_whitespace) {
        Some("one image reference without spaces")
    } else if t.starts_with('-') {
        // A runtime given it would read an option (`--volume=/:/host`), not an image.
        Some("an image reference, which never starts with '-'")
    } else if t.contains(char::is_control) {
        Some("an image reference without control characters")
    } else {
        None
    };
    if let Some(expected) = expected {
        return err(
            ErrorKind::BadValue {
                command: key.into(),
                value: v.into(),
                expected: expected.into(),
            },
            key,
        );
    }
    Ok(t.to_string())
}

/// `container_policy`: whether the job runs in a container, REQUIRED, PREFERRED, OPTIONAL
/// or NEVER as GlideinWMS says it, into `ContainerPolicy`. Written only when given: the
/// pool takes REQUIRED for a job that names an image and OPTIONAL for one that does not.
fn set_container_policy(b: &mut Builder) -> R<()> {
    let Some(v) = b.param("container_policy", Some("ContainerPolicy"))? else {
        return Ok(());
    };
    let policy = v.trim().trim_matches('"').trim().to_ascii_uppercase();
    let bad = |expected: &str| {
        err(
            ErrorKind::BadValue {
                command: "container_policy".into(),
                value: v.clone(),
                expected: expected.into(),
            },
            "container_policy",
        )
    };
    if !matches!(
        policy.as_str(),
        "REQUIRED" | "PREFERRED" | "OPTIONAL" | "NEVER"
    ) {
        return bad("required, preferred, optional or never");
    }
    if policy == "NEVER" && (b.ad.contains("ContainerImage") || b.ad.contains("DockerImage")) {
        return bad("not never for a job that names a container_image or docker_image");
    }
    b.ad.insert_string("ContainerPolicy", &policy);
    Ok(())
}

fn set_executable(b: &mut Builder) -> R<i64> {
    if b.topping == Topping::Docker {
        match b.param("docker_image", Some("DockerImage"))? {
            Some(img) => {
                let img = check_image(&img, "docker_image")?;
                b.ad.insert_string("DockerImage", &img);
            }
            None => {
                return err(
                    ErrorKind::BadValue {
                        command: "universe".into(),
                        value: "docker".into(),
                        expected: "a docker_image command for docker universe jobs".into(),
                    },
                    "universe",
                )
            }
        }
        b.ad.insert_bool("WantDocker", true);
    }
    if b.topping == Topping::Container {
        if let Some(img) = b.param("docker_image", Some("DockerImage"))? {
            let img = check_image(&img, "docker_image")?;
            b.ad.insert_string("DockerImage", &img);
        }
        match b.param("container_image", Some("ContainerImage"))? {
            Some(img) => {
                let img = check_image(&img, "container_image")?;
                b.ad.insert_string("ContainerImage", &img);
                let want = if img.starts_with("docker:") {
                    "WantDockerImage"
                } else if img.ends_with(".sif") {
                    "WantSIF"
                } else {
                    "WantSandboxImage"
                };
                b.ad.insert_bool(want, true);
            }
            None if b.ad.contains("DockerImage") => {}
            None => {
                return err(
                    ErrorKind::BadValue {
                        command: "universe".into(),
                        value: "container".into(),
                        expected: "a container_image (or docker_image) command for container jobs"
                            .into(),
                    },
                    "universe",
                )
            }
        }
        b.ad.insert_bool("WantContainer", true);
    }
    let exe = b.param("executable", Some("Cmd"))?;
    let Some(exe) = exe else {
        return err(
            ErrorKind::BadValue {
                command: "executable".into(),
                value: String::new(),
                expected: "an executable command naming the program to run".into(),
            },
            "executable",
        );
    };
    let transfer = b
        .bool_param("transfer_executable", Some("TransferExecutable"))?
        .unwrap_or(true);
    if !transfer {
        b.ad.insert_bool("TransferExecutable", false);
    }
    let exe_path = {
        let p = Path::new(&exe);
        match (p.is_absolute(), transfer) {
            (true, _) => p.to_path_buf(),
            (false, true) => b.s.submit_dir.join(p),
            (false, false) => b.iwd.join(p),
        }
    };
    if transfer {
        b.ad.insert_string("Cmd", &join_text(&b.s.submit_dir, &exe));
    } else {
        b.ad.insert_string("Cmd", &exe);
    }
    let kb = file_kb(&exe_path).unwrap_or(0);
    b.ad.insert_int("ExecutableSize", kb);
    b.ad.insert_int("ImageSize", kb);
    Ok(kb)
}

pub(crate) fn set_arguments(b: &mut Builder) -> R<()> {
    match b.param("arguments", Some("Args"))? {
        Some(v) => {
            let (attr, text) = args_env::arguments(&v).map_err(|kind| BuildError {
                kind,
                key: Some("arguments".into()),
            })?;
            b.ad.remove(if attr == "Args" { "Arguments" } else { "Args" });
            b.ad.insert_string(attr, &text);
        }
        None => {
            b.ad.remove("Args");
            b.ad.insert_string("Arguments", "");
        }
    }
    Ok(())
}

pub(crate) fn set_environment(b: &mut Builder) -> R<()> {
    // `environment` wins over `env`; the old (V1) form is written when the `env` command
    // is given in the old syntax, as condor_submit does
    let (value, key) = match b.param("environment", None)? {
        Some(v) => (Some(v), "environment"),
        None => (b.param("env", None)?, "env"),
    };
    let mut env = args_env::EnvMap::new();
    let mut v1 = false;
    if let Some(v) = &value {
        let (e, _) = args_env::parse_environment(v).map_err(|kind| BuildError {
            kind,
            key: Some(key.into()),
        })?;
        env = e;
        v1 = b
            .param("env", None)?
            .is_some_and(|e| !args_env::is_v2_quoted(&e));
    }
    if let Some(g) = b.param("getenv", Some("get_env"))? {
        let names: Option<Vec<String>> = match parse_bool(&g) {
            Some(true) => None,
            Some(false) => Some(Vec::new()),
            None => Some(
                g.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        };
        for (k, val) in &b.s.environment {
            let wanted = match &names {
                None => true,
                Some(list) => list.iter().any(|n| glob_match(n, k)),
            };
            if wanted && !env.contains_key(k) {
                env.insert(k.clone(), val.clone());
            }
        }
    }
    if v1 {
        b.ad.insert_string("Env", &args_env::env_v1(&env));
        b.ad.insert_string("EnvDelim", ";");
    } else {
        b.ad.insert_string("Environment", &args_env::env_v2(&env));
    }
    Ok(())
}

/// `*`-only glob (getenv lists allow `PATH*`).
fn glob_match(pat: &str, name: &str) -> bool {
    match pat.split_once('*') {
        None => pat == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

pub(crate) fn set_std_files(b: &mut Builder) -> R<()> {
    for (key, attr, xfer, stream) in [
        ("input", "In", "TransferIn", "StreamIn"),
        ("output", "Out", "TransferOut", "StreamOut"),
        ("error", "Err", "TransferErr", "StreamErr"),
    ] {
        match b.param(key, Some(attr))? {
            Some(v) if v != "/dev/null" => {
                b.ad.insert_string(attr, &v);
                b.ad.remove(xfer);
                let st = b
                    .bool_param(&format!("stream_{key}"), Some(stream))?
                    .unwrap_or(false);
                b.ad.insert_bool(stream, st);
                if let Some(t) = b.bool_param(&format!("transfer_{key}"), Some(xfer))? {
                    if !t {
                        b.ad.insert_bool(xfer, false);
                    }
                }
            }
            _ => {
                b.ad.insert_string(attr, "/dev/null");
                b.ad.insert_bool(xfer, false);
                b.ad.remove(stream);
            }
        }
    }
    Ok(())
}

/// Light validation of an expression without a ClassAd parser: balanced quotes and parentheses.
pub(crate) fn check_expr(e: &str, key: &str) -> R<()> {
    let mut depth = 0i64;
    let mut in_str = false;
    let mut chars = e.chars();
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return err(
                        ErrorKind::Syntax {
                            text: e.into(),
                            expected: format!("a ClassAd expression for {key} (unmatched '{c}')"),
                        },
                        key,
                    );
                }
            }
            _ => {}
        }
    }
    if in_str {
        return err(
            ErrorKind::UnbalancedQuotes {
                text: e.into(),
                quote: '"',
            },
            key,
        );
    }
    if depth != 0 {
        return err(
            ErrorKind::Syntax {
                text: e.into(),
                expected: format!("a ClassAd expression for {key} (unclosed parenthesis)"),
            },
            key,
        );
    }
    Ok(())
}

fn set_simple(b: &mut Builder) -> R<()> {
    // only the commands present in the submit description, in table order
    let mut present: Vec<usize> = b
        .macros
        .iter()
        .filter_map(|(k, _)| commands::index_of(k))
        .collect();
    present.sort_unstable();
    present.dedup();
    for i in present {
        apply_simple(b, &commands::SIMPLE[i])?;
    }
    Ok(())
}

/// Applies one simple command (or its alias) if it is given.
pub(crate) fn apply_simple(b: &mut Builder, cmd: &commands::Cmd) -> R<()> {
    // an alias (prio for priority) is used only when the main keyword is not given
    let alias = commands::ALIASES
        .iter()
        .find(|(_, c)| *c == cmd.name)
        .map(|(a, _)| *a);
    let mut v = b.param(cmd.name, Some(cmd.attr))?;
    let mut key = cmd.name;
    if v.is_none() {
        if let Some(a) = alias {
            v = b.param(a, None)?;
            key = a;
        }
    }
    let Some(v) = v else { return Ok(()) };
    let bad = |expected: &str| BuildError {
        kind: ErrorKind::BadValue {
            command: key.into(),
            value: v.clone(),
            expected: expected.into(),
        },
        key: Some(key.to_string()),
    };
    match cmd.kind {
        Kind::Expr => {
            check_expr(&v, key)?;
            b.ad.insert(cmd.attr, v.clone());
        }
        Kind::Str => b.ad.insert_string(cmd.attr, &v),
        Kind::StrStripQuotes => {
            let t = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(&v);
            b.ad.insert_string(cmd.attr, t);
        }
        Kind::StrList => {
            let l: Vec<&str> = v
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .collect();
            b.ad.insert_string(cmd.attr, &l.join(","));
        }
        Kind::Path => {
            let p = join_text(&b.iwd, &v);
            b.ad.insert_string(cmd.attr, &p);
        }
        Kind::Bool => b.ad.insert_bool(
            cmd.attr,
            parse_bool(&v).ok_or_else(|| bad("true or false"))?,
        ),
        Kind::Int | Kind::UInt => {
            let n: i64 = v.parse().map_err(|_| bad("an integer"))?;
            if cmd.kind == Kind::UInt && n < 0 {
                return Err(bad("a non-negative integer"));
            }
            b.ad.insert_int(cmd.attr, n);
        }
    }
    Ok(())
}

pub(crate) fn set_forced(b: &mut Builder) -> R<()> {
    let forced: Vec<(String, String)> = b
        .macros
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("MY.")
                .map(|a| (a.to_string(), v.to_string()))
        })
        .collect();
    for (attr, raw) in forced {
        let key = format!("MY.{attr}");
        let v = b.ex.expand(&raw).map_err(|kind| BuildError {
            kind,
            key: Some(key.clone()),
        })?;
        let v = v.trim();
        if v.is_empty() {
            b.ad.remove(&attr);
            continue;
        }
        check_expr(v, &key)?;
        b.ad.insert(attr, v);
    }
    Ok(())
}
