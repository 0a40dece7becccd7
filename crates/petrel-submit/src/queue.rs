//! The `queue` statement in all the forms HTCondor documents:
//!
//! ```text
//! queue [N]
//! queue [N] [var[,var...]] in [slice] (item, item ...)      # or: in item item ...
//! queue [N] [var[,var...]] from [slice] file
//! queue [N] [var[,var...]] from [slice] ( lines )           # inline, may span lines
//! queue [N] [var[,var...]] from [slice] command args |     # a command's output
//! queue [N] [var] matching [files|dirs] [slice] glob ...   # or: ( glob ... )
//! ```
//!
//! Without variables the loop variable is `Item`. With several variables each item (a
//! line) is split on commas and whitespace, the last variable taking the rest of the line.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::ErrorKind;
use crate::numeric;

/// Where the items of a `queue` statement come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemSource {
    /// `queue [N]`: no items, one iteration.
    None,
    /// `in (a, b, c)`.
    In(Vec<String>),
    /// `from ( lines )` or the lines of a multi-line list.
    FromLines(Vec<String>),
    /// `from file`.
    FromFile(String),
    /// `from command |`.
    FromCommand(String),
    /// `matching [files|dirs] globs`.
    Matching {
        /// `Some(true)` files only, `Some(false)` directories only, `None` both.
        files: Option<bool>,
        /// The glob patterns.
        patterns: Vec<String>,
    },
}

/// A Python-style `[start:end:step]` slice of the item list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slice {
    /// First index (negative counts from the end).
    pub start: Option<i64>,
    /// One past the last index.
    pub end: Option<i64>,
    /// Step (default 1).
    pub step: Option<i64>,
}

/// A parsed `queue` statement (macros already expanded in its text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    /// Jobs per item (`N`).
    pub count: u64,
    /// Loop variable names (empty when there are no items).
    pub vars: Vec<String>,
    /// The item source.
    pub source: ItemSource,
    /// Optional slice of the items.
    pub slice: Option<Slice>,
}

/// Parses the text after `queue`. `lines` holds a multi-line `( ... )` list, if any.
pub fn parse(args: &str, lines: Option<&[String]>) -> Result<QueueSpec, ErrorKind> {
    let syntax = |expected: &str| ErrorKind::Syntax {
        text: format!("queue {args}"),
        expected: expected.into(),
    };
    let (head, kw, tail) = match find_keyword(args) {
        Some((pos, kw)) => (&args[..pos], Some(kw), args[pos + kw.len()..].trim()),
        None => (args, None, ""),
    };
    let head = head.trim();
    // head: [count] [vars]
    let (count_text, vars_text) = if kw.is_none() {
        (head, "")
    } else {
        let first_end = head
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(head.len());
        let first = &head[..first_end];
        if !first.is_empty()
            && (first.starts_with(|c: char| c.is_ascii_digit() || c == '(' || c == '-'))
        {
            (first, head[first_end..].trim())
        } else {
            ("", head)
        }
    };
    let count = if count_text.is_empty() {
        1
    } else {
        let v = numeric::eval(count_text)
            .map_err(|_| syntax("a job count (a non-negative integer) after 'queue'"))?;
        if v < 0.0 || v.fract() != 0.0 {
            return Err(syntax("a job count (a non-negative integer) after 'queue'"));
        }
        if v > u64::MAX as f64 {
            return Err(ErrorKind::TooManyProcs {
                count: v as u128,
                cap: 0,
            });
        }
        v as u64
    };
    let mut vars: Vec<String> = vars_text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for v in &vars {
        if !crate::macros::is_name(v) {
            return Err(syntax(
                "loop variable names (letters, digits, '_') before in/from/matching",
            ));
        }
    }
    let Some(kw) = kw else {
        return Ok(QueueSpec {
            count,
            vars,
            source: ItemSource::None,
            slice: None,
        });
    };
    if vars.is_empty() {
        vars.push("Item".to_string());
    }
    let mut rest = tail;
    let mut files = None;
    if kw == "matching" {
        let (w, r) = split_word(rest);
        match w.to_ascii_lowercase().as_str() {
            "files" => (files, rest) = (Some(true), r),
            "dirs" => (files, rest) = (Some(false), r),
            "any" => rest = r,
            _ => {}
        }
    }
    let mut slice = None;
    if rest.starts_with('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| syntax("a slice like [start:end:step] closed by ']'"))?;
        slice = Some(
            parse_slice(&rest[1..close])
                .ok_or_else(|| syntax("a slice like [start:end:step] of integers"))?,
        );
        rest = rest[close + 1..].trim();
    }
    // the list in parentheses, inline or over several lines
    let list: Option<Vec<String>> = if let Some(inner) = rest.strip_prefix('(') {
        match (inner.rfind(')'), lines) {
            (Some(close), _) => {
                if !inner[close + 1..].trim().is_empty() {
                    return Err(syntax("nothing after the closing ')'"));
                }
                let body = &inner[..close];
                Some(if kw == "from" {
                    body.lines().map(str::to_string).collect()
                } else {
                    vec![body.to_string()]
                })
            }
            (None, Some(l)) => {
                let mut v = Vec::with_capacity(l.len() + 1);
                if !inner.trim().is_empty() {
                    v.push(inner.to_string());
                }
                v.extend(l.iter().cloned());
                Some(v)
            }
            (None, None) => {
                return Err(ErrorKind::UnbalancedQuotes {
                    text: rest.to_string(),
                    quote: ')',
                })
            }
        }
    } else {
        None
    };
    let source = match kw {
        "in" => {
            let text = match &list {
                Some(l) => l.join(","),
                None => rest.to_string(),
            };
            ItemSource::In(split_in_items(&text))
        }
        "from" => match list {
            Some(l) => ItemSource::FromLines(l),
            None if rest.ends_with('|') => {
                let cmd = rest[..rest.len() - 1].trim();
                if cmd.is_empty() {
                    return Err(syntax("a command before '|'"));
                }
                ItemSource::FromCommand(cmd.to_string())
            }
            None if rest.is_empty() => {
                return Err(syntax(
                    "a file name, '( lines )' or 'command |' after 'from'",
                ))
            }
            None => ItemSource::FromFile(rest.to_string()),
        },
        _ => {
            let text = match &list {
                Some(l) => l.join(" "),
                None => rest.to_string(),
            };
            let patterns: Vec<String> = text
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if patterns.is_empty() {
                return Err(syntax("one or more file name patterns after 'matching'"));
            }
            ItemSource::Matching { files, patterns }
        }
    };
    Ok(QueueSpec {
        count,
        vars,
        source,
        slice,
    })
}

/// Finds ` in `, ` from ` or ` matching ` as a whole word outside parentheses.
fn find_keyword(args: &str) -> Option<(usize, &'static str)> {
    let lower = args.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ if depth == 0 && (i == 0 || b[i - 1].is_ascii_whitespace() || b[i - 1] == b',') => {
                for kw in ["in", "from", "matching"] {
                    if lower[i..].starts_with(kw) {
                        let after = b.get(i + kw.len()).copied();
                        if !matches!(after, Some(c) if !(c.is_ascii_whitespace() || c == b'(' || c == b'['))
                        {
                            return Some((i, kw));
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn split_word(s: &str) -> (&str, &str) {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

fn parse_slice(s: &str) -> Option<Slice> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let num = |t: &str| -> Option<Option<i64>> {
        let t = t.trim();
        if t.is_empty() {
            Some(None)
        } else {
            t.parse().ok().map(Some)
        }
    };
    Some(Slice {
        start: num(parts[0])?,
        end: match parts.get(1) {
            Some(t) => num(t)?,
            None => None,
        },
        step: match parts.get(2) {
            Some(t) => num(t)?,
            None => None,
        },
    })
}

fn split_in_items(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Applies a slice to `items`.
pub fn apply_slice<T: Clone>(items: Vec<T>, slice: Option<Slice>) -> Vec<T> {
    let Some(s) = slice else { return items };
    let len = items.len() as i64;
    let norm = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
    let step = s.step.unwrap_or(1).max(1);
    let start = s.start.map_or(0, norm);
    let end = s.end.map_or(len, norm);
    let mut out = Vec::new();
    let mut i = start;
    while i < end {
        out.push(items[i as usize].clone());
        i += step;
    }
    out
}

/// Splits one item (a line) into values for `nvars` variables.
pub fn split_fields(item: &str, nvars: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(nvars);
    let mut rest = item.trim();
    for i in 0..nvars {
        if i + 1 == nvars {
            out.push(rest.to_string());
            break;
        }
        let end = rest
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        }
    }
    out
}

/// Limits on resolving items.
#[derive(Clone, Copy, Debug)]
pub struct ItemLimits {
    /// Items beyond this are refused (the proc cap).
    pub max_items: u64,
    /// How long a `from command |` may run.
    pub command_timeout: Duration,
    /// Whether commands may be run at all.
    pub allow_commands: bool,
}

/// Resolves the item source to a list of item lines, relative to `dir`.
pub fn resolve_items(
    source: &ItemSource,
    dir: &Path,
    limits: ItemLimits,
) -> Result<Vec<String>, ErrorKind> {
    let too_many = |count: u128| ErrorKind::TooManyProcs {
        count,
        cap: limits.max_items,
    };
    let from_text = |text: &str| -> Result<Vec<String>, ErrorKind> {
        let mut v = Vec::new();
        // every line is an item, as in HTCondor: a blank line keeps the previous item's values
        for l in text.lines() {
            let t = l.trim();
            if v.len() as u64 >= limits.max_items {
                return Err(too_many(v.len() as u128 + 1));
            }
            v.push(t.to_string());
        }
        Ok(v)
    };
    match source {
        ItemSource::None => Ok(Vec::new()),
        ItemSource::In(items) => Ok(items.clone()),
        ItemSource::FromLines(lines) => from_text(&lines.join("\n")),
        ItemSource::FromFile(f) => {
            let path = resolve(dir, f);
            let text = read_limited(&path, "queue item file")?;
            from_text(&text)
        }
        ItemSource::FromCommand(cmd) => {
            if !limits.allow_commands {
                return Err(ErrorKind::Command {
                    command: cmd.clone(),
                    message: "running commands is disabled".into(),
                });
            }
            let out = run_command(cmd, dir, limits.command_timeout)?;
            from_text(&out)
        }
        ItemSource::Matching { files, patterns } => {
            let mut found = Vec::new();
            for p in patterns {
                let full = resolve(dir, p);
                let pat = full.to_string_lossy().into_owned();
                let paths = glob::glob(&pat).map_err(|e| ErrorKind::Syntax {
                    text: p.clone(),
                    expected: format!("a valid file name pattern ({e})"),
                })?;
                let mut these = Vec::new();
                for entry in paths.flatten() {
                    let is_dir = entry.is_dir();
                    match files {
                        Some(true) if is_dir => continue,
                        Some(false) if !is_dir => continue,
                        _ => {}
                    }
                    let mut shown = if Path::new(p).is_absolute() {
                        entry.to_string_lossy().into_owned()
                    } else {
                        entry
                            .strip_prefix(dir)
                            .unwrap_or(&entry)
                            .to_string_lossy()
                            .into_owned()
                    };
                    if is_dir {
                        shown.push('/');
                    }
                    these.push(shown);
                }
                these.sort();
                found.extend(these);
                if found.len() as u64 > limits.max_items {
                    return Err(too_many(found.len() as u128));
                }
            }
            Ok(found)
        }
    }
}

fn resolve(dir: &Path, f: &str) -> PathBuf {
    let p = Path::new(f);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// Files read by a submit (item files, includes) larger than this are refused.
pub const MAX_FILE_SIZE: u64 = 256 << 20;

/// Reads a text file of at most [`MAX_FILE_SIZE`] bytes (so `/dev/zero` cannot hang a submit).
pub fn read_limited(path: &Path, what: &'static str) -> Result<String, ErrorKind> {
    let file_err = |message: String| ErrorKind::File {
        what,
        path: path.to_path_buf(),
        message,
    };
    let f = std::fs::File::open(path).map_err(|e| file_err(e.to_string()))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| file_err(e.to_string()))?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(file_err(format!("larger than {MAX_FILE_SIZE} bytes")));
    }
    String::from_utf8(buf).map_err(|_| file_err("not UTF-8 text".into()))
}

/// Output size cap for commands whose output is read (`queue from cmd |`, `include : cmd |`).
pub const MAX_COMMAND_OUTPUT: usize = 64 << 20;

/// Runs `cmd` with `sh -c` in `dir` and returns its standard output.
pub fn run_command(cmd: &str, dir: &Path, timeout: Duration) -> Result<String, ErrorKind> {
    let fail = |message: String| ErrorKind::Command {
        command: cmd.to_string(),
        message,
    };
    // Its own process group, so a timeout kills what the shell started too: a grandchild
    // left alive would keep the output pipe, and the reader below, open.
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .process_group(0)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("no standard output".into()))?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r = (&mut stdout)
            .take(MAX_COMMAND_OUTPUT as u64 + 1)
            .read_to_end(&mut buf);
        r.map(|_| buf)
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(s) => break s,
            None if start.elapsed() > timeout => {
                if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ =
                        rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(fail(format!(
                    "still running after {}s; killed",
                    timeout.as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let buf = reader
        .join()
        .map_err(|_| fail("reader thread failed".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if buf.len() > MAX_COMMAND_OUTPUT {
        return Err(fail(format!(
            "output larger than {MAX_COMMAND_OUTPUT} bytes"
        )));
    }
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    String::from_utf8(buf).map_err(|_| fail("output is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let q = parse("", None).unwrap();
        assert_eq!((q.count, q.source), (1, ItemSource::None));
        assert_eq!(parse("5", None).unwrap().count, 5);
        let q = parse("2 x in (a b, c)", None).unwrap();
        assert_eq!(q.count, 2);
        assert_eq!(q.vars, ["x"]);
        assert_eq!(
            q.source,
            ItemSource::In(vec!["a".into(), "b".into(), "c".into()])
        );
        let q = parse("a, b from data.txt", None).unwrap();
        assert_eq!(q.vars, ["a", "b"]);
        assert_eq!(q.source, ItemSource::FromFile("data.txt".into()));
        let q = parse("from seq 3 |", None).unwrap();
        assert_eq!(q.vars, ["Item"]);
        assert_eq!(q.source, ItemSource::FromCommand("seq 3".into()));
        let q = parse("f matching files [1:] *.txt", None).unwrap();
        assert_eq!(
            q.slice,
            Some(Slice {
                start: Some(1),
                end: None,
                step: None
            })
        );
        assert!(matches!(
            q.source,
            ItemSource::Matching {
                files: Some(true),
                ..
            }
        ));
        assert!(parse("x y z", None).is_err());
        assert!(parse("-1", None).is_err());
        assert!(parse("x from", None).is_err());
    }

    #[test]
    fn fields_and_slices() {
        assert_eq!(split_fields("x y z w", 3), ["x", "y", "z w"]);
        assert_eq!(split_fields("1,2,3", 3), ["1", "2", "3"]);
        assert_eq!(split_fields("p, q", 3), ["p", "q", ""]);
        assert_eq!(
            apply_slice(
                vec![0, 1, 2, 3, 4],
                Some(Slice {
                    start: Some(1),
                    end: Some(-1),
                    step: Some(2)
                })
            ),
            [1, 3]
        );
    }
}
