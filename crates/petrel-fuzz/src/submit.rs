//! Submit descriptions, through macro expansion and queue statements to job ads: the
//! daemon never reads a submit file, but `petrel submit` does, from whoever wrote it.

use std::collections::BTreeMap;

use petrel_submit::{JobAd, Submission, SubmitOptions};

/// Procs built per input: enough to cover queue items and per-proc macros, few enough
/// that each input finishes in milliseconds.
const PROCS: usize = 16;

fn options(incremental: bool) -> SubmitOptions {
    SubmitOptions {
        max_procs: 64,
        // A fuzzer must never run commands it made up.
        allow_commands: false,
        qdate: Some(0),
        owner: Some("fuzz".into()),
        incremental,
        ..Default::default()
    }
}

/// A submit file: parse, expand, and build the first procs' ads both incrementally and
/// from scratch, which must agree (`SubmitOptions::incremental` promises the same ads).
pub fn submit(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let dir = crate::Scratch::new();
    let fast = Submission::from_text(&text, "fuzz.sub", dir.path(), &options(true));
    let slow = Submission::from_text(&text, "fuzz.sub", dir.path(), &options(false));
    let (fast, slow) = match (fast, slow) {
        (Ok(f), Ok(s)) => (f, s),
        (Err(_), Err(_)) => return,
        (f, s) => panic!(
            "incremental and full parsing disagree: {:?} vs {:?}",
            f.err(),
            s.err()
        ),
    };
    assert_eq!(fast.proc_count(), slow.proc_count());
    for (i, (f, s)) in fast.procs().zip(slow.procs()).take(PROCS).enumerate() {
        match (f, s) {
            (Ok(f), Ok(s)) => assert_eq!(
                attrs(&f),
                attrs(&s),
                "proc {i}: incremental and full ads differ"
            ),
            (Err(_), Err(_)) => break,
            (f, s) => panic!(
                "proc {i}: incremental and full builds disagree: {:?} vs {:?}",
                f.err(),
                s.err()
            ),
        }
    }
    if let Ok(all) = fast.expand() {
        assert_eq!(all.procs.len() as u64, fast.proc_count());
        // The cluster ad overlaid with a proc's delta is that proc's ad.
        for (i, built) in fast.procs().take(PROCS).enumerate() {
            let Ok(built) = built else { break };
            let full = all.full_ad(i).expect("a delta per proc");
            assert_eq!(
                attrs(&full),
                attrs(&built),
                "proc {i}: cluster ad + delta differs from the proc's ad"
            );
        }
    }
}

/// An ad's attributes by case-folded name (attribute names are case-insensitive, and
/// their order in the ad carries no meaning).
fn attrs(ad: &JobAd) -> BTreeMap<String, String> {
    ad.iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}
