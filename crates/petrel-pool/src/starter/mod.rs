//! The starter: one process per running job (`petrel starter SPOOL`).
//!
//! It makes the job's scratch directory, transfers the input, gets the image, runs the
//! job in a container with the scratch directory at `/srv` (or `container_target_dir`) as
//! its working directory and the claimed CPUs and memory as limits, transfers the output
//! back and writes what happened to `SPOOL/result.json` for the daemon. Whose fault a
//! failure is decides what the daemon does: the job's (bad image, missing input, command
//! not in the image, out of memory) holds it; the slot's (scratch not creatable, runtime
//! broken) puts it back to idle.
//!
//! The container policy's decision ([`crate::policy`]) comes in the task: the job's
//! image, the pool's default image, or no container, in which case the job runs on the
//! host in its scratch directory (`host`). Around the job run the execute side's
//! programs ([`hooks`]): the prepare-job hook after the input transfer, validation
//! scripts inside the job's container (`validate`), the job-exit hook at the end.

mod diskwatch;
mod driver;
mod embedded;
pub mod hooks;
mod host;
pub mod job;
mod owner_image;
pub mod task;
mod validate;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use petrel_classad::ClassAd;

use crate::error::PoolError;
use crate::holdcodes::Hold;
use crate::policy::ContainerChoice;
use task::{Ending, StarterResult, StarterTask, Usage};

pub use diskwatch::{RunningUsage, USAGE_FILE};
pub use host::HOST_RUNTIME;
pub use petrel_transfer::{STDERR_NAME, STDOUT_NAME};

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now as Unix seconds with the fraction, for the times of the 040 events.
fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs the job described in `spool` and writes its result there. Errors are only for
/// when no result can be written at all.
pub fn run(spool: &Path) -> Result<(), PoolError> {
    let task: StarterTask = task::read_json(&spool.join(task::TASK_FILE))?;
    let text = fs::read_to_string(spool.join(task::JOB_AD_FILE))
        .map_err(|e| PoolError::io("reading the job ad", e))?;
    let ad = ClassAd::parse(&text)
        .map_err(|e| PoolError::Protocol(format!("the job ad does not parse: {e}")))?;
    tracing::info!("starter for job {} on {}", task.job, task.slot);
    let mut usage = Usage::default();
    let mut report = job::RuntimeReport::default();
    let ending = run_job(spool, &task, &ad, &mut usage, &mut report);
    tracing::info!("job {} ended: {ending:?}", task.job);
    if task.scratch.exists() {
        let job = hooks::HookJob {
            task: &task,
            image: task.image_reference.as_deref(),
            job_ad: &text,
        };
        hooks::job_exit(&job, &ending);
    }
    let result = StarterResult {
        ending,
        usage,
        runtime: report.name,
        runtime_failed: report.failed,
        refused_image: report.refused_image,
    };
    task::write_json(&spool.join(task::RESULT_FILE), &result)?;
    if task.scratch.exists() {
        let _ = crate::creds::as_user(task.uid, task.gid, || fs::remove_dir_all(&task.scratch));
    }
    Ok(())
}

fn run_job(
    spool: &Path,
    task: &StarterTask,
    ad: &ClassAd,
    usage: &mut Usage,
    report: &mut job::RuntimeReport,
) -> Ending {
    let mut plan = match petrel_transfer::TransferPlan::from_ad(ad) {
        Ok(p) => p,
        Err(e) => return transfer_hold(&e, task),
    };
    // Files are made by the owner's own ids (see `creds`), so nothing needs chown.
    plan.owner = None;
    // Taken out of the input list whatever the policy decided: a job on the host does not
    // need its image copied in.
    let own_image = job::image_location(ad, &mut plan);
    let image = match &task.container {
        ContainerChoice::JobImage => own_image,
        ContainerChoice::DefaultImage { image } => Some((image.clone(), PathBuf::from(image))),
        ContainerChoice::Host => None,
    };
    if let Err(reason) = make_scratch(task) {
        return Ending::Requeue { reason };
    }
    // Input, as the owner: a root starter must not read what the user could not.
    let transfers = plan.uses_scratch();
    if transfers {
        usage.transfers.input_started = Some(unix_now_f64());
    }
    let input = as_owner(task, || {
        petrel_transfer::transfer_input(&plan, &task.scratch)
    });
    if transfers {
        usage.transfers.input_finished = Some(unix_now_f64());
    }
    let catalog = match input {
        Ok(t) => {
            usage.bytes_received = t.stats.bytes;
            t.catalog
        }
        Err(ending) => return ending,
    };
    let job_ad = ad.to_old_syntax();
    let hook_job = hooks::HookJob {
        task,
        image: task.image_reference.as_deref(),
        job_ad: &job_ad,
    };
    if let Err(ending) = hooks::prepare_job(&hook_job) {
        return ending;
    }
    let ran = match task.container {
        ContainerChoice::Host => host::run(spool, task, ad, &plan, usage, report),
        _ => job::run_container(spool, task, ad, &plan, image, usage, report),
    };
    let ending = match ran {
        Ok(e) => e,
        Err(e) => return e,
    };
    if let Ending::Hold(_) | Ending::Requeue { .. } = ending {
        return ending;
    }
    let (used, exceeded) = diskwatch::final_check(&task.scratch, explicit_disk_request(ad));
    usage.disk_kib = used;
    if let Some(e) = exceeded {
        return diskwatch::hold(e);
    }
    if transfers {
        usage.transfers.output_started = Some(unix_now_f64());
    }
    let output = as_owner(task, || {
        petrel_transfer::transfer_output(&plan, &task.scratch, &plan.iwd, &catalog)
    });
    if transfers {
        usage.transfers.output_finished = Some(unix_now_f64());
    }
    match output {
        Ok(stats) => usage.bytes_sent = stats.bytes,
        Err(ending) => return ending,
    }
    usage.ended = Some(unix_now());
    ending
}

/// The hold a transfer failure causes (HTCondor's 13 for input, 12 for output).
fn transfer_hold(e: &petrel_transfer::TransferError, task: &StarterTask) -> Ending {
    let (code, sub) = e.hold_code();
    Ending::Hold(Hold::new(
        code.into(),
        sub.into(),
        e.hold_reason("the access point", &task.hostname),
    ))
}

/// Runs a transfer with the job owner's ids; a failure becomes the job's ending.
fn as_owner<T>(
    task: &StarterTask,
    f: impl FnOnce() -> Result<T, petrel_transfer::TransferError>,
) -> Result<T, Ending> {
    match crate::creds::as_user(task.uid, task.gid, f) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(transfer_hold(&e, task)),
        Err(e) => Err(Ending::Requeue {
            reason: format!("cannot act as the job's owner: {e}"),
        }),
    }
}

/// `request_disk` when the user set it (a literal); the default follows `DiskUsage` and is
/// not a limit.
pub(crate) fn explicit_disk_request(ad: &ClassAd) -> Option<u64> {
    let e = ad.lookup("RequestDisk")?;
    e.as_literal()?.as_int().map(|v| v.max(0) as u64)
}

fn make_scratch(task: &StarterTask) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = task
        .scratch
        .parent()
        .ok_or_else(|| format!("scratch directory {} has no parent", task.scratch.display()))?;
    if !parent.is_dir() {
        return Err(format!(
            "the execute directory {} does not exist; the slot cannot run jobs",
            parent.display()
        ));
    }
    if task.scratch.exists() {
        let _ = fs::remove_dir_all(&task.scratch);
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&task.scratch)
        .map_err(|e| {
            format!(
                "cannot create the scratch directory {}: {e}",
                task.scratch.display()
            )
        })?;
    if rustix::process::geteuid().is_root() && task.uid != 0 {
        rustix::fs::chown(
            &task.scratch,
            Some(rustix::fs::Uid::from_raw(task.uid)),
            Some(rustix::fs::Gid::from_raw(task.gid)),
        )
        .map_err(|e| {
            format!(
                "cannot give {} to uid {}: {e}",
                task.scratch.display(),
                task.uid
            )
        })?;
    }
    Ok(())
}

/// Seconds since `start`, for wall-clock usage.
pub(crate) fn elapsed_secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// The path of `name` in the scratch directory.
pub(crate) fn in_scratch(task: &StarterTask, name: &str) -> PathBuf {
    task.scratch.join(name)
}
