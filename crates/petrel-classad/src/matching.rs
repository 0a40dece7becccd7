//! Symmetric matchmaking: a job and a slot match when each one's
//! `Requirements` is `true` with `MY` being itself and `TARGET` the other.

use std::sync::LazyLock;

use crate::ast::{Expr, Name};
use crate::classad::ClassAd;
use crate::eval::{Evaluator, EV};
use crate::scope::Semantics;
use crate::value::Value;

static REQUIREMENTS: LazyLock<Name> = LazyLock::new(|| Name::new("Requirements"));

/// Evaluate `expr` as if it were an attribute of `my`, matched against `target`.
pub fn eval_with_target(expr: &Expr, my: &ClassAd, target: &ClassAd, sem: Semantics) -> Value {
    let (mut ev, cur) = Evaluator::new(Some(my), Some(target), sem);
    let v = ev.eval(expr, cur);
    ev.to_value(v)
}

/// Evaluate the attribute `name` of `my` against `target`.
pub fn eval_attr_with_target(name: &str, my: &ClassAd, target: &ClassAd, sem: Semantics) -> Value {
    let (mut ev, cur) = Evaluator::new(Some(my), Some(target), sem);
    let v = ev.eval_attr_of(cur, name);
    ev.to_value(v)
}

fn attr_is_true(name: &str, my: &ClassAd, target: &ClassAd, sem: Semantics) -> bool {
    let (mut ev, cur) = Evaluator::new(Some(my), Some(target), sem);
    matches!(ev.eval_attr_of(cur, name), EV::S(Value::Bool(true)))
}

/// `my.Requirements` is `true` against `target` (a missing Requirements is not).
pub fn requirements_met(my: &ClassAd, target: &ClassAd, sem: Semantics) -> bool {
    attr_is_true("Requirements", my, target, sem)
}

/// Symmetric match with HTCondor's daemon semantics ([`Semantics::Compat`]):
/// both ads' `Requirements` must evaluate to `true`.
pub fn matches(job: &ClassAd, slot: &ClassAd) -> bool {
    matches_with(job, slot, Semantics::Compat)
}

/// Symmetric match with chosen semantics. Both `Requirements` are evaluated
/// in one match context, as HTCondor's `symmetricMatch` does.
pub fn matches_with(job: &ClassAd, slot: &ClassAd, sem: Semantics) -> bool {
    let (mut ev, left) = Evaluator::new(Some(job), Some(slot), sem);
    if !matches!(
        ev.eval_name_of(left, &REQUIREMENTS),
        EV::S(Value::Bool(true))
    ) {
        return false;
    }
    let right = ev.right_scope();
    matches!(
        ev.eval_name_of(right, &REQUIREMENTS),
        EV::S(Value::Bool(true))
    )
}

/// `my.Rank` against `target` as a number (0.0 when missing or not numeric).
pub fn rank(my: &ClassAd, target: &ClassAd) -> f64 {
    rank_with(my, target, Semantics::Compat)
}

/// [`rank`] with chosen semantics.
pub fn rank_with(my: &ClassAd, target: &ClassAd, sem: Semantics) -> f64 {
    match eval_attr_with_target("Rank", my, target, sem) {
        Value::Int(i) => i as f64,
        Value::Real(r) => r,
        Value::Bool(b) => f64::from(u8::from(b)),
        _ => 0.0,
    }
}

/// The slots (by index) that match `job`, in order.
pub fn matching_slots<'s>(
    job: &ClassAd,
    slots: impl IntoIterator<Item = &'s ClassAd>,
) -> Vec<usize> {
    slots
        .into_iter()
        .enumerate()
        .filter(|(_, s)| matches(job, s))
        .map(|(i, _)| i)
        .collect()
}
