//! Running the job with one of the site's runtimes (runc, crun, Docker, Podman,
//! Apptainer, Charliecloud) through `petrel-drivers`.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use petrel_drivers::{
    Blame, DriverError, ErrorKind, ExitInfo, Handle, JobImage, JobSpec, JobStatus, Limits,
    PreparedJobImage, Runtime, Stdio, User,
};
use petrel_image::ImageConfig;
use petrel_transfer::TransferPlan;

use super::job::{hold, ImageSource, Launch, RuntimeReport, ENOENT};
use super::task::{self, ContainerInfo, Ending, StarterTask, Usage};
use super::{elapsed_secs, unix_now};
use crate::holdcodes;

/// The image in the form the runtime takes it.
pub(crate) struct Image {
    pub image: JobImage,
    pub config: ImageConfig,
    /// Keeps a stored image leased while the job runs.
    _prepared: Option<PreparedJobImage>,
}

pub(crate) fn prepare(
    runtime: &dyn Runtime,
    name: &str,
    source: ImageSource,
) -> Result<Image, Ending> {
    let image_ref = match source {
        ImageSource::Engine(reference) => {
            return Ok(Image {
                image: JobImage::Engine(reference),
                config: ImageConfig::default(),
                _prepared: None,
            })
        }
        ImageSource::Dir(dir) => petrel_image::ImageRef::Dir(dir),
        ImageSource::Store(r) => r,
        ImageSource::OwnerDir(o) => {
            let store = super::job::open_store()?;
            let prepared =
                petrel_image::formats::rootfs_dir::prepare_fd(&store, o.fd.as_fd(), name.into())
                    .map_err(|e| image_hold(name, &o.explain(&e.to_string())))?;
            let image = JobImage::Rootfs(prepared.rootfs.clone());
            if !runtime.accepts(&image) {
                return Err(image_hold(
                    name,
                    &format!("{} cannot run a directory image", runtime.name()),
                ));
            }
            return Ok(Image {
                image,
                config: ImageConfig::default(),
                _prepared: Some(PreparedJobImage {
                    image: JobImage::Rootfs(prepared.rootfs.clone()),
                    prepared: Some(prepared),
                }),
            });
        }
        ImageSource::OwnerFile(o) => {
            // Runtimes that take a SIF or squashfs file as it is (Apptainer,
            // Charliecloud) run as the job's owner, and so open the user's own path
            // with the user's rights; anything else the store reads through the
            // descriptor opened as the owner.
            let direct = match &o.named {
                petrel_image::ImageRef::Sif(p) => Some(JobImage::Sif(p.clone())),
                petrel_image::ImageRef::Squashfs(p) => Some(JobImage::Squashfs(p.clone())),
                _ => None,
            };
            if let Some(image) = direct.filter(|i| runtime.accepts(i)) {
                return Ok(Image {
                    image,
                    config: ImageConfig::default(),
                    _prepared: None,
                });
            }
            let prepared = super::job::prepare_owner_file(name, &o)?;
            let image = JobImage::Rootfs(prepared.rootfs.clone());
            if !runtime.accepts(&image) {
                return Err(image_hold(
                    name,
                    &format!("{} cannot run this image", runtime.name()),
                ));
            }
            return Ok(Image {
                image: image.clone(),
                config: prepared.config.clone(),
                _prepared: Some(PreparedJobImage {
                    image,
                    prepared: Some(prepared),
                }),
            });
        }
    };
    let store = super::job::open_store()?;
    let prepared = petrel_drivers::prepare_image(runtime, &image_ref, &store).map_err(|e| {
        hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!("cannot get container image '{name}': {e}"),
        )
    })?;
    let config = prepared
        .prepared
        .as_ref()
        .map(|p| p.config.clone())
        .unwrap_or_default();
    Ok(Image {
        image: prepared.image.clone(),
        config,
        _prepared: Some(prepared),
    })
}

fn image_hold(name: &str, why: &str) -> Ending {
    hold(
        holdcodes::INVALID_DOCKER_IMAGE,
        0,
        format!("cannot get container image '{name}': {why}"),
    )
}

/// The runtime-neutral spec of the job's container (also what validation scripts run in,
/// with their own command).
pub(crate) fn job_spec(task: &StarterTask, launch: &Launch, image: JobImage) -> JobSpec {
    let mut spec = JobSpec::new(launch.name.clone(), image, launch.argv.clone());
    spec.env = launch.env.clone();
    spec.scratch = Some(task.scratch.clone());
    spec.target_dir = launch.target_dir.clone();
    spec.user = launch.user.map(|(uid, gid)| User { uid, gid });
    spec.limits = Limits {
        cpus: Some(launch.cpus),
        memory_bytes: launch.memory_bytes,
        pids: launch.pids,
    };
    spec.hostname = Some(launch.name.replace('_', "-"));
    spec
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    spool: &Path,
    task: &StarterTask,
    plan: &TransferPlan,
    runtime: &dyn Runtime,
    launch: &Launch,
    image: &Image,
    usage: &mut Usage,
    report: &mut RuntimeReport,
) -> Result<Ending, Ending> {
    let spec = job_spec(task, launch, image.image.clone());
    let start = |spec: &JobSpec| runtime.start(spec);
    let job = Started {
        runtime: runtime.name(),
        spec,
        start: &start,
    };
    run_spec(spool, task, plan, job, launch, usage, report)
}

/// A job spec and what starts it: a runtime, or the bare runner for jobs on the host.
pub(crate) struct Started<'a> {
    /// Recorded for `petrel ssh`.
    pub runtime: &'a str,
    pub spec: JobSpec,
    pub start: &'a StartFn<'a>,
}

/// Starts a job from its spec.
pub(crate) type StartFn<'a> = dyn Fn(&JobSpec) -> Result<Box<dyn Handle>, DriverError> + 'a;

/// Starts the job, passes signals on, waits for it and cleans up.
pub(crate) fn run_spec(
    spool: &Path,
    task: &StarterTask,
    plan: &TransferPlan,
    job: Started<'_>,
    launch: &Launch,
    usage: &mut Usage,
    report: &mut RuntimeReport,
) -> Result<Ending, Ending> {
    let mut spec = job.spec;
    // The starter's own descriptors are the job's files (opened as the owner).
    spec.stdin = Stdio::Inherit;
    spec.stdout = Stdio::Inherit;
    spec.stderr = Stdio::Inherit;
    super::job::redirect_stdio(task, plan)?;
    let started = Instant::now();
    usage.started = Some(unix_now());
    let handle: Arc<dyn Handle> = match (job.start)(&spec) {
        Ok(h) => Arc::from(h),
        Err(e) => return Err(failure(e, launch, report)),
    };
    let info = ContainerInfo {
        runtime: job.runtime.to_string(),
        pid: handle.pid().map_or(0, |p| p as i32),
        name: handle.name().to_string(),
        target_dir: launch.target_dir.clone(),
        uid: task.uid,
        gid: task.gid,
    };
    if let Err(e) = task::write_json(&spool.join(task::CONTAINER_FILE), &info) {
        tracing::warn!("{e}; `petrel ssh` will not find this job");
    }
    let forwarder = {
        let handle = handle.clone();
        super::job::forward_signals(move |sig| {
            if let Err(e) = handle.signal(sig) {
                tracing::warn!("passing signal {sig} to the job: {e}");
            }
        })
    };
    let disk = {
        let handle = handle.clone();
        super::diskwatch::DiskWatch::start(&task.scratch, spool, launch.disk_limit_kib, move || {
            if let Err(e) = handle.signal(rustix::process::Signal::KILL.as_raw()) {
                tracing::warn!("stopping the job over its disk request: {e}");
            }
        })
    };
    let waited = handle.wait();
    let over_disk = disk.and_then(super::diskwatch::DiskWatch::finish);
    if let Some(f) = forwarder {
        f.close();
    }
    if let Err(e) = handle.destroy() {
        tracing::warn!("cleaning up {}: {e}", launch.name);
    }
    usage.wall_secs = elapsed_secs(started);
    if let Some(e) = over_disk {
        if let Ok(exit) = &waited {
            ending(exit, task, usage);
        }
        usage.disk_kib = e.used_kib;
        return Ok(super::diskwatch::hold(e));
    }
    let exit = waited.map_err(|e| failure(e, launch, report))?;
    Ok(ending(&exit, task, usage))
}

fn ending(exit: &ExitInfo, task: &StarterTask, usage: &mut Usage) -> Ending {
    usage.user_cpu_secs = exit.user_cpu_seconds.unwrap_or(0.0);
    usage.sys_cpu_secs = exit.system_cpu_seconds.unwrap_or(0.0);
    usage.peak_memory_kib = exit.peak_memory_bytes.unwrap_or(0) / 1024;
    let ended = match exit.status {
        JobStatus::Exited(code) => Ending::Exited { code },
        JobStatus::Signaled(signal) => Ending::Signaled { signal },
    };
    super::job::ending_of_run(task, usage, exit.oom_killed, ended)
}

/// A job the runtime could not run: held when the job is to blame (its image, its
/// command), back to idle when the runtime is (which the daemon then probes again).
fn failure(e: DriverError, launch: &Launch, report: &mut RuntimeReport) -> Ending {
    let image = &launch.image_name;
    match (e.blame, e.kind) {
        (Blame::Job, ErrorKind::Command) => hold(
            holdcodes::FAILED_TO_CREATE_PROCESS,
            ENOENT,
            format!(
                "Failed to execute '{}' in container image '{image}': {}",
                launch.argv[0], e.message
            ),
        ),
        (Blame::Job, ErrorKind::Image) => hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!("container image '{image}': {}", e.message),
        ),
        (Blame::Job, _) => hold(
            holdcodes::FAILED_TO_CREATE_PROCESS,
            0,
            format!(
                "Failed to start the job in container image '{image}': {}",
                e.message
            ),
        ),
        (Blame::Slot, _) => report.broke(e.message),
    }
}
