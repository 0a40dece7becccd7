//! Helpers shared by the oracle tests.

/// An expression as the bindings and petrel may both print it: whitespace outside strings
/// dropped, `=?=`/`=!=` spelt `is`/`isnt`, boolean literals lower-case, and `path`
/// replaced by `placeholder`.
pub fn normalize_expr(v: &str, path: &str, placeholder: &str) -> String {
    let v = v.replace(path, placeholder);
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            c if c.is_whitespace() => {}
            _ => out.push(c),
        }
    }
    let out = out.replace("=?=", "is").replace("=!=", "isnt");
    lower_bool_literals(&out)
}

/// `True`/`TRUE` → `true` outside strings (the bindings print boolean literals lower-case).
pub fn lower_bool_literals(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_str = false;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c == '"' && (i == 0 || b[i - 1] != b'\\') {
            in_str = !in_str;
        }
        let word_start = !in_str
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'));
        if word_start {
            for w in ["true", "false"] {
                let end = i + w.len();
                if end <= b.len()
                    && s[i..end].eq_ignore_ascii_case(w)
                    && (end == b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_'))
                {
                    out.push_str(w);
                    i = end;
                    break;
                }
            }
            if i >= b.len() {
                break;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}
