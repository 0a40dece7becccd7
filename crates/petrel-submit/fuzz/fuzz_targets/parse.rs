//! Fuzz the submit language: lexing, macro expansion, conditionals, queue parsing and
//! building the ads of the first procs. Commands are never run and the proc count is
//! capped, so every input must finish quickly with ads or an error, never a panic.
//!
//! Run: `cargo +nightly fuzz run parse corpus/parse ../tests/corpus` in
//! `crates/petrel-submit/fuzz` (the test corpus makes good seeds).

#![no_main]

use libfuzzer_sys::fuzz_target;
use petrel_submit::{Submission, SubmitOptions};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = SubmitOptions {
        max_procs: 1000,
        allow_commands: false,
        qdate: Some(0),
        owner: Some("fuzz".into()),
        ..Default::default()
    };
    let dir = std::env::temp_dir();
    if let Ok(sub) = Submission::from_text(&text, "fuzz.sub", dir, &opts) {
        for ad in sub.procs().take(50) {
            if let Ok(ad) = ad {
                let _ = ad.to_string();
            }
        }
    }
});
