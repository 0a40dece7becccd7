//! Parsing ClassAds and expressions: new syntax ([`new_syntax`]), old
//! long-form syntax ([`old_syntax`]) and the limits that guard both.

pub(crate) mod intern;
pub mod new_syntax;
pub mod old_syntax;

use crate::ast::Expr;
use crate::classad::ClassAd;
use crate::error::Result;

/// Guard rails for parsing untrusted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest expression tree accepted (nodes on the longest root-to-leaf path).
    pub max_depth: usize,
    /// Deepest nesting of parentheses, unary operators, lists, ads and calls.
    pub max_nesting: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: 64 << 20,
            max_depth: 1000,
            max_nesting: 200,
        }
    }
}

/// Parse one expression (the whole input must be one expression).
pub fn parse_expr(text: &str) -> Result<Expr> {
    parse_expr_with(text, &ParseLimits::default())
}

/// [`parse_expr`] with explicit limits.
pub fn parse_expr_with(text: &str, limits: &ParseLimits) -> Result<Expr> {
    // A plain decimal integer (every ProcId of a large submit) needs no lexer; longer
    // ones go the whole way, which gives an overflow the lexer's value.
    if (1..=18).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Expr::Literal(crate::value::Value::Int(i)));
        }
    }
    let mut p = new_syntax::Parser::new(text, limits, false)?;
    let e = p.expr()?;
    p.expect_end()?;
    Ok(e)
}

/// Parse a new-syntax ad: `[ a = 1; b = a + 1 ]`.
pub fn parse_classad(text: &str) -> Result<ClassAd> {
    parse_classad_with(text, &ParseLimits::default())
}

/// [`parse_classad`] with explicit limits.
pub fn parse_classad_with(text: &str, limits: &ParseLimits) -> Result<ClassAd> {
    let mut p = new_syntax::Parser::new(text, limits, false)?;
    let ad = p.classad()?;
    p.expect_end()?;
    Ok(ad)
}

/// Parse the first new-syntax ad in `text`, ignoring whatever follows it
/// (as HTCondor's ClassAd constructor does).
pub fn parse_first_classad(text: &str) -> Result<ClassAd> {
    let mut p = new_syntax::Parser::new(text, &ParseLimits::default(), false)?;
    p.classad()
}

/// Parse an ad in either syntax: new if it starts with `[`, else old.
pub fn parse_classad_any(text: &str) -> Result<ClassAd> {
    if text.trim_start().starts_with('[') {
        parse_classad(text)
    } else {
        old_syntax::parse_old_classad(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_integers_parse_as_the_lexer_reads_them() {
        for text in [
            "0",
            "7",
            "017",
            "000",
            "123456789012345678",
            "9999999999999999999",
        ] {
            let mut p = new_syntax::Parser::new(text, &ParseLimits::default(), false).unwrap();
            let full = p.expr().unwrap();
            assert_eq!(parse_expr(text).unwrap(), full, "{text}");
        }
        assert!(parse_expr("").is_err());
    }
}
