//! Golden files: petrel's own `-dump`-style output (attribute order included) for a few
//! corpus files, so a change in output shows up even where the oracle is not installed.
//! Regenerate with `PETREL_BLESS=1 cargo test -p petrel-submit --test golden`.
//! Machine-specific values are replaced: the corpus path by `<CORPUS>`, the host name by
//! `<HOST>`; owner and time are fixed by the options.

use std::path::Path;

use petrel_submit::{Submission, SubmitOptions};

const FILES: &[&str] = &[
    "vanilla_basic",
    "queue_from_inline",
    "glidein_singularity",
    "transfer",
];

fn render(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = std::fs::canonicalize(root.join("tests/corpus")).expect("corpus");
    let opts = SubmitOptions {
        qdate: Some(1_700_000_000),
        owner: Some("alice".into()),
        ..Default::default()
    };
    let sub = Submission::from_file(corpus.join(format!("{name}.sub")), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    for (i, ad) in sub.procs().enumerate() {
        let mut ad = ad.unwrap_or_else(|e| panic!("{e}"));
        if ad.contains("FileSystemDomain") {
            ad.insert_string("FileSystemDomain", "<HOST>");
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&ad.to_string());
    }
    out.replace(&*corpus.to_string_lossy(), "<CORPUS>")
}

#[test]
fn golden_dumps() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var("PETREL_BLESS").is_ok_and(|v| v == "1");
    for name in FILES {
        let got = render(name);
        let path = dir.join(format!("{name}.dump"));
        if bless {
            std::fs::write(&path, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with PETREL_BLESS=1)", path.display()));
        assert_eq!(got, want, "{name}: output differs from {}", path.display());
    }
}
