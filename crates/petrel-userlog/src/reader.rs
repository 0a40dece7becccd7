//! Reading a log: lines → records → [`LogEntry`]s.
//!
//! Memory stays bounded whatever the input: a line longer than `max_line` bytes is
//! skipped without being kept, and so is a record longer than `max_record` bytes.
//! Damage costs at most the record it is in: after an error the reader skips to the
//! next sync line (`...`) or the next line that is a record header.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Result, UserLogError};
use crate::event::{JobId, LogEntry};
use crate::parse::parse_event;
use crate::time::{parse_time, TimeZone};

/// Longest line kept by default: job ad information events carry whole attributes
/// (environments, argument lists), which stay far below this.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
/// Longest record kept by default.
pub const DEFAULT_MAX_RECORD: usize = 16 << 20;

enum Line {
    Eof,
    /// Bytes at the end of the input without a newline: a write in progress.
    Partial,
    TooLong,
    Text(String),
}

/// An iterator of the events of a log; see [`read_events`].
pub struct EventReader<R> {
    input: R,
    name: PathBuf,
    zone: TimeZone,
    max_line: usize,
    max_record: usize,
    /// Lines and bytes consumed.
    line: u64,
    offset: u64,
    /// Where the last complete item (record, skipped damage) ended: a follower
    /// resumes here, so a record still being written is read again whole.
    mark: (u64, u64),
    /// A header found while skipping damage, with its line number and offset.
    stashed: Option<(String, u64, u64)>,
    done: bool,
    buf: Vec<u8>,
}

/// The events in `input`, oldest first. Errors name the input `<input>`; use
/// [`EventReader::with_name`] or [`read_log`] for a real name. Local times are read
/// in the system time zone, as HTCondor's readers do.
pub fn read_events<R: BufRead>(input: R) -> EventReader<R> {
    EventReader::new(input)
}

/// The events of the log file at `path`.
pub fn read_log(path: impl AsRef<Path>) -> Result<EventReader<BufReader<File>>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| UserLogError::Io {
        file: path.to_path_buf(),
        action: "open",
        source,
    })?;
    Ok(EventReader::new(BufReader::new(file)).with_name(path))
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R) -> Self {
        EventReader {
            input,
            name: PathBuf::from("<input>"),
            zone: TimeZone::system(),
            max_line: DEFAULT_MAX_LINE,
            max_record: DEFAULT_MAX_RECORD,
            line: 0,
            offset: 0,
            mark: (0, 0),
            stashed: None,
            done: false,
            buf: Vec::new(),
        }
    }

    /// The name errors give the input (usually its path).
    pub fn with_name(mut self, name: impl Into<PathBuf>) -> Self {
        self.name = name.into();
        self
    }

    /// The zone local header times are in (the writer's zone).
    pub fn with_time_zone(mut self, zone: TimeZone) -> Self {
        self.zone = zone;
        self
    }

    /// The longest line and the longest record kept, in bytes.
    pub fn with_limits(mut self, max_line: usize, max_record: usize) -> Self {
        self.max_line = max_line;
        self.max_record = max_record;
        self
    }

    /// Count lines and bytes from here: the input starts at this line and offset of
    /// the log (a follower resuming).
    pub(crate) fn starting_at(mut self, line: u64, offset: u64) -> Self {
        self.line = line;
        self.offset = offset;
        self.mark = (offset, line);
        self
    }

    /// Byte offset and line count just after the last complete item.
    pub(crate) fn mark(&self) -> (u64, u64) {
        self.mark
    }

    fn read_line(&mut self) -> Result<Line> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let avail = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UserLogError::Io {
                        file: self.name.clone(),
                        action: "read",
                        source,
                    })
                }
            };
            if avail.is_empty() {
                return Ok(if self.buf.is_empty() && !too_long {
                    Line::Eof
                } else {
                    Line::Partial
                });
            }
            let (n, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if !too_long {
                if self.buf.len() + n > self.max_line.saturating_add(1) {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&avail[..n]);
                }
            }
            self.input.consume(n);
            self.offset += n as u64;
            if found {
                self.line += 1;
                if too_long {
                    return Ok(Line::TooLong);
                }
                let mut s = String::from_utf8_lossy(&self.buf).into_owned();
                s.pop();
                // CRLF logs read as LF ones; every trailing CR goes, not just one, so a
                // line printed back and read again is the line read the first time.
                let kept = s.trim_end_matches('\r').len();
                s.truncate(kept);
                return Ok(Line::Text(s));
            }
        }
    }

    fn err_malformed(&self, line: u64, message: String) -> UserLogError {
        UserLogError::Malformed {
            file: self.name.clone(),
            line,
            message,
        }
    }

    /// Skip damage: up to and including the next sync line, or up to the next
    /// record header (kept for the next call).
    fn resync(&mut self) -> Result<()> {
        loop {
            let start = (self.offset, self.line);
            match self.read_line()? {
                Line::Eof | Line::Partial => return Ok(()),
                Line::TooLong => {}
                Line::Text(s) if is_sync(&s) => {
                    self.mark = (self.offset, self.line);
                    return Ok(());
                }
                Line::Text(s) => {
                    if parse_header(&s, &self.zone).is_ok() {
                        self.mark = start;
                        self.stashed = Some((s, self.line, start.0));
                        return Ok(());
                    }
                }
            }
            self.mark = (self.offset, self.line);
        }
    }

    fn next_entry(&mut self) -> Result<Option<LogEntry>> {
        let (header, header_line) = loop {
            if let Some((s, line, _)) = self.stashed.take() {
                break (s, line);
            }
            match self.read_line()? {
                Line::Eof => return Ok(None),
                Line::Partial => {
                    return Err(UserLogError::Incomplete {
                        file: self.name.clone(),
                        line: self.line + 1,
                    })
                }
                Line::TooLong => {
                    let line = self.line;
                    self.resync()?;
                    return Err(UserLogError::LineTooLong {
                        file: self.name.clone(),
                        line,
                        limit: self.max_line,
                    });
                }
                // Blank lines and stray sync lines between records carry nothing;
                // HTCondor's writer leaves a lone "..." after a failed write.
                Line::Text(s) if s.trim().is_empty() || is_sync(&s) => {
                    self.mark = (self.offset, self.line);
                }
                Line::Text(s) => break (s, self.line),
            }
        };
        let (code, id, time, head) = match parse_header(&header, &self.zone) {
            Ok(h) => h,
            Err(msg) => {
                self.resync()?;
                return Err(self.err_malformed(header_line, format!("not a record header: {msg}")));
            }
        };
        let mut body = Vec::new();
        let mut size = header.len();
        loop {
            match self.read_line()? {
                Line::Eof | Line::Partial => {
                    return Err(UserLogError::Incomplete {
                        file: self.name.clone(),
                        line: header_line,
                    })
                }
                Line::TooLong => {
                    let line = self.line;
                    self.resync()?;
                    return Err(UserLogError::LineTooLong {
                        file: self.name.clone(),
                        line,
                        limit: self.max_line,
                    });
                }
                Line::Text(s) if is_sync(&s) => break,
                Line::Text(s) => {
                    size += s.len() + 1;
                    if size > self.max_record {
                        self.resync()?;
                        return Err(UserLogError::RecordTooLong {
                            file: self.name.clone(),
                            line: header_line,
                            limit: self.max_record,
                        });
                    }
                    body.push(s);
                }
            }
        }
        self.mark = (self.offset, self.line);
        match parse_event(code, &head, &body) {
            Ok(event) => Ok(Some(LogEntry {
                code,
                id,
                time,
                event,
                line: header_line,
            })),
            Err((at, message)) => Err(self.err_malformed(
                header_line + at as u64,
                format!("event {code:03}: {message}"),
            )),
        }
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                // After an incomplete record or an I/O error nothing more can be read.
                if matches!(e, UserLogError::Incomplete { .. } | UserLogError::Io { .. }) {
                    self.done = true;
                }
                Some(Err(e))
            }
        }
    }
}

/// `...`, the line that ends every record (HTCondor's `is_sync_line`).
fn is_sync(s: &str) -> bool {
    s == "..."
}

/// `NNN (C.P.S) TIME rest` → event number, job id, time, and the rest of the line.
fn parse_header(s: &str, zone: &TimeZone) -> Result<(u32, JobId, SystemTime, String), String> {
    let b = s.as_bytes();
    if b.len() < 4 || !b[..3].iter().all(u8::is_ascii_digit) || b[3] != b' ' {
        let shown: String = s.chars().take(40).collect();
        return Err(format!(
            "{shown:?} does not start with a three-digit event number"
        ));
    }
    let code: u32 = s[..3].parse().map_err(|_| "bad event number".to_string())?;
    let rest = s[4..]
        .strip_prefix('(')
        .ok_or("expected \"(cluster.proc.subproc)\"")?;
    let (ids, rest) = rest
        .split_once(')')
        .ok_or("expected \"(cluster.proc.subproc)\"")?;
    let nums: Vec<i64> = ids
        .split('.')
        .map(|n| n.trim().parse::<i64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("bad job id ({ids})"))?;
    let [cluster, proc, subproc] = nums[..] else {
        return Err(format!("bad job id ({ids})"));
    };
    let rest = rest
        .strip_prefix(' ')
        .ok_or("expected a space after the job id")?;
    let (time, head) = parse_time(rest, zone)?;
    Ok((
        code,
        JobId {
            cluster,
            proc,
            subproc,
        },
        time,
        head.to_string(),
    ))
}
