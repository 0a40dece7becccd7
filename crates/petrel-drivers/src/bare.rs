//! Jobs with no container: what the pool runs when its container policy and the job's
//! agree on none (HTCondor's vanilla universe). Not a [`crate::Runtime`]: nothing to
//! probe or advertise, and no image.
//!
//! The job's `argv` runs on the host as the spec's user, in its scratch directory (the
//! real host path: the caller sets `target_dir` to it, so the environment it builds from
//! `target_dir` names the right place), with exactly the spec's environment. Limits,
//! OOM detection and usage come from a cgroup petrel makes, as for Apptainer and
//! `ch-run` jobs ([`crate::hostjob`]); binds, image, network mode and hostname do not
//! apply.

use std::path::PathBuf;

use crate::error::{DriverError, ErrorKind};
use crate::hostjob::{self, Launch};
use crate::job_spec::JobSpec;
use crate::runtime::{Handle, JobStatus, RunningJob};

/// Starts `spec`'s command on the host.
pub fn start(spec: &JobSpec) -> Result<Box<dyn Handle>, DriverError> {
    spec.validate()?;
    if spec.argv[0].starts_with('-') {
        // The gate's shell runs it with `exec "$@"`; bash's `exec` would read it as an
        // option (`-a NAME`, `-c`), and no program is named so.
        return Err(DriverError::job(
            ErrorKind::Command,
            format!("executable '{}' starts with '-'", spec.argv[0]),
        ));
    }
    let cwd = match (&spec.cwd, &spec.scratch) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(scratch)) => scratch.clone(),
        (None, None) => {
            return Err(DriverError::job(
                ErrorKind::Spec,
                "a job without a container needs its scratch directory",
            ))
        }
    };
    let state = crate::host::state_dir("bare");
    let files = crate::host::job_dir(&state.join("jobs"), &spec.name)?;
    let env = spec
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let launch = Launch {
        runtime: "host",
        program: PathBuf::from(&spec.argv[0]),
        args: spec.argv[1..].to_vec(),
        env,
        run_as: hostjob::run_as(spec),
        diagnostic: None,
        // No status is the driver's own: every exit status is the job's.
        failure_status: i32::MIN,
        host_cwd: Some(cwd),
        files,
    };
    Ok(Box::new(hostjob::start(
        spec,
        launch,
        &state.join("gates"),
    )?))
}

/// Runs `argv` beside a running job on the host (`petrel ssh`), as its user in its working
/// directory with its environment: the job's own process is the one entered.
pub fn exec_running(job: &RunningJob, argv: &[String]) -> Result<JobStatus, DriverError> {
    let pid = job.pid.filter(|p| *p > 0).ok_or_else(|| {
        DriverError::slot(
            ErrorKind::Runtime,
            format!("{}: the job is not running", job.name),
        )
    })?;
    let env = hostjob::environ(pid).map_err(|e| {
        DriverError::slot(
            ErrorKind::Runtime,
            format!("{}: the job (pid {pid}) is not running: {e}", job.name),
        )
    })?;
    hostjob::nsenter(pid, job.user, &job.workdir, &env, argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job_spec::{JobImage, Stdio};

    fn spec(dir: &std::path::Path, name: &str, script: &str) -> JobSpec {
        let mut spec = JobSpec::new(
            name,
            JobImage::Rootfs("/nonexistent".into()),
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        spec.scratch = Some(dir.to_path_buf());
        spec.target_dir = dir.to_string_lossy().into_owned();
        spec.env
            .push(format!("_CONDOR_SCRATCH_DIR={}", dir.display()));
        spec.stdout = Stdio::File(dir.join("out"));
        spec
    }

    #[test]
    fn a_job_runs_on_the_host_in_its_scratch_directory() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().canonicalize().unwrap();
        let s = spec(
            &scratch,
            "petrel_bare_1_0_slot1",
            "pwd; echo \"$_CONDOR_SCRATCH_DIR\"; echo \"${HOME:-unset}\"; exit 7",
        );
        let handle = start(&s).unwrap();
        let exit = handle.wait().unwrap();
        assert_eq!(exit.status, JobStatus::Exited(7));
        let out = std::fs::read_to_string(scratch.join("out")).unwrap();
        let d = scratch.display();
        assert_eq!(out, format!("{d}\n{d}\nunset\n"));
    }

    #[test]
    fn a_signal_reaches_the_job_and_its_status_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "petrel_bare_1_1_slot1", "sleep 60");
        let handle = start(&s).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        handle.signal(15).unwrap();
        let exit = handle.wait().unwrap();
        assert_eq!(exit.status, JobStatus::Signaled(15));
    }

    #[test]
    fn a_memory_limit_is_enforced_where_a_cgroup_can_be_made() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: cgroup limits for host jobs need root here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(
            dir.path(),
            "petrel_bare_1_2_slot1",
            "head -c 300000000 /dev/zero | tail > /dev/null",
        );
        s.limits.memory_bytes = Some(64 << 20);
        let exit = start(&s).unwrap().wait().unwrap();
        assert!(exit.oom_killed, "{exit:?}");
        assert_eq!(exit.memory_limit_bytes, Some(64 << 20));
    }

    #[test]
    fn an_option_is_no_executable() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "petrel_bare_1_4_slot1", "true");
        s.argv = vec!["-a".into(), "x".into(), "/bin/sh".into()];
        let e = start(&s).err().expect("refused");
        assert_eq!((e.blame, e.kind), (crate::Blame::Job, ErrorKind::Command));
        assert!(e.message.contains("'-a'"), "{}", e.message);
    }

    #[test]
    fn no_scratch_no_job() {
        let mut s = spec(
            std::path::Path::new("/tmp"),
            "petrel_bare_1_3_slot1",
            "true",
        );
        s.scratch = None;
        let e = start(&s).err().expect("refused");
        assert!(e.message.contains("scratch directory"), "{}", e.message);
    }
}
