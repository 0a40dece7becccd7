//! The events petrel writes and reads, with the fields HTCondor gives each of them.
//!
//! Field names follow the words of the log text; units are the ones HTCondor writes
//! (KiB for image size, resident set size and disk, MiB for memory), so a value goes
//! into the log and out of HTCondor's readers unchanged.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// A job's identity as the log writes it: `(cluster.proc.subproc)`.
///
/// `subproc` is always 0 for ordinary jobs; HTCondor keeps it for parallel-universe
/// nodes and petrel keeps it so ids read from any log survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId {
    pub cluster: i64,
    pub proc: i64,
    pub subproc: i64,
}

impl JobId {
    /// `cluster.proc` with subproc 0, the usual case.
    pub fn new(cluster: i64, proc: i64) -> Self {
        JobId {
            cluster,
            proc,
            subproc: 0,
        }
    }
}

impl fmt::Display for JobId {
    /// `123.4`, the form users type to condor_q and condor_wait; the subproc is shown
    /// only when it is not 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subproc == 0 {
            write!(f, "{}.{}", self.cluster, self.proc)
        } else {
            write!(f, "{}.{}.{}", self.cluster, self.proc, self.subproc)
        }
    }
}

/// CPU time of a process tree, as the log writes it (`Usr D HH:MM:SS, Sys D HH:MM:SS`).
///
/// HTCondor keeps only whole seconds; the writer drops any fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuUsage {
    pub user: Duration,
    pub system: Duration,
}

impl CpuUsage {
    pub fn new(user: Duration, system: Duration) -> Self {
        CpuUsage { user, system }
    }

    /// Both times in whole seconds.
    pub fn from_secs(user: u64, system: u64) -> Self {
        CpuUsage {
            user: Duration::from_secs(user),
            system: Duration::from_secs(system),
        }
    }
}

/// How a job's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// `(1) Normal termination (return value N)`.
    Exited { return_value: i32 },
    /// `(0) Abnormal termination (signal N)`, with the core file if one was kept.
    Signaled {
        signal: i32,
        core_file: Option<String>,
    },
}

/// A hold or eviction reason code pair (`Code N Subcode M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonCode {
    pub code: i32,
    pub subcode: i32,
}

impl ReasonCode {
    pub fn new(code: i32, subcode: i32) -> Self {
        ReasonCode { code, subcode }
    }
}

/// One row of the "Partitionable Resources" table of terminate and evict events.
///
/// `name` is the resource tag (`Cpus`, `Disk`, `Memory`, `Gpus`, ...); the units are
/// HTCondor's: Disk in KiB, Memory in MiB. `assigned` is the raw ClassAd text of the
/// `Assigned<name>` column (e.g. `"GPU-1a2b"`), which only custom resources have.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceUsage {
    pub name: String,
    pub usage: Option<f64>,
    pub request: Option<f64>,
    pub allocated: Option<f64>,
    pub assigned: Option<String>,
}

impl ResourceUsage {
    /// A row with all three numeric columns.
    pub fn new(name: &str, usage: f64, request: f64, allocated: f64) -> Self {
        ResourceUsage {
            name: name.to_string(),
            usage: Some(usage),
            request: Some(request),
            allocated: Some(allocated),
            assigned: None,
        }
    }
}

/// Event 005: the job's process exited and the job left the queue's running state.
#[derive(Debug, Clone, PartialEq)]
pub struct Terminated {
    pub termination: Termination,
    pub run_remote_usage: CpuUsage,
    pub run_local_usage: CpuUsage,
    pub total_remote_usage: CpuUsage,
    pub total_local_usage: CpuUsage,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub total_bytes_sent: u64,
    pub total_bytes_received: u64,
    /// The "Partitionable Resources" table; empty writes no table.
    pub resources: Vec<ResourceUsage>,
}

/// Event 004: the job stopped running on its slot and goes back to idle.
#[derive(Debug, Clone, PartialEq)]
pub struct Evicted {
    /// `(1) Job was checkpointed.` instead of `(0) CPU times`.
    pub checkpointed: bool,
    pub run_remote_usage: CpuUsage,
    pub run_local_usage: CpuUsage,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Set when the job exited but was requeued (`on_exit_remove` false): how it exited.
    pub requeued: Option<Termination>,
    pub reason: Option<String>,
    /// Written only when the code is not 0, as HTCondor does.
    pub reason_code: Option<ReasonCode>,
    pub resources: Vec<ResourceUsage>,
}

/// The six steps of event 040 (`FileTransferEventType` in HTCondor, numbered 1..=6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferStep {
    InputQueued,
    InputStarted,
    InputFinished,
    OutputQueued,
    OutputStarted,
    OutputFinished,
}

impl TransferStep {
    pub const ALL: [TransferStep; 6] = [
        TransferStep::InputQueued,
        TransferStep::InputStarted,
        TransferStep::InputFinished,
        TransferStep::OutputQueued,
        TransferStep::OutputStarted,
        TransferStep::OutputFinished,
    ];

    /// HTCondor's number for the step (its `Type` attribute).
    pub fn number(self) -> u32 {
        match self {
            TransferStep::InputQueued => 1,
            TransferStep::InputStarted => 2,
            TransferStep::InputFinished => 3,
            TransferStep::OutputQueued => 4,
            TransferStep::OutputStarted => 5,
            TransferStep::OutputFinished => 6,
        }
    }

    /// The line the log writes for the step.
    pub fn text(self) -> &'static str {
        match self {
            TransferStep::InputQueued => "Entered queue to transfer input files",
            TransferStep::InputStarted => "Started transferring input files",
            TransferStep::InputFinished => "Finished transferring input files",
            TransferStep::OutputQueued => "Entered queue to transfer output files",
            TransferStep::OutputStarted => "Started transferring output files",
            TransferStep::OutputFinished => "Finished transferring output files",
        }
    }

    pub(crate) fn from_text(s: &str) -> Option<TransferStep> {
        TransferStep::ALL.into_iter().find(|t| t.text() == s)
    }
}

/// One job event. Each variant is one HTCondor event number; see [`Event::code`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// 000 `Job submitted from host: <addr>`, with up to two note lines.
    Submit {
        host: String,
        log_notes: Option<String>,
        user_notes: Option<String>,
    },
    /// 001 `Job executing on host: <addr>`, with the slot name and the slot's
    /// properties (`Cpus = 1`, ...: name and ClassAd value text), which are written
    /// sorted by name as HTCondor does.
    Execute {
        host: String,
        slot_name: Option<String>,
        props: Vec<(String, String)>,
    },
    /// 004 `Job was evicted.`
    Evicted(Evicted),
    /// 005 `Job terminated.`
    Terminated(Terminated),
    /// 006 `Image size of job updated: N` (KiB), with memory usage (MiB) and
    /// resident/proportional set sizes (KiB). HTCondor always writes the resident
    /// set size and reads a missing one as 0, so it is not optional.
    ImageSize {
        image_size_kib: i64,
        memory_usage_mib: Option<i64>,
        resident_set_size_kib: i64,
        proportional_set_size_kib: Option<i64>,
    },
    /// 009 `Job was aborted.` (condor_rm), with the removal reason.
    Aborted { reason: Option<String> },
    /// 012 `Job was held.` with the hold reason and its code and subcode.
    Held {
        reason: Option<String>,
        code: i32,
        subcode: i32,
    },
    /// 013 `Job was released.`
    Released { reason: Option<String> },
    /// 021 `Error from <daemon> on <host>:` with a message of one or more lines and,
    /// when the error put the job on hold, the hold code.
    RemoteError {
        daemon: String,
        host: String,
        message: String,
        hold_code: Option<ReasonCode>,
    },
    /// 022 `Job disconnected, attempting to reconnect`. All three fields must be
    /// non-empty and the startd name must have no spaces, or HTCondor cannot read it.
    Disconnected {
        reason: String,
        startd_name: String,
        startd_addr: String,
    },
    /// 023 `Job reconnected to <startd>`. All fields must be non-empty.
    Reconnected {
        startd_name: String,
        startd_addr: String,
        starter_addr: String,
    },
    /// 028 `Job ad information event triggered.` followed by `Name = value` lines
    /// (name and ClassAd value text), written sorted by name as HTCondor does. At
    /// least one attribute is required.
    JobAdInformation { attributes: Vec<(String, String)> },
    /// 040 file transfer progress, with the time spent queued and the peer host
    /// where HTCondor records them.
    FileTransfer {
        step: TransferStep,
        queueing_delay: Option<Duration>,
        host: Option<String>,
    },
    /// Any other event number, kept as text: the rest of the header line and the
    /// body lines (without their newlines). Written back verbatim; the writer
    /// refuses the numbers that have their own variant.
    Other {
        code: u32,
        head: String,
        body: Vec<String>,
    },
}

impl Event {
    /// HTCondor's event number (`ULogEventNumber`).
    pub fn code(&self) -> u32 {
        match self {
            Event::Submit { .. } => 0,
            Event::Execute { .. } => 1,
            Event::Evicted(_) => 4,
            Event::Terminated(_) => 5,
            Event::ImageSize { .. } => 6,
            Event::Aborted { .. } => 9,
            Event::Held { .. } => 12,
            Event::Released { .. } => 13,
            Event::RemoteError { .. } => 21,
            Event::Disconnected { .. } => 22,
            Event::Reconnected { .. } => 23,
            Event::JobAdInformation { .. } => 28,
            Event::FileTransfer { .. } => 40,
            Event::Other { code, .. } => *code,
        }
    }

    /// The job left the queue for good: terminated (005) or removed (009).
    pub fn is_final(&self) -> bool {
        matches!(self, Event::Terminated(_) | Event::Aborted { .. })
    }
}

/// One event read back from a log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The event number from the header (equal to `event.code()`).
    pub code: u32,
    pub id: JobId,
    pub time: SystemTime,
    pub event: Event,
    /// The line of the log where the record's header is (1-based).
    pub line: u64,
}

/// Which jobs a [`crate::JobTracker`] watches, as `condor_wait LOG [JOB]` takes them:
/// `123` (a cluster), `123.4`, `123.4.0`, or nothing for every job in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobFilter {
    pub cluster: Option<i64>,
    pub proc: Option<i64>,
    pub subproc: Option<i64>,
}

impl JobFilter {
    /// Every job.
    pub fn all() -> Self {
        JobFilter::default()
    }

    pub fn matches(&self, id: JobId) -> bool {
        self.cluster.is_none_or(|c| c == id.cluster)
            && self.proc.is_none_or(|p| p == id.proc)
            && self.subproc.is_none_or(|s| s == id.subproc)
    }
}

impl FromStr for JobFilter {
    type Err = String;

    /// Parse `C`, `C.P` or `C.P.S`; `-1` in any place means "any", as in condor_wait.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(format!("not a job id: {s:?}"));
        }
        let mut nums = [None; 3];
        for (slot, part) in nums.iter_mut().zip(&parts) {
            let n: i64 = part
                .parse()
                .map_err(|_| format!("not a job id: {s:?} ({part:?} is not a number)"))?;
            *slot = (n != -1).then_some(n);
        }
        Ok(JobFilter {
            cluster: nums[0],
            proc: nums[1],
            subproc: nums[2],
        })
    }
}
