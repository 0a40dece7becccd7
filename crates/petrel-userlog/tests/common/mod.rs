//! Shared test data: one of every event petrel writes, with every field set, for
//! several jobs (clusters of three and four digits, procs of two).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use petrel_userlog::{
    CpuUsage, Event, Evicted, JobId, ReasonCode, ResourceUsage, Terminated, Termination, TimeZone,
    TransferStep,
};

/// The zone the tests write and read local times in: not UTC, so a reader that
/// ignored the zone would be caught.
pub const ZONE: &str = "America/Chicago";

pub fn zone() -> TimeZone {
    TimeZone::get(ZONE).expect("the tzdata package provides America/Chicago")
}

/// 2026-11-23 10:00:00 in Chicago.
pub fn base_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_449_600)
}

pub const SUBMIT_HOST: &str =
    "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=host&noUDP&sock=schedd_1_2>";
pub const EXECUTE_HOST: &str =
    "<127.0.0.1:40000?addrs=127.0.0.1-40000&alias=host&noUDP&sock=startd_3_4>";
pub const STARTER_ADDR: &str = "<127.0.0.1:40001?addrs=127.0.0.1-40001&noUDP&sock=starter_5_6>";

pub const A: JobId = JobId {
    cluster: 123,
    proc: 10,
    subproc: 0,
};
pub const B: JobId = JobId {
    cluster: 456,
    proc: 11,
    subproc: 0,
};
pub const C: JobId = JobId {
    cluster: 1001,
    proc: 12,
    subproc: 0,
};
pub const D: JobId = JobId {
    cluster: 123,
    proc: 13,
    subproc: 0,
};

fn usage(user: u64, sys: u64) -> CpuUsage {
    CpuUsage::from_secs(user, sys)
}

fn standard_resources() -> Vec<ResourceUsage> {
    vec![
        ResourceUsage::new("Cpus", 0.05, 1.0, 1.0),
        ResourceUsage::new("Disk", 36.0, 1024.0, 7_812_480.0),
        ResourceUsage {
            name: "Gpus".into(),
            usage: Some(0.5),
            request: Some(1.0),
            allocated: Some(1.0),
            assigned: Some("\"GPU-1a2b3c\"".into()),
        },
        ResourceUsage::new("Memory", 12.0, 2048.0, 2048.0),
    ]
}

/// Every event type with all its fields, in a plausible order, each a minute apart.
pub fn sample_events() -> Vec<(JobId, SystemTime, Event)> {
    let s = |x: &str| Some(x.to_string());
    let events: Vec<(JobId, Event)> = vec![
        (
            A,
            Event::Submit {
                host: SUBMIT_HOST.into(),
                log_notes: s("petrel log notes for A"),
                user_notes: s("petrel test job A"),
            },
        ),
        (
            B,
            Event::Submit {
                host: SUBMIT_HOST.into(),
                log_notes: s("only log notes"),
                user_notes: None,
            },
        ),
        (
            C,
            Event::Submit {
                host: SUBMIT_HOST.into(),
                log_notes: None,
                user_notes: None,
            },
        ),
        (
            D,
            Event::Submit {
                host: SUBMIT_HOST.into(),
                log_notes: None,
                user_notes: None,
            },
        ),
        (
            A,
            Event::FileTransfer {
                step: TransferStep::InputQueued,
                queueing_delay: None,
                host: s(STARTER_ADDR),
            },
        ),
        (
            A,
            Event::FileTransfer {
                step: TransferStep::InputStarted,
                queueing_delay: Some(Duration::from_secs(3)),
                host: None,
            },
        ),
        (
            A,
            Event::FileTransfer {
                step: TransferStep::InputFinished,
                queueing_delay: None,
                host: None,
            },
        ),
        (
            A,
            Event::Execute {
                host: EXECUTE_HOST.into(),
                slot_name: s("slot1_1@host.example.org"),
                props: vec![
                    ("Cpus".into(), "1".into()),
                    ("Disk".into(), "1048576".into()),
                    ("Memory".into(), "2048".into()),
                ],
            },
        ),
        (
            B,
            Event::Execute {
                host: EXECUTE_HOST.into(),
                slot_name: None,
                props: vec![],
            },
        ),
        (
            A,
            Event::ImageSize {
                image_size_kib: 1234,
                memory_usage_mib: Some(2),
                resident_set_size_kib: 1000,
                proportional_set_size_kib: Some(900),
            },
        ),
        (
            B,
            Event::ImageSize {
                image_size_kib: 77,
                memory_usage_mib: None,
                resident_set_size_kib: 0,
                proportional_set_size_kib: None,
            },
        ),
        (
            A,
            Event::Disconnected {
                reason: "Socket between submit and execute hosts closed unexpectedly".into(),
                startd_name: "slot1_1@host.example.org".into(),
                startd_addr: EXECUTE_HOST.into(),
            },
        ),
        (
            A,
            Event::Reconnected {
                startd_name: "slot1_1@host.example.org".into(),
                startd_addr: EXECUTE_HOST.into(),
                starter_addr: STARTER_ADDR.into(),
            },
        ),
        (
            B,
            Event::Evicted(Evicted {
                checkpointed: false,
                run_remote_usage: usage(65, 2),
                run_local_usage: usage(0, 1),
                bytes_sent: 1234,
                bytes_received: 5678,
                requeued: None,
                reason: s("The job was vacated by the startd"),
                reason_code: Some(ReasonCode::new(21, 3)),
                resources: standard_resources(),
            }),
        ),
        (
            B,
            Event::Evicted(Evicted {
                checkpointed: true,
                run_remote_usage: usage(90_061, 3_723),
                run_local_usage: usage(0, 0),
                bytes_sent: 0,
                bytes_received: 0,
                requeued: None,
                reason: None,
                reason_code: None,
                resources: vec![],
            }),
        ),
        (
            B,
            Event::Evicted(Evicted {
                checkpointed: false,
                run_remote_usage: usage(5, 1),
                run_local_usage: usage(0, 0),
                bytes_sent: 10,
                bytes_received: 20,
                requeued: Some(Termination::Exited { return_value: 7 }),
                reason: s("The job exited and on_exit_remove said to requeue it"),
                reason_code: None,
                resources: vec![],
            }),
        ),
        (
            C,
            Event::Evicted(Evicted {
                checkpointed: false,
                run_remote_usage: usage(5, 1),
                run_local_usage: usage(0, 0),
                bytes_sent: 10,
                bytes_received: 20,
                requeued: Some(Termination::Signaled {
                    signal: 11,
                    core_file: s("/srv/core.123"),
                }),
                reason: None,
                reason_code: None,
                resources: vec![],
            }),
        ),
        (
            B,
            Event::Held {
                reason: s("Error from slot1@host: Failed to pull image docker://nope: not found"),
                code: 34,
                subcode: 102,
            },
        ),
        (
            B,
            Event::Released {
                reason: s("via condor_release (by user alice)"),
            },
        ),
        (
            C,
            Event::Held {
                reason: None,
                code: 1,
                subcode: 0,
            },
        ),
        (
            C,
            Event::RemoteError {
                daemon: "starter".into(),
                host: "host.example.org".into(),
                message: "Failed to start the container\nruntime said: permission denied".into(),
                hold_code: Some(ReasonCode::new(13, 2)),
            },
        ),
        (
            D,
            Event::RemoteError {
                daemon: "shadow".into(),
                host: "submit.example.org".into(),
                message: "Lost connection to the starter".into(),
                hold_code: None,
            },
        ),
        (
            A,
            Event::JobAdInformation {
                attributes: vec![
                    ("Expr".into(), "RequestCpus * 2".into()),
                    ("Flag".into(), "true".into()),
                    ("JobStatus".into(), "4".into()),
                    ("Owner".into(), "\"alice\"".into()),
                    ("Ratio".into(), "0.5".into()),
                ],
            },
        ),
        (
            A,
            Event::FileTransfer {
                step: TransferStep::OutputQueued,
                queueing_delay: None,
                host: None,
            },
        ),
        (
            A,
            Event::FileTransfer {
                step: TransferStep::OutputStarted,
                queueing_delay: Some(Duration::from_secs(0)),
                host: None,
            },
        ),
        (
            A,
            Event::FileTransfer {
                step: TransferStep::OutputFinished,
                queueing_delay: None,
                host: s(STARTER_ADDR),
            },
        ),
        (
            A,
            Event::Terminated(Terminated {
                termination: Termination::Exited { return_value: 0 },
                run_remote_usage: usage(1, 2),
                run_local_usage: usage(0, 0),
                total_remote_usage: usage(3, 4),
                total_local_usage: usage(0, 1),
                bytes_sent: 10,
                bytes_received: 20,
                total_bytes_sent: 30,
                total_bytes_received: 40,
                resources: standard_resources(),
            }),
        ),
        (
            D,
            Event::Terminated(Terminated {
                termination: Termination::Signaled {
                    signal: 9,
                    core_file: None,
                },
                run_remote_usage: usage(100, 0),
                run_local_usage: usage(0, 0),
                total_remote_usage: usage(100, 0),
                total_local_usage: usage(0, 0),
                bytes_sent: 0,
                bytes_received: 0,
                total_bytes_sent: 0,
                total_bytes_received: 0,
                resources: vec![],
            }),
        ),
        (
            C,
            Event::Other {
                code: 10,
                head: "Job was suspended.".into(),
                body: vec!["\tNumber of processes actually suspended: 3".into()],
            },
        ),
        (
            C,
            Event::Terminated(Terminated {
                termination: Termination::Signaled {
                    signal: 6,
                    core_file: s("/srv/core.4242"),
                },
                run_remote_usage: usage(7, 8),
                run_local_usage: usage(0, 0),
                total_remote_usage: usage(17, 18),
                total_local_usage: usage(0, 0),
                bytes_sent: 1,
                bytes_received: 2,
                total_bytes_sent: 3,
                total_bytes_received: 4,
                resources: vec![
                    ResourceUsage {
                        name: "Cpus".into(),
                        usage: None,
                        request: Some(2.0),
                        allocated: Some(2.0),
                        assigned: None,
                    },
                    ResourceUsage::new("Memory", 300.0, 512.0, 512.0),
                ],
            }),
        ),
        (
            B,
            Event::Aborted {
                reason: s("via condor_rm (by user alice)"),
            },
        ),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, (id, ev))| (id, base_time() + Duration::from_secs(61 * i as u64), ev))
        .collect()
}

/// The oracle interpreter, or `None` (after printing why) when the test should skip.
/// With `PETREL_REQUIRE_ALL=1` a missing oracle is a failure.
pub fn oracle_python(test: &str) -> Option<PathBuf> {
    let require = std::env::var("PETREL_REQUIRE_ALL").is_ok_and(|v| v == "1");
    match std::env::var_os("PETREL_ORACLE_PY25") {
        Some(p) if PathBuf::from(&p).exists() => Some(PathBuf::from(p)),
        other => {
            let why = match other {
                Some(p) => format!(
                    "PETREL_ORACLE_PY25={} does not exist",
                    PathBuf::from(p).display()
                ),
                None => "PETREL_ORACLE_PY25 is not set".to_string(),
            };
            assert!(
                !require,
                "{test}: oracle required (PETREL_REQUIRE_ALL=1) but {why}"
            );
            println!(
                "SKIP {test}: {why} (run scripts/test-deps.sh and set it to .cache/venvs/htcondor25/bin/python)"
            );
            None
        }
    }
}
