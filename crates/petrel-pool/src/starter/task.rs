//! What the daemon hands a starter, and what the starter hands back: JSON files in the
//! job's spool directory, so either side can die and the other still finds them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ExecuteHooks;
use crate::error::PoolError;
use crate::holdcodes::Hold;
use crate::job::JobId;
use crate::policy::ContainerChoice;

pub const TASK_FILE: &str = "task.json";
pub const JOB_AD_FILE: &str = "job.ad";
pub const RESULT_FILE: &str = "result.json";
pub const CONTAINER_FILE: &str = "container.json";
pub const STARTER_LOG: &str = "starter.log";

/// The starter's orders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StarterTask {
    pub job: JobId,
    /// Dynamic slot name (`slot1_3`); the container is `petrel_<cluster>_<proc>_<slot>_<pool>`.
    pub slot: String,
    pub scratch: PathBuf,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_kib: u64,
    /// The job owner; the job runs with these ids.
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    /// Container runtimes the slot may use (those its probes passed), most preferred first.
    pub runtimes: Vec<String>,
    /// The container policy's decision: the job's image, the pool's default, or the host.
    #[serde(default)]
    pub container: ContainerChoice,
    /// The image reference a failed validation script blames (reported back in
    /// [`StarterResult::refused_image`]); `None` on the host.
    #[serde(default)]
    pub image_reference: Option<String>,
    /// Execute-side hooks and validation scripts.
    #[serde(default)]
    pub hooks: ExecuteHooks,
    /// The most processes and threads the job may have (`JOB_PIDS_LIMIT`); `None`: none.
    #[serde(default)]
    pub pids_limit: Option<u64>,
}

/// How the job ended, from the starter's point of view.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ending {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The job's own fault: the schedd holds it.
    Hold(Hold),
    /// The slot's fault (runtime broken, scratch not creatable): back to idle.
    Requeue {
        reason: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Usage {
    pub user_cpu_secs: f64,
    pub sys_cpu_secs: f64,
    pub wall_secs: f64,
    pub peak_memory_kib: u64,
    pub disk_kib: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// When the job's process started and ended (Unix seconds).
    pub started: Option<i64>,
    pub ended: Option<i64>,
    /// Limits that could not be applied here (rootless cgroup v1), named.
    pub not_applied: Vec<String>,
    /// When the file transfers happened, for the event log's 040 events.
    #[serde(default)]
    pub transfers: TransferTimes,
}

/// When input and output transfer started and finished (Unix seconds, with the
/// fraction); a step that did not happen is `None`. A transfer that failed still
/// finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferTimes {
    pub input_started: Option<f64>,
    pub input_finished: Option<f64>,
    pub output_started: Option<f64>,
    pub output_finished: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StarterResult {
    pub ending: Ending,
    pub usage: Usage,
    /// The runtime that ran the job (or failed to).
    pub runtime: Option<String>,
    /// The runtime itself failed (a `Requeue` that blames it, not the slot's disk or the
    /// job): the daemon stops advertising it until a new probe passes.
    #[serde(default)]
    pub runtime_failed: bool,
    /// An image a validation script failed in: the slot refuses it for a while.
    #[serde(default)]
    pub refused_image: Option<String>,
}

/// What `petrel ssh` needs of a running container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// The runtime that runs it (`embedded` when absent: written by an older starter).
    #[serde(default = "embedded")]
    pub runtime: String,
    pub pid: i32,
    pub name: String,
    pub target_dir: String,
    pub uid: u32,
    pub gid: u32,
}

fn embedded() -> String {
    "embedded".to_string()
}

/// Writes JSON atomically (temporary file, fsync, rename) so a reader never sees half.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PoolError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec_pretty(value).map_err(|e| PoolError::Protocol(e.to_string()))?;
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| PoolError::io(format!("creating {}", tmp.display()), e))?;
    f.write_all(&body)
        .and_then(|_| f.sync_all())
        .map_err(|e| PoolError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| PoolError::io(format!("renaming {}", tmp.display()), e))
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, PoolError> {
    let body =
        std::fs::read(path).map_err(|e| PoolError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&body)
        .map_err(|e| PoolError::Protocol(format!("{}: {e}", path.display())))
}
