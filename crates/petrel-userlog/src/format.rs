//! Event → record text, byte for byte as HTCondor's `ULogEvent::formatHeader` and the
//! `formatBody` of each event class write it (HTCondor's `condor_event.cpp`).
//!
//! A record is the header line `NNN (CCC.PPP.SSS) TIME ` followed directly by the
//! event's first line, then the body lines, then the sync line `...`.

use std::fmt::Write as _;

use crate::event::{CpuUsage, Event, Evicted, JobId, ResourceUsage, Terminated, Termination};

/// The event numbers [`Event`] has a variant for.
const MODELLED: [u32; 13] = [0, 1, 4, 5, 6, 9, 12, 13, 21, 22, 23, 28, 40];

/// HTCondor clips submit notes to this many bytes (`%.8191s`).
const NOTES_MAX: usize = 8191;

/// The complete record, ending with the sync line. `Err` says why HTCondor could not
/// read the event back.
pub(crate) fn format_record(id: JobId, time: &str, event: &Event) -> Result<String, String> {
    let mut out = String::with_capacity(512);
    // `%03d` is sign-aware zero padding in both C and Rust: -1 prints as "-01".
    let _ = write!(
        out,
        "{:03} ({:03}.{:03}.{:03}) {} ",
        event.code(),
        id.cluster,
        id.proc,
        id.subproc,
        time
    );
    format_body(&mut out, event)?;
    out.push_str("...\n");
    Ok(out)
}

/// Text that must stay on one line: HTCondor turns newlines into `|` and carriage
/// returns into spaces (`ULogEvent::set_reason_member`), and its readers trim.
pub(crate) fn one_line(s: &str) -> String {
    s.replace('\n', "|").replace('\r', " ").trim().to_string()
}

fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// HTCondor prints attribute lists sorted by name, ignoring case.
fn sorted_attrs(attrs: &[(String, String)]) -> Vec<(String, String)> {
    let mut sorted = attrs.to_vec();
    sorted.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    sorted
}

fn attr_lines(out: &mut String, indent: &str, attrs: &[(String, String)]) -> Result<(), String> {
    for (name, value) in attrs {
        if !is_attr_name(name) {
            return Err(format!("{name:?} is not a ClassAd attribute name"));
        }
        let value = one_line(value);
        if value.is_empty() {
            return Err(format!("attribute {name} has no value"));
        }
        let _ = writeln!(out, "{indent}{name} = {value}");
    }
    Ok(())
}

fn format_body(out: &mut String, event: &Event) -> Result<(), String> {
    match event {
        Event::Submit {
            host,
            log_notes,
            user_notes,
        } => {
            let _ = writeln!(out, "Job submitted from host: {}", one_line(host));
            let log = log_notes.as_deref().map(one_line).filter(|s| !s.is_empty());
            let user = user_notes
                .as_deref()
                .map(one_line)
                .filter(|s| !s.is_empty());
            // Readers take the first note line as log notes and the second as user
            // notes, so user notes alone need an empty first line.
            if log.is_some() || user.is_some() {
                let _ = writeln!(out, "    {}", clip(log.unwrap_or_default(), NOTES_MAX));
            }
            if let Some(u) = user {
                let _ = writeln!(out, "    {}", clip(u, NOTES_MAX));
            }
        }
        Event::Execute {
            host,
            slot_name,
            props,
        } => {
            let _ = writeln!(out, "Job executing on host: {}", one_line(host));
            if let Some(slot) = slot_name.as_deref().map(one_line).filter(|s| !s.is_empty()) {
                let _ = writeln!(out, "\tSlotName: {slot}");
            }
            attr_lines(out, "\t", &sorted_attrs(props))?;
        }
        Event::Evicted(e) => format_evicted(out, e)?,
        Event::Terminated(t) => format_terminated(out, t)?,
        Event::ImageSize {
            image_size_kib,
            memory_usage_mib,
            resident_set_size_kib,
            proportional_set_size_kib,
        } => {
            let _ = writeln!(out, "Image size of job updated: {image_size_kib}");
            if let Some(m) = memory_usage_mib {
                let _ = writeln!(out, "\t{m}  -  MemoryUsage of job (MB)");
            }
            let _ = writeln!(
                out,
                "\t{resident_set_size_kib}  -  ResidentSetSize of job (KB)"
            );
            if let Some(p) = proportional_set_size_kib {
                let _ = writeln!(out, "\t{p}  -  ProportionalSetSize of job (KB)");
            }
        }
        Event::Aborted { reason } => {
            out.push_str("Job was aborted.\n");
            reason_line(out, reason.as_deref());
        }
        Event::Held {
            reason,
            code,
            subcode,
        } => {
            out.push_str("Job was held.\n");
            let r = reason.as_deref().map(one_line).filter(|s| !s.is_empty());
            let _ = writeln!(out, "\t{}", r.as_deref().unwrap_or("Reason unspecified"));
            let _ = writeln!(out, "\tCode {code} Subcode {subcode}");
        }
        Event::Released { reason } => {
            out.push_str("Job was released.\n");
            reason_line(out, reason.as_deref());
        }
        Event::RemoteError {
            daemon,
            host,
            message,
            hold_code,
        } => {
            let daemon = one_line(daemon);
            if daemon.is_empty() || daemon.contains(' ') {
                return Err(format!("daemon name {daemon:?} must be one non-empty word"));
            }
            let _ = writeln!(out, "Error from {daemon} on {}:", one_line(host));
            if !message.is_empty() {
                for line in message.split('\n') {
                    let _ = writeln!(out, "\t{}", line.replace('\r', " "));
                }
            }
            if let Some(c) = hold_code {
                let _ = writeln!(out, "\tCode {} Subcode {}", c.code, c.subcode);
            }
        }
        Event::Disconnected {
            reason,
            startd_name,
            startd_addr,
        } => {
            let (reason, name, addr) = (
                one_line(reason),
                one_line(startd_name),
                one_line(startd_addr),
            );
            if reason.is_empty() || name.is_empty() || addr.is_empty() || name.contains(' ') {
                return Err(
                    "a disconnect needs a reason, a startd name (one word) and a startd address"
                        .into(),
                );
            }
            out.push_str("Job disconnected, attempting to reconnect\n");
            let _ = writeln!(out, "    {}", clip(reason, NOTES_MAX));
            let _ = writeln!(out, "    Trying to reconnect to {name} {addr}");
        }
        Event::Reconnected {
            startd_name,
            startd_addr,
            starter_addr,
        } => {
            let (name, startd, starter) = (
                one_line(startd_name),
                one_line(startd_addr),
                one_line(starter_addr),
            );
            if name.is_empty() || startd.is_empty() || starter.is_empty() {
                return Err(
                    "a reconnect needs the startd name and the startd and starter addresses".into(),
                );
            }
            let _ = writeln!(out, "Job reconnected to {name}");
            let _ = writeln!(out, "    startd address: {startd}");
            let _ = writeln!(out, "    starter address: {starter}");
        }
        Event::JobAdInformation { attributes } => {
            if attributes.is_empty() {
                return Err("a job ad information event needs at least one attribute".into());
            }
            out.push_str("Job ad information event triggered.\n");
            attr_lines(out, "", &sorted_attrs(attributes))?;
        }
        Event::FileTransfer {
            step,
            queueing_delay,
            host,
        } => {
            let _ = writeln!(out, "{}", step.text());
            if let Some(d) = queueing_delay {
                let _ = writeln!(out, "\tSeconds spent in queue: {}", d.as_secs());
            }
            if let Some(h) = host.as_deref().map(one_line).filter(|s| !s.is_empty()) {
                let _ = writeln!(out, "\tTransferring to host: {h}");
            }
        }
        Event::Other { code, head, body } => {
            if *code > 999 {
                return Err(format!("event number {code} has more than three digits"));
            }
            // Readers turn these numbers into their own variants, so a raw record
            // with one of them would not read back as written.
            if MODELLED.contains(code) {
                return Err(format!("event {code:03} has its own variant; use it"));
            }
            let _ = writeln!(out, "{}", one_line(head));
            for line in body {
                if line.contains('\n') || line.trim_end_matches('\r') == "..." {
                    return Err(format!("body line {line:?} would break the record"));
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    Ok(())
}

fn reason_line(out: &mut String, reason: Option<&str>) {
    if let Some(r) = reason.map(one_line).filter(|s| !s.is_empty()) {
        let _ = writeln!(out, "\t{r}");
    }
}

/// `\tUsr D HH:MM:SS, Sys D HH:MM:SS` (`ULogEvent::formatRusage`), whole seconds.
fn rusage(out: &mut String, u: &CpuUsage) {
    out.push('\t');
    out.push_str(&crate::ad::rusage_text(u));
}

fn termination_line(out: &mut String, t: &Termination) {
    match t {
        Termination::Exited { return_value } => {
            let _ = writeln!(
                out,
                "\t(1) Normal termination (return value {return_value})"
            );
        }
        Termination::Signaled { signal, core_file } => {
            let _ = writeln!(out, "\t(0) Abnormal termination (signal {signal})");
            match core_file.as_deref().map(one_line).filter(|s| !s.is_empty()) {
                Some(core) => {
                    let _ = writeln!(out, "\t(1) Corefile in: {core}");
                }
                None => out.push_str("\t(0) No core file\n"),
            }
        }
    }
}

fn format_terminated(out: &mut String, t: &Terminated) -> Result<(), String> {
    out.push_str("Job terminated.\n");
    termination_line(out, &t.termination);
    // The usage lines start with "\t" after the termination's own trailing "\t",
    // which is why HTCondor's usage lines carry two tabs.
    out.push('\t');
    rusage(out, &t.run_remote_usage);
    out.push_str("  -  Run Remote Usage\n\t");
    rusage(out, &t.run_local_usage);
    out.push_str("  -  Run Local Usage\n\t");
    rusage(out, &t.total_remote_usage);
    out.push_str("  -  Total Remote Usage\n\t");
    rusage(out, &t.total_local_usage);
    out.push_str("  -  Total Local Usage\n");
    let _ = writeln!(out, "\t{}  -  Run Bytes Sent By Job", t.bytes_sent);
    let _ = writeln!(out, "\t{}  -  Run Bytes Received By Job", t.bytes_received);
    let _ = writeln!(out, "\t{}  -  Total Bytes Sent By Job", t.total_bytes_sent);
    let _ = writeln!(
        out,
        "\t{}  -  Total Bytes Received By Job",
        t.total_bytes_received
    );
    format_resources(out, &t.resources)
}

fn format_evicted(out: &mut String, e: &Evicted) -> Result<(), String> {
    if e.checkpointed && e.requeued.is_some() {
        return Err(
            "an eviction is either checkpointed or a requeued termination, not both".into(),
        );
    }
    match e.reason_code.filter(|c| c.code != 0) {
        Some(c) => {
            let _ = write!(
                out,
                "Job was evicted. Code {} Subcode {}\n\t",
                c.code, c.subcode
            );
        }
        None => out.push_str("Job was evicted.\n\t"),
    }
    if e.requeued.is_some() {
        out.push_str("(0) Job terminated and was requeued\n");
    } else if e.checkpointed {
        out.push_str("(1) Job was checkpointed.\n");
    } else {
        out.push_str("(0) CPU times\n");
    }
    out.push('\t');
    rusage(out, &e.run_remote_usage);
    out.push_str("  -  Run Remote Usage\n\t");
    rusage(out, &e.run_local_usage);
    out.push_str("  -  Run Local Usage\n");
    let _ = writeln!(out, "\t{}  -  Run Bytes Sent By Job", e.bytes_sent);
    let _ = writeln!(out, "\t{}  -  Run Bytes Received By Job", e.bytes_received);
    if let Some(t) = &e.requeued {
        termination_line(out, t);
    }
    if let Some(r) = e.reason.as_deref().map(one_line).filter(|s| !s.is_empty()) {
        if e.requeued.is_some() {
            let _ = writeln!(out, "\t{r}");
        } else {
            let _ = writeln!(out, "\tReason: {r}");
        }
    }
    format_resources(out, &e.resources)
}

/// A usage-table cell (`formatUsageAd`): reals with a fraction as `%.2f`, the rest as
/// integers. Returns the text and whether it has a fraction.
fn cell(v: Option<f64>) -> (String, bool) {
    match v {
        None => (String::new(), false),
        Some(v) if v - v.trunc() > 0.0 => (format!("{v:.2}"), true),
        Some(v) => (format!("{}", v.trunc() as i64), false),
    }
}

/// The label HTCondor shows for a resource, with its unit.
pub(crate) fn resource_label(name: &str) -> String {
    let unit = match name {
        "Memory" | "GpusMemory" => " (MB)",
        "Disk" => " (KB)",
        "Gpus" => " (Average)",
        "TimeExecute" | "TimeSlotBusy" => " (s)",
        _ => "",
    };
    format!("{name}{unit}")
}

/// The "Partitionable Resources" table, laid out as `formatUsageAd` does: rows sorted
/// by name ignoring case, columns as wide as their widest cell (at least 8), integer
/// cells padded by three spaces when the column also has fractions, so the readers'
/// column positions (taken from the header) cut every row right.
fn format_resources(out: &mut String, rows: &[ResourceUsage]) -> Result<(), String> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<&ResourceUsage> = rows.iter().collect();
    rows.sort_by_key(|r| r.name.to_ascii_lowercase());
    for pair in rows.windows(2) {
        if pair[0].name.eq_ignore_ascii_case(&pair[1].name) {
            return Err(format!("resource {} appears twice", pair[0].name));
        }
    }
    struct Cells {
        label: String,
        cols: [String; 3],
        assigned: String,
    }
    let mut hfp = [false; 3];
    let mut cells: Vec<Cells> = Vec::with_capacity(rows.len());
    for r in &rows {
        if !is_attr_name(&r.name) {
            return Err(format!("{:?} is not a resource name", r.name));
        }
        let mut cols: [String; 3] = Default::default();
        for (i, v) in [r.usage, r.request, r.allocated].into_iter().enumerate() {
            let (text, frac) = cell(v);
            cols[i] = text;
            hfp[i] |= frac;
        }
        let assigned = r.assigned.as_deref().map(one_line).unwrap_or_default();
        cells.push(Cells {
            label: resource_label(&r.name),
            cols,
            assigned,
        });
    }
    let bare_int = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let mut width_res = "Memory (MB)".len() + 1;
    let mut widths = [8usize, 8, 0];
    let mut width_assigned = 0;
    for (c, r) in cells.iter_mut().zip(&rows) {
        for i in 0..3 {
            if hfp[i] && bare_int(&c.cols[i]) {
                c.cols[i].push_str("   ");
            }
            widths[i] = widths[i].max(c.cols[i].len());
        }
        width_res = width_res.max(r.name.len());
        width_assigned = width_assigned.max(c.assigned.len());
    }
    let (wu, wr, wa) = (widths[0], widths[1], widths[2].max(9));
    let _ = writeln!(
        out,
        "\tPartitionable Resources : {:>wu$} {:>wr$} {:>wa$} {}",
        "Usage",
        "Request",
        if widths[2] > 0 { "Allocated" } else { "" },
        if width_assigned > 0 { "Assigned" } else { "" },
    );
    let wl = width_res + 8;
    for c in &cells {
        let _ = writeln!(
            out,
            "\t   {:<wl$} : {:>wu$} {:>wr$} {:>wa$} {}",
            c.label, c.cols[0], c.cols[1], c.cols[2], c.assigned
        );
    }
    Ok(())
}
