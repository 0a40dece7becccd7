//! What the CLI drivers' handles share: the runtime process, the signals sent to the job,
//! and the job's result, worked out once when the process ends.

use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::DriverError;
use crate::process::Child;
use crate::runtime::{ExitInfo, JobStatus};

/// A job run by a runtime's CLI process.
pub(crate) struct JobProcess {
    pub name: String,
    pub child: Child,
    sent: Mutex<Vec<i32>>,
    result: Mutex<Option<Result<ExitInfo, DriverError>>>,
}

/// What a driver learns when its process ends, to turn into an [`ExitInfo`].
pub(crate) struct Ended<'a> {
    pub status: ExitStatus,
    pub wall: Duration,
    /// Signals the driver delivered to the job.
    pub sent: &'a [i32],
}

impl JobProcess {
    pub fn new(name: &str, child: Child) -> JobProcess {
        JobProcess {
            name: name.to_string(),
            child,
            sent: Mutex::new(Vec::new()),
            result: Mutex::new(None),
        }
    }

    /// Notes that the driver delivered `sig`, so a shell-style status 128 + `sig` reads as
    /// that signal.
    pub fn record_signal(&self, sig: i32) {
        if let Ok(mut sent) = self.sent.lock() {
            if !sent.contains(&sig) {
                sent.push(sig);
            }
        }
    }

    /// Delivers `sig` to the job with the runtime's own `kill` command (`kill`): a no-op once
    /// the job has ended, when the runtime would only say it is gone.
    pub fn signal_with(
        &self,
        sig: i32,
        mut kill: std::process::Command,
    ) -> Result<(), DriverError> {
        if self.child.exited() {
            return Ok(());
        }
        self.record_signal(sig);
        let what = crate::process::describe(&kill);
        let out = crate::process::run_captured(&mut kill, None, crate::process::SHORT)?;
        if out.success() || self.child.exited() {
            Ok(())
        } else {
            Err(DriverError::slot(
                crate::ErrorKind::Runtime,
                format!("{what} {}: {}", self.name, out.message()),
            ))
        }
    }

    /// Waits for the process; when it has ended, `finish` turns that into the job's
    /// result, exactly once (it may clean up: later calls get the stored result).
    pub fn wait_with(
        &self,
        timeout: Option<Duration>,
        finish: impl FnOnce(Ended<'_>) -> Result<ExitInfo, DriverError>,
    ) -> Result<Option<ExitInfo>, DriverError> {
        let Some((status, wall)) = self.child.wait_timeout(timeout) else {
            return Ok(None);
        };
        let mut result = self
            .result
            .lock()
            .map_err(|_| DriverError::slot(crate::ErrorKind::Runtime, "a waiter panicked"))?;
        if result.is_none() {
            let sent = self.sent.lock().map(|s| s.clone()).unwrap_or_default();
            *result = Some(finish(Ended {
                status,
                wall,
                sent: &sent,
            }));
        }
        match result.as_ref() {
            Some(Ok(info)) => Ok(Some(info.clone())),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(None),
        }
    }

    /// Whether the job's result has been worked out (the container is cleaned up).
    pub fn finished(&self) -> bool {
        self.result.lock().map(|r| r.is_some()).unwrap_or(true)
    }

    /// Destroys a job whose runtime kills containers with a command of its own (`kill`,
    /// sending SIGKILL to the container's init): the runtime's process then ends by
    /// itself and cleans up; killing that process instead would leave the container
    /// running. Then works out the result as [`JobProcess::settle`] does.
    pub fn destroy_with(
        &self,
        mut kill: std::process::Command,
        finish: impl FnOnce(Ended<'_>) -> Result<ExitInfo, DriverError>,
    ) -> Result<(), DriverError> {
        if self.finished() {
            return Ok(());
        }
        if !self.child.exited() {
            self.record_signal(crate::process::SIGKILL);
            if let Err(e) = crate::process::run_captured(&mut kill, None, crate::process::SHORT) {
                tracing::warn!("{}: {e}", self.name);
            }
        }
        self.settle(finish)
    }

    /// After the driver has killed the job: waits for the runtime process to end and
    /// works out the result, so a destroyed job's usage is still collected and its
    /// cleanup done once.
    pub fn settle(
        &self,
        finish: impl FnOnce(Ended<'_>) -> Result<ExitInfo, DriverError>,
    ) -> Result<(), DriverError> {
        match self.wait_with(Some(Duration::from_secs(30)), finish) {
            Ok(Some(_)) | Err(_) => Ok(()),
            Ok(None) => Err(DriverError::slot(
                crate::ErrorKind::Timeout,
                format!(
                    "{}: the runtime did not end within 30s of SIGKILL",
                    self.name
                ),
            )),
        }
    }
}

/// The job's status from a runtime that reports it as a shell does (128 + signal), as runc,
/// crun, Docker and Podman do.
pub(crate) fn shell_status(ended: &Ended<'_>, oom_killed: bool) -> JobStatus {
    match crate::process::job_status(ended.status) {
        JobStatus::Exited(code) => JobStatus::from_shell_status(code, ended.sent, oom_killed),
        signaled => signaled,
    }
}

/// Lines an init in front of the job (tini, catatonit) prints when it cannot exec the
/// job's command.
pub(crate) fn init_diagnostic(line: &str) -> bool {
    (line.contains("[FATAL tini") && line.contains("exec"))
        || (line.starts_with("catatonit") && line.contains("exec"))
}

/// The error for a job whose command an init could not exec.
pub(crate) fn init_exec_error(runtime: &str, diagnostics: &[String]) -> Option<DriverError> {
    let line = diagnostics.iter().rev().find(|l| init_diagnostic(l))?;
    Some(DriverError::job(
        crate::ErrorKind::Command,
        format!("{runtime}: {}", line.trim()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_messages() {
        let line = "[FATAL tini (7)] exec nope failed: No such file or directory";
        assert!(init_diagnostic(line));
        assert!(!init_diagnostic("a job line mentioning exec"));
        let err = init_exec_error("runc", &[line.to_string()]).unwrap();
        assert_eq!(err.kind, crate::ErrorKind::Command);
        assert!(err.holds_job());
        assert!(init_exec_error("runc", &[]).is_none());
    }
}
