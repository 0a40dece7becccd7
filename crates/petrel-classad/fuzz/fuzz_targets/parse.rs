//! Parser fuzz target: any input must parse or fail with a typed error (no
//! panic, no stack overflow), and whatever parses must unparse and evaluate.
//!
//! Run: `cd crates/petrel-classad/fuzz && cargo +nightly fuzz run parse`.
//! `tests/fuzz_smoke.rs` runs the same checks on mutated corpus lines in
//! the ordinary test suite.

#![no_main]

use libfuzzer_sys::fuzz_target;
use petrel_classad::{json, parse_classad, parse_expr, parser::old_syntax, unparse, ClassAd};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(e) = parse_expr(text) {
        let printed = unparse(&e);
        let _ = parse_expr(&printed);
        let _ = petrel_classad::eval(&e);
        let ad = ClassAd::parse("[ a = 1; b = \"s\"; l = {1, 2}; n = [x = a] ]").unwrap_or_default();
        let _ = ad.eval(&e);
    }
    if let Ok(ad) = parse_classad(text) {
        let _ = ad.to_old_syntax();
        let _ = ad.to_json();
        for (name, _) in ad.iter() {
            let _ = ad.eval_attr(name);
        }
    }
    let _ = old_syntax::parse_old_classad(text);
    let _ = json::ad_from_json(text);
});
