//! Differential tests against HTCondor's own reader (`htcondor2.JobEventLog`, the
//! Python bindings of HTCondor 25): a log petrel writes must read, in HTCondor, as
//! the events petrel meant, field by field, and HTCondor's re-serialisation of each
//! event must be the text petrel wrote.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{oracle_python, sample_events, zone, ZONE};
use petrel_userlog::{read_events, CpuUsage, Event, JobId, Termination, TimeFormat, UserLog};
use serde_json::{json, Map, Value as Json};

/// Run HTCondor's reader on `log` (local times in [`ZONE`]) and return its events.
fn htcondor_read(python: &Path, log: &Path) -> Vec<Json> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/read_log.py");
    let out = Command::new(python)
        .arg(script)
        .arg(log)
        .env("TZ", ZONE)
        .output()
        .expect("start the oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Json = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    v.as_array().expect("a list of events").clone()
}

fn usage(u: &CpuUsage) -> String {
    let f = |d: Duration| {
        let s = d.as_secs();
        format!(
            "{} {:02}:{:02}:{:02}",
            s / 86_400,
            s % 86_400 / 3600,
            s % 3600 / 60,
            s % 60
        )
    };
    format!("Usr {}, Sys {}", f(u.user), f(u.system))
}

/// What HTCondor makes of a ClassAd value text.
fn classad_value(text: &str) -> Json {
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    if let Ok(f) = text.parse::<f64>() {
        return json!(f);
    }
    match text {
        "true" => return json!(true),
        "false" => return json!(false),
        _ => {}
    }
    if let Some(s) = text.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return json!(s);
    }
    json!({ "expr": text })
}

fn termination_fields(m: &mut Map<String, Json>, t: &Termination) {
    match t {
        Termination::Exited { return_value } => {
            m.insert("TerminatedNormally".into(), json!(true));
            m.insert("ReturnValue".into(), json!(return_value));
        }
        Termination::Signaled { signal, core_file } => {
            m.insert("TerminatedNormally".into(), json!(false));
            m.insert("TerminatedBySignal".into(), json!(signal));
            if let Some(c) = core_file {
                m.insert("CoreFile".into(), json!(c));
            }
        }
    }
}

/// The fields HTCondor's event ClassAd should have for `ev` (besides the common
/// MyType, EventTypeNumber, EventTime, Cluster, Proc and Subproc).
fn expected_fields(ev: &Event) -> Map<String, Json> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Json| {
        m.insert(k.to_string(), v);
    };
    match ev {
        Event::Submit {
            host,
            log_notes,
            user_notes,
        } => {
            put("SubmitHost", json!(host));
            if let Some(n) = log_notes {
                put("LogNotes", json!(n));
            }
            if let Some(n) = user_notes {
                put("UserNotes", json!(n));
            }
        }
        Event::Execute {
            host,
            slot_name,
            props,
        } => {
            put("ExecuteHost", json!(host));
            if let Some(s) = slot_name {
                put("SlotName", json!(s));
            }
            if !props.is_empty() {
                let p: Map<String, Json> = props
                    .iter()
                    .map(|(k, v)| (k.clone(), classad_value(v)))
                    .collect();
                put("ExecuteProps", Json::Object(p));
            }
        }
        Event::Evicted(e) => {
            put("Checkpointed", json!(e.checkpointed));
            put("RunRemoteUsage", json!(usage(&e.run_remote_usage)));
            put("RunLocalUsage", json!(usage(&e.run_local_usage)));
            put("SentBytes", json!(e.bytes_sent as f64));
            put("ReceivedBytes", json!(e.bytes_received as f64));
            put("TerminatedAndRequeued", json!(e.requeued.is_some()));
            put("TerminatedNormally", json!(false));
            if let Some(r) = &e.reason {
                put("Reason", json!(r));
            }
            if let Some(c) = e.reason_code {
                put("ReasonCode", json!(c.code));
                put("ReasonSubCode", json!(c.subcode));
            }
            if let Some(t) = &e.requeued {
                termination_fields(&mut m, t);
            }
            // HTCondor's evict reader skips the usage table: no resource fields.
        }
        Event::Terminated(t) => {
            termination_fields(&mut m, &t.termination);
            m.insert("RunRemoteUsage".into(), json!(usage(&t.run_remote_usage)));
            m.insert("RunLocalUsage".into(), json!(usage(&t.run_local_usage)));
            m.insert(
                "TotalRemoteUsage".into(),
                json!(usage(&t.total_remote_usage)),
            );
            m.insert("TotalLocalUsage".into(), json!(usage(&t.total_local_usage)));
            m.insert("SentBytes".into(), json!(t.bytes_sent as f64));
            m.insert("ReceivedBytes".into(), json!(t.bytes_received as f64));
            m.insert("TotalSentBytes".into(), json!(t.total_bytes_sent as f64));
            m.insert(
                "TotalReceivedBytes".into(),
                json!(t.total_bytes_received as f64),
            );
            for r in &t.resources {
                if let Some(u) = r.usage {
                    m.insert(format!("{}Usage", r.name), json!(u));
                }
                if let Some(q) = r.request {
                    m.insert(format!("Request{}", r.name), json!(q));
                }
                if let Some(a) = r.allocated {
                    m.insert(r.name.clone(), json!(a));
                }
                if let Some(a) = &r.assigned {
                    m.insert(format!("Assigned{}", r.name), classad_value(a));
                }
            }
        }
        Event::ImageSize {
            image_size_kib,
            memory_usage_mib,
            resident_set_size_kib,
            proportional_set_size_kib,
        } => {
            put("Size", json!(image_size_kib));
            if let Some(v) = memory_usage_mib {
                put("MemoryUsage", json!(v));
            }
            put("ResidentSetSize", json!(resident_set_size_kib));
            if let Some(v) = proportional_set_size_kib {
                put("ProportionalSetSize", json!(v));
            }
        }
        Event::Aborted { reason } | Event::Released { reason } => {
            if let Some(r) = reason {
                put("Reason", json!(r));
            }
        }
        Event::Held {
            reason,
            code,
            subcode,
        } => {
            if let Some(r) = reason {
                put("HoldReason", json!(r));
            }
            put("HoldReasonCode", json!(code));
            put("HoldReasonSubCode", json!(subcode));
        }
        Event::RemoteError {
            daemon,
            host,
            message,
            hold_code,
        } => {
            put("Daemon", json!(daemon));
            put("ExecuteHost", json!(host));
            put("ErrorMsg", json!(message));
            if let Some(c) = hold_code {
                put("HoldReasonCode", json!(c.code));
                put("HoldReasonSubCode", json!(c.subcode));
            }
        }
        Event::Disconnected {
            reason,
            startd_name,
            startd_addr,
        } => {
            put("DisconnectReason", json!(reason));
            put("StartdName", json!(startd_name));
            put("StartdAddr", json!(startd_addr));
            put(
                "EventDescription",
                json!("Job disconnected, attempting to reconnect"),
            );
        }
        Event::Reconnected {
            startd_name,
            startd_addr,
            starter_addr,
        } => {
            put("StartdName", json!(startd_name));
            put("StartdAddr", json!(startd_addr));
            put("StarterAddr", json!(starter_addr));
            put("EventDescription", json!("Job reconnected"));
        }
        Event::JobAdInformation { attributes } => {
            for (k, v) in attributes {
                put(k, classad_value(v));
            }
        }
        Event::FileTransfer {
            step,
            queueing_delay,
            host,
        } => {
            put("Type", json!(step.number()));
            if let Some(d) = queueing_delay {
                put("QueueingDelay", json!(d.as_secs()));
            }
            if let Some(h) = host {
                put("Host", json!(h));
            }
        }
        Event::Other { code, body, .. } => {
            // The sample's only raw event is a suspend (010).
            assert_eq!(
                *code, 10,
                "the oracle test knows only the suspend event's fields"
            );
            let n: i64 = body[0].rsplit(' ').next().unwrap().parse().unwrap();
            put("NumberOfPIDs", json!(n));
        }
    }
    m
}

fn type_name(code: u32) -> &'static str {
    match code {
        0 => "SUBMIT",
        1 => "EXECUTE",
        4 => "JOB_EVICTED",
        5 => "JOB_TERMINATED",
        6 => "IMAGE_SIZE",
        9 => "JOB_ABORTED",
        10 => "JOB_SUSPENDED",
        12 => "JOB_HELD",
        13 => "JOB_RELEASED",
        21 => "REMOTE_ERROR",
        22 => "JOB_DISCONNECTED",
        23 => "JOB_RECONNECTED",
        28 => "JOB_AD_INFORMATION",
        40 => "FILE_TRANSFER",
        _ => "?",
    }
}

/// JSON values equal, numbers by value (HTCondor may give 1 or 1.0).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn write_log(
    path: &Path,
    format: TimeFormat,
    events: &[(JobId, SystemTime, Event)],
) -> Vec<String> {
    let log = UserLog::open_with(path, format).unwrap();
    events
        .iter()
        .map(|(id, at, ev)| {
            let text = log.format(*id, *at, ev).unwrap();
            log.write(*id, *at, ev).unwrap();
            text
        })
        .collect()
}

/// The sample events, written by petrel in local time, and what HTCondor reads of them.
fn samples_read_by_htcondor(python: &Path) -> (Vec<(JobId, SystemTime, Event)>, Vec<Json>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let events = sample_events();
    write_log(&path, TimeFormat::local(zone()), &events);
    let oracle = htcondor_read(python, &path);
    (events, oracle)
}

#[test]
fn htcondor_reads_every_event_as_petrel_meant() {
    let Some(python) = oracle_python("htcondor_reads_every_event_as_petrel_meant") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let events = sample_events();
    let texts = write_log(&path, TimeFormat::local(zone()), &events);
    let oracle = htcondor_read(&python, &path);
    assert_eq!(
        oracle.len(),
        events.len(),
        "HTCondor read {} of {} events",
        oracle.len(),
        events.len()
    );

    let common = [
        "MyType",
        "EventTypeNumber",
        "EventTime",
        "Cluster",
        "Proc",
        "Subproc",
    ];
    let mut bad = Vec::new();
    for (((id, at, ev), text), o) in events.iter().zip(&texts).zip(&oracle) {
        let what = format!("event {:03} of {id}", ev.code());
        if o["type"] != json!(ev.code()) || o["type_name"] != json!(type_name(ev.code())) {
            bad.push(format!(
                "{what}: HTCondor type {} {}",
                o["type"], o["type_name"]
            ));
        }
        if o["cluster"] != json!(id.cluster)
            || o["proc"] != json!(id.proc)
            || o["fields"]["Subproc"] != json!(id.subproc)
        {
            bad.push(format!(
                "{what}: HTCondor id {}.{}",
                o["cluster"], o["proc"]
            ));
        }
        if o["timestamp"] != json!(secs(*at)) {
            bad.push(format!(
                "{what}: HTCondor timestamp {} != {}",
                o["timestamp"],
                secs(*at)
            ));
        }
        let want = expected_fields(ev);
        let got: Map<String, Json> = o["fields"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !common.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &want {
            match got.get(k) {
                Some(g) if same(g, v) => {}
                Some(g) => bad.push(format!("{what}: {k} is {g} in HTCondor, petrel meant {v}")),
                None => bad.push(format!("{what}: HTCondor has no {k} (petrel meant {v})")),
            }
        }
        for k in got.keys().filter(|k| !want.contains_key(*k)) {
            bad.push(format!(
                "{what}: HTCondor has {k} = {} that petrel did not mean",
                got[k]
            ));
        }
        // HTCondor's own serialisation of what it read is the text petrel wrote; its
        // evict event does not keep the usage table, so that part is left out.
        let mut ours = text.strip_suffix("...\n").unwrap().to_string();
        if ev.code() == 4 {
            if let Some(i) = ours.find("\tPartitionable Resources") {
                ours.truncate(i);
            }
        }
        if o["text"].as_str() != Some(ours.as_str()) {
            bad.push(format!(
                "{what}: text differs\n  HTCondor: {:?}\n  petrel:   {ours:?}",
                o["text"]
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagreements with HTCondor:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn petrel_reads_htcondors_serialisation() {
    // The reverse direction: HTCondor's text for each event (as its own formatter
    // writes it) read by petrel gives the event petrel meant.
    let Some(python) = oracle_python("petrel_reads_htcondors_serialisation") else {
        return;
    };
    let (events, oracle) = samples_read_by_htcondor(&python);
    let text: String = oracle
        .iter()
        .map(|o| format!("{}...\n", o["text"].as_str().unwrap()))
        .collect();
    let back: Vec<_> = read_events(text.as_bytes())
        .with_time_zone(zone())
        .collect::<Result<_, _>>()
        .expect("petrel reads HTCondor's text");
    assert_eq!(back.len(), events.len());
    for ((id, at, ev), entry) in events.iter().zip(&back) {
        let mut want = ev.clone();
        if let Event::Evicted(e) = &mut want {
            e.resources.clear();
        }
        assert_eq!((entry.id, entry.time), (*id, *at));
        assert_eq!(entry.event, want);
    }
}

#[test]
fn htcondor_reads_utc_and_sub_second_times() {
    let Some(python) = oracle_python("htcondor_reads_utc_and_sub_second_times") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let events: Vec<_> = sample_events()
        .into_iter()
        .map(|(id, at, ev)| (id, at + Duration::from_millis(750), ev))
        .collect();
    write_log(&path, TimeFormat::utc().with_sub_second(true), &events);
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(
        first.starts_with("000 (123.010.000) 2026-11-23 16:00:00.750Z "),
        "{first:.60}"
    );
    let oracle = htcondor_read(&python, &path);
    assert_eq!(oracle.len(), events.len());
    for ((_, at, ev), o) in events.iter().zip(&oracle) {
        assert_eq!(o["timestamp"], json!(secs(*at)), "event {:03}", ev.code());
    }
}

/// HTCondor's ClassAd of `event` as read from `o` (its `fields`), less what the read
/// loses: the evict event's usage table.
fn oracle_fields(o: &Json) -> Map<String, Json> {
    o["fields"].as_object().unwrap().clone()
}

/// A value text, with a nested `[ a = 1; b = 2 ]` as the object HTCondor gives.
fn nested_or_value(text: &str) -> Json {
    let Some(inner) = text.strip_prefix("[ ").and_then(|t| t.strip_suffix(" ]")) else {
        return classad_value(text);
    };
    let fields = inner
        .split("; ")
        .filter_map(|kv| kv.split_once(" = "))
        .map(|(k, v)| (k.to_string(), classad_value(v)))
        .collect();
    Json::Object(fields)
}

#[test]
fn event_ads_are_htcondors_to_classad() {
    // `event_ad` is what HTCondor's `toClassAd` gives for the same event, field by
    // field: the body of the 028 event HTCondor writes after each event.
    let Some(python) = oracle_python("event_ads_are_htcondors_to_classad") else {
        return;
    };
    let (events, oracle) = samples_read_by_htcondor(&python);
    let mut bad = Vec::new();
    for ((id, at, ev), o) in events.iter().zip(&oracle) {
        if matches!(ev, Event::JobAdInformation { .. } | Event::Other { .. }) {
            continue;
        }
        let what = format!("event {:03} of {id}", ev.code());
        let ours: Map<String, Json> =
            petrel_userlog::event_ad(*id, *at, ev, &TimeFormat::local(zone()))
                .into_iter()
                .map(|(k, v)| (k, nested_or_value(&v)))
                .collect();
        let mut theirs = oracle_fields(o);
        if ev.code() == 4 {
            // HTCondor's reader drops the evict event's usage table; so do we.
            theirs.retain(|k, _| ours.contains_key(k));
        }
        for (k, v) in &theirs {
            match ours.get(k) {
                Some(g) if same(g, v) => {}
                Some(g) => bad.push(format!("{what}: {k} is {g}, HTCondor has {v}")),
                None => bad.push(format!("{what}: no {k} (HTCondor has {v})")),
            }
        }
        for k in ours.keys().filter(|k| !theirs.contains_key(*k)) {
            bad.push(format!("{what}: {k} = {} not in HTCondor's ad", ours[k]));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn htcondor_reads_the_job_ad_information_written_after_an_event() {
    let Some(python) =
        oracle_python("htcondor_reads_the_job_ad_information_written_after_an_event")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.log");
    let log = UserLog::open_with(&path, TimeFormat::local(zone())).unwrap();
    let id = JobId::new(12, 3);
    let at = common::base_time();
    let held = Event::Held {
        reason: Some("over \"quota\"".into()),
        code: 34,
        subcode: 102,
    };
    let attrs = [
        ("Owner".to_string(), "\"alice\"".to_string()),
        ("RequestMemory".to_string(), "2048".to_string()),
    ];
    log.write_with_job_info(id, at, &held, &attrs).unwrap();
    let oracle = htcondor_read(&python, &path);
    assert_eq!(oracle.len(), 2, "{oracle:?}");
    let info = &oracle[1];
    assert_eq!(info["type_name"], "JOB_AD_INFORMATION");
    assert_eq!(
        (info["cluster"].clone(), info["proc"].clone()),
        (json!(12), json!(3))
    );
    assert_eq!(info["timestamp"], json!(secs(at)));
    let f = oracle_fields(info);
    assert_eq!(f["TriggerEventTypeNumber"], json!(12));
    assert_eq!(f["TriggerEventTypeName"], json!("ULOG_JOB_HELD"));
    assert_eq!(f["HoldReason"], json!("over \"quota\""));
    assert_eq!(f["HoldReasonCode"], json!(34));
    assert_eq!(f["Owner"], json!("alice"));
    assert_eq!(f["RequestMemory"], json!(2048));
    assert_eq!(f["EventTypeNumber"], json!(28));
}
