//! The ClassAd: a case-insensitive map from attribute names to expressions.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::ast::Expr;
use crate::value::Value;

/// One attribute: its name as first written, and its expression.
#[derive(Debug, Clone, PartialEq)]
struct Attr {
    name: Arc<str>,
    expr: Expr,
}

/// A ClassAd: attributes looked up case-insensitively.
///
/// Attributes are kept sorted by (name length, lower-cased name), which is
/// the order HTCondor prints them in, and lets lookups binary-search without
/// allocating or hashing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassAd {
    attrs: Vec<Attr>,
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
    pub const EMPTY: ClassAd = ClassAd { attrs: Vec::new() };

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

    /// Position of an attribute (for [`ClassAd::expr_at`]).
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.index_of(name).ok()
    }

    /// The expression at a position found by [`ClassAd::position`].
    pub(crate) fn expr_at(&self, i: usize) -> &Expr {
        &self.attrs[i].expr
    }

    /// Insert or replace an attribute. A replaced attribute keeps its
    /// original spelling, as in HTCondor.
    pub fn insert(&mut self, name: &str, expr: Expr) {
        match self.index_of(name) {
            Ok(i) => self.attrs[i].expr = expr,
            Err(i) => self.attrs.insert(i, Attr { name: Arc::from(name), expr }),
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
        self.index_of(name).ok().map(|i| &self.attrs[i].expr)
    }

    /// True if the attribute exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index_of(name).is_ok()
    }

    /// Remove an attribute, returning its expression.
    pub fn remove(&mut self, name: &str) -> Option<Expr> {
        self.index_of(name).ok().map(|i| self.attrs.remove(i).expr)
    }

    /// Copy every attribute of `other` into this ad (replacing same names).
    pub fn update(&mut self, other: &ClassAd) {
        for a in &other.attrs {
            self.insert(&a.name, a.expr.clone());
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
        self.attrs.iter().map(|a| (&*a.name, &a.expr))
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
