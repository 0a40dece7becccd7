//! Writes the seed inputs that are made with petrel's own writers (user logs, pool
//! frames, ClassAd JSON) into `fuzz/corpus/<target>/`:
//! `cargo run -p petrel-fuzz --example seeds`. The fuzzer minimises them with the rest.

use std::path::{Path, PathBuf};

use petrel_classad::parse_classad;
use petrel_pool::job::{JobId, JobSelector};
use petrel_pool::proc_ads::ProcAds;
use petrel_pool::proto::{write_frame, Action, Request};
use petrel_userlog::{TimeFormat, UserLog};

#[path = "../../petrel-userlog/tests/common/mod.rs"]
mod userlog_samples;

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    dir
}

fn main() {
    userlogs();
    frames();
    classad_json();
}

fn userlogs() {
    let dir = corpus("userlog");
    let scratch = tempfile::tempdir().expect("a scratch directory");
    for (name, format) in [
        ("local", TimeFormat::local(userlog_samples::zone())),
        ("utc-ms", TimeFormat::utc().with_sub_second(true)),
    ] {
        let log = UserLog::open_with(scratch.path().join(name), format).expect("open a log");
        let mut all = String::new();
        for (i, (id, at, ev)) in userlog_samples::sample_events().iter().enumerate() {
            let rec = log.format(*id, *at, ev).expect("format a sample event");
            std::fs::write(
                dir.join(format!("seed-{name}-{i:02}-{:03}", ev.code())),
                &rec,
            )
            .expect("write a seed");
            all.push_str(&rec);
        }
        std::fs::write(dir.join(format!("seed-{name}-whole-log")), all).expect("write a seed");
    }
}

fn frames() {
    let dir = corpus("pool_frame");
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut procs = ProcAds::new();
    procs.push([("ProcId", "0"), ("Args", "\"a b\"")]);
    procs.push([
        ("ProcId", "1"),
        ("Args", "\"c\""),
        ("RequestMemory", "ifThenElse(x > 1, 2048, 1024)"),
    ]);
    let requests = vec![
        Request::Hello,
        Request::NewCluster,
        Request::Submit {
            cluster: 7,
            cluster_ad: pairs(&[
                ("Cmd", "\"/bin/echo\""),
                ("Owner", "\"alice\""),
                (
                    "Requirements",
                    "TARGET.Arch == \"X86_64\" && Memory >= RequestMemory",
                ),
                ("ContainerImage", "\"docker://busybox\""),
            ]),
            procs,
        },
        Request::Query {
            constraint: Some("Owner == \"alice\" && JobStatus =!= 4".into()),
            attrs: vec!["ClusterId".into(), "ProcId".into()],
            history: false,
            limit: Some(10),
        },
        Request::Act {
            action: Action::Hold,
            targets: vec![JobSelector::Cluster(7), JobSelector::Job(JobId::new(8, 2))],
            constraint: None,
            all: false,
            reason: Some("because".into()),
        },
        Request::Analyze {
            job: JobId::new(7, 0),
        },
        Request::Status,
        Request::JobInfo {
            job: JobId::new(7, 1),
        },
        Request::Enter {
            job: JobId::new(7, 0),
            command: vec!["/bin/sh".into(), "-c".into(), "id".into()],
            term: Some("xterm".into()),
        },
        Request::Signal { signal: 15 },
        Request::Stop,
    ];
    let mut stream = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let mut buf = Vec::new();
        write_frame(&mut buf, r).expect("frame a request");
        std::fs::write(dir.join(format!("seed-request-{i:02}")), &buf).expect("write a seed");
        stream.extend_from_slice(&buf);
    }
    std::fs::write(dir.join("seed-stream"), stream).expect("write a seed");
}

fn classad_json() {
    let dir = corpus("classad_json");
    let text = include_str!("../../petrel-classad/tests/corpus.txt");
    let mut n = 0;
    let mut all = Vec::new();
    for line in text.lines() {
        let line = line
            .trim_start_matches("@ad")
            .trim_start_matches("@target")
            .trim();
        if !line.starts_with('[') {
            continue;
        }
        let Ok(ad) = parse_classad(line) else {
            continue;
        };
        let json = ad.to_json();
        std::fs::write(dir.join(format!("seed-{n:03}")), &json).expect("write a seed");
        all.push(ad);
        n += 1;
    }
    std::fs::write(
        dir.join("seed-list"),
        petrel_classad::json::ads_to_json(&all),
    )
    .expect("write a seed");
}
