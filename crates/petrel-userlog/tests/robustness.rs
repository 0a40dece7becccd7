//! The reader on damaged and hostile input, the follower on a log still being
//! written, and the job tracker on what `condor_wait` asks.

mod common;

use std::fs::OpenOptions;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{base_time, zone, A, B, SUBMIT_HOST};
use petrel_userlog::{
    read_events, read_log, CpuUsage, Event, Follower, JobFilter, JobId, JobState, JobTracker,
    LogEntry, Terminated, Termination, TimeFormat, UserLog, UserLogError,
};

fn submit() -> Event {
    Event::Submit {
        host: SUBMIT_HOST.into(),
        log_notes: None,
        user_notes: None,
    }
}

fn terminated(rv: i32) -> Event {
    Event::Terminated(Terminated {
        termination: Termination::Exited { return_value: rv },
        run_remote_usage: CpuUsage::from_secs(1, 1),
        run_local_usage: CpuUsage::default(),
        total_remote_usage: CpuUsage::from_secs(1, 1),
        total_local_usage: CpuUsage::default(),
        bytes_sent: 0,
        bytes_received: 0,
        total_bytes_sent: 0,
        total_bytes_received: 0,
        resources: vec![],
    })
}

fn record(id: JobId, ev: &Event) -> String {
    let log = UserLog::open_with(
        tempfile::tempdir().unwrap().path().join("scratch.log"),
        TimeFormat::local(zone()),
    )
    .unwrap();
    log.format(id, base_time(), ev).unwrap()
}

fn read_str(text: &str) -> Vec<Result<LogEntry, UserLogError>> {
    read_events(text.as_bytes())
        .with_time_zone(zone())
        .collect()
}

fn append(path: &Path, bytes: &str) {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(bytes.as_bytes()).unwrap();
}

#[test]
fn truncated_final_record_is_incomplete() {
    let whole = record(A, &terminated(0));
    let lines_before = 4; // submit (2 lines) + submit (2 lines)
    for cut in [10, whole.len() / 2, whole.len() - 4, whole.len() - 1] {
        let text = format!(
            "{}{}{}",
            record(A, &submit()),
            record(B, &submit()),
            &whole[..cut]
        );
        let items = read_str(&text);
        assert_eq!(items.len(), 3, "cut at {cut}: {items:?}");
        assert!(items[0].is_ok() && items[1].is_ok());
        match &items[2] {
            Err(UserLogError::Incomplete { line, .. }) => {
                assert_eq!(*line, lines_before + 1, "cut at {cut}")
            }
            other => panic!("cut at {cut}: expected incomplete, got {other:?}"),
        }
    }
}

#[test]
fn garbage_costs_only_its_own_record() {
    let bad_body = record(A, &terminated(0)).replace("(return value 0)", "(return value zero)");
    let text = format!(
        "this is not a log\n{}\n...\nmore garbage\n{}{}{}",
        record(A, &submit()),
        bad_body,
        record(B, &submit()),
        record(B, &terminated(5)),
    );
    let items = read_str(&text);
    let ok: Vec<_> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|e| (e.id, e.code))
        .collect();
    assert_eq!(ok, vec![(A, 0), (B, 0), (B, 5)]);
    let errs: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    // Line 1 is garbage; the submit is lines 2-3; line 4 is blank, line 5 a stray
    // sync line (both tolerated), line 6 garbage; the damaged termination line is 8.
    assert_eq!(
        errs.iter().map(|e| e.line()).collect::<Vec<_>>(),
        vec![Some(1), Some(6), Some(8)]
    );
    assert!(matches!(errs[2], UserLogError::Malformed { .. }));
    assert!(errs[2].to_string().contains("line 8"), "{}", errs[2]);
}

#[test]
fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("named.log");
    std::fs::write(&path, format!("{}oops\n", record(A, &submit()))).unwrap();
    let items: Vec<_> = read_log(&path).unwrap().with_time_zone(zone()).collect();
    let err = items.into_iter().find_map(Result::err).expect("an error");
    let msg = err.to_string();
    assert!(msg.contains("named.log") && msg.contains("line 3"), "{msg}");
}

#[test]
fn unknown_event_numbers_are_kept() {
    let text = "150 (1234.056.000) 2026-11-23 10:00:00 Something from the future\n\tkey: value\n\t\tmore\n...\n";
    let items = read_str(text);
    let entry = items[0].as_ref().unwrap();
    assert_eq!(entry.code, 150);
    assert_eq!(entry.id, JobId::new(1234, 56));
    let want = Event::Other {
        code: 150,
        head: "Something from the future".into(),
        body: vec!["\tkey: value".into(), "\t\tmore".into()],
    };
    assert_eq!(entry.event, want);
    // And it is written back verbatim.
    assert_eq!(record(JobId::new(1234, 56), &want), text);
}

/// A reader that produces one line of `len` bytes without keeping it in memory,
/// then a valid record.
struct HugeLine {
    left: u64,
    tail: std::io::Cursor<Vec<u8>>,
}

impl Read for HugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left > 0 {
            let n = (buf.len() as u64).min(self.left) as usize;
            buf[..n].fill(b'x');
            self.left -= n as u64;
            if self.left == 0 {
                buf[n - 1] = b'\n';
            }
            return Ok(n);
        }
        self.tail.read(buf)
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_huge_line_is_skipped_in_bounded_memory() {
    const LEN: u64 = 512 << 20;
    let before = peak_rss_kib();
    let head = record(A, &submit());
    let (first, rest) = head.split_once('\n').unwrap();
    // The huge line sits inside a record's body; the next record must survive.
    let input = std::io::Cursor::new(format!("{first}\n")).chain(HugeLine {
        left: LEN,
        tail: std::io::Cursor::new(format!("{rest}{}", record(B, &submit())).into_bytes()),
    });
    let items: Vec<_> = read_events(BufReader::new(input))
        .with_time_zone(zone())
        .collect();
    let after = peak_rss_kib();
    assert!(
        matches!(items[0], Err(UserLogError::LineTooLong { line: 2, .. })),
        "{:?}",
        items[0]
    );
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[1].as_ref().unwrap().id, B);
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "peak memory grew by {} KiB reading a {} MiB line",
        after - before,
        LEN >> 20
    );
}

#[test]
fn record_size_limit() {
    let big = Event::JobAdInformation {
        attributes: (0..100)
            .map(|i| (format!("A{i}"), "\"0123456789\"".to_string()))
            .collect(),
    };
    let text = format!("{}{}", record(A, &big), record(B, &submit()));
    let items: Vec<_> = read_events(text.as_bytes())
        .with_limits(1024, 1024)
        .collect();
    assert!(
        matches!(items[0], Err(UserLogError::RecordTooLong { line: 1, .. })),
        "{:?}",
        items[0]
    );
    assert_eq!(items[1].as_ref().unwrap().id, B);
}

#[test]
fn follower_waits_for_the_file_and_for_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.log");
    let mut follower = Follower::new(&path)
        .with_time_zone(zone())
        .with_poll_interval(Duration::from_millis(20));

    // Nothing there yet: a timeout, not an error.
    let t0 = Instant::now();
    assert!(follower
        .next_entry(Duration::from_millis(150))
        .unwrap()
        .is_none());
    assert!(t0.elapsed() >= Duration::from_millis(150));

    let term = record(A, &terminated(3));
    let (part1, part2) = term.split_at(term.len() / 2);
    let writer = {
        let path = path.clone();
        let (s, p1, p2) = (record(A, &submit()), part1.to_string(), part2.to_string());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            append(&path, &s);
            std::thread::sleep(Duration::from_millis(200));
            append(&path, &p1);
            std::thread::sleep(Duration::from_millis(300));
            append(&path, &p2);
        })
    };
    let first = follower
        .next_entry(Duration::from_secs(10))
        .unwrap()
        .expect("the submit event");
    assert_eq!((first.id, first.code), (A, 0));
    let second = follower
        .next_entry(Duration::from_secs(10))
        .unwrap()
        .expect("the terminate event");
    assert_eq!(second.event, terminated(3));
    assert_eq!(second.line, 3, "line numbers carry on across polls");
    writer.join().unwrap();
    assert!(follower
        .next_entry(Duration::from_millis(50))
        .unwrap()
        .is_none());
}

#[test]
fn tracker_answers_condor_wait() {
    let c = JobId::new(789, 10);
    let at = |s| base_time() + Duration::from_secs(s);
    let log: Vec<(JobId, SystemTime, Event)> = vec![
        (A, at(0), submit()),
        (B, at(1), submit()),
        (c, at(2), submit()),
        (
            A,
            at(3),
            Event::Execute {
                host: "<h>".into(),
                slot_name: None,
                props: vec![],
            },
        ),
        (
            B,
            at(4),
            Event::Held {
                reason: Some("no".into()),
                code: 34,
                subcode: 1,
            },
        ),
        (A, at(5), terminated(0)),
        (B, at(6), Event::Aborted { reason: None }),
    ];
    let entries: Vec<LogEntry> = log
        .iter()
        .enumerate()
        .map(|(i, (id, time, ev))| LogEntry {
            code: ev.code(),
            id: *id,
            time: *time,
            event: ev.clone(),
            line: i as u64,
        })
        .collect();
    let mut all = JobTracker::new();
    let mut cluster_123 = JobTracker::with_filter("123".parse::<JobFilter>().unwrap());
    for e in &entries {
        all.observe(e);
        cluster_123.observe(e);
    }
    assert_eq!(all.submitted().collect::<Vec<_>>(), vec![A, B, c]);
    assert_eq!(all.done().collect::<Vec<_>>(), vec![A, B]);
    assert_eq!(all.pending().collect::<Vec<_>>(), vec![c]);
    assert!(!all.all_done());
    assert_eq!((all.completed_count(), all.removed_count()), (1, 1));
    assert_eq!(
        all.state(A),
        Some(&JobState::Completed(Termination::Exited {
            return_value: 0
        }))
    );
    assert_eq!(all.state(B), Some(&JobState::Removed));
    assert_eq!(all.state(c), Some(&JobState::Idle));
    assert!(
        cluster_123.all_done(),
        "cluster 123 has only job A, which is done"
    );
    assert!(
        !JobTracker::new().all_done(),
        "nothing submitted is not done"
    );
    assert!("1.2.3.4".parse::<JobFilter>().is_err() && "x".parse::<JobFilter>().is_err());
}

#[test]
fn follower_waits_until_all_jobs_are_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wait.log");
    let log = UserLog::open_with(&path, TimeFormat::local(zone())).unwrap();
    log.write(A, base_time(), &submit()).unwrap();
    log.write(B, base_time(), &submit()).unwrap();
    log.write(A, base_time(), &terminated(0)).unwrap();

    let mut follower = Follower::new(&path).with_poll_interval(Duration::from_millis(20));
    let mut tracker = JobTracker::new();
    assert!(
        !follower
            .wait_all_done(&mut tracker, Duration::from_millis(100))
            .unwrap(),
        "B is still pending"
    );

    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        log.write(
            B,
            base_time(),
            &Event::Aborted {
                reason: Some("rm".into()),
            },
        )
        .unwrap();
    });
    let t0 = Instant::now();
    assert!(follower
        .wait_all_done(&mut tracker, Duration::from_secs(10))
        .unwrap());
    assert!(t0.elapsed() < Duration::from_secs(5));
    writer.join().unwrap();
}

#[test]
fn mutated_records_never_panic_the_reader() {
    // Every kind of record, each byte in turn deleted or replaced by something a
    // parser might trip on (a multi-byte character, a newline, separators). Each
    // record is mutated on its own, so the work stays linear in the log's size.
    let replacements = ["", "é", "\n", ":", "-", "9", " ", ")"];
    let mut reads = 0;
    for (id, _, ev) in common::sample_events() {
        let first = record(id, &ev);
        let text = format!("{first}{}", record(B, &submit()));
        for (i, c) in first.char_indices() {
            for r in replacements {
                let mutated = format!("{}{}{}", &text[..i], r, &text[i + c.len_utf8()..]);
                let items = read_str(&mutated);
                assert!(!items.is_empty(), "{mutated:?}");
                reads += 1;
            }
        }
    }
    assert!(reads > 10_000, "{reads}");
}

#[test]
fn older_htcondor_layouts_read() {
    // Layouts of HTCondor before 8.9 (legacy MM/DD dates, "Job was not
    // checkpointed.", events without the lines added later).
    let text = "\
004 (012.000.000) 01/22 12:09:19 Job was evicted.
\t(0) Job was not checkpointed.
\t\tUsr 0 00:00:03, Sys 0 00:00:01  -  Run Remote Usage
\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage
...
006 (012.000.000) 01/22 12:09:20 Image size of job updated: 4096
...
012 (012.000.000) 01/22 12:09:21 Job was held.
\tvia condor_hold (by user bob)
...
";
    let items = read_str(text);
    let events: Vec<Event> = items.into_iter().map(|i| i.unwrap().event).collect();
    assert_eq!(
        events,
        vec![
            Event::Evicted(petrel_userlog::Evicted {
                checkpointed: false,
                run_remote_usage: CpuUsage::from_secs(3, 1),
                run_local_usage: CpuUsage::default(),
                bytes_sent: 0,
                bytes_received: 0,
                requeued: None,
                reason: None,
                reason_code: None,
                resources: vec![],
            }),
            Event::ImageSize {
                image_size_kib: 4096,
                memory_usage_mib: None,
                resident_set_size_kib: 0,
                proportional_set_size_kib: None,
            },
            Event::Held {
                reason: Some("via condor_hold (by user bob)".into()),
                code: 0,
                subcode: 0,
            },
        ]
    );
}
