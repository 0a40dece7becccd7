//! Reads statements in order: assignments define macros, `if`/`elif`/`else`/`endif` pick
//! branches, `include` reads more statements, and each `queue` statement captures the
//! macros in force with its resolved item list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{ErrorKind, Location, Result, SubmitError};
use crate::lexer::{self, Stmt, StmtKind};
use crate::macros::{Expander, LiveVars, MacroSet};
use crate::queue::{self, ItemLimits, ItemSource, QueueSpec};
use crate::SubmitOptions;

/// Includes nested deeper than this are refused.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// One `queue` statement, ready to produce procs.
#[derive(Clone, Debug)]
pub struct QueueOp {
    /// Where the statement is.
    pub loc: Location,
    /// The macros in force at the statement.
    pub macros: Arc<MacroSet>,
    /// Where each macro was (last) defined, lowercase key → location.
    pub key_locs: Arc<HashMap<String, Location>>,
    /// The parsed statement.
    pub spec: QueueSpec,
    /// The item lines (empty for a plain `queue N`).
    pub items: Vec<String>,
}

impl QueueOp {
    /// Number of procs this statement creates.
    pub fn proc_count(&self) -> u64 {
        let n = if matches!(self.spec.source, ItemSource::None) {
            1
        } else {
            self.items.len() as u64
        };
        n.saturating_mul(self.spec.count)
    }
}

struct IfState {
    /// This branch is being read.
    active: bool,
    /// A branch of this if has been taken.
    taken: bool,
    /// `else` was seen.
    in_else: bool,
    loc: Location,
}

pub(crate) struct Processor<'o> {
    opts: &'o SubmitOptions,
    defaults: &'o MacroSet,
    macros: MacroSet,
    key_locs: HashMap<String, Location>,
    pub ops: Vec<QueueOp>,
    include_stack: Vec<PathBuf>,
    ifs: Vec<IfState>,
    total: u64,
    pub warnings: Vec<String>,
}

impl<'o> Processor<'o> {
    pub fn new(opts: &'o SubmitOptions, defaults: &'o MacroSet) -> Self {
        Self {
            opts,
            defaults,
            macros: MacroSet::new(),
            key_locs: HashMap::new(),
            ops: Vec::new(),
            include_stack: Vec::new(),
            ifs: Vec::new(),
            total: 0,
            warnings: Vec::new(),
        }
    }

    fn active(&self) -> bool {
        self.ifs.iter().all(|s| s.active)
    }

    fn live(&self) -> LiveVars {
        LiveVars {
            cluster: self.opts.cluster_id,
            process: 0,
            ..Default::default()
        }
    }

    fn expand(&self, text: &str, loc: &Location) -> Result<String> {
        let live = self.live();
        let ex = Expander {
            macros: &self.macros,
            live: &live,
            defaults: self.defaults,
        };
        ex.expand(text)
            .map(|c| c.into_owned())
            .map_err(|k| SubmitError::new(loc.clone(), k))
    }

    /// Processes the text of one file; `dir` resolves relative paths.
    pub fn run_text(&mut self, text: &str, name: &str, dir: &Path) -> Result<()> {
        let stmts = lexer::lex(text, name)?;
        let depth_before = self.ifs.len();
        for st in stmts {
            self.statement(st, dir)?;
        }
        if self.ifs.len() > depth_before {
            let loc = self.ifs[self.ifs.len() - 1].loc.clone();
            return Err(SubmitError::new(
                loc,
                ErrorKind::Conditional("'if' without a matching 'endif'".into()),
            ));
        }
        Ok(())
    }

    fn statement(&mut self, st: Stmt, dir: &Path) -> Result<()> {
        let Stmt { loc, kind } = st;
        match kind {
            StmtKind::If(cond) => {
                let parent = self.active();
                let v = if parent {
                    self.condition(&cond, &loc)?
                } else {
                    false
                };
                self.ifs.push(IfState {
                    active: parent && v,
                    taken: v,
                    in_else: false,
                    loc,
                });
            }
            StmtKind::Elif(cond) => {
                let parent =
                    self.ifs.len() < 2 || self.ifs[..self.ifs.len() - 1].iter().all(|s| s.active);
                let Some(top) = self.ifs.last() else {
                    return Err(SubmitError::new(
                        loc,
                        ErrorKind::Conditional("'elif' without 'if'".into()),
                    ));
                };
                if top.in_else {
                    return Err(SubmitError::new(
                        loc,
                        ErrorKind::Conditional("'elif' after 'else'".into()),
                    ));
                }
                let taken = top.taken;
                let v = if parent && !taken {
                    self.condition(&cond, &loc)?
                } else {
                    false
                };
                if let Some(top) = self.ifs.last_mut() {
                    top.active = parent && !taken && v;
                    top.taken = taken || v;
                }
            }
            StmtKind::Else => {
                let parent =
                    self.ifs.len() < 2 || self.ifs[..self.ifs.len() - 1].iter().all(|s| s.active);
                let Some(top) = self.ifs.last_mut() else {
                    return Err(SubmitError::new(
                        loc,
                        ErrorKind::Conditional("'else' without 'if'".into()),
                    ));
                };
                if top.in_else {
                    return Err(SubmitError::new(
                        loc,
                        ErrorKind::Conditional("a second 'else' for one 'if'".into()),
                    ));
                }
                top.in_else = true;
                top.active = parent && !top.taken;
                top.taken = true;
            }
            StmtKind::Endif => {
                if self.ifs.pop().is_none() {
                    return Err(SubmitError::new(
                        loc,
                        ErrorKind::Conditional("'endif' without 'if'".into()),
                    ));
                }
            }
            _ if !self.active() => {}
            StmtKind::Assign { key, value } => {
                self.key_locs.insert(key.to_ascii_lowercase(), loc);
                self.macros.set(&key, &value);
            }
            StmtKind::Include(arg) => self.include(&arg, &loc, dir)?,
            StmtKind::Error(msg) => {
                let m = self.expand(&msg, &loc)?;
                return Err(SubmitError::new(loc, ErrorKind::UserError(m)));
            }
            StmtKind::Warning(msg) => {
                let m = self.expand(&msg, &loc)?;
                self.warnings.push(format!("{loc}: {m}"));
            }
            StmtKind::Queue { args, items } => {
                if self.opts.queue_override.is_some() {
                    return Err(SubmitError::new(
                        loc,
                        ErrorKind::Syntax {
                            text: format!("queue {args}"),
                            expected: "no queue statement in the file when -queue is given".into(),
                        },
                    ));
                }
                self.queue(&args, items.as_deref(), loc, dir)?;
            }
        }
        Ok(())
    }

    /// Applies the `-append` commands and records a queue statement.
    pub fn queue(
        &mut self,
        args: &str,
        lines: Option<&[String]>,
        loc: Location,
        dir: &Path,
    ) -> Result<()> {
        for (i, line) in self.opts.append.iter().enumerate() {
            let aloc = Location::new("-append", (i + 1) as u32, 1);
            for st in lexer::lex(line, "-append")? {
                match st.kind {
                    StmtKind::Assign { key, value } => {
                        self.key_locs.insert(key.to_ascii_lowercase(), aloc.clone());
                        self.macros.set(&key, &value);
                    }
                    _ => {
                        return Err(SubmitError::new(
                            aloc,
                            ErrorKind::Syntax {
                                text: line.clone(),
                                expected: "a 'key = value' command".into(),
                            },
                        ))
                    }
                }
            }
        }
        if let Some(name) = &self.opts.batch_name {
            self.macros.set("batch_name", name);
        }
        let expanded = self.expand(args, &loc)?;
        let spec = queue::parse(&expanded, lines).map_err(|k| SubmitError::new(loc.clone(), k))?;
        let cap = self.opts.max_procs;
        let too_many = |count: u128| ErrorKind::TooManyProcs { count, cap };
        if spec.count > cap {
            return Err(SubmitError::new(loc, too_many(spec.count as u128)));
        }
        let limits = ItemLimits {
            max_items: cap,
            command_timeout: self.opts.command_timeout,
            allow_commands: self.opts.allow_commands,
        };
        let items = queue::resolve_items(&spec.source, dir, limits)
            .map_err(|k| SubmitError::new(loc.clone(), k))?;
        let items = queue::apply_slice(items, spec.slice);
        let op = QueueOp {
            loc: loc.clone(),
            macros: Arc::new(self.macros.clone()),
            key_locs: Arc::new(self.key_locs.clone()),
            spec,
            items,
        };
        let n = op.proc_count() as u128;
        let total = self.total as u128 + n;
        if total > cap as u128 {
            return Err(SubmitError::new(loc, too_many(total)));
        }
        self.total = total as u64;
        self.ops.push(op);
        Ok(())
    }

    fn include(&mut self, arg: &str, loc: &Location, dir: &Path) -> Result<()> {
        if self.include_stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(SubmitError::new(
                loc.clone(),
                ErrorKind::IncludeDepth(MAX_INCLUDE_DEPTH),
            ));
        }
        let target = self.expand(arg, loc)?;
        let target = target.trim();
        if let Some(cmd) = target.strip_suffix('|') {
            if !self.opts.allow_commands {
                return Err(SubmitError::new(
                    loc.clone(),
                    ErrorKind::Command {
                        command: cmd.trim().to_string(),
                        message: "running commands is disabled".into(),
                    },
                ));
            }
            let out = queue::run_command(cmd.trim(), dir, self.opts.command_timeout)
                .map_err(|k| SubmitError::new(loc.clone(), k))?;
            let key = PathBuf::from(format!("|{}", cmd.trim()));
            if self.include_stack.contains(&key) {
                return Err(SubmitError::new(
                    loc.clone(),
                    ErrorKind::IncludeCycle(cmd.trim().to_string()),
                ));
            }
            self.include_stack.push(key);
            let r = self.run_text(&out, &format!("{} |", cmd.trim()), dir);
            self.include_stack.pop();
            return r;
        }
        if target.is_empty() {
            return Err(SubmitError::new(
                loc.clone(),
                ErrorKind::Syntax {
                    text: "include :".into(),
                    expected: "a file name after 'include :'".into(),
                },
            ));
        }
        let p = Path::new(target);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.include_stack.contains(&canon) {
            return Err(SubmitError::new(
                loc.clone(),
                ErrorKind::IncludeCycle(path.display().to_string()),
            ));
        }
        let text = queue::read_limited(&path, "include file")
            .map_err(|k| SubmitError::new(loc.clone(), k))?;
        let sub_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.to_path_buf());
        self.include_stack.push(canon);
        let r = self.run_text(&text, &path.display().to_string(), &sub_dir);
        self.include_stack.pop();
        r
    }

    /// Evaluates an `if`/`elif` condition.
    fn condition(&self, cond: &str, loc: &Location) -> Result<bool> {
        let bad = |why: &str| {
            SubmitError::new(
                loc.clone(),
                ErrorKind::Conditional(format!("cannot evaluate 'if {cond}': {why}")),
            )
        };
        let c = cond.trim();
        if let Some(rest) = c.strip_prefix('!') {
            return Ok(!self.condition(rest, loc)?);
        }
        let (word, rest) = match c.find(char::is_whitespace) {
            Some(p) => (&c[..p], c[p..].trim()),
            None => (c, ""),
        };
        if word.eq_ignore_ascii_case("defined") {
            if rest.is_empty() {
                return Err(bad("expected a name after 'defined'"));
            }
            let name = self.expand(rest, loc)?;
            let name = name.trim();
            let live = self.live();
            let ex = Expander {
                macros: &self.macros,
                live: &live,
                defaults: self.defaults,
            };
            return Ok(ex.lookup_raw(name).is_some());
        }
        if word.eq_ignore_ascii_case("version") {
            let (op, ver) = split_op(rest).ok_or_else(|| bad("expected 'version <op> X.Y.Z'"))?;
            let want = parse_version(&self.expand(ver, loc)?)
                .ok_or_else(|| bad("expected a version number X.Y[.Z]"))?;
            return Ok(compare(op, HTCONDOR_VERSION.cmp(&want)));
        }
        let text = self.expand(c, loc)?;
        let t = text.trim();
        if t.is_empty() {
            return Ok(false);
        }
        if split_comparison(t).is_some() {
            // HTCondor 24.0 refuses these too
            return Err(bad("complex conditionals (comparisons) are not supported; use a boolean or number, 'defined NAME' or 'version OP X.Y.Z'"));
        }
        if let Some(b) = crate::to_ads::parse_bool(t) {
            return Ok(b);
        }
        match crate::numeric::eval(t) {
            Ok(v) => Ok(v != 0.0),
            Err(_) => Err(bad(
                "expected true/false, a number, a comparison, 'defined NAME' or 'version OP X.Y.Z'",
            )),
        }
    }
}

/// The HTCondor version whose behaviour petrel-submit follows, for `if version ...`.
pub const HTCONDOR_VERSION: (u32, u32, u32) = (24, 0, 0);

fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.trim().split('.');
    let a = it.next()?.trim().parse().ok()?;
    let b = it.next().map_or(Some(0), |x| x.trim().parse().ok())?;
    let c = it.next().map_or(Some(0), |x| x.trim().parse().ok())?;
    Some((a, b, c))
}

const OPS: [&str; 6] = ["==", "!=", ">=", "<=", ">", "<"];

fn split_op(s: &str) -> Option<(&'static str, &str)> {
    let t = s.trim_start();
    OPS.iter()
        .find(|op| t.starts_with(**op))
        .map(|op| (*op, &t[op.len()..]))
}

fn split_comparison(s: &str) -> Option<(&str, &'static str, &str)> {
    let mut in_str = false;
    for (i, c) in s.char_indices() {
        if c == '"' {
            in_str = !in_str;
        }
        if in_str {
            continue;
        }
        for op in OPS {
            if s[i..].starts_with(op) {
                return Some((&s[..i], op, &s[i + op.len()..]));
            }
        }
    }
    None
}

fn compare(op: &str, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        "==" => ord == Equal,
        "!=" => ord != Equal,
        ">=" => ord != Less,
        "<=" => ord != Greater,
        ">" => ord == Greater,
        _ => ord == Less,
    }
}
