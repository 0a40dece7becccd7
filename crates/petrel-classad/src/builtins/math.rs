//! Numeric functions: floor, ceiling, round, pow, quantize, random.

use super::{eval_args, f64_to_i64, to_real};
use crate::ast::Expr;
use crate::eval::{Evaluator, EV};
use crate::value::Value;

pub(crate) fn call(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    match n {
        "floor" | "ceil" | "ceiling" | "round" => {
            if args.len() != 1 {
                return EV::ERR;
            }
            let v = ev.eval(&args[0], cur);
            if let EV::S(Value::Int(_)) = v {
                return v;
            }
            match to_real(&v) {
                Ok(r) => {
                    let x = match n {
                        "floor" => r.floor(),
                        "round" => r.round_ties_even(),
                        _ => r.ceil(),
                    };
                    EV::S(Value::Int(f64_to_i64(x)))
                }
                Err(_) => EV::ERR,
            }
        }
        "pow" => {
            if args.len() != 2 {
                return EV::ERR;
            }
            let a = eval_args(ev, args, cur);
            if let (EV::S(Value::Int(x)), EV::S(Value::Int(y))) = (&a[0], &a[1]) {
                if *y >= 0 {
                    return EV::S(Value::Int(f64_to_i64((*x as f64).powf(*y as f64) + 0.5)));
                }
            }
            match (to_real(&a[0]), to_real(&a[1])) {
                (Ok(x), Ok(y)) => EV::S(Value::Real(x.powf(y))),
                _ => EV::ERR,
            }
        }
        "quantize" => quantize(ev, args, cur),
        "random" => random(ev, args, cur),
        _ => EV::ERR,
    }
}

fn quantize(ev: &mut Evaluator<'_>, args: &[Expr], cur: usize) -> EV {
    if args.len() != 2 {
        return EV::ERR;
    }
    let a = eval_args(ev, args, cur);
    let Ok(rval) = to_real(&a[0]) else {
        return EV::ERR;
    };
    let mut base = a[1].clone();
    if let EV::List(items, scope) = &a[1] {
        let mut chosen: Option<EV> = None;
        let mut last = EV::S(Value::Real(0.0));
        for e in items.iter() {
            let b = ev.eval(e, *scope);
            match to_real(&b) {
                Ok(rb) => {
                    last = b.clone();
                    if rb >= rval {
                        chosen = Some(b);
                        break;
                    }
                }
                Err(_) => return EV::ERR,
            }
        }
        if let Some(c) = chosen {
            return c;
        }
        base = last;
    }
    let Ok(rbase) = to_real(&base) else {
        return EV::ERR;
    };
    if let EV::S(Value::Int(ibase)) = base {
        if ibase == 0 {
            return a[0].clone();
        }
        if let EV::S(Value::Int(ival)) = a[0] {
            return EV::S(Value::Int(
                ival.wrapping_add(ibase.wrapping_sub(1))
                    .wrapping_div(ibase)
                    .wrapping_mul(ibase),
            ));
        }
        return EV::S(Value::Real((rval / ibase as f64).ceil() * ibase as f64));
    }
    if (-1e-8..=1e-8).contains(&rbase) {
        a[0].clone()
    } else {
        EV::S(Value::Real((rval / rbase).ceil() * rbase))
    }
}

fn next_random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15);
            x = t | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

fn random(ev: &mut Evaluator<'_>, args: &[Expr], cur: usize) -> EV {
    let unit = (next_random() >> 11) as f64 / (1u64 << 53) as f64;
    match args.len() {
        0 => EV::S(Value::Real(unit)),
        1 => match ev.eval(&args[0], cur) {
            EV::S(Value::Int(i)) if i > 0 => EV::S(Value::Int((next_random() % i as u64) as i64)),
            EV::S(Value::Real(r)) => EV::S(Value::Real(unit * r)),
            _ => EV::ERR,
        },
        _ => EV::ERR,
    }
}
