//! A job with no container (the container policy said so): HTCondor's vanilla universe.
//! It runs on the host as its owner, in its scratch directory (whose real path is what
//! `_CONDOR_SCRATCH_DIR`, `TMPDIR` and `HOME` name), with the claimed CPUs and memory as
//! cgroup limits, through `petrel_drivers::bare`; exit code, signal, usage and OOM kills
//! are reported as for container jobs.

use std::path::Path;

use petrel_classad::ClassAd;
use petrel_drivers::{JobImage, JobSpec};
use petrel_image::ImageConfig;
use petrel_transfer::TransferPlan;

use super::driver::{self, Started};
use super::job::{hold, RuntimeReport, ENOENT};
use super::task::{Ending, StarterTask, Usage};
use crate::holdcodes;

/// What `petrel ssh` and the job's `RemoteHost` know the job's "runtime" as.
pub const HOST_RUNTIME: &str = "host";

pub(crate) fn run(
    spool: &Path,
    task: &StarterTask,
    ad: &ClassAd,
    plan: &TransferPlan,
    usage: &mut Usage,
    report: &mut RuntimeReport,
) -> Result<Ending, Ending> {
    let scratch = task.scratch.to_string_lossy().into_owned();
    let launch =
        super::job::build_launch(task, ad, plan, "the host", &ImageConfig::default(), scratch)?;
    let program = Path::new(&launch.argv[0]);
    // As HTCondor holds a vanilla job whose executable is not there (the bare runner would
    // only see a shell's 127).
    if program.is_absolute() && !program.exists() {
        return Err(hold(
            holdcodes::FAILED_TO_CREATE_PROCESS,
            ENOENT,
            format!(
                "Failed to execute '{}': No such file or directory (the job runs on the host, \
                 without a container)",
                program.display()
            ),
        ));
    }
    // The image is not used: the bare runner runs the command on the host's own root.
    let mut spec = driver::job_spec(task, &launch, JobImage::Rootfs("/".into()));
    spec.hostname = None;
    let start = |spec: &JobSpec| petrel_drivers::bare::start(spec);
    let job = Started {
        runtime: HOST_RUNTIME,
        spec,
        start: &start,
    };
    driver::run_spec(spool, task, plan, job, &launch, usage, report)
}
