//! Programs the execute side runs around a job.
//!
//! - HTCondor's starter hooks, run on the host as the job's owner in its scratch
//!   directory, with the job ad on stdin: `HOOK_PREPARE_JOB` after the input transfer and
//!   before the job starts (a failure is the slot's: the job goes back to idle, the reason
//!   naming the hook and the last line it printed), and `HOOK_JOB_EXIT` once the job has
//!   ended, with HTCondor's reason as `argv[1]` (`exit`, `hold`, `evict`; a failure is only
//!   logged). Both see `PETREL_JOB_ID`, `PETREL_SCRATCH_DIR` (and `_CONDOR_SCRATCH_DIR`),
//!   `PETREL_IMAGE` (empty for a job on the host) and `PETREL_SLOT`.
//! - GlideinWMS-style validation scripts (`CONTAINER_VALIDATION_SCRIPTS`), run inside the
//!   job's container before the job, bound read-only at [`validation_target`]; the caller
//!   supplies the runtime. A failure requeues the job and the slot refuses the image for
//!   a while.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::task::{Ending, StarterTask};

/// The longest a hook may run before it is killed and counted as failed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// What a hook is told about the job.
pub struct HookJob<'a> {
    pub task: &'a StarterTask,
    /// The image reference the job runs in; `None` on the host.
    pub image: Option<&'a str>,
    /// The job ad, as the hook reads it on stdin.
    pub job_ad: &'a str,
}

impl HookJob<'_> {
    fn env(&self) -> Vec<(&'static str, String)> {
        let scratch = self.task.scratch.to_string_lossy().into_owned();
        vec![
            // Hooks get no environment from the starter: the same `PATH` jobs get.
            ("PATH", petrel_runtime::DEFAULT_PATH.to_string()),
            ("PETREL_JOB_ID", self.task.job.to_string()),
            ("PETREL_SCRATCH_DIR", scratch.clone()),
            ("_CONDOR_SCRATCH_DIR", scratch),
            ("PETREL_IMAGE", self.image.unwrap_or_default().to_string()),
            (
                "PETREL_SLOT",
                format!("{}@{}", self.task.slot, self.task.hostname),
            ),
        ]
    }
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    pub success: bool,
    /// `exit status 3`, `killed by signal 9`, `timed out after 300s`.
    pub status: String,
    /// The last non-empty line of its stderr, else of its stdout.
    pub last_line: String,
}

/// Runs `HOOK_PREPARE_JOB`, if the pool has one; `Err` is the requeue its failure causes.
pub fn prepare_job(job: &HookJob<'_>) -> Result<(), Ending> {
    let Some(hook) = &job.task.hooks.prepare else {
        return Ok(());
    };
    let run = run_hook(hook, &[], job, HOOK_TIMEOUT);
    tracing::info!(
        "prepare-job hook {} for job {}: {}",
        hook.display(),
        job.task.job,
        run.status
    );
    if run.success {
        return Ok(());
    }
    Err(Ending::Requeue {
        reason: failure_reason("the prepare-job hook", hook, &run),
    })
}

/// HTCondor's `argv[1]` for `HOOK_JOB_EXIT`: why the job left the slot.
pub fn exit_reason(ending: &Ending) -> &'static str {
    match ending {
        Ending::Exited { .. } | Ending::Signaled { .. } => "exit",
        Ending::Hold(_) => "hold",
        Ending::Requeue { .. } => "evict",
    }
}

/// Runs `HOOK_JOB_EXIT`, if the pool has one. Its failure is logged and changes nothing.
pub fn job_exit(job: &HookJob<'_>, ending: &Ending) {
    let Some(hook) = &job.task.hooks.exit else {
        return;
    };
    let run = run_hook(hook, &[exit_reason(ending)], job, HOOK_TIMEOUT);
    if run.success {
        tracing::info!(
            "job-exit hook {} for job {}: ok",
            hook.display(),
            job.task.job
        );
    } else {
        tracing::warn!(
            "{} (ignored)",
            failure_reason("the job-exit hook", hook, &run)
        );
    }
}

fn failure_reason(what: &str, hook: &Path, run: &HookRun) -> String {
    let mut reason = format!("{what} {} failed ({})", hook.display(), run.status);
    if !run.last_line.is_empty() {
        reason.push_str(": ");
        reason.push_str(&run.last_line);
    }
    reason
}

/// Runs one hook to completion, as the job's owner, in its scratch directory.
pub fn run_hook(hook: &Path, args: &[&str], job: &HookJob<'_>, timeout: Duration) -> HookRun {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(hook);
    cmd.args(args)
        .env_clear()
        .envs(job.env())
        .current_dir(&job.task.scratch)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);
    if rustix::process::geteuid().is_root() && job.task.uid != 0 {
        // std drops the supplementary groups when a root parent sets the uid.
        cmd.uid(job.task.uid).gid(job.task.gid);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return HookRun {
                success: false,
                status: "could not be run".into(),
                last_line: e.to_string(),
            }
        }
    };
    let ad = job.job_ad.as_bytes().to_vec();
    let feeder = child.stdin.take().map(|mut stdin| {
        std::thread::spawn(move || {
            // A hook that does not read its stdin closes the pipe; that is its right.
            let _ = stdin.write_all(&ad);
        })
    });
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        stream.map(|mut s| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                if let Some(pgid) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ =
                        rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                }
                let _ = child.wait();
                break Err(format!("timed out after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("could not be waited for: {e}")),
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let collect = |h: Option<std::thread::JoinHandle<String>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (stdout, stderr) = (collect(out), collect(err));
    for line in stdout.lines().chain(stderr.lines()) {
        tracing::debug!("{}: {line}", hook.display());
    }
    let last_line = last_line(&stderr)
        .or_else(|| last_line(&stdout))
        .unwrap_or_default();
    match status {
        Ok(s) => HookRun {
            success: s.success(),
            status: describe_status(s),
            last_line,
        },
        Err(status) => HookRun {
            success: false,
            status,
            last_line,
        },
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

/// The last non-empty line of `text`, trimmed.
pub fn last_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
}

/// Where validation script number `index` appears inside the container.
pub fn validation_target(index: usize, script: &Path) -> String {
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "script".into());
    format!("/.petrel/validate/{index}-{name}")
}

/// How one validation script ended inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEnd {
    pub success: bool,
    /// `exit status 1`, `killed by signal 9`.
    pub status: String,
    pub last_line: String,
}

/// A validation script failed in the job's image: requeue the job and refuse the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationFailed {
    pub reason: String,
}

/// Runs each validation script, in order, with `run(host_path, target_in_container)`;
/// stops at the first failure. `run`'s own error (the container could not be started)
/// is passed through for the caller to judge.
pub fn validate<E>(
    scripts: &[PathBuf],
    image: &str,
    mut run: impl FnMut(&Path, &str) -> Result<ScriptEnd, E>,
) -> Result<Result<(), ValidationFailed>, E> {
    for (i, script) in scripts.iter().enumerate() {
        let end = run(script, &validation_target(i, script))?;
        tracing::info!(
            "validation script {} in {image}: {}",
            script.display(),
            end.status
        );
        if !end.success {
            let mut reason = format!(
                "validation script {} failed in image '{image}' ({})",
                script.display(),
                end.status
            );
            if !end.last_line.is_empty() {
                reason.push_str(": ");
                reason.push_str(&end.last_line);
            }
            return Ok(Err(ValidationFailed { reason }));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExecuteHooks;
    use crate::job::JobId;
    use std::os::unix::fs::PermissionsExt;

    fn task(scratch: &Path, hooks: ExecuteHooks) -> StarterTask {
        StarterTask {
            job: JobId::new(7, 2),
            slot: "slot1_4".into(),
            scratch: scratch.to_path_buf(),
            cpus: 1,
            memory_mib: 128,
            disk_kib: 1024,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            hostname: "node".into(),
            runtimes: vec!["embedded".into()],
            container: Default::default(),
            image_reference: None,
            hooks,
            pids_limit: None,
        }
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_prepare_hook_sees_the_job_and_its_failure_requeues() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let good = script(
            dir.path(),
            "good",
            "echo \"$PETREL_JOB_ID $PETREL_SLOT $PETREL_IMAGE $(pwd) $_CONDOR_SCRATCH_DIR\" > seen\n\
             cat > ad\n",
        );
        let t = task(
            &scratch,
            ExecuteHooks {
                prepare: Some(good),
                ..Default::default()
            },
        );
        let job = HookJob {
            task: &t,
            image: Some("docker://x/y"),
            job_ad: "ClusterId = 7\nProcId = 2\n",
        };
        assert!(prepare_job(&job).is_ok());
        let s = scratch.to_string_lossy();
        assert_eq!(
            std::fs::read_to_string(scratch.join("seen")).unwrap(),
            format!("7.2 slot1_4@node docker://x/y {s} {s}\n")
        );
        assert_eq!(
            std::fs::read_to_string(scratch.join("ad")).unwrap(),
            "ClusterId = 7\nProcId = 2\n"
        );

        let bad = script(
            dir.path(),
            "bad",
            "echo preparing\necho 'no scratch quota left' >&2\necho '' >&2\nexit 3\n",
        );
        let t = task(
            &scratch,
            ExecuteHooks {
                prepare: Some(bad.clone()),
                ..Default::default()
            },
        );
        let job = HookJob {
            task: &t,
            image: None,
            job_ad: "",
        };
        match prepare_job(&job) {
            Err(Ending::Requeue { reason }) => assert_eq!(
                reason,
                format!(
                    "the prepare-job hook {} failed (exit status 3): no scratch quota left",
                    bad.display()
                )
            ),
            other => panic!("{other:?}"),
        }
        let missing = HookJob {
            task: &task(
                &scratch,
                ExecuteHooks {
                    prepare: Some(dir.path().join("nope")),
                    ..Default::default()
                },
            ),
            image: None,
            job_ad: "",
        };
        let Err(Ending::Requeue { reason }) = prepare_job(&missing) else {
            panic!("a missing hook must requeue");
        };
        assert!(reason.contains("could not be run"), "{reason}");
    }

    #[test]
    fn the_exit_hook_gets_htcondors_reason_and_a_hung_hook_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let hook = script(dir.path(), "exit", "echo \"$1\" >> reasons\n");
        let t = task(
            dir.path(),
            ExecuteHooks {
                exit: Some(hook),
                ..Default::default()
            },
        );
        let job = HookJob {
            task: &t,
            image: None,
            job_ad: "",
        };
        job_exit(&job, &Ending::Exited { code: 1 });
        job_exit(&job, &Ending::Requeue { reason: "r".into() });
        assert_eq!(
            std::fs::read_to_string(dir.path().join("reasons")).unwrap(),
            "exit\nevict\n"
        );
        let slow = script(dir.path(), "slow", "sleep 30\n");
        let started = Instant::now();
        let run = run_hook(&slow, &[], &job, Duration::from_millis(300));
        assert!(!run.success);
        assert_eq!(run.status, "timed out after 300ms");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn validation_stops_at_the_first_failing_script() {
        let scripts = [
            PathBuf::from("/etc/petrel/ok.sh"),
            PathBuf::from("/etc/petrel/gpu.sh"),
            PathBuf::from("/etc/petrel/never.sh"),
        ];
        let mut seen = Vec::new();
        let out = validate::<String>(&scripts, "/img.sif", |host, target| {
            seen.push((host.to_path_buf(), target.to_string()));
            Ok(ScriptEnd {
                success: !target.ends_with("gpu.sh"),
                status: "exit status 1".into(),
                last_line: "no GPU".into(),
            })
        })
        .unwrap();
        let failed = out.unwrap_err();
        assert_eq!(
            failed.reason,
            "validation script /etc/petrel/gpu.sh failed in image '/img.sif' (exit status 1): \
             no GPU"
        );
        assert_eq!(
            seen.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
            ["/.petrel/validate/0-ok.sh", "/.petrel/validate/1-gpu.sh"]
        );
        let broke = validate(&scripts, "/img.sif", |_, _| Err("no runtime"));
        assert_eq!(broke, Err("no runtime"));
    }
}
