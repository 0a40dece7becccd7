//! Watching the scratch directory while the job runs, as HTCondor's starter does: its use
//! goes to `SPOOL/usage.json` (the daemon copies it into `DiskUsage`), and a job that uses
//! more than its explicit `request_disk` is killed at once and held 34/104, not when it
//! ends (by then it may have filled the execute disk for every other job).
//!
//! The cost is bounded for the throughput of short jobs: nothing happens in the first
//! second, a poll's walk stops at [`POLL_BUDGET`] (its answer is then a lower bound, which
//! is still a sound reason to hold), and the thread ends the moment the job does.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::task::Ending;
use crate::holdcodes::{self, Hold};

/// When the first look happens: most short jobs are gone by then.
const FIRST_POLL: Duration = Duration::from_secs(1);
/// Between later looks.
const POLL_EVERY: Duration = Duration::from_secs(3);
/// The longest one look may walk the scratch directory.
const POLL_BUDGET: Duration = Duration::from_millis(250);

/// The running job's measured use, for the daemon.
pub const USAGE_FILE: &str = "usage.json";

/// What [`USAGE_FILE`] holds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunningUsage {
    /// The scratch directory's use in KiB (blocks, not apparent size).
    pub disk_kib: u64,
}

/// The job used more scratch space than it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub used_kib: u64,
    pub limit_kib: u64,
}

/// A watch on one job's scratch directory; [`DiskWatch::finish`] ends it.
pub(crate) struct DiskWatch {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Watched>,
}

#[derive(Default)]
struct Watched {
    exceeded: Option<Exceeded>,
}

impl DiskWatch {
    /// Starts watching `scratch`; `kill` stops the job when it uses more than `limit_kib`.
    pub(crate) fn start(
        scratch: &Path,
        spool: &Path,
        limit_kib: Option<u64>,
        kill: impl Fn() + Send + 'static,
    ) -> Option<DiskWatch> {
        let (stop, stopped) = mpsc::channel::<()>();
        let scratch = scratch.to_path_buf();
        let file = spool.join(USAGE_FILE);
        let thread = std::thread::Builder::new()
            .name("diskwatch".into())
            .spawn(move || watch(&scratch, &file, limit_kib, &stopped, kill))
            .map_err(|e| tracing::warn!("cannot watch the scratch directory: {e}"))
            .ok()?;
        Some(DiskWatch { stop, thread })
    }

    /// Stops watching; says whether the job was stopped for its disk use.
    pub(crate) fn finish(self) -> Option<Exceeded> {
        drop(self.stop);
        self.thread.join().ok().and_then(|w| w.exceeded)
    }
}

fn watch(
    scratch: &Path,
    file: &Path,
    limit_kib: Option<u64>,
    stopped: &mpsc::Receiver<()>,
    kill: impl Fn(),
) -> Watched {
    let mut wait = FIRST_POLL;
    loop {
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Watched::default(),
        }
        wait = POLL_EVERY;
        let used = petrel_transfer::disk_usage_within(scratch, POLL_BUDGET).allocated_kib;
        let running = RunningUsage { disk_kib: used };
        if let Err(e) = super::task::write_json(file, &running) {
            tracing::debug!("{e}");
        }
        if let Some(exceeded) = over(used, limit_kib) {
            tracing::warn!(
                "the job uses {used} KiB of scratch space, over its request_disk of {} KiB: \
                 stopping it",
                exceeded.limit_kib
            );
            kill();
            return Watched {
                exceeded: Some(exceeded),
            };
        }
    }
}

fn over(used_kib: u64, limit_kib: Option<u64>) -> Option<Exceeded> {
    let limit_kib = limit_kib?;
    (used_kib > limit_kib).then_some(Exceeded {
        used_kib,
        limit_kib,
    })
}

/// Measures the scratch directory once more (with the full budget) when the job has
/// ended; the hold when it is over `limit_kib`.
pub(crate) fn final_check(scratch: &Path, limit_kib: Option<u64>) -> (u64, Option<Exceeded>) {
    let used = petrel_transfer::disk_usage_within(scratch, petrel_transfer::DISK_USAGE_BUDGET)
        .allocated_kib;
    (used, over(used, limit_kib))
}

/// HTCondor's hold for a job over its disk request (34/104), with the numbers.
pub(crate) fn hold(e: Exceeded) -> Ending {
    Ending::Hold(Hold::new(
        holdcodes::JOB_OUT_OF_RESOURCES,
        holdcodes::SUBCODE_DISK,
        format!(
            "Job has exceeded its disk request: the scratch directory used {} KiB, and \
             request_disk was {} KiB.  Consider resubmitting with a higher request_disk.",
            e.used_kib, e.limit_kib
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_job_that_ends_at_once_costs_no_poll() {
        let t = tempfile::tempdir().expect("tempdir");
        let killed = Arc::new(AtomicBool::new(false));
        let k = killed.clone();
        let start = Instant::now();
        let w = DiskWatch::start(t.path(), t.path(), Some(0), move || {
            k.store(true, Ordering::SeqCst)
        })
        .expect("watch");
        assert_eq!(w.finish(), None);
        assert!(start.elapsed() < Duration::from_millis(500));
        assert!(!killed.load(Ordering::SeqCst));
        assert!(!t.path().join(USAGE_FILE).exists());
    }

    #[test]
    fn over_the_request_kills_and_reports_the_numbers() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let spool = tempfile::tempdir().expect("tempdir");
        std::fs::write(scratch.path().join("big"), vec![7u8; 300 << 10]).expect("write");
        let killed = Arc::new(AtomicBool::new(false));
        let k = killed.clone();
        let w = DiskWatch::start(scratch.path(), spool.path(), Some(100), move || {
            k.store(true, Ordering::SeqCst)
        })
        .expect("watch");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !killed.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let e = w.finish().expect("exceeded");
        assert!(killed.load(Ordering::SeqCst));
        assert!(e.used_kib >= 300 && e.limit_kib == 100, "{e:?}");
        let written: RunningUsage =
            super::super::task::read_json(&spool.path().join(USAGE_FILE)).expect("usage file");
        assert_eq!(written.disk_kib, e.used_kib);
        let Ending::Hold(h) = hold(e) else {
            panic!("not a hold")
        };
        assert_eq!((h.code, h.subcode), (34, 104));
        assert!(h.reason.contains("100 KiB"), "{}", h.reason);
    }

    #[test]
    fn within_the_request_only_reports() {
        assert_eq!(over(100, Some(100)), None);
        assert_eq!(over(100, None), None);
        assert_eq!(
            over(101, Some(100)),
            Some(Exceeded {
                used_kib: 101,
                limit_kib: 100
            })
        );
    }
}
