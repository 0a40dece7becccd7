//! `TransferOutputRemaps`: `"name = dest; name2 = /abs/dest2"`.
//!
//! HTCondor's rules (`filename_remap_find`): entries are separated by `;` and split at the
//! first `=`, either may be escaped with a backslash (`\;`, `\=`); blanks around names are
//! trimmed, tabs and newlines are dropped, an entry without `=` is ignored. A name that
//! matches an entry exactly is replaced, and the result is looked up again (so remaps
//! chain); a name that matches nothing has its parent directory looked up instead
//! (`d = out` sends `d/x` to `out/x`). More than 128 steps is a cycle, which holds the job.

/// How many lookups one name may take before the remaps count as a cycle
/// (HTCondor's `MAX_REMAP_RECURSIONS`).
const MAX_REMAP_STEPS: usize = 128;

/// Parsed `TransferOutputRemaps`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remaps {
    entries: Vec<(String, String)>,
}

/// The remaps lead back to a name already remapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemapCycle {
    /// The name whose remapping did not end.
    pub name: String,
}

impl Remaps {
    /// Parses the attribute's value (already unquoted).
    pub fn parse(text: &str) -> Remaps {
        let text: String = text.chars().filter(|c| *c != '\t' && *c != '\n').collect();
        let mut entries = Vec::new();
        for entry in split_unescaped(&text, ';') {
            let mut parts = split_unescaped(&entry, '=');
            if parts.len() < 2 {
                continue;
            }
            let name = parts.remove(0);
            // only the first `=` separates; the rest belongs to the destination
            let dest = parts.join("=");
            let (name, dest) = (unescape(name.trim()), unescape(dest.trim()));
            if !name.is_empty() {
                entries.push((name, dest));
            }
        }
        Remaps { entries }
    }

    /// `(name, destination)` pairs in the order given.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// Whether there are no remaps.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `name` goes: `Ok(None)` when no remap applies.
    pub fn apply(&self, name: &str) -> Result<Option<String>, RemapCycle> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        self.find(name, 0).map_err(|()| RemapCycle {
            name: name.to_string(),
        })
    }

    fn find(&self, name: &str, depth: usize) -> Result<Option<String>, ()> {
        if depth > MAX_REMAP_STEPS {
            return Err(());
        }
        if let Some((_, dest)) = self.entries.iter().find(|(n, _)| n == name) {
            // a remapped name may itself be remapped
            return Ok(Some(
                self.find(dest, depth + 1)?.unwrap_or_else(|| dest.clone()),
            ));
        }
        match name.rsplit_once('/') {
            Some((parent, entry)) => Ok(self
                .find(parent, depth + 1)?
                .map(|p| format!("{p}/{entry}"))),
            None => Ok(None),
        }
    }
}

/// Splits at `delim` unless a backslash precedes it; the backslash stays (it is removed
/// by [`unescape`] once both delimiters have been split on).
fn split_unescaped(s: &str, delim: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&delim) {
            chars.next();
            cur.push('\\');
            cur.push(delim);
        } else if c == delim {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\;", ";").replace("\\=", "=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_apply() {
        let r = Remaps::parse("a = x/y; c = /tmp/zz ;bogus; d=out");
        assert_eq!(
            r.entries(),
            [
                ("a".to_string(), "x/y".to_string()),
                ("c".to_string(), "/tmp/zz".to_string()),
                ("d".to_string(), "out".to_string())
            ]
        );
        assert_eq!(r.apply("a"), Ok(Some("x/y".into())));
        assert_eq!(r.apply("c"), Ok(Some("/tmp/zz".into())));
        assert_eq!(r.apply("b"), Ok(None));
        // a directory's remap carries its contents
        assert_eq!(r.apply("d/e/f"), Ok(Some("out/e/f".into())));
    }

    #[test]
    fn escapes_and_chains() {
        let r = Remaps::parse(r"a\;b = c\=d; x = y; y = z");
        assert_eq!(r.apply("a;b"), Ok(Some("c=d".into())));
        assert_eq!(r.apply("x"), Ok(Some("z".into())));
    }

    #[test]
    fn cycle_is_an_error() {
        let r = Remaps::parse("a = b; b = a");
        assert_eq!(r.apply("a"), Err(RemapCycle { name: "a".into() }));
    }
}
