//! Replays every saved fuzz input through its target: the seed corpora and what the
//! fuzzer found (`fuzz/corpus/<target>/`) and the reproducers of fixed crashes
//! (`fuzz/regressions/<target>/`). A crash that comes back fails here.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let p = e.expect("list a corpus directory").path();
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str) {
    let (_, run) = petrel_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = inputs(target);
    assert!(!files.is_empty(), "no seed corpus for {target}");
    let mut failed = Vec::new();
    for f in files {
        let data = std::fs::read(&f).expect("read a corpus file");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target} fails on:\n{}",
        failed.join("\n")
    );
}

/// Every target has a test below, and every corpus directory a target.
#[test]
fn every_target_is_replayed() {
    let here = include_str!("replay.rs");
    for (name, _) in petrel_fuzz::TARGETS {
        assert!(
            here.contains(&format!("fn {name}() {{")),
            "no replay test for {name}"
        );
    }
    for kind in ["corpus", "regressions"] {
        let Ok(rd) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for e in rd {
            let name = e.expect("list the corpora").file_name();
            let name = name.to_string_lossy();
            assert!(
                petrel_fuzz::TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{kind}/{name} belongs to no target"
            );
        }
    }
}

#[test]
fn classad_text() {
    replay("classad_text");
}

#[test]
fn classad_json() {
    replay("classad_json");
}

#[test]
fn submit() {
    replay("submit");
}

#[test]
fn pool_frame() {
    replay("pool_frame");
}

#[test]
fn oci_manifest() {
    replay("oci_manifest");
}

#[test]
fn tar_layer() {
    replay("tar_layer");
}

#[test]
fn sif() {
    replay("sif");
}

#[test]
fn docker_archive() {
    replay("docker_archive");
}

#[test]
fn userlog() {
    replay("userlog");
}
