//! Small numeric helpers for `$INT`, `$REAL`, `$CHOICE` and queue counts: an arithmetic
//! evaluator (`+ - * / %`, parentheses, unary minus), printf-style formatting of one
//! number, and a seeded pseudo-random source for `$RANDOM_CHOICE`.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Evaluates an arithmetic expression over numbers (also `true`/`false`).
pub fn eval(text: &str) -> Result<f64, &'static str> {
    let toks: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if toks.is_empty() {
        return Err("is empty, expected a number");
    }
    let mut p = Parser {
        t: &toks,
        i: 0,
        depth: 0,
    };
    let v = p.sum()?;
    if p.i != toks.len() {
        return Err("is not a number or arithmetic expression");
    }
    Ok(v)
}

struct Parser<'a> {
    t: &'a [char],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.t.get(self.i).copied()
    }
    fn sum(&mut self) -> Result<f64, &'static str> {
        let mut v = self.product()?;
        while let Some(c @ ('+' | '-')) = self.peek() {
            self.i += 1;
            let r = self.product()?;
            v = if c == '+' { v + r } else { v - r };
        }
        Ok(v)
    }
    fn product(&mut self) -> Result<f64, &'static str> {
        let mut v = self.unary()?;
        while let Some(c @ ('*' | '/' | '%')) = self.peek() {
            self.i += 1;
            let r = self.unary()?;
            v = match c {
                '*' => v * r,
                '/' if r == 0.0 => return Err("divides by zero"),
                '/' if v.fract() == 0.0 && r.fract() == 0.0 => (v / r).trunc(),
                '/' => v / r,
                _ if r == 0.0 => return Err("divides by zero"),
                _ => v % r,
            };
        }
        Ok(v)
    }
    fn unary(&mut self) -> Result<f64, &'static str> {
        match self.peek() {
            Some('-') => {
                self.i += 1;
                Ok(-self.unary()?)
            }
            Some('+') => {
                self.i += 1;
                self.unary()
            }
            Some('(') => {
                self.depth += 1;
                if self.depth > 64 {
                    return Err("nests parentheses too deeply");
                }
                self.i += 1;
                let v = self.sum()?;
                if self.peek() != Some(')') {
                    return Err("has an unclosed parenthesis");
                }
                self.i += 1;
                self.depth -= 1;
                Ok(v)
            }
            _ => self.atom(),
        }
    }
    fn atom(&mut self) -> Result<f64, &'static str> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let word_char = c.is_ascii_alphanumeric() || c == '.' || c == '_';
            let exponent_sign = (c == '+' || c == '-')
                && self.i > start
                && matches!(self.t[self.i - 1], 'e' | 'E')
                && self.t[start].is_ascii_digit();
            if !(word_char || exponent_sign) {
                break;
            }
            self.i += 1;
        }
        let word: String = self.t[start..self.i].iter().collect();
        match word.to_ascii_lowercase().as_str() {
            "true" => return Ok(1.0),
            "false" => return Ok(0.0),
            _ => {}
        }
        if let Some(hex) = word.strip_prefix("0x") {
            return i64::from_str_radix(hex, 16)
                .map(|v| v as f64)
                .map_err(|_| "is not a number");
        }
        word.parse::<f64>()
            .map_err(|_| "is not a number or arithmetic expression")
    }
}

/// Formats an integer with an optional printf format (`%d`, `%05d`, `%x`, `%o`...).
pub fn format_int(n: i64, fmt: Option<&str>) -> String {
    match fmt.and_then(parse_fmt) {
        Some(f) => f.apply(n as f64, true),
        None => n.to_string(),
    }
}

/// Formats a real with an optional printf format (`%.3f`, `%e`, `%g`...), `%g`-like by default.
pub fn format_real(v: f64, fmt: Option<&str>) -> String {
    match fmt.and_then(parse_fmt) {
        Some(f) => f.apply(v, false),
        None => format_g(v, 6),
    }
}

struct Fmt {
    prefix: String,
    suffix: String,
    zero: bool,
    left: bool,
    plus: bool,
    width: usize,
    prec: Option<usize>,
    conv: char,
}

fn parse_fmt(f: &str) -> Option<Fmt> {
    let pct = f.find('%')?;
    let rest = &f[pct + 1..];
    let mut chars = rest.char_indices().peekable();
    let (mut zero, mut left, mut plus) = (false, false, false);
    while let Some(&(_, c)) = chars.peek() {
        match c {
            '0' => zero = true,
            '-' => left = true,
            '+' => plus = true,
            ' ' | '#' => {}
            _ => break,
        }
        chars.next();
    }
    let mut width = 0usize;
    while let Some(&(_, c)) = chars.peek() {
        if let Some(d) = c.to_digit(10) {
            width = width.saturating_mul(10).saturating_add(d as usize).min(256);
            chars.next();
        } else {
            break;
        }
    }
    let mut prec = None;
    if let Some(&(_, '.')) = chars.peek() {
        chars.next();
        let mut p = 0usize;
        while let Some(&(_, c)) = chars.peek() {
            if let Some(d) = c.to_digit(10) {
                p = p.saturating_mul(10).saturating_add(d as usize).min(64);
                chars.next();
            } else {
                break;
            }
        }
        prec = Some(p);
    }
    while let Some(&(_, c)) = chars.peek() {
        if matches!(c, 'l' | 'h' | 'L' | 'q') {
            chars.next();
        } else {
            break;
        }
    }
    let (idx, conv) = chars.next()?;
    if !"dioxXueEfFgGs".contains(conv) {
        return None;
    }
    Some(Fmt {
        prefix: f[..pct].to_string(),
        suffix: rest[idx + conv.len_utf8()..].to_string(),
        zero,
        left,
        plus,
        width,
        prec,
        conv,
    })
}

impl Fmt {
    fn apply(&self, v: f64, int_default: bool) -> String {
        let body = match self.conv {
            'd' | 'i' | 'u' | 's' => {
                let n = v.trunc() as i64;
                if self.plus && n >= 0 {
                    format!("+{n}")
                } else {
                    n.to_string()
                }
            }
            'x' => format!("{:x}", v.trunc() as i64),
            'X' => format!("{:X}", v.trunc() as i64),
            'o' => format!("{:o}", v.trunc() as i64),
            'f' | 'F' => format!("{:.*}", self.prec.unwrap_or(6), v),
            'e' | 'E' => {
                let s = format_e(v, self.prec.unwrap_or(6));
                if self.conv == 'E' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            _ => {
                if int_default && v.fract() == 0.0 {
                    (v as i64).to_string()
                } else {
                    format_g(v, self.prec.unwrap_or(6).max(1))
                }
            }
        };
        let padded = if body.len() >= self.width {
            body
        } else if self.left {
            format!("{body:<w$}", w = self.width)
        } else if self.zero {
            let (sign, digits) = match body.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("", body.as_str()),
            };
            format!("{sign}{}{digits}", "0".repeat(self.width - body.len()))
        } else {
            format!("{body:>w$}", w = self.width)
        };
        format!("{}{}{}", self.prefix, padded, self.suffix)
    }
}

fn format_e(v: f64, prec: usize) -> String {
    let s = format!("{:.*e}", prec, v);
    // Rust prints 1.5e3; C prints 1.5e+03
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// C's `%g` with `prec` significant digits.
pub fn format_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let exp = v.abs().log10().floor() as i32;
    if exp < -4 || exp >= prec as i32 {
        let s = format_e(v, prec.saturating_sub(1));
        let (m, e) = s.split_once('e').unwrap_or((&s, ""));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        format!("{m}e{e}")
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        let s = format!("{:.*}", decimals, v);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0x9e37_79b9);
        (t ^ (std::process::id() as u64).rotate_left(32)) | 1
    });
}

/// A pseudo-random number in `0..n` (`n > 0`), xorshift-based; not for cryptography.
pub fn random_below(n: u64) -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        if n == 0 {
            0
        } else {
            x % n
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        assert_eq!(eval("2 + 3 * 4").unwrap(), 14.0);
        assert_eq!(eval("(7 / 2)").unwrap(), 3.0);
        assert_eq!(eval("-2.5").unwrap(), -2.5);
        assert!(eval("abc").is_err());
        assert!(eval("1/0").is_err());
        assert!(eval(&"(".repeat(1000)).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_int(5, Some("%03d")), "005");
        assert_eq!(format_int(255, Some("%x")), "ff");
        assert_eq!(format_real(5.0, None), "5");
        assert_eq!(format_real(2.5, None), "2.5");
        assert_eq!(format_real(5.0, Some("%.3f")), "5.000");
        assert_eq!(format_real(1500.0, Some("%e")), "1.500000e+03");
    }
}
