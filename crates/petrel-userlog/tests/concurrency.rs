//! Many writers, threads and processes, appending to one log: every record must
//! come back intact and in each writer's own order.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use petrel_userlog::{read_log, Event, JobId, UserLog};

const PER_WRITER: i64 = 150;

/// A record of several KiB (more than a pipe buffer's atomic size), whose content
/// says who wrote it, so a torn or interleaved record cannot pass for a good one.
fn payload(writer: i64, seq: i64) -> Event {
    let filler: String =
        std::iter::repeat_n(char::from(b'a' + (writer % 26) as u8), 6000).collect();
    Event::JobAdInformation {
        attributes: vec![
            ("Seq".into(), seq.to_string()),
            ("Writer".into(), writer.to_string()),
            ("Zfill".into(), format!("\"{filler}\"")),
        ],
    }
}

fn write_many(log: &UserLog, writer: i64) {
    for seq in 0..PER_WRITER {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seq as u64);
        log.write(JobId::new(100 + writer, seq), at, &payload(writer, seq))
            .expect("write");
    }
}

/// Read the log and check every record: parsed, from a known writer, in order,
/// with its payload intact, and every writer's records all there.
fn check(path: &Path, writers: i64) {
    let mut next = vec![0i64; writers as usize];
    for entry in read_log(path).unwrap() {
        let entry = entry.unwrap_or_else(|e| panic!("damaged record: {e}"));
        let writer = entry.id.cluster - 100;
        assert!(
            (0..writers).contains(&writer),
            "unknown writer in {:?}",
            entry.id
        );
        let seq = entry.id.proc;
        assert_eq!(seq, next[writer as usize], "writer {writer} out of order");
        assert_eq!(entry.event, payload(writer, seq), "payload of {}", entry.id);
        next[writer as usize] += 1;
    }
    assert_eq!(
        next,
        vec![PER_WRITER; writers as usize],
        "records per writer"
    );
}

#[test]
fn threads_with_their_own_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    std::thread::scope(|s| {
        for w in 0..6 {
            let path = &path;
            s.spawn(move || write_many(&UserLog::open(path).unwrap(), w));
        }
    });
    check(&path, 6);
}

#[test]
fn threads_sharing_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let log = Arc::new(UserLog::open(&path).unwrap());
    std::thread::scope(|s| {
        for w in 0..6 {
            let log = Arc::clone(&log);
            s.spawn(move || write_many(&log, w));
        }
    });
    check(&path, 6);
}

/// Run as a child process by `processes_append_to_one_log`; does nothing otherwise.
#[test]
fn child_writer() {
    let (Ok(path), Ok(w)) = (
        std::env::var("USERLOG_TEST_LOG"),
        std::env::var("USERLOG_TEST_WRITER"),
    ) else {
        return;
    };
    let w: i64 = w.parse().unwrap();
    write_many(&UserLog::open(path).unwrap(), w);
}

#[test]
fn processes_append_to_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|w| {
            Command::new(&exe)
                .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
                .env("USERLOG_TEST_LOG", &path)
                .env("USERLOG_TEST_WRITER", w.to_string())
                .spawn()
                .expect("start a writer process")
        })
        .collect();
    // This process writes too, as a fifth writer.
    write_many(&UserLog::open(&path).unwrap(), 4);
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    check(&path, 5);
}
