//! HTCondor's user job event log (the `log = FILE` of a submit file): a writer, a
//! reader, a job tracker and a follower.
//!
//! Petrel's pool writes every job event here in HTCondor's own text format, so that
//! HTCondor's readers (`condor_wait`, `htcondor2.JobEventLog`, DAGMan) and the user's
//! scripts read petrel's logs as they read HTCondor's. A record looks like this
//! (body lines start with tabs, shown here as spaces):
//!
//! ```text
//! 005 (123.004.000) 2026-11-23 10:00:05 Job terminated.
//!     (1) Normal termination (return value 0)
//!         Usr 0 00:00:01, Sys 0 00:00:00  -  Run Remote Usage
//! ...
//! ```
//!
//! - [`UserLog`] appends records: one `write(2)` each, under an exclusive `flock`, so
//!   several writers never interleave. Times are local (HTCondor's default
//!   `ISO_DATE` format, zone from `TZ`) unless a [`TimeFormat`] says otherwise.
//! - [`read_events`] / [`read_log`] turn a log back into [`LogEntry`]s. Unknown event
//!   numbers come back as [`Event::Other`]; a record still being written comes back
//!   as [`UserLogError::Incomplete`]; damage costs only the record it is in.
//! - [`JobTracker`] answers what `condor_wait` asks: which jobs were submitted, which
//!   are done, are all done.
//! - [`Follower`] reads a log as it grows (the file may not exist yet), with a timeout.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use petrel_userlog::{read_log, CpuUsage, Event, JobId, JobTracker, Terminated, Termination, UserLog};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("job.log");
//! let log = UserLog::open(&path)?;
//! let job = JobId::new(123, 4);
//! let now = SystemTime::now();
//! log.write(job, now, &Event::Submit {
//!     host: "<127.0.0.1:9618?sock=schedd>".into(),
//!     log_notes: None,
//!     user_notes: None,
//! })?;
//! log.write(job, now, &Event::Terminated(Terminated {
//!     termination: Termination::Exited { return_value: 0 },
//!     run_remote_usage: CpuUsage::from_secs(1, 0),
//!     run_local_usage: CpuUsage::default(),
//!     total_remote_usage: CpuUsage::from_secs(1, 0),
//!     total_local_usage: CpuUsage::default(),
//!     bytes_sent: 0,
//!     bytes_received: 0,
//!     total_bytes_sent: 0,
//!     total_bytes_received: 0,
//!     resources: vec![],
//! }))?;
//!
//! let mut tracker = JobTracker::new();
//! for entry in read_log(&path)? {
//!     tracker.observe(&entry?);
//! }
//! assert!(tracker.all_done());
//! assert_eq!(tracker.submitted().collect::<Vec<_>>(), vec![job]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ad;
mod error;
mod event;
mod follow;
mod format;
mod parse;
mod reader;
mod time;
mod tracker;
mod writer;

pub use ad::{classad_string, event_ad, job_ad_information};
pub use error::{Result, UserLogError};
pub use event::{
    CpuUsage, Event, Evicted, JobFilter, JobId, LogEntry, ReasonCode, ResourceUsage, Terminated,
    Termination, TransferStep,
};
pub use follow::{Follower, DEFAULT_POLL};
pub use reader::{read_events, read_log, EventReader, DEFAULT_MAX_LINE, DEFAULT_MAX_RECORD};
pub use time::{TimeFormat, TimeZone};
pub use tracker::{JobState, JobTracker};
pub use writer::{UserLog, LOCK_WAIT};
