//! Printing expressions, values and ads back to text exactly as HTCondor's
//! unparser does (new syntax), and in the old long form.

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::classad::ClassAd;
use crate::timefmt;
use crate::value::Value;

#[derive(Clone, Copy)]
struct Mode {
    old: bool,
}

const NEW: Mode = Mode { old: false };
const OLD: Mode = Mode { old: true };

/// New-syntax text of an expression.
pub fn unparse(e: &Expr) -> String {
    let mut s = String::new();
    expr(&mut s, e, NEW);
    s
}

/// Old-syntax text of an expression (`=?=` rather than `is`, `%.16G` reals,
/// strings escaped only at quotes).
pub fn unparse_old(e: &Expr) -> String {
    let mut s = String::new();
    expr(&mut s, e, OLD);
    s
}

/// New-syntax text of a value.
pub fn unparse_value(v: &Value) -> String {
    let mut s = String::new();
    value(&mut s, v, NEW);
    s
}

/// `[ a = 1; b = 2 ]`
pub fn unparse_ad(ad: &ClassAd) -> String {
    let mut s = String::new();
    classad(&mut s, ad, NEW);
    s
}

/// `a = 1\nb = 2\n` as `condor_q -long` prints an ad.
pub fn unparse_ad_old(ad: &ClassAd) -> String {
    if ad.is_empty() {
        return "\n".into();
    }
    // Most lines are a short name and value: one allocation for a typical ad.
    let mut s = String::with_capacity(ad.len() * 32);
    for (name, e) in ad.iter() {
        ident(&mut s, name, OLD);
        s.push_str(" = ");
        expr(&mut s, e, OLD);
        s.push('\n');
    }
    s
}

/// An integer in decimal, without the formatting machinery (every proc ad has several).
fn int(out: &mut String, i: i64) {
    let mut digits = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push('-');
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// HTCondor's real formatting: `%1.15E` (new syntax) or `%.16G` (old).
pub fn format_real(r: f64, old: bool) -> String {
    if r == 0.0 {
        return if r.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    if r.is_nan() {
        return "real(\"NaN\")".into();
    }
    if r.is_infinite() {
        return if r < 0.0 {
            "real(\"-INF\")".into()
        } else {
            "real(\"INF\")".into()
        };
    }
    if old {
        let mut g = timefmt::fmt_g(r, 16).replace('e', "E");
        if !g.contains(['.', 'E']) {
            g.push_str(".0");
        }
        g
    } else {
        format_e(r, 15)
    }
}

/// C's `%.{prec}E`.
pub fn format_e(r: f64, prec: usize) -> String {
    let s = format!("{:.*E}", prec, r);
    match s.split_once('E') {
        Some((m, e)) => {
            let exp: i32 = e.parse().unwrap_or(0);
            format!("{}E{}{:02}", m, if exp < 0 { '-' } else { '+' }, exp.abs())
        }
        None => s,
    }
}

/// Append `s` as a quoted string literal with `delim` as the quote.
fn quoted(out: &mut String, s: &str, delim: u8, mode: Mode) {
    out.push(delim as char);
    // Runs of characters that need no escape are copied whole: most strings have none.
    let mut run = 0;
    for (i, ch) in s.char_indices() {
        let c = ch as u32;
        let esc: Option<&str> = if c == u32::from(delim) {
            Some(if delim == b'"' { "\\\"" } else { "\\'" })
        } else if mode.old {
            None
        } else {
            match c {
                7 => Some("\\a"),
                8 => Some("\\b"),
                12 => Some("\\f"),
                0x0a => Some("\\n"),
                0x0d => Some("\\r"),
                0x09 => Some("\\t"),
                11 => Some("\\v"),
                0x5c => Some("\\\\"),
                0x20..0x7f => None,
                // Every other byte (controls, DEL, each byte of a non-ASCII character)
                // as a three-digit octal escape.
                _ => Some(""),
            }
        };
        let Some(e) = esc else {
            continue;
        };
        out.push_str(&s[run..i]);
        run = i + ch.len_utf8();
        if e.is_empty() {
            let mut utf8 = [0u8; 4];
            for b in ch.encode_utf8(&mut utf8).bytes() {
                out.push('\\');
                for shift in [6, 3, 0] {
                    out.push(char::from(b'0' + ((b >> shift) & 7)));
                }
            }
        } else {
            out.push_str(e);
        }
    }
    out.push_str(&s[run..]);
    out.push(delim as char);
}

/// A string literal as HTCondor writes it in new syntax.
pub fn quote_string(s: &str) -> String {
    let mut out = String::new();
    quoted(&mut out, s, b'"', NEW);
    out
}

const RESERVED: [&str; 7] = [
    "error",
    "false",
    "is",
    "isnt",
    "parent",
    "true",
    "undefined",
];

/// Append an attribute name, quoting it with `'...'` when needed (escaped as the
/// syntax's strings are, so that its parser reads the same name back).
fn ident(out: &mut String, name: &str, mode: Mode) {
    let b = name.as_bytes();
    let plain = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name));
    if plain {
        out.push_str(name);
    } else {
        quoted(out, name, b'\'', mode);
    }
}

/// An attribute name as HTCondor prints it (quoted if needed).
pub fn unparse_name(name: &str) -> String {
    let mut s = String::new();
    ident(&mut s, name, NEW);
    s
}

fn value(out: &mut String, v: &Value, mode: Mode) {
    match v {
        Value::Undefined => out.push_str("undefined"),
        Value::Error => out.push_str("error"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => int(out, *i),
        Value::Real(r) => out.push_str(&format_real(*r, mode.old)),
        Value::String(s) => quoted(out, s, b'"', mode),
        Value::AbsTime(a) => {
            out.push_str("absTime(\"");
            out.push_str(&timefmt::abs_to_string(*a));
            out.push_str("\")");
        }
        Value::RelTime(r) => {
            out.push_str("relTime(\"");
            out.push_str(&timefmt::rel_to_string(*r));
            out.push_str("\")");
        }
        Value::List(l) => list(out, l, mode),
        Value::Ad(a) => classad(out, a, mode),
    }
}

fn list(out: &mut String, items: &[Expr], mode: Mode) {
    out.push_str("{ ");
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        expr(out, e, mode);
    }
    out.push_str(" }");
}

fn classad(out: &mut String, ad: &ClassAd, mode: Mode) {
    out.push_str("[ ");
    for (i, (name, e)) in ad.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        ident(out, name, mode);
        out.push_str(" = ");
        expr(out, e, mode);
    }
    out.push_str(" ]");
}

fn expr(out: &mut String, e: &Expr, mode: Mode) {
    match e {
        Expr::Literal(v) => value(out, v, mode),
        Expr::Attr {
            scope,
            name,
            absolute,
        } => {
            if let Some(s) = scope {
                // HTCondor writes a selected name as-is, without quoting.
                expr(out, s, mode);
                out.push('.');
                out.push_str(name);
                return;
            }
            if *absolute {
                out.push('.');
            }
            ident(out, name, mode);
        }
        Expr::Unary(op, x) => {
            out.push_str(match op {
                UnaryOp::Plus => " +",
                UnaryOp::Minus => " -",
                UnaryOp::Not => " !",
                UnaryOp::BitNot => " ~",
            });
            expr(out, x, mode);
        }
        Expr::Binary(BinaryOp::Subscript, a, b) => {
            expr(out, a, mode);
            out.push('[');
            expr(out, b, mode);
            out.push(']');
        }
        Expr::Binary(op, a, b) => {
            expr(out, a, mode);
            out.push_str(match (mode.old, op) {
                (true, BinaryOp::Is) => " =?= ",
                (true, BinaryOp::Isnt) => " =!= ",
                _ => op.symbol(),
            });
            expr(out, b, mode);
        }
        Expr::Ternary(c, a, b) => {
            expr(out, c, mode);
            out.push_str(" ? ");
            expr(out, a, mode);
            out.push_str(" : ");
            expr(out, b, mode);
        }
        Expr::Paren(x) => {
            out.push('(');
            expr(out, x, mode);
            out.push(')');
        }
        Expr::Call { name, args } => {
            out.push_str(name);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                expr(out, a, mode);
            }
            out.push(')');
        }
        Expr::List(l) => list(out, l, mode),
        Expr::Ad(a) => classad(out, a, mode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_like_htcondor() {
        assert_eq!(format_real(1.5, false), "1.500000000000000E+00");
        assert_eq!(format_real(1e100, false), "1.000000000000000E+100");
        assert_eq!(format_real(-2.5e-7, false), "-2.500000000000000E-07");
        assert_eq!(format_real(0.0, false), "0.0");
        assert_eq!(format_real(f64::NAN, false), "real(\"NaN\")");
        assert_eq!(format_real(f64::NEG_INFINITY, true), "real(\"-INF\")");
        assert_eq!(format_real(1000.0, true), "1000.0");
        assert_eq!(format_real(1e100, true), "1E+100");
        assert_eq!(format_real(0.1, true), "0.1");
    }

    #[test]
    fn integers() {
        for i in [0, 7, -7, 10, 1234567890, i64::MAX, i64::MIN] {
            let mut s = String::new();
            int(&mut s, i);
            assert_eq!(s, i.to_string());
        }
    }

    #[test]
    fn strings_and_names() {
        assert_eq!(
            quote_string("a\"b\\c\n\u{1}é"),
            "\"a\\\"b\\\\c\\n\\001\\303\\251\""
        );
        assert_eq!(unparse_name("Memory"), "Memory");
        assert_eq!(unparse_name("odd name"), "'odd name'");
        assert_eq!(unparse_name("TRUE"), "'TRUE'");
        assert_eq!(unparse_name("it's"), "'it\\'s'");
        assert_eq!(unparse_name("é"), "'\\303\\251'");
        // The old syntax escapes only the quote.
        let mut old = String::new();
        quoted(&mut old, "a\"b\\c\né", b'"', OLD);
        assert_eq!(old, "\"a\\\"b\\c\né\"");
    }
}
