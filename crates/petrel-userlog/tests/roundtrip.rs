//! Every event, with every field, written to a real file and read back equal.

mod common;

use std::time::{Duration, SystemTime};

use common::{base_time, sample_events, zone, A, SUBMIT_HOST};
use petrel_userlog::{
    read_log, CpuUsage, Event, JobId, LogEntry, ResourceUsage, Terminated, Termination, TimeFormat,
    UserLog, UserLogError,
};

fn write_all(path: &std::path::Path, format: TimeFormat, events: &[(JobId, SystemTime, Event)]) {
    let log = UserLog::open_with(path, format).expect("open log");
    for (id, at, ev) in events {
        log.write(*id, *at, ev)
            .unwrap_or_else(|e| panic!("write {ev:?}: {e}"));
    }
}

fn read_all(path: &std::path::Path) -> Vec<LogEntry> {
    read_log(path)
        .expect("open log")
        .with_time_zone(zone())
        .collect::<Result<Vec<_>, UserLogError>>()
        .expect("read log")
}

fn assert_round_trip(events: &[(JobId, SystemTime, Event)], format: TimeFormat) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    write_all(&path, format, events);
    let back = read_all(&path);
    assert_eq!(
        back.len(),
        events.len(),
        "{}",
        std::fs::read_to_string(&path).unwrap()
    );
    for ((id, at, ev), entry) in events.iter().zip(&back) {
        assert_eq!(entry.event, *ev, "event at line {}", entry.line);
        assert_eq!(entry.code, ev.code());
        assert_eq!(entry.id, *id);
        assert_eq!(entry.time, *at, "time of {ev:?}");
    }
}

#[test]
fn every_event_round_trips_in_local_time() {
    let events = sample_events();
    let codes: std::collections::BTreeSet<u32> = events.iter().map(|(_, _, e)| e.code()).collect();
    assert_eq!(
        codes.into_iter().collect::<Vec<_>>(),
        vec![0, 1, 4, 5, 6, 9, 10, 12, 13, 21, 22, 23, 28, 40]
    );
    assert_round_trip(&events, TimeFormat::local(zone()));
}

#[test]
fn utc_with_milliseconds_round_trips() {
    let events: Vec<_> = sample_events()
        .into_iter()
        .map(|(id, at, ev)| (id, at + Duration::from_millis(125), ev))
        .collect();
    assert_round_trip(&events, TimeFormat::utc().with_sub_second(true));
}

#[test]
fn header_layout_is_htcondors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let log = UserLog::open_with(&path, TimeFormat::local(zone())).unwrap();
    let id = JobId::new(123, 4);
    log.write(
        id,
        base_time(),
        &Event::Submit {
            host: SUBMIT_HOST.into(),
            log_notes: None,
            user_notes: None,
        },
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!(
            "000 (123.004.000) 2026-11-23 10:00:00 Job submitted from host: {SUBMIT_HOST}\n...\n"
        )
    );
}

#[test]
fn terminated_record_matches_htcondor_text() {
    // The layout HTCondor 25 writes for this event (tabs and the usage table's
    // column padding included).
    let t = Terminated {
        termination: Termination::Exited { return_value: 3 },
        run_remote_usage: CpuUsage::from_secs(1, 2),
        run_local_usage: CpuUsage::default(),
        total_remote_usage: CpuUsage::from_secs(1, 2),
        total_local_usage: CpuUsage::default(),
        bytes_sent: 10,
        bytes_received: 20,
        total_bytes_sent: 10,
        total_bytes_received: 20,
        resources: vec![
            ResourceUsage::new("Memory", 0.0, 1.0, 1024.0),
            ResourceUsage::new("Cpus", 0.05, 1.0, 1.0),
            ResourceUsage::new("Disk", 36.0, 1.0, 7_812_480.0),
        ],
    };
    let log = UserLog::open_with(
        tempfile::tempdir().unwrap().path().join("x.log"),
        TimeFormat::local(zone()),
    )
    .unwrap();
    let text = log
        .format(
            JobId::new(123, 4),
            base_time() + Duration::from_secs(5),
            &Event::Terminated(t),
        )
        .unwrap();
    let want = "005 (123.004.000) 2026-11-23 10:00:05 Job terminated.\n\
\t(1) Normal termination (return value 3)\n\
\t\tUsr 0 00:00:01, Sys 0 00:00:02  -  Run Remote Usage\n\
\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\
\t\tUsr 0 00:00:01, Sys 0 00:00:02  -  Total Remote Usage\n\
\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n\
\t10  -  Run Bytes Sent By Job\n\
\t20  -  Run Bytes Received By Job\n\
\t10  -  Total Bytes Sent By Job\n\
\t20  -  Total Bytes Received By Job\n\
\tPartitionable Resources :    Usage  Request Allocated \n\
\t   Cpus                 :     0.05        1         1 \n\
\t   Disk (KB)            :    36           1   7812480 \n\
\t   Memory (MB)          :     0           1      1024 \n\
...\n";
    assert_eq!(text, want);
}

#[test]
fn user_notes_alone_survive() {
    let events = vec![(
        A,
        base_time(),
        Event::Submit {
            host: SUBMIT_HOST.into(),
            log_notes: None,
            user_notes: Some("only user notes".into()),
        },
    )];
    assert_round_trip(&events, TimeFormat::local(zone()));
}

#[test]
fn multi_line_reasons_become_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let ev = Event::Held {
        reason: Some("first\nsecond\r\nthird".into()),
        code: 1,
        subcode: 2,
    };
    write_all(&path, TimeFormat::local(zone()), &[(A, base_time(), ev)]);
    let back = read_all(&path);
    assert_eq!(
        back[0].event,
        Event::Held {
            reason: Some("first|second |third".into()),
            code: 1,
            subcode: 2
        }
    );
}

#[test]
fn events_htcondor_could_not_read_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let log = UserLog::open(&path).unwrap();
    let bad = [
        Event::Disconnected {
            reason: "x".into(),
            startd_name: "two words".into(),
            startd_addr: "<a>".into(),
        },
        Event::Reconnected {
            startd_name: "s".into(),
            startd_addr: String::new(),
            starter_addr: "<b>".into(),
        },
        Event::JobAdInformation { attributes: vec![] },
        Event::JobAdInformation {
            attributes: vec![("not a name".into(), "1".into())],
        },
        Event::Other {
            code: 1000,
            head: "x".into(),
            body: vec![],
        },
        Event::Other {
            code: 99,
            head: "x".into(),
            body: vec!["...".into()],
        },
        Event::Other {
            code: 5,
            head: "Job terminated.".into(),
            body: vec![],
        },
    ];
    for ev in &bad {
        let err = log
            .write(A, base_time(), ev)
            .expect_err(&format!("{ev:?} should be refused"));
        assert!(matches!(err, UserLogError::InvalidEvent { .. }), "{err}");
        assert!(
            err.to_string().contains("job.log"),
            "error names the file: {err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "",
        "nothing was written"
    );
}
