//! ClassAd values.

use std::sync::Arc;

use crate::ast::Expr;
use crate::classad::ClassAd;

/// An absolute time: seconds since the Unix epoch (UTC) and the timezone
/// offset (seconds east of UTC) it is displayed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Display offset in seconds east of UTC.
    pub offset: i32,
}

/// The result of evaluating an expression.
///
/// Lists hold their element *expressions* (as HTCondor does: `{1, a}` evaluates
/// to a list whose second element is still the reference `a`); nested ads are
/// shared, never copied.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// UNDEFINED: an attribute that does not exist, or a strict operator on one.
    #[default]
    Undefined,
    /// ERROR: a type error, division by zero, a bad function call.
    Error,
    /// `true` / `false`
    Bool(bool),
    /// 64-bit integer.
    Int(i64),
    /// IEEE double.
    Real(f64),
    /// A string.
    String(Arc<str>),
    /// An absolute time, `absTime("...")`.
    AbsTime(AbsTime),
    /// A relative time in seconds, `relTime("...")`.
    RelTime(f64),
    /// A list of expressions.
    List(Arc<Vec<Expr>>),
    /// A nested ClassAd.
    Ad(Arc<ClassAd>),
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    /// A list of literal values.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(Arc::new(items.into_iter().map(Expr::from_value).collect()))
    }

    /// True for UNDEFINED.
    pub fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    /// True for ERROR.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error)
    }

    /// True for UNDEFINED or ERROR.
    pub fn is_exceptional(&self) -> bool {
        matches!(self, Value::Undefined | Value::Error)
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a real, for integers, reals and booleans.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Real(r) => Some(*r),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// HTCondor's "boolean equivalent": booleans, and numbers (non-zero is true).
    pub fn bool_equiv(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            Value::Real(r) => Some(*r != 0.0),
            _ => None,
        }
    }

    /// True only for the boolean `true` (what `matches` and constraints need).
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// The type name HTCondor uses in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Error => "error",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::String(_) => "string",
            Value::AbsTime(_) => "abstime",
            Value::RelTime(_) => "reltime",
            Value::List(_) => "list",
            Value::Ad(_) => "classad",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(r: f64) -> Value {
        Value::Real(r)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(Arc::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(Arc::from(s))
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::unparse::unparse_value(self))
    }
}
