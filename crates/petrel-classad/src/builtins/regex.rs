//! Regular-expression functions: regexp, regexps, replace, replaceAll,
//! regexpMember, stringListRegexpMember.
//!
//! HTCondor uses PCRE2; petrel uses the `regex` crate. The option letters
//! mean the same: `i` caseless, `m` multi-line (`^`/`$` at line breaks),
//! `s` dot matches newline, `x` extended (whitespace and `#` comments
//! ignored); `f` (replace in the full target) and `g` (every match) apply to
//! the substituting functions. Differences: no back-references (`\1` inside
//! a pattern) and no look-around; such patterns are ERROR rather than a match.

use ::regex::{Regex, RegexBuilder};

use super::eval_args;
use super::string::{exceptional_or_err, split_list};
use crate::ast::Expr;
use crate::eval::{Evaluator, EV};
use crate::value::Value;

fn build(pattern: &str, options: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .case_insensitive(options.contains('i'))
        .multi_line(options.contains('m'))
        .dot_matches_new_line(options.contains('s'))
        .ignore_whitespace(options.contains('x'))
        .size_limit(1 << 22)
        .build()
        .ok()
}

/// Substitute one match: `\N` is capture group N; ERROR (`false`) when N is
/// not below the number PCRE reports (one more than the last group that took
/// part in the match).
fn expand(caps: &::regex::Captures<'_>, replace: &str, out: &mut String) -> bool {
    let ngroups = (0..caps.len())
        .rev()
        .find(|&g| caps.get(g).is_some())
        .map_or(1, |g| g + 1);
    let b = replace.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            let g = usize::from(b[i + 1] - b'0');
            if g >= ngroups {
                return false;
            }
            out.push_str(caps.get(g).map_or("", |m| m.as_str()));
            i += 2;
            continue;
        }
        let ch_len = replace[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&replace[i..i + ch_len]);
        i += ch_len;
    }
    true
}

/// A non-empty match starting exactly at `at`, if there is one.
fn nonempty_at<'t>(re: &Regex, target: &'t str, at: usize) -> Option<::regex::Captures<'t>> {
    let caps = re.captures_at(target, at)?;
    let m = caps.get(0)?;
    (m.start() == at && m.end() > at).then_some(caps)
}

/// HTCondor's substitution loop, including its handling of empty matches
/// (with `g`, an empty match at the end of the target is an ERROR there).
fn substitute(re: &Regex, target: &str, replace: &str, full: bool, all: bool) -> Option<String> {
    let mut out = String::new();
    let mut idx = 0;
    let mut empty = false;
    loop {
        let caps = if empty {
            match nonempty_at(re, target, idx) {
                Some(c) => c,
                None => {
                    if idx >= target.len() {
                        return None;
                    }
                    let ch_len = target[idx..].chars().next().map_or(1, char::len_utf8);
                    out.push_str(&target[idx..idx + ch_len]);
                    idx += ch_len;
                    empty = false;
                    if !all {
                        break;
                    }
                    continue;
                }
            }
        } else {
            match re.captures_at(target, idx) {
                Some(c) => c,
                None => break,
            }
        };
        let Some(m) = caps.get(0) else { break };
        if full {
            out.push_str(&target[idx..m.start()]);
        }
        if !expand(&caps, replace, &mut out) {
            return None;
        }
        idx = m.end();
        empty = m.start() == m.end();
        if !all {
            break;
        }
    }
    if full {
        out.push_str(&target[idx.min(target.len())..]);
    }
    Some(out)
}

/// Evaluates the arguments of a regex function taking `required` of them plus an optional
/// options string: the values and the options (empty when absent), or the result to return
/// at once (ERROR for a wrong count or non-string options, or an UNDEFINED/ERROR argument).
fn operands(
    ev: &mut Evaluator<'_>,
    args: &[Expr],
    cur: usize,
    required: usize,
) -> Result<(Vec<EV>, String), EV> {
    if args.len() != required && args.len() != required + 1 {
        return Err(EV::ERR);
    }
    let a = eval_args(ev, args, cur);
    if let Some(e) = exceptional(&a) {
        return Err(e);
    }
    let opts = match a.get(required) {
        None => String::new(),
        Some(v) => v.as_str().ok_or(EV::ERR)?.to_string(),
    };
    Ok((a, opts))
}

pub(crate) fn call(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    match n {
        "regexp" => {
            let (a, opts) = match operands(ev, args, cur, 2) {
                Ok(found) => found,
                Err(e) => return e,
            };
            let (Some(p), Some(t)) = (a[0].as_str(), a[1].as_str()) else {
                return EV::ERR;
            };
            match build(p, &opts) {
                Some(re) => EV::S(Value::Bool(re.is_match(t))),
                None => EV::ERR,
            }
        }
        "regexps" | "replace" | "replaceall" => {
            let (a, mut opts) = match operands(ev, args, cur, 3) {
                Ok(found) => found,
                Err(e) => return e,
            };
            if n == "replace" {
                opts.push('f');
            } else if n == "replaceall" {
                opts.push_str("fg");
            }
            let (Some(p), Some(t), Some(r)) = (a[0].as_str(), a[1].as_str(), a[2].as_str()) else {
                return EV::ERR;
            };
            let Some(re) = build(p, &opts) else {
                return EV::ERR;
            };
            match substitute(&re, t, r, opts.contains('f'), opts.contains('g')) {
                Some(s) => EV::S(Value::from(s)),
                None => EV::ERR,
            }
        }
        "regexpmember" => {
            let (a, opts) = match operands(ev, args, cur, 2) {
                Ok(found) => found,
                Err(e) => return e,
            };
            let Some(p) = a[0].as_str() else {
                return EV::ERR;
            };
            let EV::List(items, scope) = &a[1] else {
                return EV::ERR;
            };
            let Some(re) = build(p, &opts) else {
                return EV::ERR;
            };
            for e in items.iter() {
                let v = ev.eval(e, *scope);
                match v.as_str() {
                    Some(s) => {
                        if re.is_match(s) {
                            return EV::S(Value::Bool(true));
                        }
                    }
                    None => return exceptional_or_err(&v),
                }
            }
            EV::S(Value::Bool(false))
        }
        "stringlistregexpmember" => {
            if args.len() < 2 || args.len() > 4 {
                return EV::ERR;
            }
            let a = eval_args(ev, args, cur);
            let mut s = Vec::new();
            for v in &a {
                match v.as_str() {
                    Some(x) => s.push(x.to_string()),
                    None => return exceptional_or_err(v),
                }
            }
            let delims = s.get(2).cloned();
            let opts = s.get(3).cloned().unwrap_or_default();
            let Some(re) = build(&s[0], &opts) else {
                return EV::ERR;
            };
            let hit = split_list(&s[1], delims.as_deref())
                .iter()
                .any(|x| re.is_match(x));
            EV::S(Value::Bool(hit))
        }
        _ => EV::ERR,
    }
}

/// ERROR if any argument is ERROR, else UNDEFINED if any is UNDEFINED.
fn exceptional(a: &[EV]) -> Option<EV> {
    if a.iter().any(EV::is_error) {
        Some(EV::ERR)
    } else if a.iter().any(EV::is_undefined) {
        Some(EV::UNDEF)
    } else {
        None
    }
}
