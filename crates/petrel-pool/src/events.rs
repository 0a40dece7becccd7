//! Writing jobs' event logs (`log = file`) from the daemon, off the request path.
//!
//! Records go through a channel to one writer thread, so a slow disk never stalls the
//! queue. When the daemon is root and the job belongs to someone else, the thread
//! switches its own effective ids to the job owner's before it opens the log (Linux
//! credentials are per thread), so a user cannot get root to write where they could not.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::SystemTime;

use petrel_classad::unparse::unparse_old;
use petrel_classad::{ClassAd, Expr, Value};
use petrel_userlog::{Event, JobId as LogJobId, UserLog};

use crate::job::JobId;

/// One record for a job's log.
pub struct Record {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub job: JobId,
    pub at: SystemTime,
    pub event: Event,
    /// For a job with `job_ad_information_attrs`: those attributes (see [`job_info`]),
    /// written in a 028 event after this one.
    pub info: Option<Vec<(String, String)>>,
}

/// The attributes a job names in `job_ad_information_attrs` (HTCondor's
/// `JobAdInformationAttrs`), evaluated in its full ad, as (name, old-syntax text);
/// `None` when it names none. As HTCondor does, only those that evaluate to a bool, a
/// number or a string are kept.
pub fn job_info(ad: &ClassAd) -> Option<Vec<(String, String)>> {
    let list = ad.eval_attr("JobAdInformationAttrs");
    let list = list.as_str()?;
    let names: Vec<&str> = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return None;
    }
    let attrs = names
        .into_iter()
        .filter_map(|name| {
            let v = ad.eval_attr(name);
            matches!(
                v,
                Value::Bool(_) | Value::Int(_) | Value::Real(_) | Value::String(_)
            )
            .then(|| (name.to_string(), unparse_old(&Expr::Literal(v))))
        })
        .collect();
    Some(attrs)
}

/// Where the daemon sends records; cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Message>,
}

enum Message {
    Record(Box<Record>),
    /// Answered once everything sent before it is written.
    Flush(mpsc::Sender<()>),
}

impl EventSink {
    /// Starts the writer thread.
    pub fn start() -> EventSink {
        let (tx, rx) = mpsc::channel::<Message>();
        std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || writer(rx))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the event log writer: {e}"));
        EventSink { tx }
    }

    pub fn send(&self, record: Record) {
        let _ = self.tx.send(Message::Record(Box::new(record)));
    }

    /// Waits until every record sent so far is on disk (used before replying to a
    /// client that will read the log, and at shutdown).
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Message::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// How long the writer skips a log it could not write (another process held its lock
/// past [`petrel_userlog::LOCK_WAIT`], or the disk was full): one user's log must
/// not slow every other user's events.
const STALLED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

fn writer(rx: mpsc::Receiver<Message>) {
    let mut open: HashMap<(PathBuf, u32), UserLog> = HashMap::new();
    let mut stalled: HashMap<(PathBuf, u32), std::time::Instant> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        let record = match msg {
            Message::Record(r) => r,
            Message::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let key = (record.path.clone(), record.uid);
        stalled.retain(|_, since| since.elapsed() < STALLED_FOR);
        if stalled.contains_key(&key) {
            tracing::debug!(
                "job {}: event not written to {}, which failed a write in the last {} s",
                record.job,
                record.path.display(),
                STALLED_FOR.as_secs()
            );
            continue;
        }
        // A user may remove a log between clusters; appending to the removed file would
        // lose every later event.
        if open.get(&key).is_some_and(|log| !log.is_current()) {
            open.remove(&key);
        }
        if !open.contains_key(&key) {
            // A log file is kept open while it is busy; many short clusters would
            // otherwise pile up descriptors.
            if open.len() > 64 {
                open.clear();
            }
            match open_as(&record.path, record.uid, record.gid) {
                Ok(log) => {
                    open.insert(key.clone(), log);
                }
                Err(e) => {
                    tracing::warn!(
                        "job {}: cannot open event log {}: {e}",
                        record.job,
                        record.path.display()
                    );
                    continue;
                }
            }
        }
        if let Some(log) = open.get(&key) {
            let id = LogJobId::new(record.job.cluster, record.job.proc);
            let written = match &record.info {
                Some(info) => log.write_with_job_info(id, record.at, &record.event, info),
                None => log.write(id, record.at, &record.event),
            };
            if let Err(e) = written {
                tracing::warn!(
                    "job {}: cannot write event log {}: {e}; its events are dropped for {} s",
                    record.job,
                    record.path.display(),
                    STALLED_FOR.as_secs()
                );
                open.remove(&key);
                stalled.insert(key, std::time::Instant::now());
            }
        }
    }
}

fn open_as(path: &std::path::Path, uid: u32, gid: u32) -> Result<UserLog, String> {
    crate::creds::as_user(uid, gid, || UserLog::open(path).map_err(|e| e.to_string()))?
}
