//! The two quoting syntaxes of `arguments` and `environment`.
//!
//! *Old* (V1) syntax: the value is not enclosed in double quotes; arguments are split on
//! whitespace and `\"` is a literal double quote; environment entries are separated by `;`.
//! *New* (V2) syntax: the whole value is in double quotes, `""` is a literal double quote,
//! and single quotes group text containing spaces (`''` is a literal single quote inside).
//! The job ad holds V1 input as `Args` / `Env` and V2 input as `Arguments` / `Environment`,
//! re-quoted the way HTCondor writes them (each whitespace or `'` run wrapped in quotes).

use std::collections::BTreeMap;

use crate::error::ErrorKind;

/// Whether `s` is in the new syntax (enclosed in double quotes).
pub fn is_v2_quoted(s: &str) -> bool {
    let t = s.trim();
    t.len() >= 2 && t.starts_with('"') && t.ends_with('"')
}

/// Strips the enclosing double quotes of V2 text and turns `""` into `"`.
pub fn v2_quoted_to_raw(s: &str) -> Result<String, ErrorKind> {
    let t = s.trim();
    let inner = &t[1..t.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return Err(ErrorKind::Syntax {
                    text: t.to_string(),
                    expected: "a double quote inside the quoted value to be repeated (\"\")".into(),
                });
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Splits V2 raw text into arguments (single quotes group, `''` is a literal quote).
pub fn split_v2(raw: &str) -> Result<Vec<String>, ErrorKind> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut in_token = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_token = true;
                let mut closed = false;
                while let Some(q) = chars.next() {
                    if q == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            buf.push('\'');
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        buf.push(q);
                    }
                }
                if !closed {
                    return Err(ErrorKind::UnbalancedQuotes {
                        text: raw.to_string(),
                        quote: '\'',
                    });
                }
            }
            ' ' | '\t' | '\n' | '\r' => {
                if in_token {
                    out.push(std::mem::take(&mut buf));
                    in_token = false;
                }
            }
            _ => {
                in_token = true;
                buf.push(c);
            }
        }
    }
    if in_token {
        out.push(buf);
    }
    Ok(out)
}

/// Appends one argument in V2 raw form to `result`.
pub fn append_v2(arg: &str, result: &mut String) {
    if !result.is_empty() {
        result.push(' ');
    }
    if arg.is_empty() {
        result.push_str("''");
    }
    for c in arg.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r' | '\'') {
            if result.ends_with('\'') {
                result.pop();
            } else {
                result.push('\'');
            }
            if c == '\'' {
                result.push('\'');
            }
            result.push(c);
            result.push('\'');
        } else {
            result.push(c);
        }
    }
}

/// Joins arguments in V2 raw form.
pub fn join_v2(args: &[String]) -> String {
    let mut s = String::new();
    for a in args {
        append_v2(a, &mut s);
    }
    s
}

/// The job attribute and value for an `arguments` command.
pub fn arguments(value: &str) -> Result<(&'static str, String), ErrorKind> {
    if is_v2_quoted(value) {
        let raw = v2_quoted_to_raw(value)?;
        let args = split_v2(&raw)?;
        return Ok(("Arguments", join_v2(&args)));
    }
    let mut v1 = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => {
                chars.next();
                v1.push('"');
            }
            '"' => {
                return Err(ErrorKind::Syntax {
                    text: value.to_string(),
                    expected: "a double quote in old-syntax arguments to be written \\\" (or the whole value in double quotes for the new syntax)".into(),
                })
            }
            _ => v1.push(c),
        }
    }
    let words: Vec<&str> = v1.split_whitespace().collect();
    Ok(("Args", words.join(" ")))
}

/// Parsed environment: name → value, sorted by name as HTCondor keeps it.
pub type EnvMap = BTreeMap<String, String>;

/// Parses an environment value in either syntax. Returns the map and whether it was V1.
pub fn parse_environment(value: &str) -> Result<(EnvMap, bool), ErrorKind> {
    let mut env = EnvMap::new();
    let bad = |entry: &str| ErrorKind::Syntax {
        text: entry.to_string(),
        expected: "environment entries of the form NAME=value".into(),
    };
    if is_v2_quoted(value) {
        let raw = v2_quoted_to_raw(value)?;
        for entry in split_v2(&raw)? {
            let (k, v) = entry.split_once('=').ok_or_else(|| bad(&entry))?;
            if k.is_empty() {
                return Err(bad(&entry));
            }
            env.insert(k.to_string(), v.to_string());
        }
        return Ok((env, false));
    }
    for entry in value.split(';') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (k, v) = entry.split_once('=').ok_or_else(|| bad(entry))?;
        if k.trim().is_empty() {
            return Err(bad(entry));
        }
        env.insert(k.trim().to_string(), v.to_string());
    }
    Ok((env, true))
}

/// The V2 raw form of an environment (`Environment` attribute).
pub fn env_v2(env: &EnvMap) -> String {
    let mut s = String::new();
    for (k, v) in env {
        append_v2(&format!("{k}={v}"), &mut s);
    }
    s
}

/// The V1 form of an environment (`Env` attribute, `;`-separated).
pub fn env_v1(env: &EnvMap) -> String {
    env.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_syntaxes() {
        assert_eq!(arguments("one two").unwrap(), ("Args", "one two".into()));
        assert_eq!(arguments(r#"a\"b c"#).unwrap(), ("Args", "a\"b c".into()));
        assert!(arguments(r#"a "b c" d"#).is_err());
        assert_eq!(
            arguments(r#""one 'two three' four""#).unwrap(),
            ("Arguments", "one two' 'three four".into())
        );
        assert_eq!(
            arguments(r#""a ""b c"" d""#).unwrap(),
            ("Arguments", "a \"b c\" d".into())
        );
        assert_eq!(arguments(r#""it''s ''''""#).unwrap().1, "its ''''");
        assert!(matches!(
            arguments(r#""a 'b""#),
            Err(ErrorKind::UnbalancedQuotes { .. })
        ));
    }

    #[test]
    fn environment_syntaxes() {
        let (e, v1) = parse_environment("B=2;A=1").unwrap();
        assert!(v1);
        assert_eq!(env_v1(&e), "A=1;B=2");
        let (e, v1) = parse_environment(r#""A=1 B='x y' C=""#).unwrap();
        assert!(!v1);
        assert_eq!(env_v2(&e), "A=1 B=x' 'y C=");
        assert!(parse_environment("\"novalue\"").is_err());
    }
}
