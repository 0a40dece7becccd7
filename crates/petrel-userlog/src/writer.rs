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
use std::time::SystemTime;

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

impl UserLog {
    /// Open (creating with mode 0644, less the umask) the log at `path` for
    /// appending, with HTCondor's default time format: local time of the system zone.
    pub fn open(path: impl AsRef<Path>) -> Result<UserLog> {
        UserLog::open_with(path, TimeFormat::default())
    }

    /// As [`UserLog::open`], with the given time format.
    pub fn open_with(path: impl AsRef<Path>, format: TimeFormat) -> Result<UserLog> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&path)
            .map_err(|source| UserLogError::Io {
                file: path.clone(),
                action: "open for appending",
                source,
            })?;
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
        flock(&self.file, FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .map_err(io("lock"))?;
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
}
