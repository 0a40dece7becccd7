//! The incremental build (template + varying commands) must give exactly the ads that
//! building every proc from scratch gives.

use std::path::Path;

use petrel_submit::{JobAd, Submission, SubmitOptions};

fn ads(path: &Path, incremental: bool) -> Vec<JobAd> {
    let opts = SubmitOptions {
        qdate: Some(1),
        incremental,
        ..Default::default()
    };
    let sub = Submission::from_file(path, &opts).unwrap_or_else(|e| panic!("{e}"));
    sub.procs()
        .map(|a| a.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn sorted(ad: &JobAd) -> Vec<(String, String)> {
    let mut v: Vec<_> = ad
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

fn same(path: &Path) {
    let full = ads(path, false);
    let inc = ads(path, true);
    assert_eq!(full.len(), inc.len(), "{}", path.display());
    for (i, (a, b)) in full.iter().zip(&inc).enumerate() {
        assert_eq!(sorted(a), sorted(b), "{} proc {i}", path.display());
    }
}

#[test]
fn corpus_incremental_equals_full() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("corpus") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "sub") {
            same(&p);
            n += 1;
        }
    }
    assert!(n >= 30);
}

#[test]
fn tricky_variations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        // output switches between a file and /dev/null
        "executable = /bin/true\nout_0 = /dev/null\nout_1 = o.txt\noutput = $(out_$(Process):x)\nqueue 3\n",
        // arguments switch between old and new syntax
        "executable = /bin/true\nA0 = \"a 'b c'\"\nA1 = plain words\narguments = $(A$(Process))\nqueue 2\n",
        // a forced attribute and a simple command naming the same attribute
        "executable = /bin/true\npriority = $(Process)\n+JobPrio = 7\nqueue 3\n",
        // varying request_memory forces a full build (Requirements depends on it)
        "executable = /bin/true\nrequest_memory = $(Process)\nqueue 3\n",
        // varying universe, hold, initialdir
        "executable = /bin/true\nU = vanilla,local\nuniverse = $CHOICE(Process, U)\nhold = $(Process)\nqueue 2\n",
        // loop variables through helper macros and nested references
        "executable = /bin/true\nhelper = [$(x)]\nnested = $(helper)$(helper)\narguments = $(nested)\n+Tag = \"$(x)\"\nqueue x in (a b c)\n",
        // environment varies
        "executable = /bin/true\nenvironment = \"P=$(Process)\"\nqueue 2\n",
        "executable = /bin/true\nenv = P=$(Process)\nqueue 2\n",
        // a blank item keeps the previous values
        "executable = /bin/true\narguments = $(a)\nqueue a from (\nx\n\ny\n)\n",
    ];
    for (i, text) in cases.iter().enumerate() {
        let p = dir.path().join(format!("case{i}.sub"));
        std::fs::write(&p, text).expect("write");
        same(&p);
    }
}
