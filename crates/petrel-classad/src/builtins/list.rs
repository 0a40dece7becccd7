//! List functions (size, sum, avg, min, max, member, identicalMember,
//! anyCompare, allCompare) and the string-list family (`"a, b c"` lists).

use super::string::{exceptional_or_err, split_list};
use super::{eval_args, strtod};
use crate::ast::{BinaryOp, Expr};
use crate::eval::{Evaluator, EV};
use crate::ops;
use crate::value::Value;

pub(crate) fn call(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    match n {
        "size" => {
            if args.len() != 1 {
                return EV::ERR;
            }
            match ev.eval(&args[0], cur) {
                EV::S(Value::Undefined) => EV::UNDEF,
                EV::List(l, _) => EV::S(Value::Int(l.len() as i64)),
                EV::Ad(id) => EV::S(Value::Int(ev.ad_of(id).map_or(0, |a| a.get().len()) as i64)),
                EV::S(Value::String(s)) => EV::S(Value::Int(s.len() as i64)),
                _ => EV::ERR,
            }
        }
        "sum" | "avg" | "min" | "max" => aggregate(ev, n, args, cur),
        "member" | "identicalmember" => member(ev, n == "identicalmember", args, cur),
        "anycompare" | "allcompare" => compare_all(ev, n == "allcompare", args, cur),
        _ => string_list(ev, n, args, cur),
    }
}

fn is_number(v: &EV) -> bool {
    matches!(v, EV::S(Value::Int(_) | Value::Real(_) | Value::Bool(_)))
}

fn aggregate(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    if args.len() != 1 {
        return EV::ERR;
    }
    let (items, scope) = match ev.eval(&args[0], cur) {
        EV::S(Value::Undefined) => return EV::UNDEF,
        EV::List(l, s) => (l, s),
        _ => return EV::ERR,
    };
    let mut result: Option<EV> = None;
    let mut len = 0i64;
    for e in items.iter() {
        let v = ev.eval(e, scope);
        if v.is_undefined() {
            continue;
        }
        if !is_number(&v) {
            return EV::ERR;
        }
        len += 1;
        result = Some(match result {
            None => v,
            Some(r) => match n {
                "sum" | "avg" => ops::binary(BinaryOp::Add, r, v),
                _ => {
                    let op = if n == "min" {
                        BinaryOp::Lt
                    } else {
                        BinaryOp::Gt
                    };
                    let (v, r) = ops::promote_pair(&v, &r);
                    if ops::binary(op, v.clone(), r.clone()).bool_equiv() == Some(true) {
                        v
                    } else {
                        r
                    }
                }
            },
        });
    }
    match n {
        "sum" => result.unwrap_or(EV::S(Value::Int(0))),
        "avg" => match result {
            Some(r) => ops::binary(BinaryOp::Div, r, EV::S(Value::Real(len as f64))),
            None => EV::S(Value::Int(0)),
        },
        _ => result.unwrap_or(EV::UNDEF),
    }
}

fn member(ev: &mut Evaluator<'_>, identical: bool, args: &[Expr], cur: usize) -> EV {
    if args.len() != 2 {
        return EV::ERR;
    }
    let a = eval_args(ev, args, cur);
    if a[1].is_undefined() || (!identical && a[0].is_undefined()) {
        return EV::UNDEF;
    }
    let EV::List(items, scope) = &a[1] else {
        return EV::ERR;
    };
    if matches!(a[0], EV::List(..) | EV::Ad(_)) {
        return EV::ERR;
    }
    if !identical && a[0].is_error() {
        return EV::ERR;
    }
    for e in items.iter() {
        let v = ev.eval(e, *scope);
        let r = if identical {
            ops::binary(BinaryOp::Is, v, a[0].clone())
        } else {
            ops::binary(BinaryOp::Eq, v, a[0].clone())
        };
        if r.scalar() == Some(&Value::Bool(true)) {
            return r;
        }
    }
    EV::S(Value::Bool(false))
}

fn compare_all(ev: &mut Evaluator<'_>, all: bool, args: &[Expr], cur: usize) -> EV {
    if args.len() != 3 {
        return EV::ERR;
    }
    let opv = ev.eval(&args[0], cur);
    let op_s = match &opv {
        EV::S(Value::Undefined) => return EV::UNDEF,
        EV::S(Value::String(s)) => s.clone(),
        _ => return EV::ERR,
    };
    let op = match &*op_s {
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::Le,
        "!=" => BinaryOp::Ne,
        "==" => BinaryOp::Eq,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::Ge,
        "is" => BinaryOp::Is,
        "isnt" => BinaryOp::Isnt,
        _ => return EV::ERR,
    };
    let (items, scope) = match ev.eval(&args[1], cur) {
        EV::S(Value::Undefined) => return EV::UNDEF,
        EV::List(l, s) => (l, s),
        _ => return EV::ERR,
    };
    let target = ev.eval(&args[2], cur);
    for e in items.iter() {
        let v = ev.eval(e, scope);
        let r = ops::binary(op, v, target.clone());
        match r {
            EV::S(Value::Bool(b)) => {
                if b && !all {
                    return EV::S(Value::Bool(true));
                }
                if !b && all {
                    return EV::S(Value::Bool(false));
                }
            }
            EV::S(Value::Undefined) => {
                if all {
                    return EV::S(Value::Bool(false));
                }
                return EV::S(Value::Bool(false));
            }
            _ => return EV::ERR,
        }
    }
    EV::S(Value::Bool(all))
}

/// Evaluate string arguments for the string-list family; `Err` is the result
/// to return (UNDEFINED or ERROR).
fn string_args(
    ev: &mut Evaluator<'_>,
    args: &[Expr],
    cur: usize,
    min: usize,
    max: usize,
) -> Result<Vec<String>, EV> {
    if args.len() < min || args.len() > max {
        return Err(EV::ERR);
    }
    let vals = eval_args(ev, args, cur);
    let mut out = Vec::with_capacity(vals.len());
    for v in &vals {
        match v.as_str() {
            Some(s) => out.push(s.to_string()),
            None => return Err(exceptional_or_err(v)),
        }
    }
    Ok(out)
}

fn string_list(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    let delims_at = |a: &Vec<String>, i: usize| a.get(i).cloned();
    match n {
        "stringlistsize" => match string_args(ev, args, cur, 1, 2) {
            Ok(a) => EV::S(Value::Int(
                split_list(&a[0], delims_at(&a, 1).as_deref()).len() as i64,
            )),
            Err(e) => e,
        },
        "stringlistsum" | "stringlistavg" | "stringlistmin" | "stringlistmax" => {
            let a = match string_args(ev, args, cur, 1, 2) {
                Ok(a) => a,
                Err(e) => return e,
            };
            let items = split_list(&a[0], delims_at(&a, 1).as_deref());
            let mut nums = Vec::with_capacity(items.len());
            let mut all_int = true;
            for it in &items {
                match strtod(it) {
                    Some(r) => {
                        if it.contains(['.', 'e', 'E']) || r.fract() != 0.0 {
                            all_int = false;
                        }
                        nums.push(r);
                    }
                    None => return EV::ERR,
                }
            }
            let num = |r: f64| {
                if all_int {
                    EV::S(Value::Int(r as i64))
                } else {
                    EV::S(Value::Real(r))
                }
            };
            match n {
                "stringlistsum" => num(nums.iter().sum()),
                "stringlistavg" => {
                    if nums.is_empty() {
                        EV::S(Value::Real(0.0))
                    } else {
                        EV::S(Value::Real(nums.iter().sum::<f64>() / nums.len() as f64))
                    }
                }
                "stringlistmin" => nums.iter().copied().reduce(f64::min).map_or(EV::UNDEF, num),
                _ => nums.iter().copied().reduce(f64::max).map_or(EV::UNDEF, num),
            }
        }
        "stringlistmember" | "stringlistimember" => match string_args(ev, args, cur, 2, 3) {
            Ok(a) => {
                let items = split_list(&a[1], delims_at(&a, 2).as_deref());
                let hit = if n == "stringlistmember" {
                    items.iter().any(|x| *x == a[0])
                } else {
                    items.iter().any(|x| x.eq_ignore_ascii_case(&a[0]))
                };
                EV::S(Value::Bool(hit))
            }
            Err(e) => e,
        },
        "stringlistsintersect" | "stringlistsubsetmatch" | "stringlistisubsetmatch" => {
            match string_args(ev, args, cur, 2, 3) {
                Ok(a) => {
                    let d = delims_at(&a, 2);
                    let l1 = split_list(&a[0], d.as_deref());
                    let l2 = split_list(&a[1], d.as_deref());
                    let r = match n {
                        "stringlistsintersect" => l1.iter().any(|x| l2.contains(x)),
                        "stringlistsubsetmatch" => l1.iter().all(|x| l2.contains(x)),
                        _ => l1
                            .iter()
                            .all(|x| l2.iter().any(|y| y.eq_ignore_ascii_case(x))),
                    };
                    EV::S(Value::Bool(r))
                }
                Err(e) => e,
            }
        }
        _ => EV::ERR,
    }
}
