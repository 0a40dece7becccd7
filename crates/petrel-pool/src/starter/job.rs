//! Turning a job ad into a container launch: which image, which runtime, what command,
//! environment, limits and user. [`super::embedded`] and [`super::driver`] run it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use petrel_classad::ClassAd;
use petrel_drivers::{EngineRef, ImageKind, JobImage, Runtime};
use petrel_image::{ImageConfig, ImageRef, PreparedImage, Store, StoreOptions};
use petrel_transfer::{StdMode, TransferPlan};

use super::in_scratch;
use super::owner_image::{OwnedPath, Resolved};
use super::task::{Ending, StarterTask, Usage};
use crate::holdcodes::{self, Hold};

pub(crate) const ENOENT: i64 = 2;

pub(crate) fn hold(code: i64, sub: i64, reason: String) -> Ending {
    Ending::Hold(Hold::new(code, sub, reason))
}

/// How a job that ran ended: `ended` (its exit or signal), unless the kernel killed it for
/// its memory limit, which holds it with the limit and the peak stated (never a bare
/// exit 137). `usage` already holds the run's peak.
pub(crate) fn ending_of_run(
    task: &StarterTask,
    usage: &Usage,
    oom_killed: bool,
    ended: Ending,
) -> Ending {
    if oom_killed {
        return Ending::Hold(Hold::out_of_memory(
            task.memory_mib,
            usage.peak_memory_kib.div_ceil(1024).max(task.memory_mib),
        ));
    }
    ended
}

fn image_name(ad: &ClassAd) -> Option<String> {
    ["ContainerImage", "DockerImage"]
        .iter()
        .find_map(|a| ad.eval_attr(a).as_str().map(str::to_string))
        .filter(|s| !s.trim().is_empty())
}

/// The job's image and where it is. condor_submit lists a local image (a directory, a
/// `.sif`) in `TransferInput` and keeps only its base name in `ContainerImage`, for the
/// starter to run it from the scratch directory; on the submit machine itself petrel
/// uses it in place instead, and takes it out of the input list.
pub fn image_location(ad: &ClassAd, plan: &mut TransferPlan) -> Option<(String, PathBuf)> {
    let name = image_name(ad)?;
    let listed = plan.inputs.iter().position(|i| {
        i.role == petrel_transfer::InputRole::Listed
            && !name.contains('/')
            && i.dest == Path::new(&name)
    });
    let location = match listed {
        Some(pos) => plan.inputs.remove(pos).source,
        None => PathBuf::from(&name),
    };
    Some((name, location))
}

/// `Arguments` (new syntax) or `Args` (old).
fn arguments(ad: &ClassAd) -> Result<Vec<String>, String> {
    if let Some(v2) = ad.eval_attr("Arguments").as_str() {
        return petrel_submit::args_env::split_v2(v2).map_err(|e| format!("Arguments: {e}"));
    }
    Ok(ad
        .eval_attr("Args")
        .as_str()
        .map(|a| a.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default())
}

/// `Environment` (new syntax) or `Env` (old).
fn environment(ad: &ClassAd) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    if let Some(v2) = ad.eval_attr("Environment").as_str() {
        for entry in
            petrel_submit::args_env::split_v2(v2).map_err(|e| format!("Environment: {e}"))?
        {
            if let Some((k, v)) = entry.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
    } else if let Some(v1) = ad.eval_attr("Env").as_str() {
        for entry in v1.split(';') {
            if let Some((k, v)) = entry.trim().split_once('=') {
                out.push((k.trim().to_string(), v.to_string()));
            }
        }
    }
    Ok(out)
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    env.retain(|e| !e.starts_with(&prefix));
    env.push(format!("{key}={value}"));
}

/// Opens the job's standard streams (as the owner) and puts them on fds 0, 1 and 2, which
/// the container inherits.
pub(crate) fn redirect_stdio(task: &StarterTask, plan: &TransferPlan) -> Result<(), Ending> {
    let open_err = |code: i64, what: &str, p: &Path, e: std::io::Error| {
        hold(
            code,
            i64::from(e.raw_os_error().unwrap_or(0)),
            format!("Failed to open {what} file '{}': {e}", p.display()),
        )
    };
    let stdin_path = plan.stdin.as_ref().map(|s| match &s.in_scratch {
        Some(name) => task.scratch.join(name),
        None => s.path.clone(),
    });
    let out_path = |f: &Option<petrel_transfer::StdFile>, name: &str| -> PathBuf {
        match f {
            None => PathBuf::from("/dev/null"),
            Some(f) if f.mode == StdMode::Transfer => in_scratch(task, name),
            Some(f) => f.path_in(&plan.iwd),
        }
    };
    let stdout_path = out_path(&plan.stdout, super::STDOUT_NAME);
    let stderr_path = out_path(&plan.stderr, super::STDERR_NAME);
    let opened = crate::creds::as_user(task.uid, task.gid, || {
        let stdin = match &stdin_path {
            Some(p) => File::open(p)
                .map_err(|e| open_err(holdcodes::UNABLE_TO_OPEN_INPUT, "input", p, e))?,
            None => File::open("/dev/null").map_err(|e| {
                open_err(
                    holdcodes::UNABLE_TO_OPEN_INPUT,
                    "input",
                    Path::new("/dev/null"),
                    e,
                )
            })?,
        };
        let open_out = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| open_err(holdcodes::UNABLE_TO_OPEN_OUTPUT, "output", p, e))
        };
        let stdout = open_out(&stdout_path)?;
        let stderr = if stderr_path == stdout_path {
            stdout
                .try_clone()
                .map_err(|e| open_err(holdcodes::UNABLE_TO_OPEN_OUTPUT, "error", &stderr_path, e))?
        } else {
            open_out(&stderr_path)?
        };
        Ok::<_, Ending>((stdin, stdout, stderr))
    })
    .map_err(|e| Ending::Requeue {
        reason: format!("cannot act as the job's owner: {e}"),
    })??;
    let (stdin, stdout, stderr) = opened;
    rustix::stdio::dup2_stdin(&stdin)
        .and_then(|_| rustix::stdio::dup2_stdout(&stdout))
        .and_then(|_| rustix::stdio::dup2_stderr(&stderr))
        .map_err(|e| Ending::Requeue {
            reason: format!("cannot redirect the job's standard streams: {e}"),
        })
}

/// Which runtime ran the job, and whether it (not the job, not the slot's disk) failed.
#[derive(Debug, Default)]
pub struct RuntimeReport {
    pub name: Option<String>,
    pub failed: bool,
    /// A validation script failed in this image (reference as the policy names it).
    pub refused_image: Option<String>,
}

impl RuntimeReport {
    /// The runtime broke: back to idle, and the daemon probes it again.
    pub(crate) fn broke(&mut self, reason: String) -> Ending {
        self.failed = true;
        Ending::Requeue { reason }
    }
}

/// Where the job's image comes from.
pub(crate) enum ImageSource {
    /// A directory used in place as the root file system.
    Dir(PathBuf),
    /// A directory a root starter opened as the job's owner, used in place through its
    /// descriptor.
    OwnerDir(OwnedPath),
    /// Anything the image store turns into a root file system.
    Store(ImageRef),
    /// A file or OCI layout a root starter opened as the job's owner, which the store
    /// reads through its descriptor.
    OwnerFile(OwnedPath),
    /// An image the Docker engine resolves itself (`universe = docker`, `docker_image`).
    Engine(EngineRef),
}

/// What to run, in no runtime's terms.
pub(crate) struct Launch {
    /// The image as the user named it, for messages.
    pub image_name: String,
    pub argv: Vec<String>,
    /// The whole environment, `KEY=VALUE`.
    pub env: Vec<String>,
    pub target_dir: String,
    /// The job's owner when the starter is root and the owner is not.
    pub user: Option<(u32, u32)>,
    pub memory_bytes: Option<u64>,
    pub cpus: f64,
    /// The most processes and threads the job may have.
    pub pids: Option<u64>,
    /// The scratch space the job may use (its explicit `request_disk`), KiB.
    pub disk_limit_kib: Option<u64>,
    /// `petrel_<cluster>_<proc>_<slot>_<pool>` (see [`container_name`]).
    pub name: String,
}

/// `universe = docker`: HTCondor gives such a job to the Docker engine, which resolves
/// `docker_image` in its own store (or pulls it).
fn docker_universe(ad: &ClassAd) -> bool {
    ad.eval_attr("WantDocker").as_bool() == Some(true)
}

fn locate_image(
    ad: &ClassAd,
    name: &str,
    location: &Path,
    iwd: &Path,
    task: &StarterTask,
) -> Result<ImageSource, Ending> {
    let invalid = |e: &dyn std::fmt::Display| {
        hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!("invalid image name '{name}': {e}"),
        )
    };
    if docker_universe(ad) {
        // The ad may come from any client: this, not condor_submit's check, is what
        // keeps an option out of the engine's command line.
        return EngineRef::parse(name)
            .map(ImageSource::Engine)
            .map_err(|e| invalid(&e.message));
    }
    if rustix::process::geteuid().is_root() && task.uid != 0 {
        return locate_as_owner(name, location, iwd, task);
    }
    let location = location.to_string_lossy();
    let local = if location.contains("://") || location.starts_with('/') {
        None
    } else {
        Some(iwd.join(location.as_ref()))
    };
    let path = match &local {
        Some(p) if p.exists() => p.clone(),
        _ => PathBuf::from(location.as_ref()),
    };
    if path.exists() && !path.is_absolute() {
        // Relative to the starter, not to the job: nothing the user could mean.
        return Err(invalid(
            &"a local image must be named by an absolute path or one in the job's directory",
        ));
    }
    if path.is_dir() && !path.join("oci-layout").exists() {
        return Ok(ImageSource::Dir(path));
    }
    let reference = if path.exists() {
        path.to_string_lossy().into_owned()
    } else {
        location.into_owned()
    };
    ImageRef::parse(&reference)
        .map(ImageSource::Store)
        .map_err(|e| invalid(&e))
}

/// [`locate_image`] in a root starter: every path is resolved and opened with the owner's
/// ids (see [`super::owner_image`]), so a hold reason says only what the owner could
/// have found out by trying.
fn locate_as_owner(
    name: &str,
    location: &Path,
    iwd: &Path,
    task: &StarterTask,
) -> Result<ImageSource, Ending> {
    let location = location.to_string_lossy();
    let found = crate::creds::as_user(task.uid, task.gid, || {
        super::owner_image::resolve(&location, iwd)
    })
    .map_err(|e| Ending::Requeue {
        reason: format!("cannot act as the job's owner: {e}"),
    })?;
    match found {
        Ok(Resolved::Dir(o)) => Ok(ImageSource::OwnerDir(o)),
        Ok(Resolved::Store(o)) => Ok(ImageSource::OwnerFile(o)),
        Ok(Resolved::Name(r)) => {
            // A squashfs or SIF file's extraction is stored under a digest of the file's
            // identity, which anyone who can stat the file can compute: only the file
            // itself, opened as its reader, leads there, never a typed name. (Answered
            // as if it were not stored, which tells the user nothing more.)
            if let ImageRef::Stored(_) = &r {
                let by_identity = open_store()?.inspect(&r).is_ok_and(|info| {
                    matches!(info.kind, petrel_image::store::ImageKind::Squashfs { .. })
                });
                if by_identity {
                    return Err(hold(
                        holdcodes::INVALID_DOCKER_IMAGE,
                        0,
                        format!("cannot get container image '{name}': not found: {r}"),
                    ));
                }
            }
            Ok(ImageSource::Store(r))
        }
        Err(e) => Err(hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!("cannot get container image '{name}': {e}"),
        )),
    }
}

impl ImageSource {
    /// The kind the slot must run, by HTCondor's rule for the name the user wrote where
    /// it decides (`WantSandboxImage` for a bare name), else by what the image is.
    fn kind(&self, name: &str) -> ImageKind {
        match self {
            ImageSource::Dir(_) | ImageSource::OwnerDir(_) => ImageKind::SandboxDir,
            ImageSource::Engine(_) => ImageKind::DockerUrl,
            ImageSource::Store(r) | ImageSource::OwnerFile(OwnedPath { named: r, .. }) => match r {
                ImageRef::Docker(_) | ImageRef::DockerArchive(_) => ImageKind::DockerUrl,
                ImageRef::Stored(_) => ImageKind::from_container_image(name),
                ImageRef::Dir(_) => ImageKind::SandboxDir,
                ImageRef::OciLayout { .. } => ImageKind::OciLayout,
                ImageRef::Sif(_) => ImageKind::Sif,
                ImageRef::Squashfs(_) => ImageKind::Squashfs,
            },
        }
    }
}

pub(crate) fn open_store() -> Result<Store, Ending> {
    open_store_with(|_| {})
}

/// The image store, with the options a root starter needs and then `adjust`'s.
fn open_store_with(adjust: impl FnOnce(&mut StoreOptions)) -> Result<Store, Ending> {
    let failed = |e: petrel_image::Error| Ending::Requeue {
        reason: format!("cannot open the image store: {e}"),
    };
    let root = match std::env::var_os("PETREL_IMAGE_STORE") {
        Some(dir) => PathBuf::from(dir),
        None => Store::default_root().map_err(failed)?,
    };
    let mut opts = store_options();
    adjust(&mut opts);
    Store::open_with(&root, opts).map_err(failed)
}

/// The store's options in this starter (from the environment, as `petrel image` reads
/// them, less what a root starter must not use).
fn store_options() -> StoreOptions {
    let mut opts = StoreOptions::default();
    if rustix::process::geteuid().is_root() {
        // Root's starter pulls for every user. With root's own credentials
        // (`~/.docker/config.json`, ...) any user could have a private image pulled and
        // stored under its registry name, for everyone; only a file the admin names for
        // the pool (`REGISTRY_AUTH_FILE` in the daemon's environment) is used.
        opts.registry.auth_files = std::env::var_os("REGISTRY_AUTH_FILE")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .collect();
    }
    opts
}

/// Prepares an image file the job's owner supplied (SIF, squashfs, archive, layout),
/// read through the descriptor opened as the owner. A root starter extracts squashfs
/// and SIF files rather than mounting them, unless the admin chose a way
/// (`PETREL_SQUASHFS`): the kernel's squashfs code is not written to resist hostile
/// images, and a squashfuse mount made by root is not reachable by the job's owner.
pub(crate) fn prepare_owner_file(name: &str, o: &OwnedPath) -> Result<PreparedImage, Ending> {
    use petrel_image::formats::squashfs::SquashfsMode;
    let store = open_store_with(|opts| {
        if rustix::process::geteuid().is_root() && opts.squashfs == SquashfsMode::Auto {
            opts.squashfs = SquashfsMode::Extract;
        }
    })?;
    store.prepare(&o.via_fd).map_err(|e| {
        hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!(
                "cannot get container image '{name}': {}",
                o.explain(&e.to_string())
            ),
        )
    })
}

/// The runtime for this job: the one it asks for (`container_runtime`; Docker for
/// `universe = docker`), else the slot's most preferred one that runs its image's kind.
fn choose_runtime<'a>(
    runtimes: &'a [Box<dyn Runtime>],
    task: &StarterTask,
    ad: &ClassAd,
    kind: ImageKind,
) -> Result<&'a dyn Runtime, Ending> {
    let asked = ad
        .eval_attr("ContainerRuntime")
        .as_str()
        .map(str::to_string)
        .or_else(|| docker_universe(ad).then(|| "docker".to_string()));
    let available: Vec<&str> = task.runtimes.iter().map(String::as_str).collect();
    petrel_drivers::choose(runtimes, &available, kind, asked.as_deref()).map_err(|e| {
        if e.holds_job() {
            hold(holdcodes::INVALID_DOCKER_IMAGE, 0, e.message)
        } else {
            Ending::Requeue { reason: e.message }
        }
    })
}

/// Runs the job's container; `Err` carries an ending that stops the job before it ran.
pub fn run_container(
    spool: &Path,
    task: &StarterTask,
    ad: &ClassAd,
    plan: &TransferPlan,
    image: Option<(String, PathBuf)>,
    usage: &mut Usage,
    report: &mut RuntimeReport,
) -> Result<Ending, Ending> {
    let Some((name, location)) = image else {
        return Err(hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            "petrel runs jobs in containers: set container_image (universe = container) or \
             docker_image (universe = docker)"
                .into(),
        ));
    };
    let source = locate_image(ad, &name, &location, &plan.iwd, task)?;
    let kind = source.kind(&name);
    let runtimes: Vec<Box<dyn Runtime>> = task
        .runtimes
        .iter()
        .filter_map(|n| petrel_drivers::driver(n))
        .collect();
    let runtime = choose_runtime(&runtimes, task, ad, kind)?;
    report.name = Some(runtime.name().to_string());
    tracing::info!(
        "running with {} ({} image {name})",
        runtime.name(),
        kind.label()
    );
    let target_dir = container_target_dir(ad);
    if runtime.name() == "embedded" {
        let image = super::embedded::prepare(&name, source)?;
        let launch = build_launch(task, ad, plan, &name, &image.config, target_dir)?;
        let rootfs = JobImage::Rootfs(image.rootfs.clone());
        super::validate::run(spool, task, runtime, &launch, rootfs, report)?;
        super::embedded::run(spool, task, plan, &launch, &image, usage, report)
    } else {
        let image = super::driver::prepare(runtime, &name, source)?;
        let launch = build_launch(task, ad, plan, &name, &image.config, target_dir)?;
        // What the runtime's command line would carry (mount targets, names, the image
        // path), checked before a validation script or the job runs in it.
        super::driver::job_spec(task, &launch, image.image.clone())
            .validate()
            .map_err(|e| {
                let code = match e.kind {
                    petrel_drivers::ErrorKind::Image => holdcodes::INVALID_DOCKER_IMAGE,
                    _ => holdcodes::FAILED_TO_CREATE_PROCESS,
                };
                hold(
                    code,
                    0,
                    format!(
                        "cannot run the job in container image '{name}': {}",
                        e.message
                    ),
                )
            })?;
        super::validate::run(spool, task, runtime, &launch, image.image.clone(), report)?;
        super::driver::run(spool, task, plan, runtime, &launch, &image, usage, report)
    }
}

/// Where the scratch directory appears in the container (`container_target_dir`).
fn container_target_dir(ad: &ClassAd) -> String {
    ad.eval_attr("ContainerTargetDir")
        .as_str()
        .filter(|s| s.starts_with('/'))
        .unwrap_or(petrel_runtime::DEFAULT_TARGET_DIR)
        .to_string()
}

/// The command, environment, limits and user, from the job ad and the image's config;
/// `target_dir` is where the job sees its scratch directory.
pub(crate) fn build_launch(
    task: &StarterTask,
    ad: &ClassAd,
    plan: &TransferPlan,
    name: &str,
    config: &ImageConfig,
    target_dir: String,
) -> Result<Launch, Ending> {
    let cmd = ad
        .eval_attr("Cmd")
        .as_str()
        .map(str::to_string)
        .unwrap_or_default();
    let mut argv = Vec::new();
    match plan.executable.as_ref().and_then(|e| e.in_scratch.as_ref()) {
        Some(n) => argv.push(format!(
            "{}/{}",
            target_dir.trim_end_matches('/'),
            n.display()
        )),
        None if !cmd.is_empty() => argv.push(cmd.clone()),
        None => {
            argv.extend(config.entrypoint.clone().unwrap_or_default());
            argv.extend(config.cmd.clone().unwrap_or_default());
        }
    }
    if argv.is_empty() {
        return Err(hold(
            holdcodes::FAILED_TO_CREATE_PROCESS,
            ENOENT,
            format!(
                "no executable: the job has none and the image '{name}' has no Entrypoint or Cmd \
                 that petrel can read"
            ),
        ));
    }
    argv.extend(arguments(ad).map_err(|e| hold(holdcodes::FAILED_TO_CREATE_PROCESS, 0, e))?);

    let mut env = vec![format!("PATH={}", petrel_runtime::DEFAULT_PATH)];
    for e in &config.env {
        if let Some((k, v)) = e.split_once('=') {
            set_env(&mut env, k, v);
        }
    }
    let cpus = task.cpus.to_string();
    for (k, v) in [
        ("_CONDOR_SCRATCH_DIR", target_dir.as_str()),
        ("_CONDOR_JOB_IWD", target_dir.as_str()),
        ("_CONDOR_SLOT", task.slot.as_str()),
        ("_CONDOR_JOB_AD", &format!("{target_dir}/.job.ad")),
        ("_CONDOR_MACHINE_AD", &format!("{target_dir}/.machine.ad")),
        ("TMPDIR", target_dir.as_str()),
        ("OMP_NUM_THREADS", cpus.as_str()),
        ("HOME", target_dir.as_str()),
    ] {
        set_env(&mut env, k, v);
    }
    for (k, v) in environment(ad).map_err(|e| hold(holdcodes::FAILED_TO_CREATE_PROCESS, 0, e))? {
        set_env(&mut env, &k, &v);
    }
    // The job's own ad inside its scratch directory, as HTCondor's starter leaves it.
    let _ = crate::creds::as_user(task.uid, task.gid, || {
        let _ = std::fs::write(in_scratch(task, ".job.ad"), ad.to_old_syntax());
        let _ = std::fs::write(
            in_scratch(task, ".machine.ad"),
            format!(
                "Cpus = {}\nMemory = {}\nDisk = {}\nName = \"{}@{}\"\n",
                task.cpus, task.memory_mib, task.disk_kib, task.slot, task.hostname
            ),
        );
    });
    let as_owner = rustix::process::geteuid().is_root() && task.uid != 0;
    Ok(Launch {
        image_name: name.to_string(),
        argv,
        env,
        target_dir,
        user: as_owner.then_some((task.uid, task.gid)),
        memory_bytes: (task.memory_mib > 0).then_some(task.memory_mib << 20),
        cpus: f64::from(task.cpus.max(1)),
        pids: task.pids_limit,
        disk_limit_kib: super::explicit_disk_request(ad),
        name: container_name(task),
    })
}

/// `petrel_<cluster>_<proc>_<slot>_<pool>`. The pool part (a hash of the execute
/// directory) keeps two pools on one host apart: with the same cluster, proc and slot they
/// would share a cgroup and a runtime's container id, and one job's start would kill the
/// other's processes as the leftovers of an earlier run. Within one pool the name stays
/// the same across runs of a job, so a crashed run's leftovers are still found.
fn container_name(task: &StarterTask) -> String {
    use std::hash::{Hash, Hasher};
    let mut pool = std::collections::hash_map::DefaultHasher::new();
    task.scratch.parent().hash(&mut pool);
    format!(
        "petrel_{}_{}_{}_{:08x}",
        task.job.cluster,
        task.job.proc,
        task.slot,
        pool.finish() as u32
    )
}

/// Passes the signals sent to the starter (`enter::FORWARDED`: SIGTERM, SIGINT, SIGHUP, … by
/// `petrel rm`/`hold` through the daemon) on to the job with `deliver`.
pub(crate) fn forward_signals(
    deliver: impl Fn(i32) + Send + 'static,
) -> Option<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new(crate::enter::FORWARDED)
        .map_err(|e| tracing::warn!("cannot catch signals: {e}"))
        .ok()?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                deliver(sig);
            }
        })
        .ok()?;
    Some(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;

    /// Root's starter pulls for every user: root's own registry logins (`~/.docker`,
    /// `$XDG_RUNTIME_DIR/containers`, `$DOCKER_CONFIG`) are never among its credentials.
    #[test]
    fn a_root_starter_never_uses_roots_own_registry_logins() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let files = store_options().registry.auth_files;
        let admin = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty());
        assert_eq!(
            files,
            admin.map(PathBuf::from).into_iter().collect::<Vec<_>>()
        );
    }

    fn task(scratch: &str) -> StarterTask {
        StarterTask {
            job: JobId::new(1, 0),
            slot: "slot1_1".into(),
            scratch: PathBuf::from(scratch),
            cpus: 1,
            memory_mib: 128,
            disk_kib: 1024,
            uid: 1000,
            gid: 1000,
            hostname: "node".into(),
            runtimes: vec!["embedded".into()],
            container: Default::default(),
            image_reference: None,
            hooks: Default::default(),
            pids_limit: None,
        }
    }

    #[test]
    fn container_names_differ_between_pools_and_not_between_runs() {
        let a = container_name(&task("/var/lib/petrel/execute/dir_1_0"));
        let again = container_name(&task("/var/lib/petrel/execute/dir_1_0"));
        let other_pool = container_name(&task("/tmp/pool/execute/dir_1_0"));
        assert!(a.starts_with("petrel_1_0_slot1_1_"), "{a}");
        assert_eq!(a, again);
        assert_ne!(a, other_pool);
    }
}
