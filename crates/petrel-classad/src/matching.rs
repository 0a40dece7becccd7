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
    let (mut ev, _) = Evaluator::new(Some(job), Some(slot), sem);
    both_requirements(&mut ev)
}

fn both_requirements(ev: &mut Evaluator<'_>) -> bool {
    let (left, right) = (ev.left_scope(), ev.right_scope());
    matches!(
        ev.eval_name_of(left, &REQUIREMENTS),
        EV::S(Value::Bool(true))
    ) && matches!(
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

/// A stand-in target, distinct (by address) from every real ad.
static PLACEHOLDER: ClassAd = ClassAd::EMPTY;

/// Slots per block in [`match_all`]: a block's hot lines fit in L2 cache.
const SLOT_BLOCK: usize = 128;

/// Every symmetric match between `jobs` and `slots` ([`Semantics::Compat`]):
/// for each job, the indices of the slots it matches, in slot order.
///
/// The work is split over `threads` threads (at least one), and slots are
/// visited in cache-sized blocks so that a pool of thousands of slots does
/// not stream through memory once per job.
pub fn match_all(jobs: &[ClassAd], slots: &[ClassAd], threads: usize) -> Vec<Vec<usize>> {
    match_all_with(jobs, slots, threads, Semantics::Compat)
}

/// [`match_all`] with chosen semantics.
pub fn match_all_with(
    jobs: &[ClassAd],
    slots: &[ClassAd],
    threads: usize,
    sem: Semantics,
) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    if jobs.is_empty() || slots.is_empty() {
        return out;
    }
    let chunk = jobs.len().div_ceil(threads.max(1));
    std::thread::scope(|s| {
        for (job_part, out_part) in jobs.chunks(chunk).zip(out.chunks_mut(chunk)) {
            s.spawn(move || {
                for (b, block) in slots.chunks(SLOT_BLOCK).enumerate() {
                    let base = b * SLOT_BLOCK;
                    for (job, found) in job_part.iter().zip(out_part.iter_mut()) {
                        // One evaluator per job and block, retargeted per slot.
                        let (mut ev, _) = Evaluator::new(Some(job), Some(&PLACEHOLDER), sem);
                        for (k, slot) in block.iter().enumerate() {
                            let hit = if std::ptr::eq(job, slot) {
                                matches_with(job, slot, sem)
                            } else {
                                ev.retarget(slot);
                                both_requirements(&mut ev)
                            };
                            if hit {
                                found.push(base + k);
                            }
                        }
                    }
                }
            });
        }
    });
    out
}
