//! Old ("long form") ClassAd syntax, as `condor_q -long` prints it:
//! one `Name = expression` per line. Strings use old escaping (a backslash
//! only escapes a following quote). Ads in a stream are separated by blank
//! lines.

use crate::classad::ClassAd;
use crate::error::{Error, Position, Result};
use crate::parser::new_syntax::Parser;
use crate::parser::ParseLimits;

/// Parse one old-syntax ad. Blank lines and `#` comment lines are skipped.
pub fn parse_old_classad(text: &str) -> Result<ClassAd> {
    let limits = ParseLimits::default();
    if text.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    let mut ad = ClassAd::new();
    for (lineno, line) in text.lines().enumerate() {
        parse_line(&mut ad, line, lineno + 1, &limits)?;
    }
    Ok(ad)
}

/// Parse a stream of old-syntax ads separated by blank lines.
pub fn parse_old_classads(text: &str) -> Result<Vec<ClassAd>> {
    let limits = ParseLimits::default();
    let mut ads = Vec::new();
    let mut cur = ClassAd::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                ads.push(std::mem::take(&mut cur));
            }
            continue;
        }
        parse_line(&mut cur, line, lineno + 1, &limits)?;
    }
    if !cur.is_empty() {
        ads.push(cur);
    }
    Ok(ads)
}

fn shift(e: Error, lineno: usize, col_offset: usize) -> Error {
    match e {
        Error::Parse {
            pos,
            expected,
            found,
        } => Error::Parse {
            pos: Position {
                line: lineno + pos.line - 1,
                column: pos.column + col_offset,
            },
            expected,
            found,
        },
        Error::TooDeep { pos, limit } => Error::TooDeep {
            pos: Position {
                line: lineno + pos.line - 1,
                column: pos.column + col_offset,
            },
            limit,
        },
        other => other,
    }
}

fn parse_line(ad: &mut ClassAd, line: &str, lineno: usize, limits: &ParseLimits) -> Result<()> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(());
    }
    let indent = line.len() - trimmed.len();
    let Some(eq) = trimmed.find('=') else {
        return Err(Error::Parse {
            pos: Position {
                line: lineno,
                column: indent + 1,
            },
            expected: "'Name = expression'".into(),
            found: format!("{:?}", trimmed.chars().take(20).collect::<String>()),
        });
    };
    let name = trimmed[..eq].trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !valid {
        return Err(Error::Parse {
            pos: Position {
                line: lineno,
                column: indent + 1,
            },
            expected: "an attribute name".into(),
            found: format!(
                "{:?}",
                crate::error::excerpt(name, crate::error::QUOTE_LIMIT)
            ),
        });
    }
    let rhs = &trimmed[eq + 1..];
    let col = indent + eq + 1;
    let mut p = Parser::new(rhs, limits, true).map_err(|e| shift(e, lineno, col))?;
    let e = p.expr().map_err(|e| shift(e, lineno, col))?;
    p.expect_end().map_err(|e| shift(e, lineno, col))?;
    if matches!(e, crate::ast::Expr::Literal(_)) {
        ad.insert(name, e);
    } else {
        ad.insert_shared(name, crate::parser::intern::intern(true, rhs.trim(), e));
    }
    Ok(())
}
