//! Appending records to a log that other processes may be writing too.
//!
//! Each record is formatted first, then written with one `write` on a descriptor
//! opened with `O_APPEND`, while holding an exclusive `flock` on the log (and a mutex,
//! because `flock` does not exclude threads sharing one descriptor). Writers that
//! follow the same rule never interleave, and readers never see half a record except
//! while it is being written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Result, UserLogError};
use crate::event::{Event, JobId};
use crate::format::format_record;
use crate::time::{format_time, TimeFormat};

/// An open user log, appending one record per [`UserLog::write`].
#[derive(Debug)]
pub struct UserLog {
    file: File,
    path: PathBuf,
    format: TimeFormat,
    /// Serialises writers in this process; `flock` serialises processes.
    local: Mutex<()>,
}

/// Holds the `flock` and releases it however the write ends.
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too; unlocking now lets other writers on.
        let _ = flock(self.0, FlockOperation::Unlock);
    }
}

/// How long a writer waits for another process's lock on a log. HTCondor's writers hold
/// it for one record; a process that holds it longer is not a writer, and must not stall
/// a daemon that writes every user's logs.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The null device (1, 3), by whatever name it was reached.
fn is_dev_null(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device()
        && rustix::fs::major(meta.rdev()) == 1
        && rustix::fs::minor(meta.rdev()) == 3
}

/// Takes an exclusive `flock`, retrying for at most `wait`.
fn lock_within(file: &File, wait: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(std::io::Error::other(format!(
                    "another process has held its lock for more than {} s",
                    wait.as_secs()
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl UserLog {
    /// Open (creating with mode 0644, less the umask) the log at `path` for
    /// appending, with HTCondor's default time format: local time of the system zone.
    pub fn open(path: impl AsRef<Path>) -> Result<UserLog> {
        UserLog::open_with(path, TimeFormat::default())
    }

    /// As [`UserLog::open`], with the given time format.
    ///
    /// The log must be a regular file (or `/dev/null`, as users write to discard it): a
    /// FIFO or another device named as a log could block a writer that serves other
    /// users' logs too, so it is refused (opened without blocking, then checked).
    pub fn open_with(path: impl AsRef<Path>, format: TimeFormat) -> Result<UserLog> {
        let path = path.as_ref().to_path_buf();
        let io = |action: &'static str| {
            let file = path.clone();
            move |source: std::io::Error| UserLogError::Io {
                file,
                action,
                source,
            }
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                // What a FIFO with no reader answers a non-blocking open for writing.
                Some(n) if n == rustix::io::Errno::NXIO.raw_os_error() => {
                    std::io::Error::other("not a regular file")
                }
                _ => e,
            })
            .map_err(io("open for appending"))?;
        let meta = file.metadata().map_err(io("stat"))?;
        if !meta.is_file() && !is_dev_null(&meta) {
            return Err(io("open for appending")(std::io::Error::other(
                "not a regular file",
            )));
        }
        rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::APPEND)
            .map_err(std::io::Error::from)
            .map_err(io("clear O_NONBLOCK"))?;
        Ok(UserLog {
            file,
            path,
            format,
            local: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path still names the file this log appends to: false once the log
    /// was removed or replaced, when a writer that keeps logs open must open it again.
    pub fn is_current(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }

    /// The record `write` would append, without writing it.
    pub fn format(&self, id: JobId, at: SystemTime, event: &Event) -> Result<String> {
        let time = format_time(at, &self.format).map_err(|message| UserLogError::Time {
            file: self.path.clone(),
            message,
        })?;
        format_record(id, &time, event).map_err(|message| UserLogError::InvalidEvent {
            file: self.path.clone(),
            code: event.code(),
            message,
        })
    }

    /// Append `event`, then, for a job with `job_ad_information_attrs`, the 028 event
    /// HTCondor writes after it (see [`crate::job_ad_information`]); `job_attrs` are the
    /// named job attributes as (name, old-syntax ClassAd text).
    pub fn write_with_job_info(
        &self,
        id: JobId,
        at: SystemTime,
        event: &Event,
        job_attrs: &[(String, String)],
    ) -> Result<()> {
        self.write(id, at, event)?;
        let info = crate::ad::job_ad_information(id, at, event, &self.format, job_attrs);
        self.write(id, at, &info)
    }

    /// Append the record of `event` for job `id` at time `at`.
    pub fn write(&self, id: JobId, at: SystemTime, event: &Event) -> Result<()> {
        let record = self.format(id, at, event)?;
        let io = |action: &'static str| {
            let file = self.path.clone();
            move |source: std::io::Error| UserLogError::Io {
                file,
                action,
                source,
            }
        };
        // A poisoned mutex only means another writer panicked; the file is intact.
        let _local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        lock_within(&self.file, LOCK_WAIT).map_err(io("lock"))?;
        let _locked = Locked(&self.file);
        // One write(2) for the whole record on an O_APPEND descriptor; `write_all`
        // loops only if the kernel writes less (a full disk), still under the lock.
        (&self.file)
            .write_all(record.as_bytes())
            .map_err(io("write"))?;
        tracing::trace!(log = %self.path.display(), %id, code = event.code(), "user log event written");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_or_replaced_log_is_no_longer_current() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.log");
        let log = UserLog::open(&path).unwrap();
        assert!(log.is_current());
        std::fs::remove_file(&path).unwrap();
        assert!(!log.is_current());
        std::fs::write(&path, "").unwrap();
        assert!(
            !log.is_current(),
            "a new file of the same name is another log"
        );
        assert!(UserLog::open(&path).unwrap().is_current());
    }

    /// A FIFO named as a log is refused at once (an open that waited for a reader would
    /// stop a daemon writing every user's logs); `/dev/null` is a log that keeps nothing.
    #[test]
    fn only_regular_files_and_dev_null_are_logs() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = UserLog::open(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let null = UserLog::open("/dev/null").unwrap();
        let event = Event::Aborted {
            reason: Some("kept nowhere".into()),
        };
        null.write(JobId::new(1, 0), SystemTime::UNIX_EPOCH, &event)
            .unwrap();
    }

    /// Another process holding the log's lock delays a write by at most [`LOCK_WAIT`],
    /// then the write fails with a reason.
    #[test]
    fn a_lock_held_elsewhere_fails_the_write_after_a_bounded_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.log");
        let log = UserLog::open(&path).unwrap();
        // A second open file description stands for another process: flock locks
        // belong to the description, not to the process.
        let holder = std::fs::File::open(&path).unwrap();
        flock(&holder, FlockOperation::LockExclusive).unwrap();
        let started = Instant::now();
        let event = Event::Aborted {
            reason: Some("late".into()),
        };
        let err = log
            .write(JobId::new(1, 0), SystemTime::UNIX_EPOCH, &event)
            .unwrap_err()
            .to_string();
        assert!(err.contains("held its lock"), "{err}");
        assert!(started.elapsed() >= LOCK_WAIT);
        flock(&holder, FlockOperation::Unlock).unwrap();
        log.write(JobId::new(1, 0), SystemTime::UNIX_EPOCH, &event)
            .unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("late"));
    }
}
