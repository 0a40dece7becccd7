//! Events as ClassAds, as HTCondor's `ULogEvent::toClassAd` makes them, and the job ad
//! information event (028) built from one.
//!
//! When a job sets `job_ad_information_attrs`, HTCondor's log writer follows every event
//! it writes with a 028 whose body is the event's ClassAd (`MyType`, `EventTypeNumber`,
//! `EventTime`, `Cluster`, `Proc`, `Subproc` and the event's own fields), the event's
//! number and name as `TriggerEventTypeNumber` / `TriggerEventTypeName`, and the named
//! job attributes (`WriteUserLog::writeJobAdInfoEvent`).

use std::time::{Duration, SystemTime};

use jiff::{tz::TimeZone, Timestamp};

use crate::event::{CpuUsage, Event, Evicted, JobId, ResourceUsage, Terminated, Termination};
use crate::time::TimeFormat;

/// The attributes every event's ClassAd starts with.
const COMMON: [&str; 6] = [
    "MyType",
    "EventTypeNumber",
    "EventTime",
    "Cluster",
    "Proc",
    "Subproc",
];

/// A string as an old-syntax ClassAd literal: only the quote is escaped, as HTCondor's
/// old-ClassAd unparser does.
pub fn classad_string(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

fn int(v: impl Into<i64>) -> String {
    v.into().to_string()
}

fn boolean(b: bool) -> String {
    (if b { "true" } else { "false" }).into()
}

/// `Usr D HH:MM:SS, Sys D HH:MM:SS` (`ULogEvent::rusageToStr`), whole seconds.
pub(crate) fn rusage_text(u: &CpuUsage) -> String {
    fn split(d: Duration) -> (u64, u64, u64, u64) {
        let s = d.as_secs();
        (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60)
    }
    let (ud, uh, um, us) = split(u.user);
    let (sd, sh, sm, ss) = split(u.system);
    format!("Usr {ud} {uh:02}:{um:02}:{us:02}, Sys {sd} {sh:02}:{sm:02}:{ss:02}")
}

/// HTCondor's `ULogEventNumberNames` entry and `MyType` for the modelled events.
fn names(code: u32) -> (&'static str, &'static str) {
    match code {
        0 => ("ULOG_SUBMIT", "SubmitEvent"),
        1 => ("ULOG_EXECUTE", "ExecuteEvent"),
        4 => ("ULOG_JOB_EVICTED", "JobEvictedEvent"),
        5 => ("ULOG_JOB_TERMINATED", "JobTerminatedEvent"),
        6 => ("ULOG_IMAGE_SIZE", "JobImageSizeEvent"),
        9 => ("ULOG_JOB_ABORTED", "JobAbortedEvent"),
        12 => ("ULOG_JOB_HELD", "JobHeldEvent"),
        13 => ("ULOG_JOB_RELEASED", "JobReleaseEvent"),
        21 => ("ULOG_REMOTE_ERROR", "RemoteErrorEvent"),
        22 => ("ULOG_JOB_DISCONNECTED", "JobDisconnectedEvent"),
        23 => ("ULOG_JOB_RECONNECTED", "JobReconnectedEvent"),
        28 => ("ULOG_JOB_AD_INFORMATION", "JobAdInformationEvent"),
        40 => ("ULOG_FILE_TRANSFER", "FileTransferEvent"),
        _ => ("ULOG_FUTURE_EVENT", "FutureEvent"),
    }
}

/// `EventTime` as `toClassAd` writes it: ISO 8601 in the log's zone (with `Z` for UTC),
/// milliseconds only when the time has a fraction.
fn event_time(at: SystemTime, fmt: &TimeFormat) -> String {
    let Ok(ts) = Timestamp::try_from(at) else {
        return String::new();
    };
    let zoned = ts.to_zoned(fmt.zone.clone().unwrap_or(TimeZone::UTC));
    let mut out = zoned.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let ms = zoned.subsec_nanosecond() / 1_000_000;
    if ms > 0 {
        out.push_str(&format!(".{ms:03}"));
    }
    if fmt.zone.is_none() {
        out.push('Z');
    }
    out
}

/// The event's ClassAd as (name, old-syntax ClassAd text) pairs.
pub fn event_ad(
    id: JobId,
    at: SystemTime,
    event: &Event,
    fmt: &TimeFormat,
) -> Vec<(String, String)> {
    let mut ad: Vec<(String, String)> = Vec::new();
    let mut put = |name: &str, text: String| ad.push((name.to_string(), text));
    let (_, my_type) = names(event.code());
    put("MyType", classad_string(my_type));
    put("EventTypeNumber", int(event.code()));
    put("EventTime", classad_string(&event_time(at, fmt)));
    put("Cluster", int(id.cluster));
    put("Proc", int(id.proc));
    put("Subproc", int(id.subproc));
    let text = |s: &str| (!s.is_empty()).then(|| classad_string(s));
    match event {
        Event::Submit {
            host,
            log_notes,
            user_notes,
        } => {
            if let Some(h) = text(host) {
                put("SubmitHost", h);
            }
            if let Some(n) = log_notes.as_deref().and_then(text) {
                put("LogNotes", n);
            }
            if let Some(n) = user_notes.as_deref().and_then(text) {
                put("UserNotes", n);
            }
        }
        Event::Execute {
            host,
            slot_name,
            props,
        } => {
            if let Some(h) = text(host) {
                put("ExecuteHost", h);
            }
            if let Some(s) = slot_name.as_deref().and_then(text) {
                put("SlotName", s);
            }
            if !props.is_empty() {
                let inner: Vec<String> = props.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                put("ExecuteProps", format!("[ {} ]", inner.join("; ")));
            }
        }
        Event::Evicted(e) => evicted(&mut put, e),
        Event::Terminated(t) => terminated(&mut put, t),
        Event::ImageSize {
            image_size_kib,
            memory_usage_mib,
            resident_set_size_kib,
            proportional_set_size_kib,
        } => {
            put("Size", int(*image_size_kib));
            if let Some(m) = memory_usage_mib {
                put("MemoryUsage", int(*m));
            }
            put("ResidentSetSize", int(*resident_set_size_kib));
            if let Some(p) = proportional_set_size_kib {
                put("ProportionalSetSize", int(*p));
            }
        }
        Event::Aborted { reason } | Event::Released { reason } => {
            if let Some(r) = reason.as_deref().and_then(text) {
                put("Reason", r);
            }
        }
        Event::Held {
            reason,
            code,
            subcode,
        } => {
            if let Some(r) = reason.as_deref().and_then(text) {
                put("HoldReason", r);
            }
            put("HoldReasonCode", int(*code));
            put("HoldReasonSubCode", int(*subcode));
        }
        Event::RemoteError {
            daemon,
            host,
            message,
            hold_code,
        } => {
            if let Some(d) = text(daemon) {
                put("Daemon", d);
            }
            if let Some(h) = text(host) {
                put("ExecuteHost", h);
            }
            if let Some(m) = text(message) {
                put("ErrorMsg", m);
            }
            if let Some(c) = hold_code.filter(|c| c.code != 0) {
                put("HoldReasonCode", int(c.code));
                put("HoldReasonSubCode", int(c.subcode));
            }
        }
        Event::Disconnected {
            reason,
            startd_name,
            startd_addr,
        } => {
            put("StartdAddr", classad_string(startd_addr));
            put("StartdName", classad_string(startd_name));
            put("DisconnectReason", classad_string(reason));
            put(
                "EventDescription",
                classad_string("Job disconnected, attempting to reconnect"),
            );
        }
        Event::Reconnected {
            startd_name,
            startd_addr,
            starter_addr,
        } => {
            put("StartdAddr", classad_string(startd_addr));
            put("StartdName", classad_string(startd_name));
            put("StarterAddr", classad_string(starter_addr));
            put("EventDescription", classad_string("Job reconnected"));
        }
        Event::JobAdInformation { attributes } => {
            for (k, v) in attributes {
                // `MergeClassAds` keeps the event's own header attributes.
                if !COMMON.iter().any(|c| c.eq_ignore_ascii_case(k)) {
                    put(k, v.clone());
                }
            }
        }
        Event::FileTransfer {
            step,
            queueing_delay,
            host,
        } => {
            put("Type", int(step.number()));
            if let Some(d) = queueing_delay {
                put("QueueingDelay", int(d.as_secs() as i64));
            }
            if let Some(h) = host.as_deref().and_then(text) {
                put("Host", h);
            }
        }
        Event::Other { .. } => {}
    }
    ad
}

fn termination(put: &mut impl FnMut(&str, String), how: &Termination) {
    match how {
        Termination::Exited { return_value } => {
            put("TerminatedNormally", boolean(true));
            put("ReturnValue", int(*return_value));
        }
        Termination::Signaled { signal, core_file } => {
            put("TerminatedNormally", boolean(false));
            put("TerminatedBySignal", int(*signal));
            if let Some(c) = core_file.as_deref().filter(|c| !c.is_empty()) {
                put("CoreFile", classad_string(c));
            }
        }
    }
}

fn evicted(put: &mut impl FnMut(&str, String), e: &Evicted) {
    put("Checkpointed", boolean(e.checkpointed));
    put(
        "RunLocalUsage",
        classad_string(&rusage_text(&e.run_local_usage)),
    );
    put(
        "RunRemoteUsage",
        classad_string(&rusage_text(&e.run_remote_usage)),
    );
    put("SentBytes", int(e.bytes_sent as i64));
    put("ReceivedBytes", int(e.bytes_received as i64));
    put("TerminatedAndRequeued", boolean(e.requeued.is_some()));
    match &e.requeued {
        Some(how) => termination(put, how),
        None => put("TerminatedNormally", boolean(false)),
    }
    if let Some(r) = e.reason.as_deref().filter(|r| !r.is_empty()) {
        put("Reason", classad_string(r));
    }
    if let Some(c) = e.reason_code {
        if c.code != 0 {
            put("ReasonCode", int(c.code));
        }
        if c.subcode != 0 {
            put("ReasonSubCode", int(c.subcode));
        }
    }
}

fn terminated(put: &mut impl FnMut(&str, String), t: &Terminated) {
    resources(put, &t.resources);
    termination(put, &t.termination);
    for (name, u) in [
        ("RunLocalUsage", &t.run_local_usage),
        ("RunRemoteUsage", &t.run_remote_usage),
        ("TotalLocalUsage", &t.total_local_usage),
        ("TotalRemoteUsage", &t.total_remote_usage),
    ] {
        put(name, classad_string(&rusage_text(u)));
    }
    put("SentBytes", int(t.bytes_sent as i64));
    put("ReceivedBytes", int(t.bytes_received as i64));
    put("TotalSentBytes", int(t.total_bytes_sent as i64));
    put("TotalReceivedBytes", int(t.total_bytes_received as i64));
}

/// The usage ad of the "Partitionable Resources" table: `<Res>Usage`, `Request<Res>`,
/// `<Res>` (allocated) and `Assigned<Res>`, as `setEventUsageAd` names them.
fn resources(put: &mut impl FnMut(&str, String), rows: &[ResourceUsage]) {
    let number = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            int(v as i64)
        } else {
            format!("{v}")
        }
    };
    for r in rows {
        if let Some(v) = r.usage {
            put(&format!("{}Usage", r.name), number(v));
        }
        if let Some(v) = r.request {
            put(&format!("Request{}", r.name), number(v));
        }
        if let Some(v) = r.allocated {
            put(&r.name, number(v));
        }
        if let Some(a) = &r.assigned {
            put(&format!("Assigned{}", r.name), a.clone());
        }
    }
}

/// The 028 event HTCondor writes after `trigger` for a job with
/// `job_ad_information_attrs`: the trigger's ClassAd, numbered 28, with
/// `TriggerEventTypeNumber`/`TriggerEventTypeName` and `job_attrs` (name, old-syntax
/// ClassAd text: the named job attributes that evaluate to a bool, number or string).
/// A job attribute replaces an event field of the same name, as HTCondor's `Assign` does.
pub fn job_ad_information(
    id: JobId,
    at: SystemTime,
    trigger: &Event,
    fmt: &TimeFormat,
    job_attrs: &[(String, String)],
) -> Event {
    let mut attrs = event_ad(id, at, trigger, fmt);
    let mut set = |name: &str, text: String| match attrs
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
    {
        Some(slot) => slot.1 = text,
        None => attrs.push((name.to_string(), text)),
    };
    for (k, v) in job_attrs {
        set(k, v.clone());
    }
    let (trigger_name, _) = names(trigger.code());
    set("TriggerEventTypeNumber", int(trigger.code()));
    set("TriggerEventTypeName", classad_string(trigger_name));
    set("EventTypeNumber", int(28));
    Event::JobAdInformation { attributes: attrs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ReasonCode;

    fn value<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn an_execute_event_becomes_htcondors_ad_with_the_job_attributes() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let trigger = Event::Execute {
            host: "<127.0.0.1:0>".into(),
            slot_name: Some("slot1_1@h".into()),
            props: vec![("Cpus".into(), "2".into())],
        };
        let info = job_ad_information(
            JobId::new(7, 1),
            at,
            &trigger,
            &TimeFormat::utc(),
            &[("Owner".into(), "\"alice\"".into())],
        );
        let Event::JobAdInformation { attributes } = info else {
            panic!("not a 028");
        };
        let v = |n| value(&attributes, n);
        assert_eq!(v("EventTypeNumber"), Some("28"));
        assert_eq!(v("TriggerEventTypeNumber"), Some("1"));
        assert_eq!(v("TriggerEventTypeName"), Some("\"ULOG_EXECUTE\""));
        assert_eq!(v("MyType"), Some("\"ExecuteEvent\""));
        assert_eq!(v("EventTime"), Some("\"2023-11-14T22:13:20Z\""));
        assert_eq!(v("Cluster"), Some("7"));
        assert_eq!(v("Proc"), Some("1"));
        assert_eq!(v("SlotName"), Some("\"slot1_1@h\""));
        assert_eq!(v("ExecuteProps"), Some("[ Cpus = 2 ]"));
        assert_eq!(v("Owner"), Some("\"alice\""));
    }

    #[test]
    fn a_remote_error_keeps_its_hold_code_and_quotes_its_message() {
        let e = Event::RemoteError {
            daemon: "starter".into(),
            host: "slot1@h".into(),
            message: "no \"image\"".into(),
            hold_code: Some(ReasonCode::new(35, 0)),
        };
        let ad = event_ad(
            JobId::new(1, 0),
            SystemTime::UNIX_EPOCH,
            &e,
            &TimeFormat::utc(),
        );
        assert_eq!(value(&ad, "ErrorMsg"), Some(r#""no \"image\"""#));
        assert_eq!(value(&ad, "HoldReasonCode"), Some("35"));
        assert_eq!(value(&ad, "Daemon"), Some("\"starter\""));
    }
}
