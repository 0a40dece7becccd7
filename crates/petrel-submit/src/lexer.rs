//! Splits a submit description into statements.
//!
//! Physical lines become logical lines (a trailing backslash continues a line; comment
//! lines start with `#`), and each logical line is classified: an assignment
//! (`key = value`, `+Attr = expr`, `MY.Attr = expr`), a `queue` statement (whose item list
//! may span several lines up to a line starting with `)`), `if`/`elif`/`else`/`endif`,
//! `include : file`, or `error :`/`warning :`.

use crate::error::{ErrorKind, Location, Result, SubmitError};

/// One statement with where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    /// File, line and column of the statement's first character.
    pub loc: Location,
    /// What it is.
    pub kind: StmtKind,
}

/// The kinds of statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StmtKind {
    /// `key = value`. `+Attr` keys are stored as `MY.Attr`.
    Assign {
        /// The key as written (after the `+` to `MY.` rewrite).
        key: String,
        /// The value, trimmed, not yet expanded.
        value: String,
    },
    /// `queue <args>`; `items` holds the lines of a multi-line `( ... )` list.
    Queue {
        /// The text after `queue` on the first line.
        args: String,
        /// Lines between `(` and `)` when the list spans lines.
        items: Option<Vec<String>>,
    },
    /// `if <condition>`.
    If(String),
    /// `elif <condition>`.
    Elif(String),
    /// `else`.
    Else,
    /// `endif`.
    Endif,
    /// `include : <file>` or `include : <command> |`.
    Include(String),
    /// `error : <message>`.
    Error(String),
    /// `warning : <message>`.
    Warning(String),
}

/// Splits `text` (read from `file`) into statements.
pub fn lex(text: &str, file: &str) -> Result<Vec<Stmt>> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let mut logical = String::new();
        loop {
            let raw = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
            i += 1;
            // comment lines inside a continuation are skipped
            if !logical.is_empty() && raw.trim_start().starts_with('#') {
                if i >= lines.len() {
                    break;
                }
                continue;
            }
            let trimmed_end = raw.trim_end();
            if let Some(body) = trimmed_end.strip_suffix('\\') {
                logical.push_str(body);
                if i >= lines.len() {
                    break;
                }
            } else {
                logical.push_str(raw);
                break;
            }
        }
        let indent = logical.len() - logical.trim_start().len();
        let line = logical.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let loc = Location::new(file, (start + 1) as u32, (indent + 1) as u32);
        let kind = classify(line, &loc)?;
        let kind = match kind {
            StmtKind::Queue { args, .. } if opens_list(&args) => {
                let mut items = Vec::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
                    i += 1;
                    if l.trim_start().starts_with(')') {
                        closed = true;
                        break;
                    }
                    items.push(l.to_string());
                }
                if !closed {
                    return Err(SubmitError::new(
                        loc,
                        ErrorKind::Syntax {
                            text: format!("queue {args}"),
                            expected: "a line starting with ')' to close the item list".into(),
                        },
                    ));
                }
                StmtKind::Queue {
                    args,
                    items: Some(items),
                }
            }
            k => k,
        };
        out.push(Stmt { loc, kind });
    }
    Ok(out)
}

/// Whether a queue argument text opens a `(` item list that it does not close.
fn opens_list(args: &str) -> bool {
    let t = args.trim_end();
    match t.rfind('(') {
        Some(p) => !t[p..].contains(')'),
        None => false,
    }
}

fn first_word(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    (&line[..end], &line[end..])
}

fn classify(line: &str, loc: &Location) -> Result<StmtKind> {
    let (word, rest) = first_word(line);
    let lw = word.to_ascii_lowercase();
    let rest_trim = rest.trim_start();
    // keyword statements: the word must not be followed by '=' (then it is an assignment)
    if !rest_trim.starts_with('=') {
        match lw.as_str() {
            "queue" => {
                return Ok(StmtKind::Queue {
                    args: rest.trim().to_string(),
                    items: None,
                });
            }
            "if" => return Ok(StmtKind::If(rest.trim().to_string())),
            "elif" => return Ok(StmtKind::Elif(rest.trim().to_string())),
            "else" if rest.trim().is_empty() => return Ok(StmtKind::Else),
            "endif" if rest.trim().is_empty() => return Ok(StmtKind::Endif),
            "include" | "error" | "warning" => {
                if let Some(colon) = rest.find(':') {
                    let arg = rest[colon + 1..].trim().to_string();
                    return Ok(match lw.as_str() {
                        "include" => StmtKind::Include(arg),
                        "error" => StmtKind::Error(arg),
                        _ => StmtKind::Warning(arg),
                    });
                }
            }
            _ => {}
        }
    }
    let Some(eq) = line.find('=') else {
        return Err(SubmitError::new(
            loc.clone(),
            ErrorKind::Syntax {
                text: line.to_string(),
                expected: "'key = value', '+Attr = expression' or a queue statement".into(),
            },
        ));
    };
    let raw_key = line[..eq].trim();
    let value = line[eq + 1..].trim().to_string();
    let key = if let Some(attr) = raw_key.strip_prefix('+') {
        format!("MY.{}", attr.trim())
    } else if let Some(attr) = raw_key
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("my."))
        .and_then(|_| raw_key.get(3..))
        .filter(|a| !a.is_empty())
    {
        // `get`, not slicing: the key is the user's text, and its third byte may fall
        // inside a multi-byte character.
        format!("MY.{attr}")
    } else {
        raw_key.to_string()
    };
    let name = key.strip_prefix("MY.").unwrap_or(&key);
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(SubmitError::new(
            loc.clone(),
            ErrorKind::Syntax {
                text: raw_key.to_string(),
                expected: "a command or attribute name (letters, digits, '_', '.')".into(),
            },
        ));
    }
    Ok(StmtKind::Assign { key, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<StmtKind> {
        lex(text, "t.sub")
            .unwrap()
            .into_iter()
            .map(|s| s.kind)
            .collect()
    }

    #[test]
    fn a_key_with_a_multibyte_character_near_its_start_is_no_panic() {
        // Found by fuzzing: slicing the key at byte 3 split the 'µ' of "uµiverse".
        for text in [
            "u\u{b5}iverse = x\nqueue\n",
            "ab\u{e9}x = 1\n",
            "my\u{b5} = 1\n",
        ] {
            let _ = lex(text, "t.sub");
        }
        assert!(lex("my.\u{e9}t\u{e9} = 1\n", "t.sub").is_err());
    }

    #[test]
    fn assignments_comments_continuations() {
        let k =
            kinds("# c\nExecutable = /bin/echo\narguments = a \\\n  b\n+Foo = 1\nMY.Bar=\"x\"\n");
        assert_eq!(
            k,
            vec![
                StmtKind::Assign {
                    key: "Executable".into(),
                    value: "/bin/echo".into()
                },
                StmtKind::Assign {
                    key: "arguments".into(),
                    value: "a   b".into()
                },
                StmtKind::Assign {
                    key: "MY.Foo".into(),
                    value: "1".into()
                },
                StmtKind::Assign {
                    key: "MY.Bar".into(),
                    value: "\"x\"".into()
                },
            ]
        );
    }

    #[test]
    fn queue_with_multiline_list() {
        let k = kinds("queue x from (\n a\n b\n)\nqueue 3\n");
        assert_eq!(
            k,
            vec![
                StmtKind::Queue {
                    args: "x from (".into(),
                    items: Some(vec![" a".into(), " b".into()])
                },
                StmtKind::Queue {
                    args: "3".into(),
                    items: None
                },
            ]
        );
    }

    #[test]
    fn unclosed_list_is_an_error() {
        let e = lex("queue x in (\n a\n", "f.sub").unwrap_err();
        assert_eq!(e.location.line, 1);
    }

    #[test]
    fn keywords_and_errors() {
        assert_eq!(
            kinds("if defined X\nelse\nendif"),
            vec![
                StmtKind::If("defined X".into()),
                StmtKind::Else,
                StmtKind::Endif
            ]
        );
        assert_eq!(
            kinds("include : a.inc"),
            vec![StmtKind::Include("a.inc".into())]
        );
        assert_eq!(
            kinds("queue = 3"),
            vec![StmtKind::Assign {
                key: "queue".into(),
                value: "3".into()
            }]
        );
        let e = lex("\n  just words", "f.sub").unwrap_err();
        assert_eq!((e.location.line, e.location.column), (2, 3));
    }
}
