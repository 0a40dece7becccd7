//! What the events of a log say about its jobs, as `condor_wait` needs it.
//!
//! `condor_wait LOG [JOB]` counts a job as submitted on its 000 event and done on
//! its 005 (terminated) or 009 (aborted) event, and succeeds when at least one job
//! was submitted and every submitted job is done. [`JobTracker`] keeps the same
//! books, plus each job's last known state.

use std::collections::BTreeMap;

use crate::event::{Event, JobFilter, JobId, LogEntry, Termination};

/// A job's state as far as its log tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Submitted, evicted or released: waiting for a slot.
    Idle,
    Running,
    Held {
        reason: Option<String>,
        code: i32,
        subcode: i32,
    },
    /// Terminated (005): done.
    Completed(Termination),
    /// Aborted (009, condor_rm): done.
    Removed,
}

impl JobState {
    pub fn is_done(&self) -> bool {
        matches!(self, JobState::Completed(_) | JobState::Removed)
    }
}

#[derive(Debug, Clone)]
struct Job {
    submitted: bool,
    state: JobState,
}

/// Feeds on [`LogEntry`]s and answers which jobs were submitted and which are done.
#[derive(Debug, Clone, Default)]
pub struct JobTracker {
    filter: JobFilter,
    jobs: BTreeMap<JobId, Job>,
    completed: usize,
    removed: usize,
}

impl JobTracker {
    /// Track every job in the log.
    pub fn new() -> Self {
        JobTracker::default()
    }

    /// Track only the jobs `filter` matches (`condor_wait LOG 123.4`).
    pub fn with_filter(filter: JobFilter) -> Self {
        JobTracker {
            filter,
            ..JobTracker::default()
        }
    }

    /// Account for one event; events of jobs outside the filter are ignored.
    pub fn observe(&mut self, entry: &LogEntry) {
        if !self.filter.matches(entry.id) {
            return;
        }
        let job = self.jobs.entry(entry.id).or_insert(Job {
            submitted: false,
            state: JobState::Idle,
        });
        if job.state.is_done() {
            // A done job's later events (image size, ad information) change nothing.
            return;
        }
        match &entry.event {
            Event::Submit { .. } => job.submitted = true,
            Event::Execute { .. } | Event::Reconnected { .. } => job.state = JobState::Running,
            Event::Evicted(_) | Event::Released { .. } => job.state = JobState::Idle,
            Event::Held {
                reason,
                code,
                subcode,
            } => {
                job.state = JobState::Held {
                    reason: reason.clone(),
                    code: *code,
                    subcode: *subcode,
                }
            }
            Event::Terminated(t) => {
                job.state = JobState::Completed(t.termination.clone());
                self.completed += 1;
            }
            Event::Aborted { .. } => {
                job.state = JobState::Removed;
                self.removed += 1;
            }
            _ => {}
        }
    }

    /// The jobs whose submit event was seen, in id order.
    pub fn submitted(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs
            .iter()
            .filter(|(_, j)| j.submitted)
            .map(|(id, _)| *id)
    }

    /// The jobs that terminated or were aborted, in id order.
    pub fn done(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs
            .iter()
            .filter(|(_, j)| j.state.is_done())
            .map(|(id, _)| *id)
    }

    /// Submitted jobs not yet done.
    pub fn pending(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs
            .iter()
            .filter(|(_, j)| j.submitted && !j.state.is_done())
            .map(|(id, _)| *id)
    }

    /// The last known state of a job the log mentions.
    pub fn state(&self, id: JobId) -> Option<&JobState> {
        self.jobs.get(&id).map(|j| &j.state)
    }

    /// How many jobs terminated (005) and how many were aborted (009), for
    /// `condor_wait -num`.
    pub fn completed_count(&self) -> usize {
        self.completed
    }

    pub fn removed_count(&self) -> usize {
        self.removed
    }

    /// At least one job was submitted and every submitted job is done: the point
    /// where `condor_wait` prints "All jobs done." and succeeds.
    pub fn all_done(&self) -> bool {
        self.submitted().next().is_some() && self.pending().next().is_none()
    }
}
