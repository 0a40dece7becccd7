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
        let mut out = JobAd::new();
        self.delta_into(base, |k, v| out.attrs.push((k.clone(), v.clone())));
        out
    }

    /// A proc's delta as [`crate::Submission::expand`] makes it: `ProcId` and `JobStatus`
    /// first, then [`JobAd::delta_from`] the base; with the names of the base this ad
    /// lacks (a later queue statement's `Args` instead of `Arguments`), which a delta laid
    /// over the base would wrongly keep.
    pub(crate) fn proc_delta(&self, base: &DeltaBase) -> (JobAd, Vec<String>) {
        let mut out = JobAd {
            attrs: Vec::with_capacity(4),
        };
        for (name, default, guess) in [
            ("ProcId", "0", base.proc_id),
            ("JobStatus", "1", base.job_status),
        ] {
            let at = guess
                .filter(|&i| {
                    self.attrs
                        .get(i)
                        .is_some_and(|(k, _)| k.eq_ignore_ascii_case(name))
                })
                .or_else(|| self.position(name));
            // Shared with this ad when spelled the same: no copy per proc.
            let attr = match at.map(|i| &self.attrs[i]) {
                Some((k, v)) if &**k == name => (k.clone(), v.clone()),
                Some((_, v)) => (Arc::from(name), v.clone()),
                None => (Arc::from(name), Arc::from(default)),
            };
            out.attrs.push(attr);
        }
        let shared = self.delta_into(&base.ad, |k, v| match out.position(k) {
            Some(i) => out.attrs[i].1 = v.clone(),
            None => out.attrs.push((k.clone(), v.clone())),
        });
        // Names are unique in an ad: all of the base is here when the counts agree.
        let missing = if shared == base.ad.len() {
            Vec::new()
        } else {
            base.ad
                .attrs
                .iter()
                .filter(|(k, _)| self.position(k).is_none())
                .map(|(k, _)| k.to_string())
                .collect()
        };
        (out, missing)
    }

    /// Calls `f` with each attribute of `self` whose text differs from `base`'s; returns
    /// how many of `self`'s names `base` has.
    fn delta_into(&self, base: &JobAd, mut f: impl FnMut(&Arc<str>, &Arc<str>)) -> usize {
        let mut shared = 0;
        // The procs of a cluster are built from one template, so an attribute usually
        // sits at the same place in both ads, give or take the few that one of them
        // lacks: look there first (a large cluster would otherwise cost a scan of the
        // base per attribute per proc).
        let mut shift: isize = 0;
        for (i, (k, v)) in self.attrs.iter().enumerate() {
            let at = base.attrs.get(i.wrapping_add_signed(shift));
            let b = match at {
                Some((bk, bv)) if Arc::ptr_eq(bk, k) || bk.eq_ignore_ascii_case(k) => Some(bv),
                _ => base.position(k).map(|j| {
                    shift = j as isize - i as isize;
                    &base.attrs[j].1
                }),
            };
            if b.is_some() {
                shared += 1;
            }
            if !b.is_some_and(|b| Arc::ptr_eq(b, v) || **b == **v) {
                f(k, v);
            }
        }
        shared
    }

    /// Makes this ad equal to `to` again, cheaply when only values have changed since
    /// it was a copy of `to` (a proc built in a reused copy of its template).
    pub(crate) fn reset_to(&mut self, to: &JobAd) {
        let same_names = self.attrs.len() == to.attrs.len()
            && self
                .attrs
                .iter()
                .zip(&to.attrs)
                .all(|(a, b)| Arc::ptr_eq(&a.0, &b.0));
        if !same_names {
            self.attrs.clone_from(&to.attrs);
            return;
        }
        for (a, b) in self.attrs.iter_mut().zip(&to.attrs) {
            if !Arc::ptr_eq(&a.1, &b.1) {
                a.1 = b.1.clone();
            }
        }
    }

    /// Sets the value of the attribute at `i` (from [`JobAd::position`]).
    pub(crate) fn set_at(&mut self, i: usize, expr: impl AsRef<str>) {
        self.attrs[i].1 = Arc::from(expr.as_ref());
    }

    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.attrs
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// What [`JobAd::proc_delta`] compares procs with: the first proc's ad, and where its
/// `ProcId` and `JobStatus` are (where the next procs' are too).
pub(crate) struct DeltaBase {
    ad: JobAd,
    proc_id: Option<usize>,
    job_status: Option<usize>,
}

impl DeltaBase {
    pub(crate) fn new(ad: JobAd) -> DeltaBase {
        DeltaBase {
            proc_id: ad.position("ProcId"),
            job_status: ad.position("JobStatus"),
            ad,
        }
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

    #[test]
    fn delta_keeps_what_differs_wherever_it_sits() {
        let ad = |pairs: &[(&str, &str)]| {
            let mut a = JobAd::new();
            for (k, v) in pairs {
                a.insert(k, v);
            }
            a
        };
        let base = ad(&[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")]);
        // One missing, one extra, one out of order, one renamed by case only.
        let proc = ad(&[("a", "1"), ("X", "9"), ("C", "3"), ("B", "5"), ("d", "4")]);
        assert_eq!(proc.delta_from(&base), ad(&[("X", "9"), ("B", "5")]));
        assert!(base.delta_from(&base).is_empty());
        assert_eq!(base.delta_from(&JobAd::new()), base);
    }
}
