//! Recursive-descent parser for new ClassAd syntax, with HTCondor's grammar:
//! `?:` (Elvis) binds as a postfix operator, `c ? a : b` is lowest, and
//! `absTime("...")`/`relTime("...")` with a literal string become literals.

use std::sync::Arc;

use crate::ast::{BinaryOp, Expr, Name, UnaryOp};
use crate::classad::ClassAd;
use crate::error::{Error, Result};
use crate::lexer::{position, Lexer, Tok, Token};
use crate::parser::ParseLimits;
use crate::timefmt;
use crate::value::Value;

/// The parser state.
pub struct Parser<'s> {
    src: &'s str,
    lexer: Lexer<'s>,
    peeked: Option<Token>,
    limits: ParseLimits,
    nesting: usize,
    old_strings: bool,
}

/// Expression plus the depth of its tree.
type Node = (Expr, usize);

fn binop_of(t: &Tok) -> Option<(BinaryOp, u8)> {
    use BinaryOp::*;
    Some(match t {
        Tok::Or => (Or, 1),
        Tok::And => (And, 2),
        Tok::BitOr => (BitOr, 3),
        Tok::BitXor => (BitXor, 4),
        Tok::BitAnd => (BitAnd, 5),
        Tok::Eq => (Eq, 6),
        Tok::Ne => (Ne, 6),
        Tok::MetaEq => (Is, 6),
        Tok::MetaNe => (Isnt, 6),
        Tok::Lt => (Lt, 7),
        Tok::Le => (Le, 7),
        Tok::Gt => (Gt, 7),
        Tok::Ge => (Ge, 7),
        Tok::Shl => (Shl, 8),
        Tok::Shr => (Shr, 8),
        Tok::Ushr => (Ushr, 8),
        Tok::Plus => (Add, 9),
        Tok::Minus => (Sub, 9),
        Tok::Star => (Mul, 10),
        Tok::Slash => (Div, 10),
        Tok::Percent => (Mod, 10),
        _ => return None,
    })
}

impl<'s> Parser<'s> {
    /// A parser over `src`; `old_strings` selects old-syntax string escapes.
    pub fn new(src: &'s str, limits: &ParseLimits, old_strings: bool) -> Result<Parser<'s>> {
        if src.len() > limits.max_bytes {
            return Err(Error::TooLarge {
                size: src.len(),
                limit: limits.max_bytes,
            });
        }
        let mut lexer = Lexer::new(src);
        lexer.old_strings = old_strings;
        Ok(Parser {
            src,
            lexer,
            peeked: None,
            limits: *limits,
            nesting: 0,
            old_strings,
        })
    }

    fn peek(&mut self) -> Result<&Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => Err(self.error_at(self.src.len(), "a token", "nothing")),
        }
    }

    fn next(&mut self) -> Result<Token> {
        self.peek()?;
        self.peeked
            .take()
            .ok_or_else(|| self.error_at(self.src.len(), "a token", "nothing"))
    }

    fn error_at(&self, at: usize, expected: &str, found: &str) -> Error {
        Error::Parse {
            pos: position(self.src, at),
            expected: expected.into(),
            found: crate::error::excerpt(found, crate::error::QUOTE_LIMIT),
        }
    }

    fn unexpected(&self, t: &Token, expected: &str) -> Error {
        self.error_at(t.at, expected, &t.tok.describe())
    }

    fn check_depth(&self, at: usize, depth: usize) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(Error::TooDeep {
                pos: position(self.src, at),
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }

    fn nest<T>(&mut self, at: usize, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.nesting >= self.limits.max_nesting {
            return Err(Error::TooDeep {
                pos: position(self.src, at),
                limit: self.limits.max_nesting,
            });
        }
        self.nesting += 1;
        let r = f(self);
        self.nesting -= 1;
        r
    }

    /// Require that all input has been consumed.
    pub fn expect_end(&mut self) -> Result<()> {
        let t = self.next()?;
        if t.tok != Tok::End {
            return Err(self.unexpected(&t, "end of input"));
        }
        Ok(())
    }

    /// True if only whitespace and comments remain.
    pub fn at_end(&mut self) -> Result<bool> {
        Ok(self.peek()?.tok == Tok::End)
    }

    /// Parse one expression.
    pub fn expr(&mut self) -> Result<Expr> {
        Ok(self.expression()?.0)
    }

    fn expression(&mut self) -> Result<Node> {
        let at = self.peek()?.at;
        self.nest(at, |p| {
            let (cond, dc) = p.binary(1)?;
            if p.peek()?.tok != Tok::Question {
                return Ok((cond, dc));
            }
            p.next()?;
            let (a, da) = p.expression()?;
            let t = p.next()?;
            if t.tok != Tok::Colon {
                return Err(p.unexpected(&t, "':'"));
            }
            let (b, db) = p.expression()?;
            let d = 1 + dc.max(da).max(db);
            p.check_depth(at, d)?;
            Ok((Expr::Ternary(Box::new(cond), Box::new(a), Box::new(b)), d))
        })
    }

    fn binary(&mut self, min_prec: u8) -> Result<Node> {
        let (mut lhs, mut dl) = self.unary()?;
        loop {
            let t = self.peek()?;
            let at = t.at;
            let Some((op, prec)) = binop_of(&t.tok) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.next()?;
            let (rhs, dr) = self.binary(prec + 1)?;
            dl = 1 + dl.max(dr);
            self.check_depth(at, dl)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok((lhs, dl))
    }

    fn unary(&mut self) -> Result<Node> {
        let t = self.peek()?;
        let at = t.at;
        let op = match t.tok {
            Tok::Minus => UnaryOp::Minus,
            Tok::Plus => UnaryOp::Plus,
            Tok::BitNot => UnaryOp::BitNot,
            Tok::Not => UnaryOp::Not,
            _ => return self.postfix(),
        };
        self.next()?;
        self.nest(at, |p| {
            let (e, d) = p.unary()?;
            p.check_depth(at, d + 1)?;
            Ok((Expr::Unary(op, Box::new(e)), d + 1))
        })
    }

    fn postfix(&mut self) -> Result<Node> {
        let (mut e, mut d) = self.primary()?;
        loop {
            let t = self.peek()?;
            let at = t.at;
            match t.tok {
                Tok::LBox => {
                    self.next()?;
                    let (idx, di) = self.nest(at, |p| p.expression())?;
                    let close = self.next()?;
                    if close.tok != Tok::RBox {
                        return Err(self.unexpected(&close, "']'"));
                    }
                    d = 1 + d.max(di);
                    e = Expr::Binary(BinaryOp::Subscript, Box::new(e), Box::new(idx));
                }
                Tok::Dot => {
                    self.next()?;
                    let id = self.next()?;
                    let Tok::Ident(name) = id.tok else {
                        return Err(self.unexpected(&id, "an attribute name after '.'"));
                    };
                    d += 1;
                    e = Expr::Attr {
                        scope: Some(Box::new(e)),
                        name: Name::new(&name),
                        absolute: false,
                    };
                }
                Tok::Elvis => {
                    self.next()?;
                    let (rhs, dr) = self.nest(at, |p| p.postfix())?;
                    d = 1 + d.max(dr);
                    e = Expr::Binary(BinaryOp::Elvis, Box::new(e), Box::new(rhs));
                }
                _ => break,
            }
            self.check_depth(at, d)?;
        }
        Ok((e, d))
    }

    fn primary(&mut self) -> Result<Node> {
        let t = self.next()?;
        let at = t.at;
        let lit = |v: Value| Ok((Expr::Literal(v), 1));
        match t.tok {
            Tok::Ident(name) => {
                if self.peek()?.tok == Tok::LParen {
                    self.next()?;
                    let (args, d) = self.nest(at, |p| p.arguments())?;
                    if let Some(e) = self.parse_time_literal(&name, &args, at)? {
                        return Ok((e, 1));
                    }
                    Ok((
                        Expr::Call {
                            name: Arc::from(name),
                            args,
                        },
                        d + 1,
                    ))
                } else {
                    Ok((
                        Expr::Attr {
                            scope: None,
                            name: Name::new(&name),
                            absolute: false,
                        },
                        1,
                    ))
                }
            }
            Tok::Dot => {
                let id = self.next()?;
                match id.tok {
                    Tok::Ident(name) => Ok((
                        Expr::Attr {
                            scope: None,
                            name: Name::new(&name),
                            absolute: true,
                        },
                        1,
                    )),
                    _ => Err(self.unexpected(&id, "an attribute name after '.'")),
                }
            }
            Tok::LParen => {
                let (e, d) = self.nest(at, |p| p.expression())?;
                let close = self.next()?;
                if close.tok != Tok::RParen {
                    return Err(self.unexpected(&close, "')'"));
                }
                Ok((Expr::Paren(Box::new(e)), d + 1))
            }
            Tok::LBox => {
                let (ad, d) = self.nest(at, |p| p.classad_body())?;
                Ok((Expr::Ad(Arc::new(ad)), d + 1))
            }
            Tok::LBrace => {
                let (items, d) = self.nest(at, |p| p.list_body())?;
                Ok((Expr::List(Arc::new(items)), d + 1))
            }
            Tok::Undefined => lit(Value::Undefined),
            Tok::Error => lit(Value::Error),
            Tok::Bool(b) => lit(Value::Bool(b)),
            Tok::Int(i) => lit(Value::Int(i)),
            Tok::Real(r) => lit(Value::Real(r)),
            Tok::Str(s) => lit(Value::String(Arc::from(s))),
            _ => Err(self.error_at(at, "an expression", &t.tok.describe())),
        }
    }

    fn parse_time_literal(&self, name: &str, args: &[Expr], at: usize) -> Result<Option<Expr>> {
        let is_abs = name.eq_ignore_ascii_case("abstime");
        let is_rel = name.eq_ignore_ascii_case("reltime");
        if !(is_abs || is_rel) || args.len() != 1 {
            return Ok(None);
        }
        let Expr::Literal(Value::String(s)) = &args[0] else {
            return Ok(None);
        };
        let v = if is_abs {
            timefmt::parse_abs(s).map(Value::AbsTime)
        } else {
            timefmt::parse_rel(s).map(Value::RelTime)
        };
        match v {
            Some(v) => Ok(Some(Expr::Literal(v))),
            None => Err(self.error_at(at, &format!("a valid {name} string"), &format!("{s:?}"))),
        }
    }

    fn arguments(&mut self) -> Result<(Vec<Expr>, usize)> {
        let mut args = Vec::new();
        let mut d = 0;
        if self.peek()?.tok == Tok::RParen {
            self.next()?;
            return Ok((args, d));
        }
        loop {
            let (e, de) = self.expression()?;
            d = d.max(de);
            args.push(e);
            let t = self.next()?;
            match t.tok {
                Tok::Comma => continue,
                Tok::RParen => return Ok((args, d)),
                _ => return Err(self.unexpected(&t, "',' or ')'")),
            }
        }
    }

    fn list_body(&mut self) -> Result<(Vec<Expr>, usize)> {
        let mut items = Vec::new();
        let mut d = 0;
        if self.peek()?.tok == Tok::RBrace {
            self.next()?;
            return Ok((items, d));
        }
        loop {
            let (e, de) = self.expression()?;
            d = d.max(de);
            items.push(e);
            let t = self.next()?;
            match t.tok {
                Tok::Comma => {}
                Tok::RBrace => return Ok((items, d)),
                _ => return Err(self.unexpected(&t, "',' or '}'")),
            }
        }
    }

    /// Parse `[ ... ]`.
    pub fn classad(&mut self) -> Result<ClassAd> {
        let t = self.next()?;
        if t.tok != Tok::LBox {
            return Err(self.unexpected(&t, "'['"));
        }
        Ok(self.classad_body()?.0)
    }

    fn classad_body(&mut self) -> Result<(ClassAd, usize)> {
        let mut ad = ClassAd::new();
        let mut d = 0;
        loop {
            let t = self.next()?;
            let name = match t.tok {
                Tok::RBox => return Ok((ad, d)),
                Tok::Semi => continue,
                Tok::Ident(n) => n,
                _ => return Err(self.unexpected(&t, "an attribute name or ']'")),
            };
            let eq = self.next()?;
            if eq.tok != Tok::Assign {
                return Err(self.unexpected(&eq, "'='"));
            }
            let start = self.peek()?.at;
            let (e, de) = self.expression()?;
            d = d.max(de);
            let t = self.peek()?;
            let end = t.at;
            if matches!(e, Expr::Literal(_)) {
                ad.insert(&name, e);
            } else {
                let text = self.src.get(start..end).unwrap_or("");
                ad.insert_shared(
                    &name,
                    crate::parser::intern::intern(self.old_strings, text, e),
                );
            }
            let t = self.peek()?;
            if t.tok != Tok::Semi && t.tok != Tok::RBox {
                let t = t.clone();
                return Err(self.unexpected(&t, "';' or ']'"));
            }
        }
    }
}
