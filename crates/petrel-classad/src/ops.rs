//! Operator semantics: comparison, arithmetic, logic and bit operations,
//! with HTCondor's UNDEFINED/ERROR rules and numeric promotion.

use crate::ast::{BinaryOp, UnaryOp};
use crate::eval::EV;
use crate::value::{AbsTime, Value};

/// For strict operators: ERROR if either operand is ERROR, else UNDEFINED if
/// either is UNDEFINED (left operand checked first).
pub(crate) fn strict_check(a: &EV, b: &EV) -> Option<EV> {
    if a.is_error() || b.is_error() {
        return Some(EV::ERR);
    }
    if a.is_undefined() || b.is_undefined() {
        return Some(EV::UNDEF);
    }
    None
}

pub(crate) fn unary(op: UnaryOp, v: EV) -> EV {
    match op {
        UnaryOp::Plus => match v {
            EV::S(
                Value::Undefined
                | Value::Error
                | Value::Int(_)
                | Value::Real(_)
                | Value::RelTime(_),
            ) => v,
            _ => EV::ERR,
        },
        _ if v.is_exceptional() => v,
        UnaryOp::Minus => match v {
            EV::S(Value::Int(i)) => EV::S(Value::Int(i.wrapping_neg())),
            EV::S(Value::Real(r)) => EV::S(Value::Real(-r)),
            EV::S(Value::RelTime(r)) => EV::S(Value::RelTime(-r)),
            _ => EV::ERR,
        },
        UnaryOp::Not => match v.bool_equiv() {
            Some(b) => EV::S(Value::Bool(!b)),
            None => EV::ERR,
        },
        UnaryOp::BitNot => match v {
            EV::S(Value::Int(i)) => EV::S(Value::Int(!i)),
            _ => EV::ERR,
        },
    }
}

/// `&&` and `||` once both sides are known (the left side has not
/// short-circuited).
pub(crate) fn logical(op: BinaryOp, a: EV, b: EV) -> EV {
    let norm = |v: EV| -> EV {
        match v.bool_equiv() {
            Some(b) => EV::S(Value::Bool(b)),
            None => v,
        }
    };
    let (a, b) = (norm(a), norm(b));
    let ok = |v: &EV| matches!(v, EV::S(Value::Undefined | Value::Error | Value::Bool(_)));
    if !ok(&a) || !ok(&b) {
        return EV::ERR;
    }
    let ab = a.bool_equiv();
    let bb = b.bool_equiv();
    match op {
        BinaryOp::Or => match (ab, bb) {
            (Some(true), _) => EV::S(Value::Bool(true)),
            _ if a.is_error() => EV::ERR,
            (Some(false), _) => b,
            (None, None) => b,
            (None, Some(true)) => EV::S(Value::Bool(true)),
            (None, Some(false)) => EV::UNDEF,
        },
        _ => match (ab, bb) {
            (Some(false), _) => EV::S(Value::Bool(false)),
            _ if a.is_error() => EV::ERR,
            (Some(true), _) => b,
            (None, None) => b,
            (None, Some(false)) => EV::S(Value::Bool(false)),
            (None, Some(true)) => EV::UNDEF,
        },
    }
}

/// Every other binary operator (not `&&`, `||`, `?:`, subscript).
pub(crate) fn binary(op: BinaryOp, a: EV, b: EV) -> EV {
    use BinaryOp::*;
    // Fast path: integer comparisons dominate matchmaking.
    if let (EV::S(Value::Int(x)), EV::S(Value::Int(y))) = (&a, &b) {
        if matches!(op, Lt | Le | Eq | Ne | Ge | Gt | Is | Isnt) {
            let r = match op {
                Is => x == y,
                Isnt => x != y,
                _ => cmp_result(op, x, y),
            };
            return EV::S(Value::Bool(r));
        }
    }
    match op {
        Is | Isnt => {
            let r = meta_equal(&a, &b);
            match r {
                Some(eq) => EV::S(Value::Bool(if op == Is { eq } else { !eq })),
                None => EV::ERR,
            }
        }
        _ => {
            if let Some(x) = strict_check(&a, &b) {
                return x;
            }
            match op {
                Lt | Le | Eq | Ne | Ge | Gt => compare(op, &a, &b),
                Add | Sub | Mul | Div | Mod => arith(op, &a, &b),
                BitAnd | BitOr | BitXor | Shl | Shr | Ushr => bitwise(op, &a, &b),
                _ => EV::ERR,
            }
        }
    }
}

/// `=?=`: same type and same value (strings case-sensitively). `None` means ERROR.
pub(crate) fn meta_equal(a: &EV, b: &EV) -> Option<bool> {
    let (va, vb) = match (a, b) {
        (EV::S(x), EV::S(y)) => (x, y),
        (EV::List(..), EV::List(..)) | (EV::Ad(_), EV::Ad(_)) => return None,
        _ => return Some(false),
    };
    Some(match (va, vb) {
        (Value::Undefined, Value::Undefined) | (Value::Error, Value::Error) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Real(x), Value::Real(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::AbsTime(x), Value::AbsTime(y)) => x.secs == y.secs && x.offset == y.offset,
        (Value::RelTime(x), Value::RelTime(y)) => x == y,
        _ => false,
    })
}

/// HTCondor's comparison helper promotes its operands in place (booleans to
/// integers, an integer beside a real to a real); functions built on it,
/// such as `min` and `max`, expose that. Returns the promoted pair.
pub(crate) fn promote_pair(a: &EV, b: &EV) -> (EV, EV) {
    let (EV::S(va), EV::S(vb)) = (a, b) else {
        return (a.clone(), b.clone());
    };
    let num = |v: &Value| matches!(v, Value::Int(_) | Value::Real(_) | Value::Bool(_));
    if !num(va) || !num(vb) {
        return (a.clone(), b.clone());
    }
    match promote(va, vb) {
        Some(Num::I(x, y)) => (EV::S(Value::Int(x)), EV::S(Value::Int(y))),
        Some(Num::R(x, y)) => (EV::S(Value::Real(x)), EV::S(Value::Real(y))),
        None => (a.clone(), b.clone()),
    }
}

/// The numeric view of a scalar after HTCondor's promotion.
enum Num {
    I(i64, i64),
    R(f64, f64),
}

fn promote(a: &Value, b: &Value) -> Option<Num> {
    let ai = match a {
        Value::Int(i) => Some(*i),
        Value::Bool(x) => Some(i64::from(*x)),
        _ => None,
    };
    let bi = match b {
        Value::Int(i) => Some(*i),
        Value::Bool(x) => Some(i64::from(*x)),
        _ => None,
    };
    match (ai, bi) {
        (Some(x), Some(y)) => Some(Num::I(x, y)),
        _ => {
            let ar = ai.map(|i| i as f64).or(match a {
                Value::Real(r) => Some(*r),
                _ => None,
            })?;
            let br = bi.map(|i| i as f64).or(match b {
                Value::Real(r) => Some(*r),
                _ => None,
            })?;
            Some(Num::R(ar, br))
        }
    }
}

fn cmp_result<T: PartialOrd>(op: BinaryOp, x: T, y: T) -> bool {
    use BinaryOp::*;
    match op {
        Lt => x < y,
        Le => x <= y,
        Eq => x == y,
        Ne => x != y,
        Ge => x >= y,
        Gt => x > y,
        _ => false,
    }
}

fn compare(op: BinaryOp, a: &EV, b: &EV) -> EV {
    let (EV::S(va), EV::S(vb)) = (a, b) else {
        return EV::ERR;
    };
    let r = match (va, vb) {
        (Value::String(x), Value::String(y)) => {
            let o = crate::builtins::string::cmp_ignore_case(x, y);
            cmp_result(op, o, std::cmp::Ordering::Equal)
        }
        (Value::String(_), _) | (_, Value::String(_)) => return EV::ERR,
        (Value::AbsTime(x), Value::AbsTime(y)) => cmp_result(op, x.secs, y.secs),
        (Value::AbsTime(_), _) | (_, Value::AbsTime(_)) => return EV::ERR,
        (Value::RelTime(x), Value::RelTime(y)) => cmp_result(op, *x, *y),
        (Value::RelTime(_), _) | (_, Value::RelTime(_)) => return EV::ERR,
        _ => match promote(va, vb) {
            Some(Num::I(x, y)) => cmp_result(op, x, y),
            Some(Num::R(x, y)) => cmp_result(op, x, y),
            None => return EV::ERR,
        },
    };
    EV::S(Value::Bool(r))
}

fn arith(op: BinaryOp, a: &EV, b: &EV) -> EV {
    use BinaryOp::*;
    let (EV::S(va), EV::S(vb)) = (a, b) else {
        return EV::ERR;
    };
    let numeric = |v: &Value| {
        matches!(
            v,
            Value::Int(_) | Value::Real(_) | Value::Bool(_) | Value::AbsTime(_) | Value::RelTime(_)
        )
    };
    if !numeric(va) || !numeric(vb) {
        return EV::ERR;
    }
    if matches!(va, Value::AbsTime(_) | Value::RelTime(_))
        || matches!(vb, Value::AbsTime(_) | Value::RelTime(_))
    {
        return time_arith(op, va, vb);
    }
    match promote(va, vb) {
        Some(Num::I(x, y)) => EV::S(match op {
            Add => Value::Int(x.wrapping_add(y)),
            Sub => Value::Int(x.wrapping_sub(y)),
            Mul => Value::Int(x.wrapping_mul(y)),
            Div if x == i64::MIN && y == -1 => Value::Int(i64::MAX),
            Div if y == 0 => Value::Error,
            Div => Value::Int(x / y),
            Mod if x == i64::MIN && y == -1 => Value::Int(0),
            Mod if y == 0 => Value::Error,
            Mod => Value::Int(x % y),
            _ => Value::Error,
        }),
        Some(Num::R(x, y)) => {
            let r = match op {
                Add => x + y,
                Sub => x - y,
                Mul => x * y,
                Div => x / y,
                _ => return EV::ERR,
            };
            if r == f64::INFINITY {
                EV::ERR
            } else {
                EV::S(Value::Real(r))
            }
        }
        None => EV::ERR,
    }
}

fn time_arith(op: BinaryOp, a: &Value, b: &Value) -> EV {
    use BinaryOp::*;
    let abs = |t: &AbsTime, delta: f64, sign: i64| {
        let d = i64::from(delta as i32);
        EV::S(Value::AbsTime(AbsTime {
            secs: t.secs.wrapping_add(sign * d),
            offset: t.offset,
        }))
    };
    match (op, a, b) {
        (Add, Value::AbsTime(t), Value::RelTime(r))
        | (Add, Value::RelTime(r), Value::AbsTime(t)) => abs(t, *r, 1),
        (Add, Value::RelTime(x), Value::RelTime(y)) => EV::S(Value::RelTime(x + y)),
        (Sub, Value::AbsTime(x), Value::AbsTime(y)) => {
            EV::S(Value::RelTime(x.secs.wrapping_sub(y.secs) as f64))
        }
        (Sub, Value::AbsTime(t), Value::RelTime(r)) => abs(t, *r, -1),
        (Sub, Value::RelTime(x), Value::RelTime(y)) => EV::S(Value::RelTime(x - y)),
        (Mul, Value::RelTime(r), Value::Int(n)) | (Mul, Value::Int(n), Value::RelTime(r)) => {
            EV::S(Value::RelTime(r * *n as f64))
        }
        (Div, Value::RelTime(r), Value::Int(n)) => EV::S(Value::RelTime(r / *n as f64)),
        (Mul, Value::RelTime(r), Value::Real(n)) | (Mul, Value::Real(n), Value::RelTime(r)) => {
            EV::S(Value::RelTime(r * n))
        }
        (Div, Value::RelTime(r), Value::Real(n)) => EV::S(Value::RelTime(r / n)),
        _ => EV::ERR,
    }
}

fn bitwise(op: BinaryOp, a: &EV, b: &EV) -> EV {
    use BinaryOp::*;
    let (EV::S(Value::Int(x)), EV::S(Value::Int(y))) = (a, b) else {
        return EV::ERR;
    };
    let (x, y) = (*x, *y);
    let sh = (y as u32) & 63;
    EV::S(Value::Int(match op {
        BitAnd => x & y,
        BitOr => x | y,
        BitXor => x ^ y,
        Shl => x.wrapping_shl(sh),
        Shr => {
            if x >= 0 {
                x >> sh
            } else if y <= 0 {
                x
            } else {
                x >> y.min(63)
            }
        }
        Ushr => {
            if x >= 0 {
                x >> sh
            } else {
                let v = (x >> 1) & i64::MAX;
                v >> ((y.wrapping_sub(1) as u32) & 63)
            }
        }
        _ => return EV::ERR,
    }))
}
