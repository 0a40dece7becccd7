//! Following a log that is still being written, as `condor_wait` and
//! `JobEventLog.events(stop_after=N)` do.
//!
//! The follower polls: it reopens the file every poll interval, reads from where the
//! last complete record ended, and leaves a record that is still being written for
//! the next poll. Polling (rather than inotify) works on every file system the log
//! may live on, including NFS, and needs nothing when the file does not exist yet.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Result, UserLogError};
use crate::event::LogEntry;
use crate::reader::EventReader;
use crate::time::TimeZone;
use crate::tracker::JobTracker;

/// Default time between polls.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);

/// Reads the events of a log as they are appended.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    zone: TimeZone,
    poll: Duration,
    /// Byte offset and line count after the last complete record read.
    offset: u64,
    line: u64,
    /// Device and inode of the file read so far, to notice a replaced log.
    identity: Option<(u64, u64)>,
    queue: VecDeque<Result<LogEntry>>,
}

impl Follower {
    /// Follow the log at `path` from its beginning. The file need not exist yet.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Follower {
            path: path.as_ref().to_path_buf(),
            zone: TimeZone::system(),
            poll: DEFAULT_POLL,
            offset: 0,
            line: 0,
            identity: None,
            queue: VecDeque::new(),
        }
    }

    /// The zone local header times are in (default: the system zone).
    pub fn with_time_zone(mut self, zone: TimeZone) -> Self {
        self.zone = zone;
        self
    }

    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read whatever complete records were appended since the last scan.
    fn scan(&mut self) -> Result<()> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(UserLogError::Io {
                    file: self.path.clone(),
                    action: "open",
                    source,
                })
            }
        };
        let io = |action: &'static str| {
            let file = self.path.clone();
            move |source| UserLogError::Io {
                file,
                action,
                source,
            }
        };
        let meta = file.metadata().map_err(io("stat"))?;
        let identity = Some((meta.dev(), meta.ino()));
        if (self.identity.is_some() && self.identity != identity) || meta.len() < self.offset {
            tracing::warn!(log = %self.path.display(), "user log was replaced or truncated; reading it from the start");
            self.offset = 0;
            self.line = 0;
        }
        self.identity = identity;
        if meta.len() == self.offset {
            return Ok(());
        }
        let mut file = file;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(io("seek"))?;
        let mut reader = EventReader::new(BufReader::new(file))
            .with_name(&self.path)
            .with_time_zone(self.zone.clone())
            .starting_at(self.line, self.offset);
        while let Some(item) = reader.next() {
            if matches!(item, Err(UserLogError::Incomplete { .. })) {
                // Still being written: read it again, whole, on a later poll.
                break;
            }
            (self.offset, self.line) = reader.mark();
            self.queue.push_back(item);
        }
        Ok(())
    }

    /// The next event, waiting up to `timeout` for one to be appended; `Ok(None)`
    /// when none came in time. Unreadable records come as errors and are skipped.
    pub fn next_entry(&mut self, timeout: Duration) -> Result<Option<LogEntry>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(item) = self.queue.pop_front() {
                return item.map(Some);
            }
            self.scan()?;
            if !self.queue.is_empty() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(self.poll.min(deadline - now));
        }
    }

    /// Feed `tracker` until [`JobTracker::all_done`] or until `timeout` passes;
    /// returns whether all jobs are done. Unreadable records are skipped with a
    /// warning, as `condor_wait` carries on past them.
    pub fn wait_all_done(&mut self, tracker: &mut JobTracker, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            self.scan()?;
            while let Some(item) = self.queue.pop_front() {
                match item {
                    Ok(entry) => tracker.observe(&entry),
                    Err(e @ UserLogError::Io { .. }) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "skipping unreadable user log record"),
                }
            }
            if tracker.all_done() {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(self.poll.min(deadline - now));
        }
    }
}
