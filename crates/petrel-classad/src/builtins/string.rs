//! String functions: strcat, join, toUpper, toLower, substr, strcmp,
//! stricmp, split, splitUserName, splitSlotName, envV1ToV2.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{eval_args, string_of, to_string_ev};
use crate::ast::Expr;
use crate::eval::{Evaluator, EV};
use crate::value::Value;

/// `strcasecmp` ordering.
pub(crate) fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    let x = a.bytes().map(|c| c.to_ascii_lowercase());
    let y = b.bytes().map(|c| c.to_ascii_lowercase());
    x.cmp(y)
}

fn str_list(items: Vec<String>, cur: usize) -> EV {
    EV::List(
        Arc::new(
            items
                .into_iter()
                .map(|s| Expr::Literal(Value::from(s)))
                .collect(),
        ),
        cur,
    )
}

pub(crate) fn call(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    match n {
        "strcat" | "join" => strcat(ev, n == "join", args, cur),
        "toupper" | "tolower" => {
            if args.len() != 1 {
                return EV::ERR;
            }
            let v = ev.eval(&args[0], cur);
            match string_of(ev, &v) {
                Ok(s) => EV::S(Value::from(if n == "toupper" {
                    s.to_ascii_uppercase()
                } else {
                    s.to_ascii_lowercase()
                })),
                Err(e) => e,
            }
        }
        "substr" => substr(ev, args, cur),
        "strcmp" | "stricmp" => {
            if args.len() != 2 {
                return EV::ERR;
            }
            let a = eval_args(ev, args, cur);
            if a[0].is_undefined() || a[1].is_undefined() {
                return EV::UNDEF;
            }
            match (string_of(ev, &a[0]), string_of(ev, &a[1])) {
                (Ok(x), Ok(y)) => {
                    let o = if n == "strcmp" {
                        x.as_bytes().cmp(y.as_bytes())
                    } else {
                        cmp_ignore_case(&x, &y)
                    };
                    EV::S(Value::Int(o as i64))
                }
                _ => EV::ERR,
            }
        }
        "split" => {
            if args.is_empty() || args.len() > 2 {
                return EV::ERR;
            }
            let a = eval_args(ev, args, cur);
            let Some(s) = a[0].as_str() else {
                return exceptional_or_err(&a[0]);
            };
            let delims = match a.get(1) {
                None => None,
                Some(d) => match d.as_str() {
                    Some(d) => Some(d.to_string()),
                    None => return exceptional_or_err(d),
                },
            };
            str_list(split_list(s, delims.as_deref()), cur)
        }
        "splitusername" | "splitslotname" => {
            if args.len() != 1 {
                return EV::ERR;
            }
            let v = ev.eval(&args[0], cur);
            let Some(s) = v.as_str() else {
                return exceptional_or_err(&v);
            };
            let (a, b) = match s.find('@') {
                Some(i) => (s[..i].to_string(), s[i + 1..].to_string()),
                None if n == "splitusername" => (s.to_string(), String::new()),
                None => (String::new(), s.to_string()),
            };
            str_list(vec![a, b], cur)
        }
        "envv1tov2" => {
            if args.len() != 1 {
                return EV::ERR;
            }
            let v = ev.eval(&args[0], cur);
            let Some(s) = v.as_str() else {
                return exceptional_or_err(&v);
            };
            env_v1_to_v2(s).map_or(EV::ERR, |s| EV::S(Value::from(s)))
        }
        _ => EV::ERR,
    }
}

pub(crate) fn exceptional_or_err(v: &EV) -> EV {
    if v.is_undefined() {
        EV::UNDEF
    } else {
        EV::ERR
    }
}

/// Split on any of `delims` (default: whitespace and comma), dropping empty items.
pub(crate) fn split_list(s: &str, delims: Option<&str>) -> Vec<String> {
    let is_delim = |c: char| match delims {
        Some(d) => d.contains(c),
        None => c == ',' || c.is_ascii_whitespace(),
    };
    s.split(is_delim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn strcat(ev: &mut Evaluator<'_>, is_join: bool, args: &[Expr], cur: usize) -> EV {
    let mut vals: Vec<EV> = Vec::new();
    if is_join && !args.is_empty() && args.len() <= 2 {
        let last = ev.eval(&args[args.len() - 1], cur);
        if let EV::List(items, scope) = last {
            vals.push(if args.len() > 1 {
                ev.eval(&args[0], cur)
            } else {
                EV::S(Value::from(""))
            });
            for e in items.iter() {
                vals.push(ev.eval(e, scope));
            }
        } else {
            vals = eval_args(ev, args, cur);
        }
    } else {
        vals = eval_args(ev, args, cur);
    }
    let mut buf = String::new();
    let mut sep = String::new();
    let (mut undef, mut def) = (false, false);
    for (i, v) in vals.iter().enumerate() {
        let s = match to_string_ev(ev, v) {
            EV::S(Value::String(s)) => s.to_string(),
            EV::S(Value::Undefined) => {
                undef = true;
                if is_join {
                    continue;
                }
                def = false;
                break;
            }
            _ => return EV::ERR,
        };
        if is_join {
            if i == 0 {
                sep = s;
                continue;
            }
            if !buf.is_empty() {
                buf.push_str(&sep);
            }
        }
        def = true;
        buf.push_str(&s);
    }
    if undef && !def {
        return EV::UNDEF;
    }
    EV::S(Value::from(buf))
}

fn substr(ev: &mut Evaluator<'_>, args: &[Expr], cur: usize) -> EV {
    if args.len() < 2 || args.len() > 3 {
        return EV::ERR;
    }
    let a = eval_args(ev, args, cur);
    if a.iter().any(EV::is_undefined) {
        return EV::UNDEF;
    }
    let (Some(s), EV::S(Value::Int(off))) = (a[0].as_str(), &a[1]) else {
        return EV::ERR;
    };
    let len_arg = match a.get(2) {
        None => None,
        Some(EV::S(Value::Int(l))) => Some(*l),
        Some(_) => return EV::ERR,
    };
    let b = s.as_bytes();
    let alen = b.len() as i64;
    // HTCondor reads offset and length into C ints.
    let mut offset = i64::from(*off as i32);
    let len_arg = len_arg.map(|l| i64::from(l as i32));
    if offset < 0 {
        offset = (alen + offset).max(0);
    } else if offset >= alen {
        offset = alen;
    }
    let mut len = len_arg.unwrap_or(0);
    if len <= 0 {
        len = (alen - offset + len).max(0);
    } else if len > alen - offset {
        len = alen - offset;
    }
    if len_arg == Some(0) {
        len = 0;
    }
    let out = &b[offset as usize..(offset + len) as usize];
    EV::S(Value::from(String::from_utf8_lossy(out).into_owned()))
}

/// Convert an old-style (V1) environment string `A=1;B=2` to V2 `"A=1 B=2"`.
pub(crate) fn env_v1_to_v2(s: &str) -> Option<String> {
    let mut parts = Vec::new();
    for item in s.split(';') {
        if item.is_empty() {
            continue;
        }
        if !item.contains('=') {
            return None;
        }
        let quoted = if item.contains([' ', '\t', '\'', '"']) {
            format!("'{}'", item.replace('\'', "''"))
        } else {
            item.to_string()
        };
        parts.push(quoted);
    }
    Some(parts.join(" "))
}
