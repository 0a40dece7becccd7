//! Record text → [`Event`], reading each body the way the `readEvent` of HTCondor's
//! event classes does, so logs written by HTCondor and by petrel read alike.
//!
//! Optional trailing lines are optional here too; lines HTCondor ignores (old
//! "ToE" tags, warnings) are ignored. A body that HTCondor would reject is an error
//! naming the offending line.

use std::time::Duration;

use crate::event::{
    CpuUsage, Event, Evicted, ReasonCode, ResourceUsage, Terminated, Termination, TransferStep,
};

/// A parse failure: the 0-based index of the line (0 is the header line, 1 the first
/// body line) and what was wrong.
pub(crate) type ParseError = (usize, String);

/// The body lines of one record with a cursor. Index 0 is the rest of the header line.
struct Lines<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Lines<'a> {
    fn new(head: &'a str, body: &'a [String]) -> Self {
        let mut lines = Vec::with_capacity(body.len() + 1);
        lines.push(head);
        lines.extend(body.iter().map(String::as_str));
        Lines { lines, pos: 1 }
    }

    fn head(&self) -> &'a str {
        self.lines[0]
    }

    fn next(&mut self) -> Option<&'a str> {
        let l = self.lines.get(self.pos).copied();
        if l.is_some() {
            self.pos += 1;
        }
        l
    }

    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.pos).copied()
    }

    /// The next line, or an error saying what was expected there.
    fn expect(&mut self, what: &str) -> Result<&'a str, ParseError> {
        let at = self.pos;
        self.next().ok_or_else(|| {
            (
                at.min(self.lines.len() - 1),
                format!("record ends where {what} was expected"),
            )
        })
    }

    /// An error about the line last returned.
    fn err(&self, msg: impl Into<String>) -> ParseError {
        (self.pos.saturating_sub(1), msg.into())
    }
}

pub(crate) fn parse_event(code: u32, head: &str, body: &[String]) -> Result<Event, ParseError> {
    let mut l = Lines::new(head, body);
    let ev = match code {
        0 => submit(&mut l)?,
        1 => execute(&mut l)?,
        4 => Event::Evicted(evicted(&mut l)?),
        5 => Event::Terminated(terminated(&mut l)?),
        6 => image_size(&mut l)?,
        9 => {
            prefix(l.head(), "Job was aborted")
                .ok_or_else(|| (0, "expected \"Job was aborted.\"".to_string()))?;
            Event::Aborted {
                reason: optional_reason(&mut l),
            }
        }
        12 => held(&mut l)?,
        13 => {
            prefix(l.head(), "Job was released.")
                .ok_or_else(|| (0, "expected \"Job was released.\"".to_string()))?;
            Event::Released {
                reason: optional_reason(&mut l),
            }
        }
        21 => remote_error(&mut l)?,
        22 => disconnected(&mut l)?,
        23 => reconnected(&mut l)?,
        28 => job_ad_information(&mut l)?,
        40 => file_transfer(&mut l)?,
        _ => Event::Other {
            code,
            head: head.to_string(),
            body: body.to_vec(),
        },
    };
    Ok(ev)
}

fn prefix<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    s.strip_prefix(p)
}

fn some_nonempty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// `Code N Subcode M` after optional whitespace, as `sscanf(" Code %d Subcode %d")`.
fn code_pair(s: &str) -> Option<ReasonCode> {
    let rest = s.trim_start().strip_prefix("Code ")?;
    let (code, rest) = rest.trim_start().split_once(' ')?;
    let rest = rest.trim_start().strip_prefix("Subcode ")?;
    let sub: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    Some(ReasonCode::new(code.parse().ok()?, sub.parse().ok()?))
}

fn optional_reason(l: &mut Lines) -> Option<String> {
    l.next().and_then(some_nonempty)
}

fn submit(l: &mut Lines) -> Result<Event, ParseError> {
    let host = prefix(l.head(), "Job submitted from host: ")
        .or_else(|| prefix(l.head(), "Job submitted from host:"))
        .ok_or_else(|| (0, "expected \"Job submitted from host: \"".to_string()))?;
    let (mut log_notes, mut user_notes) = (None, None);
    let mut n = 0;
    while let Some(line) = l.next() {
        n += 1;
        let t = line.trim();
        if t.starts_with("WARNING: ") {
            continue;
        }
        if t.starts_with('[') || t.starts_with("DAG Node: ") || n == 1 {
            log_notes = some_nonempty(t);
        } else if n == 2 {
            user_notes = some_nonempty(t);
        }
    }
    Ok(Event::Submit {
        host: host.trim_end().to_string(),
        log_notes,
        user_notes,
    })
}

fn execute(l: &mut Lines) -> Result<Event, ParseError> {
    let host = prefix(l.head(), "Job executing on host: ")
        .ok_or_else(|| (0, "expected \"Job executing on host: \"".to_string()))?;
    let mut slot_name = None;
    let mut props = Vec::new();
    let mut first = true;
    while let Some(line) = l.next() {
        if first && line.starts_with("\tSlotName:") {
            let name = line["\tSlotName:".len()..].trim().trim_matches('"');
            slot_name = some_nonempty(name);
        } else if let Some(pair) = attr_line(line) {
            props.push(pair);
        }
        first = false;
    }
    Ok(Event::Execute {
        host: host.to_string(),
        slot_name,
        props,
    })
}

/// `Name = value` (leading whitespace allowed) → name and value text.
fn attr_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    let ok_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ok_name && !value.is_empty()).then(|| (name.to_string(), value.to_string()))
}

/// `Usr D HH:MM:SS, Sys D HH:MM:SS  -  ...` after leading whitespace.
fn rusage_line(l: &mut Lines, what: &str) -> Result<CpuUsage, ParseError> {
    let line = l.expect(what)?;
    parse_rusage(line).ok_or_else(|| {
        l.err(format!(
            "expected {what} (\"Usr D HH:MM:SS, Sys D HH:MM:SS\")"
        ))
    })
}

fn parse_rusage(line: &str) -> Option<CpuUsage> {
    fn dhms(s: &str) -> Option<Duration> {
        let (days, hms) = s.trim().split_once(' ')?;
        let parts: Vec<&str> = hms.trim().split(':').collect();
        if parts.len() != 3 {
            return None;
        }
        let n = |s: &str| s.trim().parse::<u64>().ok();
        // Checked: a hostile log's day count must not overflow (a panic in a debug
        // build, a wrong total in a release one); such a line is simply not a time.
        let secs = n(days)?
            .checked_mul(86_400)?
            .checked_add(n(parts[0])?.checked_mul(3600)?)?
            .checked_add(n(parts[1])?.checked_mul(60)?)?
            .checked_add(n(parts[2])?)?;
        Some(Duration::from_secs(secs))
    }
    let rest = line.trim_start().strip_prefix("Usr ")?;
    let (user, rest) = rest.split_once(", Sys ")?;
    let sys = rest.split("  -  ").next()?;
    Some(CpuUsage::new(dhms(user)?, dhms(sys)?))
}

/// `\t(N) text` → N and text.
fn paren_line(line: &str) -> Option<(i32, &str)> {
    let rest = line.trim_start().strip_prefix('(')?;
    let (n, text) = rest.split_once(')')?;
    Some((n.trim().parse().ok()?, text.trim()))
}

fn termination(l: &mut Lines) -> Result<Termination, ParseError> {
    let line = l.expect("the termination line")?;
    let (normal, text) = paren_line(line).ok_or_else(|| {
        l.err("expected \"(1) Normal termination ...\" or \"(0) Abnormal termination ...\"")
    })?;
    let number =
        |p: &str| -> Option<i32> { text.strip_prefix(p)?.strip_suffix(')')?.trim().parse().ok() };
    if normal != 0 {
        let return_value = number("Normal termination (return value ")
            .ok_or_else(|| l.err("bad normal termination line"))?;
        Ok(Termination::Exited { return_value })
    } else {
        let signal = number("Abnormal termination (signal ")
            .ok_or_else(|| l.err("bad abnormal termination line"))?;
        let core = l.expect("the core file line")?.trim();
        let core_file = if let Some(c) = core.strip_prefix("(1) Corefile in: ") {
            Some(c.to_string())
        } else if core.starts_with("(0)") {
            None
        } else {
            return Err(l.err("expected \"(0) No core file\" or \"(1) Corefile in: \""));
        };
        Ok(Termination::Signaled { signal, core_file })
    }
}

/// `\tN  -  Run Bytes Sent By Job` → (Run|Total, Sent|Received, N).
fn bytes_line(line: &str) -> Option<(&str, &str, u64)> {
    let (num, label) = line.trim_start().split_once("  -  ")?;
    let value: f64 = num.trim().parse().ok()?;
    let words: Vec<&str> = label.split_whitespace().collect();
    match words.as_slice() {
        [scope @ ("Run" | "Total"), "Bytes", dir @ ("Sent" | "Received"), "By", _] => {
            Some((scope, dir, value.max(0.0).round() as u64))
        }
        _ => None,
    }
}

fn terminated(l: &mut Lines) -> Result<Terminated, ParseError> {
    if prefix(l.head(), "Job terminated.").is_none() {
        return Err((0, "expected \"Job terminated.\"".into()));
    }
    let termination = termination(l)?;
    let mut t = Terminated {
        termination,
        run_remote_usage: rusage_line(l, "Run Remote Usage")?,
        run_local_usage: rusage_line(l, "Run Local Usage")?,
        total_remote_usage: rusage_line(l, "Total Remote Usage")?,
        total_local_usage: rusage_line(l, "Total Local Usage")?,
        bytes_sent: 0,
        bytes_received: 0,
        total_bytes_sent: 0,
        total_bytes_received: 0,
        resources: Vec::new(),
    };
    while let Some(line) = l.peek() {
        let Some((scope, dir, n)) = bytes_line(line) else {
            break;
        };
        l.next();
        match (scope, dir) {
            ("Run", "Sent") => t.bytes_sent = n,
            ("Run", "Received") => t.bytes_received = n,
            ("Total", "Sent") => t.total_bytes_sent = n,
            _ => t.total_bytes_received = n,
        }
    }
    t.resources = resources(l);
    Ok(t)
}

fn evicted(l: &mut Lines) -> Result<Evicted, ParseError> {
    let after = prefix(l.head(), "Job was evicted.")
        .ok_or_else(|| (0, "expected \"Job was evicted.\"".to_string()))?;
    let reason_code = code_pair(after).filter(|c| c.code != 0);
    let line = l.expect("the checkpoint line")?;
    let (ckpt, text) = paren_line(line)
        .ok_or_else(|| l.err("expected \"(0) CPU times\" or \"(1) Job was checkpointed.\""))?;
    let requeued = text.starts_with("Job terminated and was requeued");
    let mut e = Evicted {
        checkpointed: ckpt != 0,
        run_remote_usage: rusage_line(l, "Run Remote Usage")?,
        run_local_usage: rusage_line(l, "Run Local Usage")?,
        bytes_sent: 0,
        bytes_received: 0,
        requeued: None,
        reason: None,
        reason_code,
        resources: Vec::new(),
    };
    // Byte counts arrived in later versions; a record may end before them.
    match (
        l.peek().and_then(bytes_line),
        l.lines.get(l.pos + 1).and_then(|s| bytes_line(s)),
    ) {
        (Some(("Run", "Sent", sent)), Some(("Run", "Received", received))) => {
            l.next();
            l.next();
            e.bytes_sent = sent;
            e.bytes_received = received;
        }
        _ => return Ok(e),
    }
    if requeued {
        e.requeued = Some(termination(l)?);
    }
    if let Some(line) = l.peek() {
        if !line.starts_with("\tPartitionable Resources") {
            l.next();
            let r = line.strip_prefix("\tReason: ").unwrap_or(line);
            e.reason = some_nonempty(r);
        }
    }
    e.resources = resources(l);
    Ok(e)
}

/// The "Partitionable Resources" table, if the next line is its header. Cells are cut
/// at the column edges the header gives (HTCondor's `UsageLineParser`), so empty
/// cells read as absent.
fn resources(l: &mut Lines) -> Vec<ResourceUsage> {
    let mut rows = Vec::new();
    let Some(header) = l.peek() else { return rows };
    if !(header.starts_with("\tPartitionable ") || header.starts_with("\tResources")) {
        return rows;
    }
    l.next();
    let tbl = |s: &str| -> Option<usize> { s.find(':').map(|i| i + 1) };
    let Some(h0) = tbl(header) else { return rows };
    let h = &header.as_bytes()[h0..];
    // Right edges of "Usage" and "Request", right edge of "Allocated", left edge
    // of "Assigned", all relative to the character after the colon.
    let skip = |mut i: usize, word: bool| {
        while i < h.len() && ((h[i] == b' ') != word) {
            i += 1;
        }
        i
    };
    let use_end = skip(skip(0, false), true) + 1;
    let req_end = skip(skip(use_end - 1, false), true) + 1;
    let rest = std::str::from_utf8(&h[req_end.min(h.len())..]).unwrap_or("");
    let alloc_end = rest
        .find("Allocated")
        .map(|i| req_end + i + "Allocated".len());
    // HTCondor's writer heads an "Assigned" column when any row has an assignment, with
    // or without "Allocated" before it (its reader then drops the column); read both.
    let assigned_at = rest.find("Assigned").map(|i| req_end + i);
    while let Some(line) = l.peek() {
        let Some(c) = tbl(line) else { break };
        l.next();
        let name: String = line
            .trim_start()
            .chars()
            .take_while(|ch| *ch != ' ' && *ch != ':')
            .collect();
        let row = &line.as_bytes()[c..];
        let cut = |a: usize, b: usize| -> String {
            let (a, b) = (a.min(row.len()), b.min(row.len()));
            String::from_utf8_lossy(&row[a..b.max(a)])
                .trim()
                .to_string()
        };
        let number = |s: String| s.parse::<f64>().ok();
        rows.push(ResourceUsage {
            name,
            usage: number(cut(0, use_end)),
            request: number(cut(use_end, req_end)),
            allocated: alloc_end.and_then(|e| number(cut(req_end, e))),
            assigned: assigned_at.and_then(|a| some_nonempty(&cut(a, row.len()))),
        });
    }
    rows
}

fn image_size(l: &mut Lines) -> Result<Event, ParseError> {
    let size = prefix(l.head(), "Image size of job updated: ")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .ok_or_else(|| (0, "expected \"Image size of job updated: N\"".to_string()))?;
    let (mut mem, mut rss, mut pss) = (None, 0, None);
    while let Some(line) = l.next() {
        let Some((num, label)) = line.trim_start().split_once("  -  ") else {
            break;
        };
        let Ok(v) = num.trim().parse::<i64>() else {
            break;
        };
        match label
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "memoryusage" => mem = Some(v),
            "residentsetsize" => rss = v,
            "proportionalsetsize" => pss = Some(v),
            _ => break,
        }
    }
    Ok(Event::ImageSize {
        image_size_kib: size,
        memory_usage_mib: mem,
        resident_set_size_kib: rss,
        proportional_set_size_kib: pss,
    })
}

fn held(l: &mut Lines) -> Result<Event, ParseError> {
    if prefix(l.head(), "Job was held.").is_none() {
        return Err((0, "expected \"Job was held.\"".into()));
    }
    let reason = l
        .next()
        .and_then(some_nonempty)
        .filter(|r| r != "Reason unspecified");
    let code = l
        .next()
        .and_then(code_pair)
        .unwrap_or(ReasonCode::new(0, 0));
    Ok(Event::Held {
        reason,
        code: code.code,
        subcode: code.subcode,
    })
}

fn remote_error(l: &mut Lines) -> Result<Event, ParseError> {
    let head = l.head().trim();
    let (_kind, rest) = head
        .split_once(" from ")
        .ok_or_else(|| (0, "expected \"Error from DAEMON on HOST:\"".to_string()))?;
    let rest = rest.trim();
    let (daemon, host) = match rest.find(" on ") {
        Some(i) if i > 0 => (rest[..i].trim(), rest[i + 4..].trim()),
        _ => ("", rest),
    };
    let host = host.strip_suffix(':').unwrap_or(host);
    let mut message = Vec::new();
    let mut hold_code = None;
    while let Some(line) = l.next() {
        let text = line.strip_prefix('\t').unwrap_or(line);
        if let Some(c) = code_pair(text) {
            hold_code = Some(c);
            break;
        }
        message.push(text);
    }
    Ok(Event::RemoteError {
        daemon: daemon.to_string(),
        host: host.to_string(),
        message: message.join("\n"),
        hold_code,
    })
}

fn disconnected(l: &mut Lines) -> Result<Event, ParseError> {
    let line = l.expect("the disconnect reason")?;
    let reason = line
        .strip_prefix("    ")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| l.err("expected the disconnect reason, indented by four spaces"))?;
    let line = l.expect("\"Trying to reconnect to\"")?;
    let target = line
        .strip_prefix("    Trying to reconnect to ")
        .ok_or_else(|| l.err("expected \"    Trying to reconnect to STARTD ADDRESS\""))?;
    let (name, addr) = target
        .split_once(' ')
        .ok_or_else(|| l.err("expected a startd name and address"))?;
    Ok(Event::Disconnected {
        reason: reason.to_string(),
        startd_name: name.to_string(),
        startd_addr: addr.to_string(),
    })
}

fn reconnected(l: &mut Lines) -> Result<Event, ParseError> {
    let name = prefix(l.head(), "Job reconnected to ")
        .ok_or_else(|| (0, "expected \"Job reconnected to \"".to_string()))?;
    let mut field = |p: &str| -> Result<String, ParseError> {
        let line = l.expect(p.trim())?;
        line.strip_prefix(p)
            .map(str::to_string)
            .ok_or_else(|| l.err(format!("expected {:?}", p.trim())))
    };
    let startd_addr = field("    startd address: ")?;
    let starter_addr = field("    starter address: ")?;
    Ok(Event::Reconnected {
        startd_name: name.to_string(),
        startd_addr,
        starter_addr,
    })
}

fn job_ad_information(l: &mut Lines) -> Result<Event, ParseError> {
    if prefix(l.head(), "Job ad information event triggered.").is_none() {
        return Err((0, "expected \"Job ad information event triggered.\"".into()));
    }
    let mut attributes = Vec::new();
    while let Some(line) = l.next() {
        attributes.push(attr_line(line).ok_or_else(|| l.err("expected \"Name = value\""))?);
    }
    if attributes.is_empty() {
        return Err((0, "job ad information event without attributes".into()));
    }
    Ok(Event::JobAdInformation { attributes })
}

fn file_transfer(l: &mut Lines) -> Result<Event, ParseError> {
    let step = TransferStep::from_text(l.head().trim_end())
        .ok_or_else(|| (0, format!("unknown file transfer step {:?}", l.head())))?;
    let mut queueing_delay = None;
    let mut host = None;
    if let Some(line) = l.peek() {
        if let Some(n) = line.strip_prefix("\tSeconds spent in queue: ") {
            l.next();
            let secs: u64 = n.trim().parse().map_err(|_| l.err("bad queueing delay"))?;
            queueing_delay = Some(Duration::from_secs(secs));
        }
    }
    if let Some(h) = l
        .peek()
        .and_then(|s| s.strip_prefix("\tTransferring to host: "))
    {
        l.next();
        host = some_nonempty(h);
    }
    Ok(Event::FileTransfer {
        step,
        queueing_delay,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rusage_reads_days() {
        let u = parse_rusage("\t\tUsr 1 02:03:04, Sys 0 00:00:05  -  Run Remote Usage").unwrap();
        assert_eq!(u, CpuUsage::from_secs(86_400 + 7384, 5));
        assert!(parse_rusage("\tUsr 0 00:00, Sys 0 00:00:00").is_none());
        let huge = "\t\tUsr 4099276460824344803 00:00:00, Sys 0 00:00:01  -  Run Local Usage";
        assert!(parse_rusage(huge).is_none());
    }

    /// A terminate event's lines up to its resource table.
    const TERMINATED_HEAD: [&str; 6] = [
        "\t(1) Normal termination (return value 0)",
        "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage",
        "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage",
        "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage",
        "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage",
        "\t0  -  Run Bytes Sent By Job",
    ];

    #[test]
    fn usage_table_with_empty_cells_and_padding() {
        // As HTCondor writes it when a column mixes fractions and integers.
        let body: Vec<String> = TERMINATED_HEAD
            .iter()
            .chain(&[
                "\tPartitionable Resources :    Usage  Request Allocated ",
                "\t   Cpus                 :                 1         1 ",
                "\t   Disk (KB)            :    36           1   7812480 ",
                "\t   Memory (MB)          :     0.25        1      1024 ",
            ])
            .map(|l| l.to_string())
            .collect();
        let Event::Terminated(t) = parse_event(5, "Job terminated.", &body).unwrap() else {
            panic!()
        };
        assert_eq!(t.resources.len(), 3);
        assert_eq!(t.resources[0].usage, None);
        assert_eq!(t.resources[0].request, Some(1.0));
        assert_eq!(t.resources[1].usage, Some(36.0));
        assert_eq!(t.resources[1].allocated, Some(7_812_480.0));
        assert_eq!(t.resources[2].usage, Some(0.25));
    }

    /// HTCondor heads "Assigned" without "Allocated" when no row has an allocation; the
    /// assignment must still be read (a fuzzed log found it dropped).
    #[test]
    fn assigned_column_without_allocated_is_read() {
        let body: Vec<String> = TERMINATED_HEAD
            .iter()
            .chain(&[
                "\tPartitionable Resources :    Usage  Request           Assigned",
                "\t   Cpus                 :                 1           ",
                "\t   GPUs                 :                 1           GPU-1a2b",
            ])
            .map(|l| l.to_string())
            .collect();
        let Event::Terminated(t) = parse_event(5, "Job terminated.", &body).unwrap() else {
            panic!()
        };
        assert_eq!(t.resources[0].assigned, None);
        assert_eq!(t.resources[1].assigned.as_deref(), Some("GPU-1a2b"));
        assert_eq!(t.resources[1].request, Some(1.0));
    }

    #[test]
    fn bad_termination_names_its_line() {
        let body = vec!["\t(1) Normal termination (return value x)".to_string()];
        let (line, msg) = parse_event(5, "Job terminated.", &body).unwrap_err();
        assert_eq!(line, 1, "{msg}");
    }
}
