//! Built-in functions, dispatched by case-insensitive name.
//!
//! Each module implements a family; the conversions shared between them
//! (HTCondor's `convertValueTo*`) live here.

pub mod list;
pub mod math;
pub mod regex;
pub mod string;
pub mod time;

use crate::ast::Expr;
use crate::eval::{Evaluator, EV};
use crate::unparse;
use crate::value::Value;

/// Evaluate every argument.
pub(crate) fn eval_args(ev: &mut Evaluator<'_>, args: &[Expr], cur: usize) -> Vec<EV> {
    args.iter().map(|a| ev.eval(a, cur)).collect()
}

/// Call the function `name`.
pub(crate) fn call(ev: &mut Evaluator<'_>, name: &str, args: &[Expr], cur: usize) -> EV {
    let lower = name.to_ascii_lowercase();
    let n = lower.as_str();
    match n {
        "isundefined" | "iserror" | "isstring" | "isinteger" | "isreal" | "islist"
        | "isclassad" | "isboolean" | "isabstime" | "isreltime" => is_type(ev, n, args, cur),
        "ifthenelse" => if_then_else(ev, args, cur),
        "int" | "real" | "string" | "bool" => convert(ev, n, args, cur),
        "eval" => eval_fn(ev, args, cur),
        "unparse" => unparse_fn(ev, args, cur),
        "debug" => {
            if args.len() != 1 {
                return EV::ERR;
            }
            ev.eval(&args[0], cur)
        }
        "floor" | "ceil" | "ceiling" | "round" | "pow" | "quantize" | "random" => {
            math::call(ev, n, args, cur)
        }
        "strcat" | "join" | "toupper" | "tolower" | "substr" | "strcmp" | "stricmp" | "split"
        | "splitusername" | "splitslotname" | "envv1tov2" => string::call(ev, n, args, cur),
        "size"
        | "sum"
        | "avg"
        | "min"
        | "max"
        | "member"
        | "identicalmember"
        | "anycompare"
        | "allcompare"
        | "stringlistsize"
        | "stringlistsum"
        | "stringlistavg"
        | "stringlistmin"
        | "stringlistmax"
        | "stringlistmember"
        | "stringlistimember"
        | "stringlistsintersect"
        | "stringlistsubsetmatch"
        | "stringlistisubsetmatch" => list::call(ev, n, args, cur),
        "regexp"
        | "regexps"
        | "replace"
        | "replaceall"
        | "regexpmember"
        | "stringlistregexpmember" => regex::call(ev, n, args, cur),
        "time" | "currenttime" | "timezoneoffset" | "daytime" | "formattime" | "interval"
        | "abstime" | "reltime" | "getyear" | "getmonth" | "getdayofyear" | "getdayofmonth"
        | "getdayofweek" | "getdays" | "gethours" | "getminutes" | "getseconds" | "splittime" => {
            time::call(ev, n, args, cur)
        }
        _ => EV::ERR,
    }
}

fn is_type(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    if args.len() != 1 {
        return EV::ERR;
    }
    let v = ev.eval(&args[0], cur);
    let b = matches!(
        (n, &v),
        ("isundefined", EV::S(Value::Undefined))
            | ("iserror", EV::S(Value::Error))
            | ("isstring", EV::S(Value::String(_)))
            | ("isinteger", EV::S(Value::Int(_)))
            | ("isreal", EV::S(Value::Real(_)))
            | ("isboolean", EV::S(Value::Bool(_)))
            | ("isabstime", EV::S(Value::AbsTime(_)))
            | ("isreltime", EV::S(Value::RelTime(_)))
            | ("islist", EV::List(..))
            | ("isclassad", EV::Ad(_))
    );
    EV::S(Value::Bool(b))
}

fn if_then_else(ev: &mut Evaluator<'_>, args: &[Expr], cur: usize) -> EV {
    if args.len() != 3 {
        return EV::ERR;
    }
    let c = ev.eval(&args[0], cur);
    match c {
        EV::S(Value::Undefined) => EV::UNDEF,
        EV::S(Value::Bool(b)) => ev.eval(&args[if b { 1 } else { 2 }], cur),
        EV::S(Value::Int(i)) => ev.eval(&args[if i != 0 { 1 } else { 2 }], cur),
        EV::S(Value::Real(r)) => ev.eval(&args[if r != 0.0 { 1 } else { 2 }], cur),
        _ => EV::ERR,
    }
}

/// C's `(long long)` cast of a double on x86-64: NaN and out-of-range
/// values become `i64::MIN` (Rust's `as` would saturate instead).
pub(crate) fn f64_to_i64(x: f64) -> i64 {
    // 2^63 is exactly representable; [-2^63, 2^63) converts.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() || !(-LIMIT..LIMIT).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

/// C's `strtod` on a prefix: `None` when no number starts the string.
pub(crate) fn strtod(s: &str) -> Option<f64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let rest = &t[i..];
    for word in ["infinity", "inf", "nan"] {
        if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word) {
            let v = if word == "nan" {
                f64::NAN
            } else {
                f64::INFINITY
            };
            return Some(if b.first() == Some(&b'-') { -v } else { v });
        }
    }
    let start_digits = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut any = i > start_digits;
    if i < b.len() && b[i] == b'.' {
        let j = i + 1;
        let mut k = j;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        if k > j || any {
            any = any || k > j;
            i = k;
        }
    }
    if !any {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut k = i + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        let ds = k;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        if k > ds {
            i = k;
        }
    }
    t[..i].parse::<f64>().ok()
}

/// HTCondor's `convertValueToStringValue`.
pub(crate) fn to_string_ev(ev: &Evaluator<'_>, v: &EV) -> EV {
    match v {
        EV::S(Value::Undefined) => EV::UNDEF,
        EV::S(Value::Error) => EV::ERR,
        EV::S(Value::String(_)) => v.clone(),
        EV::S(Value::AbsTime(a)) => EV::S(Value::from(crate::timefmt::abs_to_string(*a))),
        EV::S(Value::RelTime(r)) => EV::S(Value::from(crate::timefmt::rel_to_string(r.trunc()))),
        other => EV::S(Value::from(unparse::unparse_value(
            &ev.to_value(other.clone()),
        ))),
    }
}

/// The string form of a value, or the UNDEFINED/ERROR it converts to.
pub(crate) fn string_of(ev: &Evaluator<'_>, v: &EV) -> Result<String, EV> {
    match to_string_ev(ev, v) {
        EV::S(Value::String(s)) => Ok(s.to_string()),
        other => Err(other),
    }
}

/// HTCondor's `convertValueToRealValue`.
pub(crate) fn to_real(v: &EV) -> Result<f64, EV> {
    match v {
        EV::S(Value::Undefined) => Err(EV::UNDEF),
        EV::S(Value::String(s)) => strtod(s).ok_or(EV::ERR),
        EV::S(Value::Bool(b)) => Ok(f64::from(u8::from(*b))),
        EV::S(Value::Int(i)) => Ok(*i as f64),
        EV::S(Value::Real(r)) => Ok(*r),
        EV::S(Value::AbsTime(a)) => Ok(a.secs as f64),
        EV::S(Value::RelTime(r)) => Ok(r.trunc()),
        _ => Err(EV::ERR),
    }
}

/// HTCondor's `convertValueToIntegerValue`.
pub(crate) fn to_int(v: &EV) -> Result<i64, EV> {
    match v {
        EV::S(Value::Undefined) => Err(EV::UNDEF),
        EV::S(Value::String(s)) => strtod(s).map(f64_to_i64).ok_or(EV::ERR),
        EV::S(Value::Bool(b)) => Ok(i64::from(*b)),
        EV::S(Value::Int(i)) => Ok(*i),
        EV::S(Value::Real(r)) => Ok(f64_to_i64(*r)),
        EV::S(Value::AbsTime(a)) => Ok(a.secs),
        EV::S(Value::RelTime(r)) => Ok(f64_to_i64(*r)),
        _ => Err(EV::ERR),
    }
}

fn convert(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    if args.len() != 1 {
        return EV::ERR;
    }
    let v = ev.eval(&args[0], cur);
    match n {
        "int" => to_int(&v).map_or_else(|e| e, |i| EV::S(Value::Int(i))),
        "real" => to_real(&v).map_or_else(|e| e, |r| EV::S(Value::Real(r))),
        "string" => to_string_ev(ev, &v),
        _ => match &v {
            EV::S(Value::Int(i)) => EV::S(Value::Bool(*i != 0)),
            EV::S(Value::Real(r)) => EV::S(Value::Bool(*r != 0.0)),
            EV::S(Value::RelTime(r)) => EV::S(Value::Bool(*r as i64 != 0)),
            EV::S(Value::String(s)) => {
                if s.eq_ignore_ascii_case("true") {
                    EV::S(Value::Bool(true))
                } else if s.eq_ignore_ascii_case("false") {
                    EV::S(Value::Bool(false))
                } else {
                    EV::UNDEF
                }
            }
            EV::S(Value::Undefined) => EV::UNDEF,
            EV::S(Value::Bool(_)) => v.clone(),
            _ => EV::ERR,
        },
    }
}

/// `eval(s)`: parse the string and evaluate it in the current scope.
fn eval_fn(ev: &mut Evaluator<'_>, args: &[Expr], cur: usize) -> EV {
    if args.len() != 1 {
        return EV::ERR;
    }
    let v = ev.eval(&args[0], cur);
    let s = match string_of(ev, &v) {
        Ok(s) => s,
        Err(_) => return EV::ERR,
    };
    match crate::parser::parse_expr(&s) {
        Ok(e) => ev.eval(&e, cur),
        Err(_) => EV::ERR,
    }
}

/// `unparse(attr)`: the text of the referenced attribute's expression.
fn unparse_fn(ev: &mut Evaluator<'_>, args: &[Expr], cur: usize) -> EV {
    if args.len() != 1 {
        return EV::ERR;
    }
    let Expr::Attr { .. } = &args[0] else {
        return EV::ERR;
    };
    let key = unparse::unparse(&args[0]);
    let text = ev
        .ad_of(cur)
        .and_then(|ad| ad.get().lookup(&key).map(unparse::unparse))
        .unwrap_or_default();
    EV::S(Value::from(text))
}
