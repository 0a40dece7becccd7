//! The ClassAd: a case-insensitive map from attribute names to expressions.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::ast::{name_fingerprint, name_hash, Expr};
use crate::value::Value;

/// One attribute: its name as first written, its hash, and its expression.
#[derive(Debug, Clone, PartialEq)]
struct Attr {
    name: Arc<str>,
    hash: u64,
    fingerprint: u64,
    /// Shared: identical expressions parsed from many ads are one tree
    /// (see [`crate::parser`]'s interning), and copying an ad is cheap.
    expr: Arc<Expr>,
}

/// A ClassAd: attributes looked up case-insensitively.
///
/// Attributes are kept sorted by (name length, lower-cased name), which is
/// the order HTCondor prints them in. Lookups go through a small
/// open-addressing table keyed by the case-insensitive name hash (which the
/// parser computes once per attribute reference), so evaluating
/// `TARGET.Memory` costs a probe or two and no allocation.
#[derive(Debug, Clone, Default)]
pub struct ClassAd {
    attrs: Vec<Attr>,
    /// (name hash, position in `attrs` or `EMPTY_SLOT`); length is zero or a
    /// power of two. Misses never touch `attrs`.
    table: Vec<(u64, u32)>,
    /// True if some attribute is named like a scope (`my`, `target`, ...),
    /// which disables the evaluator's `MY.`/`TARGET.` shortcut for this ad.
    scope_names: bool,
}

const EMPTY_SLOT: u32 = u32::MAX;

impl PartialEq for ClassAd {
    fn eq(&self, other: &ClassAd) -> bool {
        self.attrs == other.attrs
    }
}

/// Compare a stored name with a probe, case-insensitively, in (len, bytes) order.
fn cmp_name(stored: &str, probe: &str) -> Ordering {
    let (a, b) = (stored.as_bytes(), probe.as_bytes());
    match a.len().cmp(&b.len()) {
        Ordering::Equal => {}
        o => return o,
    }
    for (x, y) in a.iter().zip(b) {
        match x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

impl ClassAd {
    /// An empty ad, usable in `static`s.
    pub const EMPTY: ClassAd = ClassAd {
        attrs: Vec::new(),
        table: Vec::new(),
        scope_names: false,
    };

    /// An empty ad.
    pub fn new() -> ClassAd {
        ClassAd::default()
    }

    /// Parse an ad in new (`[a = 1; b = 2]`) or old (`a = 1` per line) syntax.
    pub fn parse(text: &str) -> crate::Result<ClassAd> {
        crate::parser::parse_classad_any(text)
    }

    fn index_of(&self, name: &str) -> Result<usize, usize> {
        self.attrs.binary_search_by(|a| cmp_name(&a.name, name))
    }

    /// True if an attribute could shadow a scope name.
    #[inline]
    pub(crate) fn has_scope_names(&self) -> bool {
        self.scope_names
    }

    fn rebuild_index(&mut self) {
        const SCOPE_NAMES: [&str; 11] = [
            "my",
            "target",
            "other",
            "ad",
            "left",
            "right",
            "parent",
            "self",
            "root",
            "toplevel",
            "currenttime",
        ];
        self.scope_names = self
            .attrs
            .iter()
            .any(|a| SCOPE_NAMES.iter().any(|n| a.name.eq_ignore_ascii_case(n)));
        let size = (self.attrs.len() * 2).next_power_of_two().max(8);
        let mask = size - 1;
        self.table.clear();
        self.table.resize(size, (0, EMPTY_SLOT));
        for (i, a) in self.attrs.iter().enumerate() {
            let mut slot = a.hash as usize & mask;
            while self.table[slot].1 != EMPTY_SLOT {
                slot = (slot + 1) & mask;
            }
            self.table[slot] = (a.hash, i as u32);
        }
    }

    /// Position of an attribute (for [`ClassAd::expr_at`]).
    ///
    /// A name given as text is compared as text on a hash hit: cheaper than computing
    /// its fingerprint, which pays off only for names parsed once and looked up often.
    #[inline]
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.probe(name_hash(name.as_bytes()), |a| {
            // Names are mostly spelled as they were first written: try that first.
            &*a.name == name || a.name.eq_ignore_ascii_case(name)
        })
    }

    /// [`ClassAd::position`] with the name's hash and fingerprint known.
    #[inline]
    pub(crate) fn position_hashed(&self, name: &str, hash: u64, fingerprint: u64) -> Option<usize> {
        self.probe(hash, |a| {
            a.fingerprint == fingerprint && a.name.len() == name.len()
        })
    }

    /// The attribute with this name hash that `is_it`.
    #[inline]
    fn probe(&self, hash: u64, is_it: impl Fn(&Attr) -> bool) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.table.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let (h, i) = self.table[slot];
            if i == EMPTY_SLOT {
                return None;
            }
            if h == hash && is_it(&self.attrs[i as usize]) {
                return Some(i as usize);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The expression at a position found by [`ClassAd::position`].
    pub(crate) fn expr_at(&self, i: usize) -> &Expr {
        &self.attrs[i].expr
    }

    /// Insert or replace an attribute. A replaced attribute keeps its
    /// original spelling, as in HTCondor.
    pub fn insert(&mut self, name: &str, expr: Expr) {
        self.insert_shared(name, Arc::new(expr));
    }

    /// [`ClassAd::insert`] of an expression tree shared with other ads.
    pub fn insert_shared(&mut self, name: &str, expr: Arc<Expr>) {
        // Replacing is the common case (a job's status, a proc made from another's ad):
        // the hash table finds the name faster than a case-folding binary search.
        if let Some(i) = self.position(name) {
            self.attrs[i].expr = expr;
            return;
        }
        match self.index_of(name) {
            Ok(i) => self.attrs[i].expr = expr,
            Err(i) => {
                let b = name.as_bytes();
                let attr = Attr {
                    name: Arc::from(name),
                    hash: name_hash(b),
                    fingerprint: name_fingerprint(b),
                    expr,
                };
                self.attrs.insert(i, attr);
                self.rebuild_index();
            }
        }
    }

    /// Insert a literal value.
    pub fn insert_value(&mut self, name: &str, value: impl Into<Value>) {
        self.insert(name, Expr::from_value(value.into()));
    }

    /// Parse `expr` and insert it.
    pub fn insert_expr_str(&mut self, name: &str, expr: &str) -> crate::Result<()> {
        let e = crate::parser::parse_expr(expr)?;
        self.insert(name, e);
        Ok(())
    }

    /// The expression bound to `name` (case-insensitive).
    pub fn lookup(&self, name: &str) -> Option<&Expr> {
        self.position(name).map(|i| &*self.attrs[i].expr)
    }

    /// True if the attribute exists.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Remove an attribute, returning its expression.
    pub fn remove(&mut self, name: &str) -> Option<Expr> {
        let i = self.position(name)?;
        let e = self.attrs.remove(i).expr;
        self.rebuild_index();
        Some(Arc::try_unwrap(e).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// Copy every attribute of `other` into this ad (replacing same names).
    pub fn update(&mut self, other: &ClassAd) {
        for a in &other.attrs {
            self.insert_shared(&a.name, a.expr.clone());
        }
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// True if there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// Attributes in HTCondor's print order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Expr)> {
        self.attrs.iter().map(|a| (&*a.name, &*a.expr))
    }

    /// Attribute names in HTCondor's print order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.attrs.iter().map(|a| &*a.name)
    }

    /// Evaluate an attribute of this ad (UNDEFINED if absent).
    pub fn eval_attr(&self, name: &str) -> Value {
        crate::eval::eval_attr(self, name)
    }

    /// Evaluate an expression with this ad as its scope.
    pub fn eval(&self, expr: &Expr) -> Value {
        crate::eval::eval_in(expr, Some(self), None, crate::eval::Semantics::Strict)
    }

    /// Evaluate an expression with this ad as `MY`, optionally against a
    /// `TARGET` ad, under the chosen [`crate::Semantics`] (use
    /// `Semantics::Compat` for HTCondor-tool behaviour such as `-constraint`).
    pub fn eval_with(
        &self,
        expr: &Expr,
        target: Option<&ClassAd>,
        sem: crate::eval::Semantics,
    ) -> Value {
        crate::eval::eval_in(expr, Some(self), target, sem)
    }

    /// Parse and evaluate an expression with this ad as its scope.
    pub fn eval_str(&self, expr: &str) -> crate::Result<Value> {
        Ok(self.eval(&crate::parser::parse_expr(expr)?))
    }

    /// Evaluate an attribute expecting an integer (reals are truncated).
    pub fn eval_int(&self, name: &str) -> Option<i64> {
        match self.eval_attr(name) {
            Value::Int(i) => Some(i),
            Value::Real(r) => Some(r as i64),
            Value::Bool(b) => Some(i64::from(b)),
            _ => None,
        }
    }

    /// Evaluate an attribute expecting a string.
    pub fn eval_string(&self, name: &str) -> Option<String> {
        match self.eval_attr(name) {
            Value::String(s) => Some(s.to_string()),
            _ => None,
        }
    }

    /// Evaluate an attribute expecting a boolean (numbers count, as in HTCondor).
    pub fn eval_bool(&self, name: &str) -> Option<bool> {
        self.eval_attr(name).bool_equiv()
    }

    /// New-syntax text: `[ a = 1; b = "x" ]`.
    pub fn to_new_syntax(&self) -> String {
        crate::unparse::unparse_ad(self)
    }

    /// Old-syntax text as `condor_q -long` prints it: one `name = expr` per line.
    pub fn to_old_syntax(&self) -> String {
        crate::unparse::unparse_ad_old(self)
    }

    /// HTCondor `-json` text for this ad (pretty-printed like HTCondor).
    pub fn to_json(&self) -> String {
        crate::json::ad_to_json(self, false)
    }
}

impl std::fmt::Display for ClassAd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_new_syntax())
    }
}

impl std::str::FromStr for ClassAd {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<ClassAd> {
        ClassAd::parse(s)
    }
}
