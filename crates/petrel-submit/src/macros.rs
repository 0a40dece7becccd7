//! Macro definitions and `$(...)` expansion.
//!
//! Supported forms: `$(name)`, `$(name:default)`, `$$(attr)` (left for the pool to expand
//! at match time), `$ENV(VAR)`, `$ENV(VAR:default)`, `$INT(x[,fmt])`, `$REAL(x[,fmt])`,
//! `$CHOICE(i, a, b, ...)` / `$CHOICE(i, listmacro)`, `$RANDOM_CHOICE(a, b, ...)`,
//! `$RANDOM_INTEGER(min, max[, step])`, `$SUBSTR(name, start[, len])` and the path
//! functions `$F<letters>(name)` (`p` parent path, `d` parent directory name, `n` name
//! without extension, `x` extension, `b` no trailing slash, `q` quoted, `a` absolute,
//! `w`/`u` Windows/Unix slashes). Expansion depth and result size are bounded.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use crate::error::ErrorKind;
use crate::numeric;

/// Expansion deeper than this is refused (also catches macros that refer to themselves).
pub const MAX_DEPTH: usize = 32;
/// An expansion result larger than this is refused.
pub const MAX_EXPANSION: usize = 1 << 20;

/// The submit macros defined so far: case-insensitive names, unexpanded values.
#[derive(Clone, Debug, Default)]
pub struct MacroSet {
    index: HashMap<String, usize, BuildHasherDefault<Fnv>>,
    entries: Vec<(String, String)>,
}

impl MacroSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines (or redefines) `name`.
    pub fn set(&mut self, name: &str, value: &str) {
        let lname = name.to_ascii_lowercase();
        match self.index.get(&lname) {
            Some(&i) => self.entries[i].1 = value.to_string(),
            None => {
                self.index.insert(lname, self.entries.len());
                self.entries.push((name.to_string(), value.to_string()));
            }
        }
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = with_lowercase(name, |l| self.index.get(l).copied())?;
        Some(self.entries[i].1.as_str())
    }

    /// `(name as first written, raw value)` pairs in order of first definition.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of macros.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no macro is defined.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// FNV-1a: macro names are short, and SipHash dominated lookups.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Calls `f` with `name` lower-cased, without allocating for short names.
fn with_lowercase<T>(name: &str, f: impl FnOnce(&str) -> T) -> T {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(name);
    }
    let mut buf = [0u8; 64];
    if name.len() <= buf.len() {
        for (d, s) in buf.iter_mut().zip(name.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        // lower-casing ASCII bytes keeps UTF-8 valid
        if let Ok(l) = std::str::from_utf8(&buf[..name.len()]) {
            return f(l);
        }
    }
    f(&name.to_ascii_lowercase())
}

/// The per-job ("live") variables: `$(Cluster)`, `$(Process)`, `$(Item)`, loop variables...
#[derive(Clone, Debug, Default)]
pub struct LiveVars {
    /// `$(Cluster)` / `$(ClusterId)`.
    pub cluster: i64,
    /// `$(Process)` / `$(ProcId)`.
    pub process: i64,
    /// `$(Step)`: 0..N-1 within one item.
    pub step: i64,
    /// `$(ItemIndex)` / `$(Row)`.
    pub item_index: i64,
    /// Loop variables of the current item, lowercase name → value.
    pub vars: Vec<(String, String)>,
}

impl LiveVars {
    fn lookup(&self, lname: &str) -> Option<Cow<'_, str>> {
        for (k, v) in &self.vars {
            if k == lname {
                return Some(Cow::Borrowed(v));
            }
        }
        let n = match lname {
            "cluster" | "clusterid" => self.cluster,
            "process" | "procid" => self.process,
            "step" => self.step,
            "itemindex" | "row" => self.item_index,
            "node" => return Some(Cow::Borrowed("")),
            _ => return None,
        };
        Some(Cow::Owned(n.to_string()))
    }
}

/// Names whose value changes from one proc to the next.
pub fn is_live_name(lname: &str) -> bool {
    matches!(
        lname,
        "cluster" | "clusterid" | "process" | "procid" | "step" | "itemindex" | "row" | "node"
    )
}

/// Expands macros in text against a macro set, live variables and built-in defaults.
pub struct Expander<'a> {
    /// User macros.
    pub macros: &'a MacroSet,
    /// Live variables (override user macros of the same name).
    pub live: &'a LiveVars,
    /// Built-in defaults (`ARCH`, `OPSYS`, `SUBMIT_FILE`...), used when nothing else defines a name.
    pub defaults: &'a MacroSet,
}

impl<'a> Expander<'a> {
    /// Looks a name up: live variables, then user macros, then defaults.
    pub fn lookup_raw(&self, name: &str) -> Option<Cow<'a, str>> {
        let (macros, defaults, live) = (self.macros, self.defaults, self.live);
        with_lowercase(name, |lname| {
            if let Some(v) = live.lookup(lname) {
                return Some(Cow::Owned(v.into_owned()));
            }
            if let Some(v) = macros.get(lname) {
                return Some(Cow::Borrowed(v));
            }
            defaults.get(lname).map(Cow::Borrowed)
        })
    }

    /// The fully expanded value of macro `name`, if defined.
    pub fn value(&self, name: &str) -> Result<Option<String>, ErrorKind> {
        match self.lookup_raw(name) {
            None => Ok(None),
            Some(raw) => {
                let mut stack = vec![name.to_ascii_lowercase()];
                Ok(Some(self.expand_inner(&raw, &mut stack)?.into_owned()))
            }
        }
    }

    /// Expands every macro reference in `text`.
    pub fn expand<'t>(&self, text: &'t str) -> Result<Cow<'t, str>, ErrorKind> {
        let mut stack = Vec::new();
        self.expand_inner(text, &mut stack)
    }

    fn expand_inner<'t>(
        &self,
        text: &'t str,
        stack: &mut Vec<String>,
    ) -> Result<Cow<'t, str>, ErrorKind> {
        if !text.contains('$') {
            return Ok(Cow::Borrowed(text));
        }
        if stack.len() > MAX_DEPTH {
            return Err(ErrorKind::MacroDepth(MAX_DEPTH, truncate(text)));
        }
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len() + 16);
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                let next = text[i..].find('$').map_or(b.len(), |p| i + p);
                out.push_str(&text[i..next]);
                i = next;
                continue;
            }
            // $$(...) is left alone for match-time expansion
            if text[i..].starts_with("$$(") {
                let close = matching_paren(b, i + 2).unwrap_or(b.len() - 1);
                out.push_str(&text[i..=close]);
                i = close + 1;
                continue;
            }
            let name_end = text[i + 1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(b.len(), |p| i + 1 + p);
            if name_end >= b.len() || b[name_end] != b'(' {
                out.push('$');
                i += 1;
                continue;
            }
            let Some(close) = matching_paren(b, name_end) else {
                return Err(ErrorKind::UnbalancedQuotes {
                    text: truncate(&text[i..]),
                    quote: ')',
                });
            };
            let func = &text[i + 1..name_end];
            let arg = &text[name_end + 1..close];
            match self.call(func, arg, stack)? {
                Some(v) => out.push_str(&v),
                None => out.push_str(&text[i..=close]),
            }
            if out.len() > MAX_EXPANSION {
                return Err(ErrorKind::MacroTooLarge(truncate(text), MAX_EXPANSION));
            }
            i = close + 1;
        }
        Ok(Cow::Owned(out))
    }

    /// Expands a macro by name for use inside a function or reference.
    fn macro_value(
        &self,
        name: &str,
        stack: &mut Vec<String>,
    ) -> Result<Option<String>, ErrorKind> {
        let lname = name.to_ascii_lowercase();
        let Some(raw) = self.lookup_raw(&lname) else {
            return Ok(None);
        };
        if stack.contains(&lname) {
            let mut chain = stack.join(" -> ");
            chain.push_str(" -> ");
            chain.push_str(&lname);
            return Err(ErrorKind::MacroLoop(name.to_string(), chain));
        }
        stack.push(lname);
        let v = self.expand_inner(&raw, stack)?.into_owned();
        stack.pop();
        Ok(Some(v))
    }

    /// A function argument: a macro name (expanded) or literal text (expanded).
    fn arg_value(&self, arg: &str, stack: &mut Vec<String>) -> Result<String, ErrorKind> {
        let a = arg.trim();
        if is_name(a) {
            if let Some(v) = self.macro_value(a, stack)? {
                return Ok(v);
            }
        }
        Ok(self.expand_inner(a, stack)?.into_owned())
    }

    fn call(
        &self,
        func: &str,
        arg: &str,
        stack: &mut Vec<String>,
    ) -> Result<Option<String>, ErrorKind> {
        if func.is_empty() {
            // $(name) or $(name:default)
            let (name, default) = match arg.find(':') {
                Some(p) => (&arg[..p], Some(&arg[p + 1..])),
                None => (arg, None),
            };
            let name = name.trim();
            if !is_name(name) {
                return Ok(None);
            }
            let v = self.macro_value(name, stack)?;
            return Ok(Some(match (v, default) {
                (Some(v), Some(d)) if v.is_empty() => self.expand_inner(d, stack)?.into_owned(),
                (Some(v), _) => v,
                (None, Some(d)) => self.expand_inner(d, stack)?.into_owned(),
                (None, None) => String::new(),
            }));
        }
        let fname = func.to_ascii_uppercase();
        let ferr = |message: String| ErrorKind::MacroFunction {
            function: format!("${func}({arg})"),
            message,
        };
        match fname.as_str() {
            "ENV" => {
                let (name, default) = match arg.find(':') {
                    Some(p) => (&arg[..p], Some(&arg[p + 1..])),
                    None => (arg, None),
                };
                let v = std::env::var(name.trim()).ok();
                Ok(Some(match (v, default) {
                    (Some(v), _) => v,
                    (None, Some(d)) => self.expand_inner(d, stack)?.into_owned(),
                    (None, None) => String::new(),
                }))
            }
            "INT" | "REAL" => {
                let parts = split_args(arg);
                let Some(first) = parts.first() else {
                    return Err(ferr("expected a macro name".into()));
                };
                let first = first.trim();
                let text = if is_name(first) {
                    match self.macro_value(first, stack)? {
                        Some(v) => v,
                        None => return Err(ferr(format!("'{first}' is not defined"))),
                    }
                } else {
                    self.expand_inner(first, stack)?.into_owned()
                };
                let n = numeric::eval(&text).map_err(|m| ferr(format!("'{text}' {m}")))?;
                let fmt = parts.get(1).map(|s| s.trim());
                Ok(Some(if fname == "INT" {
                    numeric::format_int(n.trunc() as i64, fmt)
                } else {
                    numeric::format_real(n, fmt)
                }))
            }
            "CHOICE" => {
                let parts = split_args(arg);
                if parts.len() < 2 {
                    return Err(ferr("expected an index and a list".into()));
                }
                let idx_text = self.arg_value(parts[0], stack)?;
                let idx = numeric::eval(&idx_text)
                    .map_err(|m| ferr(format!("index '{idx_text}' {m}")))?;
                let items: Vec<String> = if parts.len() == 2 {
                    let list = self.arg_value(parts[1], stack)?;
                    list.split(',').map(|s| s.trim().to_string()).collect()
                } else {
                    parts[1..]
                        .iter()
                        .map(|p| self.expand_inner(p.trim(), stack).map(|c| c.into_owned()))
                        .collect::<Result<_, _>>()?
                };
                let i = idx as i64;
                if i < 0 || i as usize >= items.len() {
                    return Err(ferr(format!(
                        "index {i} is outside the list of {} items",
                        items.len()
                    )));
                }
                Ok(Some(items[i as usize].clone()))
            }
            "RANDOM_CHOICE" => {
                let parts = split_args(arg);
                if parts.is_empty() {
                    return Err(ferr("expected a list".into()));
                }
                let pick = numeric::random_below(parts.len() as u64) as usize;
                Ok(Some(
                    self.expand_inner(parts[pick].trim(), stack)?.into_owned(),
                ))
            }
            "RANDOM_INTEGER" => {
                let parts = split_args(arg);
                let nums: Vec<i64> = parts
                    .iter()
                    .map(|p| {
                        let t = self.arg_value(p, stack)?;
                        numeric::eval(&t)
                            .map(|f| f as i64)
                            .map_err(|m| ferr(format!("'{t}' {m}")))
                    })
                    .collect::<Result<_, _>>()?;
                let (lo, hi, step) = match nums.as_slice() {
                    [lo, hi] => (*lo, *hi, 1),
                    [lo, hi, st] if *st > 0 => (*lo, *hi, *st),
                    _ => {
                        return Err(ferr(
                            "expected min, max and an optional positive step".into(),
                        ))
                    }
                };
                if hi < lo {
                    return Err(ferr("max is below min".into()));
                }
                let n = ((hi - lo) / step + 1) as u64;
                Ok(Some(
                    (lo + step * numeric::random_below(n) as i64).to_string(),
                ))
            }
            "SUBSTR" => {
                let parts = split_args(arg);
                if parts.len() < 2 {
                    return Err(ferr("expected a name and a start offset".into()));
                }
                let s = self.arg_value(parts[0], stack)?;
                let chars: Vec<char> = s.chars().collect();
                let len = chars.len() as i64;
                let num = |t: &str| -> Result<i64, ErrorKind> {
                    numeric::eval(t)
                        .map(|f| f as i64)
                        .map_err(|m| ferr(format!("'{t}' {m}")))
                };
                let mut start = num(parts[1].trim())?;
                if start < 0 {
                    start = (len + start).max(0);
                }
                let start = start.min(len);
                let mut end = len;
                if let Some(l) = parts.get(2) {
                    let l = num(l.trim())?;
                    end = if l < 0 {
                        (len + l).max(start)
                    } else {
                        (start + l).min(len)
                    };
                }
                Ok(Some(chars[start as usize..end as usize].iter().collect()))
            }
            f if f.starts_with('F') && f[1..].chars().all(|c| "PNXDBQAWU".contains(c)) => {
                let v = self.arg_value(arg, stack)?;
                Ok(Some(path_function(&f[1..], &v)))
            }
            _ => Ok(None),
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Whether `s` is a macro name.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Index of the `)` matching the `(` at `open`.
fn matching_paren(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits function arguments on top-level commas.
fn split_args(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in arg.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&arg[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !arg.trim().is_empty() || !out.is_empty() {
        out.push(&arg[start..]);
    }
    out
}

/// `$F<letters>(path)`: pieces of a path, as HTCondor's path functions give them.
pub fn path_function(letters: &str, path: &str) -> String {
    let has = |c: char| letters.contains(c);
    let mut p = path.trim().to_string();
    if has('U') {
        p = p.replace('\\', "/");
    }
    if has('A') && !p.is_empty() && !Path::new(&p).is_absolute() {
        if let Ok(cwd) = std::env::current_dir() {
            p = cwd.join(&p).to_string_lossy().into_owned();
        }
    }
    let slash = p.rfind('/');
    let (dir, file) = match slash {
        Some(s) => (&p[..=s], &p[s + 1..]),
        None => ("", p.as_str()),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(d) if d > 0 => (&file[..d], &file[d..]),
        _ => (file, ""),
    };
    let pieces = has('P') || has('N') || has('X') || has('D');
    let mut out = if !pieces {
        p.clone()
    } else {
        let mut o = String::new();
        if has('D') {
            let trimmed = dir.strip_suffix('/').unwrap_or(dir);
            let last = trimmed.rfind('/').map_or(trimmed, |s| &trimmed[s + 1..]);
            if !last.is_empty() {
                o.push_str(last);
                o.push('/');
            }
        } else if has('P') {
            o.push_str(dir);
        }
        if has('N') {
            o.push_str(stem);
        }
        if has('X') {
            o.push_str(ext);
        }
        o
    };
    if has('B') && out.len() > 1 {
        if let Some(s) = out.strip_suffix('/') {
            out = s.to_string();
        }
    }
    if has('W') {
        out = out.replace('/', "\\");
    }
    if has('Q') {
        out = format!("\"{out}\"");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(defs: &[(&str, &str)], text: &str) -> Result<String, ErrorKind> {
        let mut m = MacroSet::new();
        for (k, v) in defs {
            m.set(k, v);
        }
        let live = LiveVars {
            cluster: 7,
            process: 3,
            ..Default::default()
        };
        let d = MacroSet::new();
        let e = Expander {
            macros: &m,
            live: &live,
            defaults: &d,
        };
        e.expand(text).map(|c| c.into_owned())
    }

    #[test]
    fn basic_forms() {
        assert_eq!(
            exp(
                &[("A", "x$(b)"), ("b", "y")],
                "[$(a)] [$(nope)] [$(nope:d)]"
            )
            .unwrap(),
            "[xy] [] [d]"
        );
        assert_eq!(
            exp(&[], "$(Cluster).$(ProcId) $$(Foo) $(DOLLAR)").unwrap(),
            "7.3 $$(Foo) "
        );
        assert_eq!(
            exp(
                &[("A", "5"), ("B", "$(A)$(A)")],
                "$INT(B) $INT(A,%03d) $REAL(A,%.3f)"
            )
            .unwrap(),
            "55 005 5.000"
        );
        assert_eq!(
            exp(
                &[("L", "a,b,c")],
                "$CHOICE(2,L) $CHOICE(Process,w,x,y,z) $SUBSTR(L,1,3)"
            )
            .unwrap(),
            "c z ,b,"
        );
    }

    #[test]
    fn loops_and_errors() {
        let e = exp(&[("A", "$(B)"), ("B", "$(A)")], "$(A)").unwrap_err();
        assert!(matches!(e, ErrorKind::MacroLoop(..)), "{e}");
        assert!(exp(&[], "$INT(nope)").is_err());
        assert!(exp(&[], "$CHOICE(5,a,b)").is_err());
        // exponential blow-up is stopped by the size limit
        let mut defs = vec![("m0".to_string(), "xxxxxxxxxxxxxxxx".to_string())];
        for i in 1..25 {
            defs.push((format!("m{i}"), format!("$(m{})$(m{})", i - 1, i - 1)));
        }
        let d: Vec<(&str, &str)> = defs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert!(matches!(
            exp(&d, "$(m24)").unwrap_err(),
            ErrorKind::MacroTooLarge(..)
        ));
    }

    #[test]
    fn path_functions() {
        let f = "/a/b/c.tar.gz";
        let cases = [
            ("N", "c.tar"),
            ("NX", "c.tar.gz"),
            ("P", "/a/b/"),
            ("D", "b/"),
            ("DB", "b"),
            ("X", ".gz"),
            ("PN", "/a/b/c.tar"),
            ("Q", "\"/a/b/c.tar.gz\""),
            ("DP", "b/"),
            ("PNX", "/a/b/c.tar.gz"),
            ("W", "\\a\\b\\c.tar.gz"),
        ];
        for (l, want) in cases {
            assert_eq!(path_function(l, f), want, "$F{l}");
        }
        assert_eq!(path_function("P", "rel/c.txt"), "rel/");
    }
}
