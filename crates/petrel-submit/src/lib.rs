//! HTCondor's submit description language, turned into job ads.
//!
//! A submit description is read statement by statement: `key = value` commands and
//! macros (case-insensitive keys), `+Attr = expr` / `MY.Attr = expr` attributes,
//! `$(macro)` expansion with defaults and functions (`$ENV`, `$INT`, `$REAL`, `$CHOICE`,
//! `$RANDOM_CHOICE`, `$Fn`/`$Fp`/... path functions), `if`/`elif`/`else`/`endif`,
//! `include : file`, and one or more `queue` statements in every documented form. Each
//! `queue` statement creates procs; each proc gets a job ad with HTCondor's attribute
//! names and the defaults `condor_submit` adds (see [`to_ads`]).
//!
//! The output is a [`JobAd`]: an ordered list of `(attribute, ClassAd expression text)`,
//! exactly what `condor_submit -dump` prints. Large submits can be streamed with
//! [`Submission::procs`]; [`Submission::expand`] returns the cluster ad and per-proc deltas.
//!
//! ```
//! use petrel_submit::{Submission, SubmitOptions};
//!
//! let text = "executable = /bin/echo\narguments = hello $(Process)\nrequest_memory = 1 GB\nqueue 2\n";
//! let sub = Submission::from_text(text, "job.sub", std::env::temp_dir(), &SubmitOptions::default())?;
//! assert_eq!(sub.proc_count(), 2);
//! let result = sub.expand()?;
//! assert_eq!(result.cluster_ad.get("RequestMemory"), Some("1024"));
//! let ads: Vec<_> = result.full_ads().collect();
//! assert_eq!(ads[1].get("Args"), Some("\"hello 1\""));
//! assert_eq!(ads[1].get("ProcId"), Some("1"));
//! # Ok::<(), petrel_submit::SubmitError>(())
//! ```
//!
//! Errors name the file and line, the offending text and what was expected, and nothing
//! is produced on error. Hostile input is bounded: macro expansion depth and size, the
//! number of procs ([`SubmitOptions::max_procs`]), include depth and cycles.

#![deny(missing_docs)]

pub mod ad;
pub mod args_env;
pub mod commands;
mod description;
pub mod error;
pub mod incremental;
pub mod lexer;
pub mod macros;
mod numeric;
mod policy;
pub mod queue;
mod requirements;
pub mod resources;
pub mod to_ads;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use ad::{quote_string, unquote_string, JobAd};
pub use description::QueueOp;
pub use error::{ErrorKind, Location, Result, SubmitError};
use macros::{LiveVars, MacroSet};
use queue::ItemSource;
pub use to_ads::Settings;

/// The default cap on the number of procs one submit may create.
pub const DEFAULT_MAX_PROCS: u64 = 10_000_000;

/// Options of a submit (the command line's `-append`, `-queue`, `-batch-name`, limits).
#[derive(Clone, Debug)]
pub struct SubmitOptions {
    /// The cluster id to give the jobs (a dry run uses 1).
    pub cluster_id: i64,
    /// The most procs a submit may create.
    pub max_procs: u64,
    /// Commands added just before each queue statement (`-append`).
    pub append: Vec<String>,
    /// A queue statement used instead of one in the file (`-queue`).
    pub queue_override: Option<String>,
    /// `-batch-name`.
    pub batch_name: Option<String>,
    /// `Owner`; the current user when `None`.
    pub owner: Option<String>,
    /// `QDate`; now when `None`.
    pub qdate: Option<i64>,
    /// How long a `queue ... from command |` or `include : command |` may run.
    pub command_timeout: Duration,
    /// Whether `queue ... from command |` and `include : command |` may run commands
    /// (turn off for untrusted submit descriptions).
    pub allow_commands: bool,
    /// Recompute only the commands that vary between procs (see [`incremental`]);
    /// `false` builds every proc from scratch (same result, slower).
    pub incremental: bool,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        Self {
            cluster_id: 1,
            max_procs: DEFAULT_MAX_PROCS,
            append: Vec::new(),
            queue_override: None,
            batch_name: None,
            owner: None,
            qdate: None,
            command_timeout: Duration::from_secs(60),
            incremental: true,
            allow_commands: true,
        }
    }
}

/// A parsed submit description: its queue statements with their items, ready to make ads.
#[derive(Clone, Debug)]
pub struct Submission {
    ops: Vec<QueueOp>,
    defaults: Arc<MacroSet>,
    settings: Arc<Settings>,
    cluster_id: i64,
    warnings: Vec<String>,
    incremental: bool,
}

/// The ads of a whole submit: the cluster ad and one delta per proc.
#[derive(Clone, Debug)]
pub struct SubmitResult {
    /// The cluster id.
    pub cluster_id: i64,
    /// Attributes shared by the cluster (proc 0's ad without `ProcId`).
    pub cluster_ad: JobAd,
    /// Per proc: `ProcId`, `JobStatus` and the attributes that differ from the cluster ad.
    pub procs: Vec<JobAd>,
}

impl SubmitResult {
    /// The fully expanded ad of proc `i` (cluster ad overlaid with the proc delta).
    pub fn full_ad(&self, i: usize) -> Option<JobAd> {
        let delta = self.procs.get(i)?;
        let mut ad = self.cluster_ad.clone();
        ad.update(delta);
        Some(ad)
    }

    /// Every proc's fully expanded ad.
    pub fn full_ads(&self) -> impl Iterator<Item = JobAd> + '_ {
        (0..self.procs.len()).filter_map(|i| self.full_ad(i))
    }
}

impl Submission {
    /// Reads the submit file at `path`.
    pub fn from_file(path: impl AsRef<Path>, opts: &SubmitOptions) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            SubmitError::new(
                Location::new(path.display().to_string(), 0, 0),
                ErrorKind::File {
                    what: "submit file",
                    path: path.to_path_buf(),
                    message: e.to_string(),
                },
            )
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        Self::from_text(&text, &path.display().to_string(), dir, opts)
    }

    /// Reads submit description `text` named `name`; relative paths resolve against `dir`.
    pub fn from_text(
        text: &str,
        name: &str,
        dir: impl Into<PathBuf>,
        opts: &SubmitOptions,
    ) -> Result<Self> {
        let dir = dir.into();
        let settings = Settings::detect(&dir, opts);
        let defaults = default_macros(name, &settings);
        let mut p = description::Processor::new(opts, &defaults);
        p.run_text(text, name, &dir)?;
        if let Some(q) = &opts.queue_override {
            p.queue(q, None, Location::new("-queue", 0, 0), &dir)?;
        }
        let warnings = std::mem::take(&mut p.warnings);
        let ops = std::mem::take(&mut p.ops);
        drop(p);
        if ops.is_empty() {
            return Err(SubmitError::new(
                Location::new(name, 0, 0),
                ErrorKind::NoQueue,
            ));
        }
        Ok(Self {
            ops,
            defaults: Arc::new(defaults),
            settings: Arc::new(settings),
            cluster_id: opts.cluster_id,
            warnings,
            incremental: opts.incremental,
        })
    }

    /// The queue statements, in file order.
    pub fn queue_ops(&self) -> &[QueueOp] {
        &self.ops
    }

    /// Warnings from `warning :` statements.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> i64 {
        self.cluster_id
    }

    /// How many procs the submit creates.
    pub fn proc_count(&self) -> u64 {
        self.ops.iter().map(QueueOp::proc_count).sum()
    }

    /// Streams the fully expanded ad of every proc, building each when asked for.
    pub fn procs(&self) -> ProcIter<'_> {
        ProcIter {
            sub: self,
            op: 0,
            item: 0,
            step: 0,
            proc_id: 0,
            last_vars: Vec::new(),
            plan: None,
            template: None,
            scratch: None,
            base: None,
        }
    }

    /// Builds every proc: the cluster ad and per-proc deltas. Fails on the first bad proc.
    pub fn expand(&self) -> Result<SubmitResult> {
        let mut cluster_ad: Option<JobAd> = None;
        // The first proc's ad is the cluster ad with its ProcId: procs are compared with
        // it, whose attributes sit where theirs do (ProcId goes in every delta anyway).
        let mut first: Option<ad::DeltaBase> = None;
        let mut procs = Vec::with_capacity(self.proc_count().min(1 << 20) as usize);
        // Procs that lack attributes of the cluster ad, with those names.
        let mut lacking: Vec<(usize, Vec<String>)> = Vec::new();
        let mut iter = self.procs();
        while let Some(delta) = iter.next_with(|ad| {
            let base = match &first {
                Some(f) => f,
                None => {
                    let mut c = ad.clone();
                    c.remove("ProcId");
                    cluster_ad = Some(c);
                    first.insert(ad::DeltaBase::new(ad.clone()))
                }
            };
            ad.proc_delta(base)
        }) {
            let (delta, missing) = delta?;
            if !missing.is_empty() {
                lacking.push((procs.len(), missing));
            }
            procs.push(delta);
        }
        let mut cluster_ad = cluster_ad.unwrap_or_default();
        move_to_procs(&mut cluster_ad, &mut procs, &lacking);
        Ok(SubmitResult {
            cluster_id: self.cluster_id,
            cluster_ad,
            procs,
        })
    }
}

/// A delta cannot remove an attribute of the cluster ad, so an attribute some procs
/// lack leaves the cluster ad for the deltas of the procs that have it.
fn move_to_procs(cluster_ad: &mut JobAd, procs: &mut [JobAd], lacking: &[(usize, Vec<String>)]) {
    let mut names: Vec<&str> = Vec::new();
    for (_, missing) in lacking {
        for name in missing {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name);
            }
        }
    }
    for name in names {
        let Some(value) = cluster_ad.remove(name) else {
            continue;
        };
        for (i, delta) in procs.iter_mut().enumerate() {
            // `lacking` is in proc order.
            let lacks = lacking
                .binary_search_by_key(&i, |(p, _)| *p)
                .is_ok_and(|at| lacking[at].1.iter().any(|m| m.eq_ignore_ascii_case(name)));
            if !lacks && !delta.contains(name) {
                delta.insert(name, &value);
            }
        }
    }
}

/// Streams full proc ads; see [`Submission::procs`].
pub struct ProcIter<'a> {
    sub: &'a Submission,
    op: usize,
    item: usize,
    step: u64,
    proc_id: i64,
    last_vars: Vec<(String, String)>,
    plan: Option<incremental::Plan>,
    template: Option<incremental::Template>,
    /// The last proc's ad, reset to the template to build the next one in.
    scratch: Option<JobAd>,
    base: Option<JobAd>,
}

impl ProcIter<'_> {
    /// The next proc's ad, lent to `f`: the procs of a queue statement are then built in
    /// one reused ad, not each in a new copy of their template.
    fn next_with<T>(&mut self, f: impl FnOnce(&JobAd) -> T) -> Option<Result<T>> {
        let ad = match self.next()? {
            Ok(ad) => ad,
            Err(e) => return Some(Err(e)),
        };
        let out = f(&ad);
        self.scratch = self.template.as_ref().map(|t| t.reset(ad));
        Some(Ok(out))
    }
}

impl Iterator for ProcIter<'_> {
    type Item = Result<JobAd>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let op = self.sub.ops.get(self.op)?;
            let n_items = if matches!(op.spec.source, ItemSource::None) {
                1
            } else {
                op.items.len()
            };
            if self.item >= n_items || op.spec.count == 0 {
                self.op += 1;
                self.item = 0;
                self.step = 0;
                self.last_vars.clear();
                self.plan = None;
                self.template = None;
                self.scratch = None;
                continue;
            }
            let mut live = LiveVars {
                cluster: self.sub.cluster_id,
                process: self.proc_id,
                step: self.step as i64,
                item_index: self.item as i64,
                vars: Vec::new(),
            };
            if let Some(line) = op.items.get(self.item) {
                if line.trim().is_empty() {
                    // HTCondor leaves the loop variables as the previous item set them
                    live.vars = self.last_vars.clone();
                } else {
                    let fields = queue::split_fields(line, op.spec.vars.len());
                    live.vars = op
                        .spec
                        .vars
                        .iter()
                        .map(|v| v.to_ascii_lowercase())
                        .zip(fields)
                        .collect();
                    self.last_vars.clone_from(&live.vars);
                }
            }
            let incremental = self.sub.incremental;
            let plan = self.plan.get_or_insert_with(|| {
                if incremental {
                    incremental::plan(&op.macros, &op.spec.vars)
                } else {
                    incremental::Plan::Full
                }
            });
            let built = match (&*plan, &self.template) {
                (incremental::Plan::Partial(parts), Some(t)) => incremental::rebuild(
                    t,
                    self.scratch.take(),
                    parts,
                    &op.macros,
                    &self.sub.defaults,
                    &live,
                    &self.sub.settings,
                ),
                _ => {
                    let base = self
                        .base
                        .get_or_insert_with(|| to_ads::base_ad(&self.sub.settings, &live));
                    to_ads::build_job_from(
                        base,
                        &op.macros,
                        &self.sub.defaults,
                        &live,
                        &self.sub.settings,
                    )
                }
            };
            if self.template.is_none() {
                if let (incremental::Plan::Partial(_), Ok(ad)) = (&*plan, &built) {
                    self.template =
                        Some(incremental::Template::new(ad.clone(), &self.sub.settings));
                }
            }
            let r = built.map_err(|e| {
                let loc = e
                    .key
                    .as_deref()
                    .and_then(|k| op.key_locs.get(&k.to_ascii_lowercase()))
                    .cloned()
                    .unwrap_or_else(|| op.loc.clone());
                SubmitError::new(loc, e.kind)
            });
            self.proc_id += 1;
            self.step += 1;
            if self.step >= op.spec.count {
                self.step = 0;
                self.item += 1;
            }
            return Some(r);
        }
    }
}

impl Settings {
    /// Detects owner, time, host, architecture and environment for a submit from `dir`.
    pub fn detect(dir: &Path, opts: &SubmitOptions) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let owner = opts.owner.clone().unwrap_or_else(current_user);
        let host = hostname();
        let arch = match std::env::consts::ARCH {
            "x86_64" => "X86_64".to_string(),
            "x86" => "INTEL".to_string(),
            "aarch64" => "aarch64".to_string(),
            "powerpc64" => "ppc64le".to_string(),
            other => other.to_ascii_uppercase(),
        };
        Settings {
            owner,
            qdate: opts.qdate.unwrap_or(now),
            submit_dir: dir.to_path_buf(),
            filesystem_domain: host,
            arch,
            opsys: "LINUX".into(),
            condor_version: format!(
                "$CondorVersion: 24.0.0 2024-01-01 BuildID: petrel-{} $",
                env!("CARGO_PKG_VERSION")
            ),
            condor_platform: format!(
                "$CondorPlatform: {}-Linux $",
                std::env::consts::ARCH.to_ascii_uppercase()
            ),
            submit_method: 0,
            environment: std::env::vars().collect(),
            container_shared_fs: vec!["/cvmfs".into()],
        }
    }
}

fn current_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    // fall back to the passwd entry of our uid
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        });
    if let (Some(uid), Ok(passwd)) = (uid, std::fs::read_to_string("/etc/passwd")) {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 2 && f[2] == uid {
                return f[0].to_string();
            }
        }
    }
    "nobody".into()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn os_release_version() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim_matches('"').to_string()))
            .unwrap_or_default()
    };
    let id = get("ID=");
    let ver = get("VERSION_ID=");
    let mut name = id.chars();
    let cap = match name.next() {
        Some(c) => c.to_uppercase().collect::<String>() + name.as_str(),
        None => "Linux".into(),
    };
    format!("{cap}{}", ver.split('.').next().unwrap_or(""))
}

/// Built-in macros available to every submit file.
fn default_macros(name: &str, s: &Settings) -> MacroSet {
    let mut m = MacroSet::new();
    m.set("ARCH", &s.arch);
    m.set("OPSYS", &s.opsys);
    m.set("OPSYSANDVER", &os_release_version());
    m.set("FULL_HOSTNAME", &s.filesystem_domain);
    m.set(
        "HOSTNAME",
        s.filesystem_domain.split('.').next().unwrap_or(""),
    );
    m.set("SUBMIT_FILE", name);
    m.set("DOLLAR", "$");
    m.set("USERNAME", &s.owner);
    m
}
