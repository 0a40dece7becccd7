//! JSON in and out, as HTCondor's `-json` writes it: literals become JSON
//! values, UNDEFINED is `null`, and any other expression (including ERROR,
//! times and non-finite reals) becomes the string `"\/Expr(<text>)\/"`.

use std::sync::Arc;

use crate::ast::Expr;
use crate::classad::ClassAd;
use crate::error::{Error, Result};
use crate::unparse;
use crate::value::Value;

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 32 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
}

fn quote_expr(out: &mut String, text: &str) {
    out.push_str("\"\\/Expr(");
    escape(out, text);
    out.push_str(")\\/\"");
}

struct Writer {
    out: String,
    indent: usize,
    oneline: bool,
}

impl Writer {
    fn newline(&mut self) {
        if !self.oneline {
            self.out.push('\n');
            for _ in 0..self.indent {
                self.out.push(' ');
            }
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Undefined => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Real(r) if r.is_finite() => self.out.push_str(&unparse::format_real(*r, true)),
            Value::String(s) => {
                self.out.push('"');
                escape(&mut self.out, s);
                self.out.push('"');
            }
            Value::List(l) => self.list(l),
            Value::Ad(a) => self.ad(a),
            other => quote_expr(&mut self.out, &unparse::unparse_value(other)),
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Literal(v) => self.value(v),
            Expr::List(l) => self.list(l),
            Expr::Ad(a) => self.ad(a),
            other => quote_expr(&mut self.out, &unparse::unparse(other)),
        }
    }

    fn list(&mut self, items: &[Expr]) {
        self.out.push('[');
        self.indent += 2;
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.newline();
            self.expr(e);
        }
        self.indent -= 2;
        self.newline();
        self.out.push(']');
    }

    fn ad(&mut self, ad: &ClassAd) {
        self.out.push('{');
        self.indent += 2;
        for (i, (name, e)) in ad.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.newline();
            self.out.push('"');
            escape(&mut self.out, name);
            self.out.push_str("\": ");
            self.expr(e);
        }
        self.indent -= 2;
        self.newline();
        self.out.push('}');
    }
}

/// One ad as HTCondor's JSON (`oneline` = compact, as `-json` with `:1`).
pub fn ad_to_json(ad: &ClassAd, oneline: bool) -> String {
    let mut w = Writer {
        out: String::new(),
        indent: 0,
        oneline,
    };
    w.ad(ad);
    w.out
}

/// Several ads as `condor_q -json` prints them: a JSON array of objects.
pub fn ads_to_json(ads: &[ClassAd]) -> String {
    let mut out = String::from("[\n");
    for (i, ad) in ads.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&ad_to_json(ad, false));
    }
    out.push_str("\n]\n");
    out
}

/// A value as HTCondor's JSON.
pub fn value_to_json(v: &Value) -> String {
    let mut w = Writer {
        out: String::new(),
        indent: 0,
        oneline: true,
    };
    w.value(v);
    w.out
}

fn from_json(j: &serde_json::Value, depth: usize) -> Result<Expr> {
    if depth > 200 {
        return Err(Error::Json("nesting too deep".into()));
    }
    Ok(match j {
        serde_json::Value::Null => Expr::Literal(Value::Undefined),
        serde_json::Value::Bool(b) => Expr::Literal(Value::Bool(*b)),
        serde_json::Value::Number(n) => match (n.as_i64(), n.is_u64()) {
            (Some(i), _) => Expr::Literal(Value::Int(i)),
            // HTCondor reads an out-of-range integer as 0.
            (None, true) => Expr::Literal(Value::Int(0)),
            _ => Expr::Literal(Value::Real(n.as_f64().unwrap_or(0.0))),
        },
        serde_json::Value::String(s) => match s.strip_prefix(EXPR_MARK) {
            Some(quoted) => match quoted
                .strip_prefix("/Expr(")
                .and_then(|r| r.strip_suffix(")/"))
            {
                Some(text) => crate::parser::parse_expr(text)?,
                None => Expr::Literal(Value::from(quoted)),
            },
            None => Expr::Literal(Value::from(s.as_str())),
        },
        serde_json::Value::Array(items) => {
            let v: Result<Vec<Expr>> = items.iter().map(|x| from_json(x, depth + 1)).collect();
            Expr::List(Arc::new(v?))
        }
        serde_json::Value::Object(map) => Expr::Ad(Arc::new(object_to_ad(map, depth + 1)?)),
    })
}

/// Marks strings written `"\/...\/"` in the raw JSON (HTCondor's quoted
/// expressions; an unescaped `"/Expr(x)/"` is an ordinary string).
const EXPR_MARK: &str = "\u{1}";

/// Prefix every string literal whose raw text starts and ends with `\/`
/// with [`EXPR_MARK`] (as the escape `\u0001`), before serde decodes it.
fn mark_quoted_exprs(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        // Find the end of this string literal.
        let start = i + 1;
        let mut j = start;
        while j < b.len() && b[j] != b'"' {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        let end = j.min(b.len());
        let raw = &text[start..end];
        if raw.len() >= 4 && raw.starts_with("\\/") && raw.ends_with("\\/") {
            out.push_str(&text[last..start]);
            out.push_str("\\u0001");
            last = start;
        }
        i = end + 1;
    }
    out.push_str(&text[last..]);
    out
}

fn parse_json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&mark_quoted_exprs(text)).map_err(|e| Error::Json(e.to_string()))
}

fn object_to_ad(map: &serde_json::Map<String, serde_json::Value>, depth: usize) -> Result<ClassAd> {
    let mut ad = ClassAd::new();
    for (k, v) in map {
        ad.insert(k, from_json(v, depth)?);
    }
    Ok(ad)
}

/// Parse one JSON object into an ad. Strings of the form `"\/Expr(...)\/"`
/// are parsed as expressions.
pub fn ad_from_json(text: &str) -> Result<ClassAd> {
    let j = parse_json(text)?;
    match &j {
        serde_json::Value::Object(m) => object_to_ad(m, 0),
        _ => Err(Error::Json("expected a JSON object".into())),
    }
}

/// Parse a JSON array of objects (or a single object) into ads.
pub fn ads_from_json(text: &str) -> Result<Vec<ClassAd>> {
    let j = parse_json(text)?;
    match &j {
        serde_json::Value::Object(m) => Ok(vec![object_to_ad(m, 0)?]),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::Object(m) => object_to_ad(m, 0),
                _ => Err(Error::Json("expected an array of objects".into())),
            })
            .collect(),
        _ => Err(Error::Json("expected a JSON object or array".into())),
    }
}
