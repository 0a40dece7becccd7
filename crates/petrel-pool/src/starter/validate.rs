//! Validation scripts (`CONTAINER_VALIDATION_SCRIPTS`) in the job's container: the job's
//! runtime, image, scratch directory, user, environment and limits, with the script bound
//! read-only and run instead of the job. A script that fails requeues the job and names
//! the image for the daemon to refuse on this slot for a while; a runtime that cannot run
//! it is blamed as for the job itself.

use std::path::{Path, PathBuf};

use petrel_drivers::{Bind, Blame, DriverError, JobImage, JobStatus, Runtime, Stdio};

use super::hooks::{self, ScriptEnd};
use super::job::{Launch, RuntimeReport};
use super::task::{Ending, StarterTask};

pub(crate) fn run(
    spool: &Path,
    task: &StarterTask,
    runtime: &dyn Runtime,
    launch: &Launch,
    image: JobImage,
    report: &mut RuntimeReport,
) -> Result<(), Ending> {
    let scripts = &task.hooks.validation;
    if scripts.is_empty() {
        return Ok(());
    }
    if let Some(missing) = scripts.iter().find(|s| !s.is_file()) {
        return Err(Ending::Requeue {
            reason: format!(
                "validation script {} is not a file on this slot",
                missing.display()
            ),
        });
    }
    let reference = task
        .image_reference
        .clone()
        .unwrap_or_else(|| launch.image_name.clone());
    let (out, err) = (spool.join("validation.out"), spool.join("validation.err"));
    let outcome = hooks::validate(scripts, &reference, |script, target| {
        run_one(task, runtime, launch, &image, script, target, (&out, &err))
    });
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failed)) => {
            report.refused_image = Some(reference);
            Err(Ending::Requeue {
                reason: failed.reason,
            })
        }
        Err(e) => Err(report.broke(format!(
            "{} could not run a validation script: {}",
            runtime.name(),
            e.message
        ))),
    }
}

fn run_one(
    task: &StarterTask,
    runtime: &dyn Runtime,
    launch: &Launch,
    image: &JobImage,
    script: &Path,
    target: &str,
    (out, err): (&PathBuf, &PathBuf),
) -> Result<ScriptEnd, DriverError> {
    let mut spec = super::driver::job_spec(task, launch, image.clone());
    spec.name = format!("{}-validate", launch.name);
    spec.argv = vec![target.to_string()];
    spec.binds.push(Bind {
        source: script.to_path_buf(),
        target: target.to_string(),
        read_only: true,
    });
    spec.stdout = Stdio::File(out.clone());
    spec.stderr = Stdio::File(err.clone());
    let handle = match runtime.start(&spec) {
        Ok(h) => h,
        // The image cannot run the script at all (no shell for its #! line, say).
        Err(e) if e.blame == Blame::Job => {
            return Ok(ScriptEnd {
                success: false,
                status: "could not be run".into(),
                last_line: e.message,
            })
        }
        Err(e) => return Err(e),
    };
    let waited = handle.wait_timeout(Some(hooks::HOOK_TIMEOUT));
    if let Err(e) = handle.destroy() {
        tracing::warn!("cleaning up {}: {e}", spec.name);
    }
    let (status, success) = match waited? {
        None => (format!("timed out after {:?}", hooks::HOOK_TIMEOUT), false),
        Some(exit) => match exit.status {
            JobStatus::Exited(code) => (format!("exit status {code}"), code == 0),
            JobStatus::Signaled(sig) => (format!("killed by signal {sig}"), false),
        },
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let last_line = hooks::last_line(&read(err))
        .or_else(|| hooks::last_line(&read(out)))
        .unwrap_or_default();
    Ok(ScriptEnd {
        success,
        status,
        last_line,
    })
}
