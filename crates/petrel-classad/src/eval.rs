//! The evaluator: HTCondor's evaluation rules over the expression tree.
//!
//! Operator semantics live in `ops.rs`; scope rules in `scope.rs`;
//! functions in [`crate::builtins`].

use std::sync::Arc;

use smallvec::SmallVec;

use crate::ast::{BinaryOp, Expr, Name, ScopeName};
use crate::classad::ClassAd;
use crate::ops;
pub use crate::scope::Semantics;
use crate::scope::{is_name, H_AD, H_LEFT, H_MY, H_OTHER, H_RIGHT, H_TARGET};
use crate::scope::{special_name, AdRef, Scope, Side, Special};
use crate::value::Value;

/// Maximum nesting of operator, function and attribute evaluation (HTCondor: 400).
pub const MAX_EVAL_DEPTH: i32 = 400;
/// Maximum number of node evaluations in one top-level evaluation (HTCondor: 10,000,000).
pub const MAX_EVAL_STEPS: u64 = 10_000_000;

static EMPTY_AD: ClassAd = ClassAd::EMPTY;

/// An intermediate value: a scalar, or a list or ad *with its scope*.
#[derive(Debug, Clone)]
pub(crate) enum EV {
    /// A scalar value (never `Value::List` or `Value::Ad`).
    S(Value),
    /// A list and the scope its elements are evaluated in.
    List(Arc<Vec<Expr>>, usize),
    /// An ad in the scope arena.
    Ad(usize),
}

impl EV {
    pub(crate) const UNDEF: EV = EV::S(Value::Undefined);
    pub(crate) const ERR: EV = EV::S(Value::Error);

    pub(crate) fn is_undefined(&self) -> bool {
        matches!(self, EV::S(Value::Undefined))
    }
    pub(crate) fn is_error(&self) -> bool {
        matches!(self, EV::S(Value::Error))
    }
    pub(crate) fn is_exceptional(&self) -> bool {
        matches!(self, EV::S(Value::Undefined | Value::Error))
    }
    pub(crate) fn scalar(&self) -> Option<&Value> {
        match self {
            EV::S(v) => Some(v),
            _ => None,
        }
    }
    pub(crate) fn bool_equiv(&self) -> Option<bool> {
        self.scalar().and_then(Value::bool_equiv)
    }
    pub(crate) fn as_str(&self) -> Option<&str> {
        self.scalar().and_then(Value::as_str)
    }
}

impl From<Value> for EV {
    fn from(v: Value) -> EV {
        EV::S(v)
    }
}

enum Found<'a> {
    Expr(usize, AdRef<'a>, usize),
    Value(EV),
    Undef,
}

/// One evaluation: the scope arena and the guards.
pub(crate) struct Evaluator<'a> {
    /// Inline storage: matching never allocates for scopes.
    pub(crate) scopes: SmallVec<[Scope<'a>; 8]>,
    root: usize,
    left: usize,
    right: usize,
    /// Attributes being evaluated, as (expression, ad) addresses: a cycle
    /// re-enters the same attribute of the same ad. (Expression trees are
    /// shared between ads, so the expression alone is not enough.)
    stack: SmallVec<[(*const Expr, *const ClassAd); 8]>,
    depth: i32,
    steps: u64,
    /// True when evaluating without any ad (nested ads then have no parent).
    detached: bool,
    pub(crate) sem: Semantics,
}

impl<'a> Evaluator<'a> {
    /// Set up scopes; returns the evaluator and the scope of `my`.
    #[inline(always)]
    pub(crate) fn new(
        my: Option<&'a ClassAd>,
        target: Option<&'a ClassAd>,
        sem: Semantics,
    ) -> (Evaluator<'a>, usize) {
        let my_ad = my.unwrap_or(&EMPTY_AD);
        let mut ev = Evaluator {
            scopes: SmallVec::new(),
            root: 0,
            left: 0,
            right: 0,
            stack: SmallVec::new(),
            depth: MAX_EVAL_DEPTH,
            steps: MAX_EVAL_STEPS,
            detached: my.is_none(),
            sem,
        };
        match target {
            Some(t) if !std::ptr::eq(t, my_ad) => {
                let compat = sem == Semantics::Compat;
                ev.scopes.push(Scope::MatchRoot);
                ev.scopes.push(Scope::MatchCtx(Side::Left));
                ev.scopes.push(Scope::MatchCtx(Side::Right));
                ev.scopes.push(Scope::Ad {
                    ad: AdRef::Borrowed(my_ad),
                    parent: Some(1),
                    alternate: compat.then_some(4),
                });
                ev.scopes.push(Scope::Ad {
                    ad: AdRef::Borrowed(t),
                    parent: Some(2),
                    alternate: compat.then_some(3),
                });
                ev.left = 3;
                ev.right = 4;
                (ev, 3)
            }
            _ => {
                ev.scopes.push(Scope::Ad {
                    ad: AdRef::Borrowed(my_ad),
                    parent: None,
                    alternate: None,
                });
                (ev, 0)
            }
        }
    }

    pub(crate) fn push_ad(&mut self, ad: Arc<ClassAd>, parent: Option<usize>) -> usize {
        let parent = parent.map(|p| p as u32);
        self.scopes.push(Scope::Ad {
            ad: AdRef::Shared(ad),
            parent,
            alternate: None,
        });
        self.scopes.len() - 1
    }

    /// Convert an intermediate value into a public one.
    pub(crate) fn to_value(&self, v: EV) -> Value {
        match v {
            EV::S(s) => s,
            EV::List(l, _) => Value::List(l),
            EV::Ad(id) => match &self.scopes[id] {
                Scope::Ad { ad, .. } => Value::Ad(ad.to_arc()),
                Scope::MatchCtx(side) => Value::Ad(Arc::new(match_context_ad(*side))),
                Scope::MatchRoot => Value::Ad(Arc::new(ClassAd::new())),
            },
        }
    }

    /// The ad behind an `EV::Ad`, if it is a real ad.
    pub(crate) fn ad_of(&self, id: usize) -> Option<AdRef<'a>> {
        match &self.scopes[id] {
            Scope::Ad { ad, .. } => Some(ad.clone()),
            _ => None,
        }
    }

    fn enter(&mut self) -> bool {
        self.depth -= 1;
        self.depth >= 0
    }

    fn leave(&mut self) {
        self.depth += 1;
    }

    /// Evaluate `e` with `cur` as the current ad.
    pub(crate) fn eval(&mut self, e: &Expr, cur: usize) -> EV {
        if self.steps == 0 {
            return EV::ERR;
        }
        self.steps -= 1;
        match e {
            // HTCondor quirk: a relTime("...") literal evaluates to a real.
            Expr::Literal(Value::RelTime(r)) => EV::S(Value::Real(*r)),
            Expr::Literal(v) => EV::S(v.clone()),
            Expr::List(l) => EV::List(l.clone(), cur),
            Expr::Ad(a) => {
                let parent = if self.detached && cur == 0 {
                    None
                } else {
                    Some(cur)
                };
                EV::Ad(self.push_ad(a.clone(), parent))
            }
            Expr::Attr {
                scope,
                name,
                absolute,
            } => self.eval_attr_ref(scope.as_deref(), name, *absolute, cur),
            _ => {
                if !self.enter() {
                    self.leave();
                    return EV::ERR;
                }
                let r = self.eval_compound(e, cur);
                self.leave();
                r
            }
        }
    }

    #[inline(never)]
    fn eval_compound(&mut self, e: &Expr, cur: usize) -> EV {
        match e {
            Expr::Paren(x) => self.eval(x, cur),
            Expr::Unary(op, x) => {
                let v = self.eval(x, cur);
                ops::unary(*op, v)
            }
            Expr::Binary(op, a, b) => self.eval_binary(*op, a, b, cur),
            Expr::Ternary(c, a, b) => {
                let cv = self.eval(c, cur);
                match cv.bool_equiv() {
                    Some(true) => self.eval(a, cur),
                    Some(false) => self.eval(b, cur),
                    None if cv.is_exceptional() => cv,
                    None => {
                        // HTCondor evaluates both branches before giving up.
                        self.eval(a, cur);
                        self.eval(b, cur);
                        EV::ERR
                    }
                }
            }
            Expr::Call { name, args } => crate::builtins::call(self, name, args, cur),
            _ => self.eval(e, cur),
        }
    }

    fn eval_binary(&mut self, op: BinaryOp, a: &Expr, b: &Expr, cur: usize) -> EV {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let va = self.eval(a, cur);
                if va.is_error() {
                    return EV::ERR;
                }
                match (op, va.bool_equiv()) {
                    (BinaryOp::And, Some(false)) => return EV::S(Value::Bool(false)),
                    (BinaryOp::Or, Some(true)) => return EV::S(Value::Bool(true)),
                    _ => {}
                }
                let vb = self.eval(b, cur);
                // Both booleans: the left side did not short-circuit, so the
                // right side decides.
                if let (EV::S(Value::Bool(_)), EV::S(Value::Bool(_))) = (&va, &vb) {
                    return vb;
                }
                ops::logical(op, va, vb)
            }
            BinaryOp::Elvis => {
                let va = self.eval(a, cur);
                if va.is_undefined() {
                    self.eval(b, cur)
                } else {
                    va
                }
            }
            BinaryOp::Subscript => {
                let va = self.eval(a, cur);
                let vb = self.eval(b, cur);
                if let Some(x) = ops::strict_check(&va, &vb) {
                    return x;
                }
                self.subscript(va, vb)
            }
            _ => {
                let va = self.eval(a, cur);
                let vb = self.eval(b, cur);
                ops::binary(op, va, vb)
            }
        }
    }

    fn subscript(&mut self, container: EV, index: EV) -> EV {
        match (container, index) {
            (EV::Ad(id), EV::S(Value::String(s))) => {
                let Some(ad) = self.ad_of(id) else {
                    return EV::UNDEF;
                };
                match ad.get().position(&s) {
                    Some(i) => self.eval_found(id, &ad, i),
                    None => EV::UNDEF,
                }
            }
            (EV::List(l, scope), EV::S(Value::Int(i))) => {
                // HTCondor reads the index into a C int.
                let i = i64::from(i as i32);
                if i < 0 || i as usize >= l.len() {
                    return EV::ERR;
                }
                self.eval(&l[i as usize], scope)
            }
            _ => EV::ERR,
        }
    }

    fn eval_found(&mut self, scope: usize, ad: &AdRef<'a>, idx: usize) -> EV {
        let e = ad.get().expr_at(idx);
        if self.depth <= 0 {
            return EV::ERR;
        }
        // A literal cannot refer back to anything: skip cycle bookkeeping.
        match e {
            Expr::Literal(Value::RelTime(r)) => return EV::S(Value::Real(*r)),
            Expr::Literal(v) => return EV::S(v.clone()),
            _ => {}
        }
        let p = (e as *const Expr, ad.get() as *const ClassAd);
        if self.stack.contains(&p) {
            return EV::UNDEF;
        }
        self.stack.push(p);
        self.depth -= 1;
        let v = self.eval(e, scope);
        self.depth += 1;
        self.stack.pop();
        v
    }

    fn eval_attr_ref(
        &mut self,
        scope_expr: Option<&Expr>,
        name: &Name,
        absolute: bool,
        cur: usize,
    ) -> EV {
        let hash = name.hash_value();
        let fp = name.fingerprint();
        let name: &str = name;
        let start = if let Some(s) = scope_expr.and_then(|se| self.fast_scope(se, cur)) {
            s
        } else if let Some(se) = scope_expr {
            if self.depth <= 0 {
                return EV::ERR;
            }
            self.depth -= 1;
            let v = self.eval(se, cur);
            self.depth += 1;
            match v {
                EV::Ad(id) => id,
                EV::List(l, _) => return self.project(&l, name, hash, fp, cur),
                EV::S(Value::Undefined) => return EV::UNDEF,
                _ => return EV::ERR,
            }
        } else if absolute {
            self.root
        } else {
            cur
        };
        // Fast path: the attribute is in the starting ad itself.
        if let Scope::Ad { ad, .. } = &self.scopes[start] {
            if let Some(i) = ad.get().position_hashed(name, hash, fp) {
                let ad = ad.clone();
                return self.eval_found(start, &ad, i);
            }
        }
        let mut found = self.lookup_in_scope(name, hash, fp, start);
        if matches!(found, Found::Undef) && scope_expr.is_none() && !absolute {
            if let Scope::Ad {
                alternate: Some(alt),
                ..
            } = self.scopes[cur]
            {
                found = self.lookup_in_scope(name, hash, fp, alt as usize);
            }
        }
        match found {
            Found::Expr(scope, ad, idx) => self.eval_found(scope, &ad, idx),
            Found::Value(v) => v,
            Found::Undef => EV::UNDEF,
        }
    }

    /// Shortcut for `MY.x` / `TARGET.x` written in one of the two matched
    /// ads: the scope is known without searching, unless the ad has an
    /// attribute that could shadow the scope name.
    #[inline]
    fn fast_scope(&self, se: &Expr, cur: usize) -> Option<usize> {
        let Expr::Attr {
            scope: None,
            name,
            absolute: false,
        } = se
        else {
            return None;
        };
        if self.left == self.right || (cur != self.left && cur != self.right) {
            return None;
        }
        let Scope::Ad { ad, .. } = &self.scopes[cur] else {
            return None;
        };
        if ad.get().has_scope_names() {
            return None;
        }
        let other = if cur == self.left {
            self.right
        } else {
            self.left
        };
        match name.scope_name() {
            ScopeName::Other => Some(other),
            ScopeName::Mine => Some(cur),
            ScopeName::None => None,
        }
    }

    /// `{ad1, ad2}.name` is the list of each element's `name`.
    fn project(&mut self, list: &Arc<Vec<Expr>>, name: &str, hash: u64, fp: u64, cur: usize) -> EV {
        let mut out = Vec::with_capacity(list.len());
        for item in list.iter() {
            let v = self.eval(item, cur);
            let r = match v {
                EV::Ad(id) => match self.lookup_in_scope(name, hash, fp, id) {
                    Found::Expr(scope, ad, idx) => self.eval_found(scope, &ad, idx),
                    Found::Value(v) => v,
                    Found::Undef => EV::UNDEF,
                },
                EV::List(l, _) => self.project(&l, name, hash, fp, cur),
                EV::S(Value::Undefined) => EV::UNDEF,
                _ => EV::ERR,
            };
            out.push(Expr::from_value(self.to_value(r)));
        }
        EV::List(Arc::new(out), cur)
    }

    fn lookup_in_scope(&mut self, name: &str, hash: u64, fp: u64, start: usize) -> Found<'a> {
        let mut current = start;
        loop {
            match &self.scopes[current] {
                Scope::Ad { ad, parent, .. } => {
                    let ad = ad.clone();
                    let parent = parent.map(|p| p as usize);
                    if let Some(i) = ad.get().position_hashed(name, hash, fp) {
                        return Found::Expr(current, ad, i);
                    }
                    let superscope = if current == self.root { None } else { parent };
                    if let Some(sp) = special_name(name, hash, self.sem) {
                        return match sp {
                            Special::Root => Found::Value(EV::Ad(self.root)),
                            Special::Current => Found::Value(EV::Ad(current)),
                            Special::Parent => {
                                superscope.map_or(Found::Undef, |p| Found::Value(EV::Ad(p)))
                            }
                            Special::CurrentTime => {
                                Found::Value(EV::S(Value::Int(crate::builtins::time::now())))
                            }
                        };
                    }
                    match superscope {
                        Some(p) => current = p,
                        None => return Found::Undef,
                    }
                }
                Scope::MatchCtx(side) => {
                    let (me, other) = match side {
                        Side::Left => (self.left, self.right),
                        Side::Right => (self.right, self.left),
                    };
                    if is_name(name, hash, "target", H_TARGET)
                        || is_name(name, hash, "other", H_OTHER)
                    {
                        return Found::Value(EV::Ad(other));
                    }
                    if is_name(name, hash, "my", H_MY) || is_name(name, hash, "ad", H_AD) {
                        return Found::Value(EV::Ad(me));
                    }
                    current = self.root;
                }
                Scope::MatchRoot => {
                    if is_name(name, hash, "left", H_LEFT) {
                        return Found::Value(EV::Ad(self.left));
                    }
                    if is_name(name, hash, "right", H_RIGHT) {
                        return Found::Value(EV::Ad(self.right));
                    }
                    return Found::Undef;
                }
            }
        }
    }

    /// Reuse a match-context evaluator for another target ad (no
    /// reallocation or re-initialisation of the scope arena).
    pub(crate) fn retarget(&mut self, target: &'a ClassAd) {
        if self.left == self.right {
            return;
        }
        self.scopes.truncate(5);
        if let Scope::Ad { ad, .. } = &mut self.scopes[self.right] {
            *ad = AdRef::Borrowed(target);
        }
        self.stack.clear();
        self.depth = MAX_EVAL_DEPTH;
        self.steps = MAX_EVAL_STEPS;
    }

    /// The scope of the ad being matched against (`TARGET`).
    pub(crate) fn left_scope(&self) -> usize {
        self.left
    }

    /// The scope of the target ad in a match context.
    pub(crate) fn right_scope(&self) -> usize {
        self.right
    }

    /// [`Evaluator::eval_attr_of`] for a pre-hashed name.
    pub(crate) fn eval_name_of(&mut self, s: usize, name: &Name) -> EV {
        match self.ad_of(s) {
            Some(ad) => match ad
                .get()
                .position_hashed(name, name.hash_value(), name.fingerprint())
            {
                Some(i) => self.eval_found(s, &ad, i),
                None => EV::UNDEF,
            },
            None => EV::UNDEF,
        }
    }

    /// Evaluate a top-level attribute of the ad in scope `s`.
    pub(crate) fn eval_attr_of(&mut self, s: usize, name: &str) -> EV {
        match self.ad_of(s) {
            Some(ad) => match ad.get().position(name) {
                Some(i) => self.eval_found(s, &ad, i),
                None => EV::UNDEF,
            },
            None => EV::UNDEF,
        }
    }
}

/// The context ad HTCondor's `MatchClassAd` puts above each side.
fn match_context_ad(side: Side) -> ClassAd {
    let (me, other) = match side {
        Side::Left => ("LEFT", "RIGHT"),
        Side::Right => ("RIGHT", "LEFT"),
    };
    let abs = |n: &str| Expr::Attr {
        scope: None,
        name: Name::new(n),
        absolute: true,
    };
    let mut ad = ClassAd::new();
    ad.insert("other", abs(other));
    ad.insert("target", abs(other));
    ad.insert("my", abs(me));
    ad.insert("ad", abs(me));
    ad
}

/// Evaluate an expression. `my` is the ad it is evaluated in (if any);
/// `target` the other ad of a match (if any).
pub fn eval_in(
    expr: &Expr,
    my: Option<&ClassAd>,
    target: Option<&ClassAd>,
    sem: Semantics,
) -> Value {
    let (mut ev, cur) = Evaluator::new(my, target, sem);
    let v = ev.eval(expr, cur);
    ev.to_value(v)
}

/// Evaluate an expression that refers to no ad.
pub fn eval(expr: &Expr) -> Value {
    eval_in(expr, None, None, Semantics::Strict)
}

/// Evaluate one attribute of an ad.
pub fn eval_attr(ad: &ClassAd, name: &str) -> Value {
    let (mut ev, cur) = Evaluator::new(Some(ad), None, Semantics::Strict);
    let v = ev.eval_attr_of(cur, name);
    ev.to_value(v)
}
