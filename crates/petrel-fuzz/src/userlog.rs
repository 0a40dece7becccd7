//! HTCondor user logs: a job's log file is the user's (and the job can write it), and
//! `petrel wait` and the job tracker read it back.

use std::sync::OnceLock;

use petrel_userlog::{read_events, JobTracker, LogEntry, TimeFormat, TimeZone, UserLog};

/// A writer used only to print records (`UserLog::format` writes nothing).
fn printer() -> &'static UserLog {
    static LOG: OnceLock<UserLog> = OnceLock::new();
    LOG.get_or_init(|| {
        UserLog::open_with("/dev/null", TimeFormat::utc().with_sub_second(true))
            .expect("open /dev/null as a log")
    })
}

fn read(data: &[u8]) -> Vec<LogEntry> {
    let mut out = Vec::new();
    let mut items = 0usize;
    for item in read_events(data).with_time_zone(TimeZone::UTC) {
        items += 1;
        // Every item (an event or a damaged record skipped) consumes input.
        assert!(
            items <= data.len() + 1,
            "the reader returned more items than the input has bytes"
        );
        if let Ok(e) = item {
            out.push(e);
        }
    }
    out
}

/// A log: every event read is tracked, printed as the writer prints it, and the printed
/// record reads back as one event that prints the same.
pub fn userlog(data: &[u8]) {
    let mut tracker = JobTracker::new();
    for entry in read(data) {
        tracker.observe(&entry);
        assert_eq!(entry.code, entry.event.code(), "header and event disagree");
        let Ok(printed) = printer().format(entry.id, entry.time, &entry.event) else {
            continue;
        };
        let back = read(printed.as_bytes());
        assert_eq!(
            back.len(),
            1,
            "record {printed:?} of {entry:?} reads back as {back:?}"
        );
        let again = printer()
            .format(back[0].id, back[0].time, &back[0].event)
            .unwrap_or_else(|e| {
                panic!(
                    "{:?} read back from {printed:?} cannot be printed: {e}",
                    back[0]
                )
            });
        assert_eq!(
            again, printed,
            "printed record of {entry:?} does not read back the same"
        );
    }
    let _ = tracker.all_done();
    let _ = tracker.pending().count();
}
