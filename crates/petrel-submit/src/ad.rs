//! [`JobAd`]: an ordered list of `(attribute, ClassAd expression text)` pairs.
//!
//! This is exactly what `condor_submit -dump` and `condor_q -long` print. The pool converts
//! it to real ClassAds once `petrel-classad` exists; until then the text is the contract.

use std::fmt;
use std::sync::Arc;

/// One job ad (a cluster ad, a per-proc delta, or a fully expanded proc ad).
///
/// Attribute names are case-insensitive, as in ClassAds; the spelling of the first
/// insertion is kept. Iteration order is insertion order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobAd {
    attrs: Vec<(Arc<str>, Arc<str>)>,
}

impl JobAd {
    /// An empty ad.
    pub fn new() -> Self {
        Self::default()
    }

    /// The expression text of `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| &*self.attrs[i].1)
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The value of `name` if it is a string literal, unquoted.
    pub fn get_string(&self, name: &str) -> Option<String> {
        self.get(name).and_then(unquote_string)
    }

    /// Sets `name` to the ClassAd expression `expr` (replacing an existing value in place).
    pub fn insert(&mut self, name: impl AsRef<str>, expr: impl AsRef<str>) {
        let name = name.as_ref();
        let expr: Arc<str> = Arc::from(expr.as_ref());
        match self.position(name) {
            Some(i) => self.attrs[i].1 = expr,
            None => self.attrs.push((Arc::from(name), expr)),
        }
    }

    /// Sets `name` to a string literal, quoted and escaped by ClassAd rules.
    pub fn insert_string(&mut self, name: impl AsRef<str>, value: &str) {
        self.insert(name, quote_string(value));
    }

    /// Sets `name` to a boolean literal.
    pub fn insert_bool(&mut self, name: impl AsRef<str>, value: bool) {
        self.insert(name, if value { "true" } else { "false" });
    }

    /// Sets `name` to an integer literal.
    pub fn insert_int(&mut self, name: impl AsRef<str>, value: i64) {
        self.insert(name, value.to_string());
    }

    /// Removes `name`, returning its expression text.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.position(name)
            .map(|i| self.attrs.remove(i).1.to_string())
    }

    /// `(name, expression text)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// Whether the ad has no attributes.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// Inserts every attribute of `other`, overriding same-named ones.
    pub fn update(&mut self, other: &JobAd) {
        for (k, v) in &other.attrs {
            match self.position(k) {
                Some(i) => self.attrs[i].1 = v.clone(),
                None => self.attrs.push((k.clone(), v.clone())),
            }
        }
    }

    /// The attributes of `self` whose text differs from (or is absent in) `base`.
    pub fn delta_from(&self, base: &JobAd) -> JobAd {
        self.delta_and_missing(base).0
    }

    /// As [`JobAd::delta_from`], with the names of `base` that `self` lacks: a delta
    /// laid over `base` would keep those, so the two do not make `self` again.
    pub fn delta_and_missing(&self, base: &JobAd) -> (JobAd, Vec<String>) {
        let mut out = JobAd::new();
        let mut shared = 0;
        for (k, v) in &self.attrs {
            match base.get(k) {
                Some(b) => {
                    shared += 1;
                    if b != &**v {
                        out.attrs.push((k.clone(), v.clone()));
                    }
                }
                None => out.attrs.push((k.clone(), v.clone())),
            }
        }
        // Names are unique in an ad, so all of `base` is in `self` when the counts agree.
        let missing = if shared == base.len() {
            Vec::new()
        } else {
            base.attrs
                .iter()
                .filter(|(k, _)| !self.contains(k))
                .map(|(k, _)| k.to_string())
                .collect()
        };
        (out, missing)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.attrs
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// The long form: one `Attr = value` line per attribute (`condor_q -long`).
impl fmt::Display for JobAd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in self.iter() {
            writeln!(f, "{k} = {v}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a JobAd {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Quotes `s` as a ClassAd string literal: `"` and `\` are escaped with a backslash.
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of a ClassAd string literal, or `None` if `text` is not one.
pub fn unquote_string(text: &str) -> Option<String> {
    let t = text.trim();
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            return None;
        }
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        let s = r#"a "b" \c"#;
        let q = quote_string(s);
        assert_eq!(q, r#""a \"b\" \\c""#);
        assert_eq!(unquote_string(&q).as_deref(), Some(s));
        assert_eq!(unquote_string("x"), None);
    }

    #[test]
    fn insert_is_case_insensitive_and_ordered() {
        let mut ad = JobAd::new();
        ad.insert("Cmd", "\"a\"");
        ad.insert_int("RequestCpus", 1);
        ad.insert("cmd", "\"b\"");
        assert_eq!(ad.get("CMD"), Some("\"b\""));
        let names: Vec<_> = ad.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["Cmd", "RequestCpus"]);
        assert_eq!(ad.to_string(), "Cmd = \"b\"\nRequestCpus = 1\n");
    }
}
