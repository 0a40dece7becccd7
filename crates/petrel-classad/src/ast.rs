//! The expression tree.
//!
//! Expressions are kept exactly as parsed (including parentheses) so that
//! [`crate::unparse()`] prints them back the way HTCondor does.

use std::sync::Arc;

use crate::classad::ClassAd;
use crate::value::Value;

/// FNV-1a over the ASCII-lower-cased bytes: the case-insensitive hash
/// attribute lookups use.
#[inline]
pub const fn name_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < name.len() {
        h ^= name[i].to_ascii_lowercase() as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// A second, keyed case-insensitive hash (SipHash-1-3 over the lower-cased
/// bytes). Together with [`name_hash`] and the length it identifies a name
/// for lookups, so a hit needs no string comparison; finding a name that
/// collides with a given one on both is far beyond brute force.
pub fn name_fingerprint(name: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    // Lower-cased a chunk at a time: SipHash fed one byte per call costs several times
    // more, and every lookup of an attribute by name computes this.
    let mut buf = [0u8; 64];
    for chunk in name.chunks(buf.len()) {
        let lower = &mut buf[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        h.write(lower);
    }
    h.write_usize(name.len());
    h.finish()
}

/// An attribute name as written, with its case-insensitive hashes computed
/// once at parse time.
#[derive(Clone)]
pub struct Name {
    text: Arc<str>,
    hash: u64,
    fingerprint: u64,
    scope: ScopeName,
}

/// Whether a name is one of the match-context scope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeName {
    None,
    /// `TARGET` or `OTHER`
    Other,
    /// `MY` or `AD`
    Mine,
}

impl Name {
    /// A name.
    pub fn new(text: &str) -> Name {
        let scope = if ["target", "other"]
            .iter()
            .any(|n| text.eq_ignore_ascii_case(n))
        {
            ScopeName::Other
        } else if ["my", "ad"].iter().any(|n| text.eq_ignore_ascii_case(n)) {
            ScopeName::Mine
        } else {
            ScopeName::None
        };
        Name {
            text: Arc::from(text),
            hash: name_hash(text.as_bytes()),
            fingerprint: name_fingerprint(text.as_bytes()),
            scope,
        }
    }

    pub(crate) fn scope_name(&self) -> ScopeName {
        self.scope
    }

    /// The case-insensitive hash.
    pub fn hash_value(&self) -> u64 {
        self.hash
    }

    /// The case-insensitive fingerprint (see [`name_fingerprint`]).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.text == other.text
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", &*self.text)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

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
        name: Name,
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
        Expr::Attr {
            scope: None,
            name: Name::new(name),
            absolute: false,
        }
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
