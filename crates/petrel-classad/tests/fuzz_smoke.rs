//! A deterministic, in-suite version of the `classad_text` fuzz target
//! (`crates/petrel-fuzz`, run by `scripts/fuzz.sh`): corpus lines are mutated (bytes
//! replaced, inserted, deleted, spliced) and fed to every parser, the
//! unparser and the evaluator. Nothing may panic.

use petrel_classad::{json, parse_classad, parse_expr, parser::old_syntax, unparse, ClassAd};

fn check(text: &str, ad: &ClassAd) {
    if let Ok(e) = parse_expr(text) {
        let printed = unparse(&e);
        let _ = parse_expr(&printed);
        let _ = petrel_classad::eval(&e);
        let _ = ad.eval(&e);
    }
    if let Ok(a) = parse_classad(text) {
        let _ = a.to_old_syntax();
        let _ = a.to_json();
        for (name, _) in a.iter() {
            let _ = a.eval_attr(name);
        }
    }
    let _ = old_syntax::parse_old_classad(text);
    let _ = json::ad_from_json(text);
}

/// Inputs the fuzzer once crashed on.
const REGRESSIONS: &[&str] = &[
    "absTime(\"substr1-02T00:00:00Z\") - absTime(\"2020-01-0\u{3eb}+00:00:00Z\")",
    "-1 >>> -9223372036854775808",
    "quantize(5, -9223372036854775808)",
    "string(absTime(0, -2147483648))",
    "formatTime(absTime(0, -2147483648), \"%z\")",
    "interval(-9223372036854775808)",
    "substr(\"abc\", -9223372036854775808, 9223372036854775807)",
    "{1}[9223372036854775807]",
    "relTime(\"9999999999999999999d\")",
    "absTime(9223372036854775807) + relTime(100)",
];

#[test]
fn fuzzer_regressions() {
    let ad = ClassAd::new();
    for r in REGRESSIONS {
        check(r, &ad);
    }
}

#[test]
fn mutated_corpus_never_panics() {
    let corpus: Vec<&str> = include_str!("corpus.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches("@ad").trim_start_matches("@target"))
        .collect();
    let ad =
        parse_classad("[ a = 1; b = \"s\"; l = {1, 2}; n = [x = a]; self_ref = self_ref + 1 ]")
            .unwrap_or_default();
    let alphabet: &[u8] = b" ()[]{}.,;:?=!<>&|^~+-*/%\"'\\0123456789eExabcTARGETMY_";
    let mut state: u64 = 0x5eed;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut runs = 0;
    for round in 0..12 {
        for (i, line) in corpus.iter().enumerate() {
            let mut bytes = line.as_bytes().to_vec();
            for _ in 0..=round % 4 {
                let r = next();
                let pos = if bytes.is_empty() {
                    0
                } else {
                    (r as usize >> 8) % bytes.len()
                };
                let c = alphabet[(r as usize >> 32) % alphabet.len()];
                match r % 4 {
                    0 if !bytes.is_empty() => bytes[pos] = c,
                    1 => bytes.insert(pos, c),
                    2 if !bytes.is_empty() => {
                        bytes.remove(pos);
                    }
                    _ => {
                        let other = corpus[(i + (r as usize >> 16)) % corpus.len()].as_bytes();
                        let cut = if other.is_empty() {
                            0
                        } else {
                            (r as usize >> 40) % other.len()
                        };
                        bytes.splice(pos..pos, other[cut..].iter().copied());
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            check(&text, &ad);
            runs += 1;
        }
    }
    assert!(runs > 5000);
}
