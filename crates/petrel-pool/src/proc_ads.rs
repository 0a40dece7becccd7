//! The procs of a submit as they travel: for each proc, `(attribute, expression text)`
//! pairs, written as JSON `[[["ProcId","0"],...],...]`.
//!
//! A submit of 100,000 procs is 100,000 small ads of a few short strings each. Read into
//! one `Vec<(String, String)>` per proc they would cost an allocation per string, twice
//! (reading and dropping); [`ProcAds`] keeps every string of every proc in one buffer.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Every proc's `(attribute, expression text)` pairs, in one buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProcAds {
    text: String,
    /// The end of each string in `text`: names and values alternate.
    ends: Vec<usize>,
    /// Where each proc's strings start in `ends`.
    procs: Vec<usize>,
}

impl ProcAds {
    pub fn new() -> ProcAds {
        ProcAds::default()
    }

    /// Adds a proc.
    pub fn push<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.procs.push(self.ends.len());
        for (k, v) in pairs {
            self.push_str(k);
            self.push_str(v);
        }
    }

    fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = ProcAd<'_>> + '_ {
        (0..self.procs.len()).map(|i| {
            let first = self.procs[i];
            let last = self.procs.get(i + 1).copied().unwrap_or(self.ends.len());
            ProcAd {
                text: &self.text,
                start: first.checked_sub(1).map_or(0, |j| self.ends[j]),
                ends: &self.ends[first..last],
            }
        })
    }
}

/// One proc of [`ProcAds`].
#[derive(Clone, Copy)]
pub struct ProcAd<'a> {
    text: &'a str,
    /// Where the proc's first string starts.
    start: usize,
    ends: &'a [usize],
}

impl<'a> ProcAd<'a> {
    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let text = self.text;
        let mut start = self.start;
        self.ends.chunks_exact(2).map(move |e| {
            let k = &text[start..e[0]];
            let v = &text[e[0]..e[1]];
            start = e[1];
            (k, v)
        })
    }

    /// The attribute names.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().map(|(k, _)| k)
    }
}

impl Serialize for ProcAds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for p in self.iter() {
            seq.serialize_element(&Pairs(p))?;
        }
        seq.end()
    }
}

struct Pairs<'a>(ProcAd<'a>);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for ProcAds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProcAds, D::Error> {
        let mut out = ProcAds::new();
        d.deserialize_seq(Level {
            out: &mut out,
            depth: 0,
        })?;
        Ok(out)
    }
}

/// Reads into `out` the list of procs (depth 0), one proc's list of pairs (1), a pair
/// (2) or a string (3).
struct Level<'a> {
    out: &'a mut ProcAds,
    depth: u8,
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.depth == 3 {
            d.deserialize_str(self)
        } else {
            d.deserialize_seq(self)
        }
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self.depth {
            0 => "a list of procs",
            1 => "a proc: a list of [attribute, expression] pairs",
            2 => "an [attribute, expression] pair",
            _ => "a string",
        })
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.out.push_str(s);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        let depth = self.depth + 1;
        if depth == 2 {
            out.procs.push(out.ends.len());
        }
        const PAIR: &str = "an [attribute, expression] pair";
        let mut n = 0;
        while seq
            .next_element_seed(Level {
                out: &mut *out,
                depth,
            })?
            .is_some()
        {
            n += 1;
            if depth == 3 && n > 2 {
                return Err(A::Error::invalid_length(n, &PAIR));
            }
        }
        if depth == 3 && n != 2 {
            return Err(A::Error::invalid_length(n, &PAIR));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(ads: &ProcAds) -> Vec<Vec<(String, String)>> {
        ads.iter()
            .map(|p| p.iter().map(|(k, v)| (k.into(), v.into())).collect())
            .collect()
    }

    #[test]
    fn reads_and_writes_the_json_of_a_list_of_pair_lists() {
        let json = r#"[[["ProcId","0"],["Args","\"a \\\"b\\\"\""]],[],[["ProcId","2"]]]"#;
        let ads: ProcAds = serde_json::from_str(json).unwrap();
        assert_eq!(ads.len(), 3);
        let expected = vec![
            vec![
                ("ProcId".to_string(), "0".to_string()),
                ("Args".to_string(), "\"a \\\"b\\\"\"".to_string()),
            ],
            vec![],
            vec![("ProcId".to_string(), "2".to_string())],
        ];
        assert_eq!(owned(&ads), expected);
        assert_eq!(serde_json::to_string(&ads).unwrap(), json);
        let std: Vec<Vec<(String, String)>> = serde_json::from_str(json).unwrap();
        assert_eq!(std, expected);
        let names: Vec<_> = ads.iter().next().unwrap().names().collect();
        assert_eq!(names, ["ProcId", "Args"]);
    }

    #[test]
    fn refuses_what_is_not_a_list_of_pair_lists() {
        for bad in [
            r#"{}"#,
            r#"[["ProcId","0"]]"#,
            r#"[[["ProcId"]]]"#,
            r#"[[["ProcId","0","x"]]]"#,
            r#"[[["ProcId",0]]]"#,
            r#"[[[]]]"#,
            r#"[[["ProcId","0"]]"#,
        ] {
            assert!(serde_json::from_str::<ProcAds>(bad).is_err(), "{bad}");
        }
    }
}
