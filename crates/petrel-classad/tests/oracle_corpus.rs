//! The hand-written corpus (`tests/corpus.txt`) evaluated by petrel and by
//! HTCondor's classad2; every line must agree, and must unparse the same.
//!
//! Corpus format: one expression per line; `#` starts a comment line;
//! `@ad [ ... ]` / `@target [ ... ]` set the scope ads for the lines after
//! it (`@ad` or `@target` alone clears them).

mod common;

use serde_json::{json, Value as Json};

fn corpus_requests() -> Vec<Json> {
    let text = include_str!("corpus.txt");
    let mut ad = String::new();
    let mut target = String::new();
    let mut reqs = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(rest) = l.strip_prefix("@ad") {
            ad = rest.trim().to_string();
            continue;
        }
        if let Some(rest) = l.strip_prefix("@target") {
            target = rest.trim().to_string();
            continue;
        }
        reqs.push(json!({"op": "eval", "expr": l, "ad": ad, "target": target}));
        reqs.push(json!({"op": "parse", "expr": l}));
    }
    reqs
}

#[test]
fn corpus_agrees_with_htcondor() {
    let reqs = corpus_requests();
    assert!(reqs.len() >= 600, "corpus too small: {}", reqs.len() / 2);
    let Some(py) = common::oracle_python("corpus_agrees_with_htcondor") else {
        return;
    };
    let oracle = common::run_oracle(&py, &reqs);
    common::assert_agree("corpus", &reqs, &oracle);
}
