//! Running the job with petrel's own runtime, in this process: the fastest path, and
//! the one whose failures say exactly what went wrong (command missing or not
//! executable, with its errno, for HTCondor's hold subcodes).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use petrel_image::{ImageConfig, PreparedImage};
use petrel_runtime::{exit_status, ContainerSpec, JobStatus, Limits, RuntimeError, User};
use petrel_transfer::TransferPlan;

use super::job::{hold, ImageSource, Launch, RuntimeReport, ENOENT};
use super::task::{self, ContainerInfo, Ending, StarterTask, Usage};
use super::{elapsed_secs, unix_now};
use crate::holdcodes;

const EACCES: i64 = 13;

/// The image as a root file system directory.
pub(crate) struct Image {
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    /// Keeps a stored image leased (safe from `petrel image gc`) while the job runs.
    _prepared: Option<PreparedImage>,
}

pub(crate) fn prepare(name: &str, source: ImageSource) -> Result<Image, Ending> {
    let image_ref = match source {
        ImageSource::Dir(rootfs) => {
            return Ok(Image {
                rootfs,
                config: ImageConfig::default(),
                _prepared: None,
            })
        }
        ImageSource::OwnerDir(o) => {
            let store = super::job::open_store()?;
            let prepared =
                petrel_image::formats::rootfs_dir::prepare_fd(&store, o.fd.as_fd(), name.into())
                    .map_err(|e| {
                        hold(
                            holdcodes::INVALID_DOCKER_IMAGE,
                            0,
                            format!(
                                "cannot get container image '{name}': {}",
                                o.explain(&e.to_string())
                            ),
                        )
                    })?;
            return Ok(Image {
                rootfs: prepared.rootfs.clone(),
                config: prepared.config.clone(),
                _prepared: Some(prepared),
            });
        }
        ImageSource::OwnerFile(o) => {
            let prepared = super::job::prepare_owner_file(name, &o)?;
            return Ok(Image {
                rootfs: prepared.rootfs.clone(),
                config: prepared.config.clone(),
                _prepared: Some(prepared),
            });
        }
        ImageSource::Store(r) => r,
        ImageSource::Engine(_) => {
            return Err(hold(
                holdcodes::INVALID_DOCKER_IMAGE,
                0,
                format!(
                    "docker_image '{name}' (universe = docker) is resolved by the Docker \
                     engine; the embedded runtime cannot run it: use container_image = \
                     docker://{name} instead"
                ),
            ))
        }
    };
    let prepared = super::job::open_store()?.prepare(&image_ref).map_err(|e| {
        hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!("cannot get container image '{name}': {e}"),
        )
    })?;
    Ok(Image {
        rootfs: prepared.rootfs.clone(),
        config: prepared.config.clone(),
        _prepared: Some(prepared),
    })
}

pub(crate) fn run(
    spool: &Path,
    task: &StarterTask,
    plan: &TransferPlan,
    launch: &Launch,
    image: &Image,
    usage: &mut Usage,
    report: &mut RuntimeReport,
) -> Result<Ending, Ending> {
    let mut spec = ContainerSpec::new(&image.rootfs, launch.argv.clone());
    spec.env = launch.env.clone();
    spec.scratch = Some(task.scratch.clone());
    spec.target_dir = launch.target_dir.clone();
    spec.workdir = Some(launch.target_dir.clone());
    spec.user = launch.user.map(|(uid, gid)| User { uid, gid });
    spec.limits = Limits {
        memory_bytes: launch.memory_bytes,
        cpus: Some(launch.cpus),
        pids: launch.pids,
        ..Limits::default()
    };
    spec.name = Some(launch.name.clone());
    super::job::redirect_stdio(task, plan)?;
    let started = Instant::now();
    usage.started = Some(unix_now());
    let container = match petrel_runtime::start(&spec) {
        Ok(c) => c,
        Err(e) => return Err(runtime_failure(&e, launch, report)),
    };
    let info = ContainerInfo {
        runtime: "embedded".into(),
        pid: container.pid(),
        name: container.name().to_string(),
        target_dir: launch.target_dir.clone(),
        uid: task.uid,
        gid: task.gid,
    };
    if let Err(e) = task::write_json(&spool.join(task::CONTAINER_FILE), &info) {
        tracing::warn!("{e}; `petrel ssh` will not find this job");
    }
    // The container's init hands signals to the job.
    let forwarder = rustix::process::Pid::from_raw(container.pid()).and_then(|pid| {
        super::job::forward_signals(move |sig| {
            if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
                let _ = rustix::process::kill_process(pid, s);
            }
        })
    });
    let disk = disk_watch(spool, task, launch, container.pid());
    let outcome = container.wait();
    let over_disk = disk.and_then(super::diskwatch::DiskWatch::finish);
    if let Some(handle) = forwarder {
        handle.close();
    }
    usage.wall_secs = elapsed_secs(started);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return Err(runtime_failure(&e, launch, report)),
    };
    usage.user_cpu_secs = outcome.usage.user_cpu_seconds;
    usage.sys_cpu_secs = outcome.usage.system_cpu_seconds;
    usage.peak_memory_kib = outcome.usage.peak_memory_bytes.unwrap_or(0) / 1024;
    usage.not_applied = outcome
        .not_applied
        .iter()
        .map(|n| format!("{}: {}", n.limit, n.reason))
        .collect();
    if let Some(e) = over_disk {
        usage.disk_kib = e.used_kib;
        return Ok(super::diskwatch::hold(e));
    }
    let ended = match outcome.status {
        JobStatus::Exited(code) => Ending::Exited { code },
        JobStatus::Signaled(sig) => Ending::Signaled { signal: sig },
    };
    Ok(super::job::ending_of_run(
        task,
        usage,
        outcome.oom_killed,
        ended,
    ))
}

/// Watches the scratch directory; over the disk request, kills the container's init
/// (which ends every process in it) through a pidfd, so a late kill cannot hit a reused pid.
fn disk_watch(
    spool: &Path,
    task: &StarterTask,
    launch: &Launch,
    init: i32,
) -> Option<super::diskwatch::DiskWatch> {
    use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
    let pidfd = Pid::from_raw(init).and_then(|p| {
        pidfd_open(p, PidfdFlags::empty())
            .map_err(|e| tracing::warn!("no pidfd for the container's init: {e}"))
            .ok()
    });
    super::diskwatch::DiskWatch::start(&task.scratch, spool, launch.disk_limit_kib, move || {
        if let Some(fd) = &pidfd {
            if let Err(e) = pidfd_send_signal(fd, Signal::KILL) {
                tracing::warn!("stopping the job over its disk request: {e}");
            }
        }
    })
}

/// Whose fault a runtime error is: the image's and command's are the job's, the rest the
/// slot's.
fn runtime_failure(e: &RuntimeError, launch: &Launch, report: &mut RuntimeReport) -> Ending {
    use petrel_runtime::SetupFailure;
    let (command, image) = (&launch.argv[0], &launch.image_name);
    match e {
        RuntimeError::InContainer { failure, message } => match failure {
            SetupFailure::CommandNotFound => hold(
                holdcodes::FAILED_TO_CREATE_PROCESS,
                ENOENT,
                format!("Failed to execute '{command}' in container image '{image}': {message}"),
            ),
            SetupFailure::NotExecutable => hold(
                holdcodes::FAILED_TO_CREATE_PROCESS,
                EACCES,
                format!("Failed to execute '{command}' in container image '{image}': {message}"),
            ),
            SetupFailure::Workdir | SetupFailure::User => hold(
                holdcodes::FAILED_TO_CREATE_PROCESS,
                0,
                format!("Failed to start the job in container image '{image}': {message}"),
            ),
            SetupFailure::Step => report.broke(format!(
                "the container runtime failed to set up the job: {message}"
            )),
        },
        RuntimeError::RootfsMissing(_) | RuntimeError::RootfsNotDirectory(_) => hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!("container image '{image}': {e}"),
        ),
        other => report.broke(format!(
            "the container runtime failed: {other} (exit {})",
            exit_status::SETUP_FAILED
        )),
    }
}
