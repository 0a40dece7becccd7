//! The expression tree.
//!
//! Expressions are kept exactly as parsed (including parentheses) so that
//! [`crate::unparse`] prints them back the way HTCondor does.

use std::sync::Arc;

use crate::classad::ClassAd;
use crate::value::Value;

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `+x`
    Plus,
    /// `-x`
    Minus,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `!=`
    Ne,
    /// `==`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `=?=` / `is`
    Is,
    /// `=!=` / `isnt`
    Isnt,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `||`
    Or,
    /// `&&`
    And,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `&`
    BitAnd,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `>>>`
    Ushr,
    /// `a[i]`
    Subscript,
    /// `a ?: b`
    Elvis,
}

impl BinaryOp {
    /// The operator as HTCondor's new-syntax unparser writes it, with spacing.
    pub fn symbol(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Lt => " < ",
            Le => " <= ",
            Ne => " != ",
            Eq => " == ",
            Ge => " >= ",
            Gt => " > ",
            Is => " is ",
            Isnt => " isnt ",
            Add => " + ",
            Sub => " - ",
            Mul => " * ",
            Div => " / ",
            Mod => " % ",
            Or => " || ",
            And => " && ",
            BitOr => " | ",
            BitXor => " ^ ",
            BitAnd => " & ",
            Shl => " << ",
            Shr => " >> ",
            Ushr => " >>> ",
            Subscript => " [] ",
            Elvis => " ?: ",
        }
    }

    /// Strict operators yield UNDEFINED/ERROR when an operand is.
    pub fn is_strict(self) -> bool {
        !matches!(
            self,
            BinaryOp::Is | BinaryOp::Isnt | BinaryOp::And | BinaryOp::Or | BinaryOp::Elvis
        )
    }
}

/// A ClassAd expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A scalar literal (never a list or ClassAd value: those are [`Expr::List`] and [`Expr::Ad`]).
    Literal(Value),
    /// An attribute reference: `name`, `.name` (absolute) or `scope.name`.
    Attr {
        /// The expression before the dot, if any.
        scope: Option<Box<Expr>>,
        /// The attribute name as written.
        name: Arc<str>,
        /// True for `.name` (looked up from the root scope).
        absolute: bool,
    },
    /// A unary operation.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operation (including subscript and Elvis).
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `( e )`, kept so unparse is faithful.
    Paren(Box<Expr>),
    /// A function call.
    Call {
        /// The function name as written.
        name: Arc<str>,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `{ e1, e2, ... }`
    List(Arc<Vec<Expr>>),
    /// `[ a = e; ... ]`
    Ad(Arc<ClassAd>),
}

impl Expr {
    /// A reference to an attribute by name.
    pub fn attr(name: &str) -> Expr {
        Expr::Attr { scope: None, name: Arc::from(name), absolute: false }
    }

    /// A literal expression for a value (lists and ads become list and ad nodes).
    pub fn from_value(v: Value) -> Expr {
        match v {
            Value::List(l) => Expr::List(l),
            Value::Ad(a) => Expr::Ad(a),
            other => Expr::Literal(other),
        }
    }

    /// The value of this expression if it is a literal (scalar, list or ad).
    pub fn as_literal(&self) -> Option<Value> {
        match self {
            Expr::Literal(v) => Some(v.clone()),
            Expr::List(l) => Some(Value::List(l.clone())),
            Expr::Ad(a) => Some(Value::Ad(a.clone())),
            _ => None,
        }
    }

    /// Number of nodes in the tree (used for size limits).
    pub fn node_count(&self) -> usize {
        match self {
            Expr::Literal(_) => 1,
            Expr::Attr { scope, .. } => 1 + scope.as_ref().map_or(0, |s| s.node_count()),
            Expr::Unary(_, a) | Expr::Paren(a) => 1 + a.node_count(),
            Expr::Binary(_, a, b) => 1 + a.node_count() + b.node_count(),
            Expr::Ternary(a, b, c) => 1 + a.node_count() + b.node_count() + c.node_count(),
            Expr::Call { args, .. } => 1 + args.iter().map(Expr::node_count).sum::<usize>(),
            Expr::List(l) => 1 + l.iter().map(Expr::node_count).sum::<usize>(),
            Expr::Ad(a) => 1 + a.iter().map(|(_, e)| e.node_count()).sum::<usize>(),
        }
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::unparse::unparse(self))
    }
}
