//! # petrel-fuzz: fuzz targets for every parser that reads untrusted bytes
//!
//! Each target is a `pub fn NAME(data: &[u8])` that feeds `data` to the real parser,
//! then uses what it produced (unparse, evaluate, round-trip, build ads) and asserts what
//! must hold for any input: no panic, bounded work, nothing written outside a scratch
//! directory, and a printed form that parses back to itself where petrel relies on that.
//! A failed assertion is a panic, which the fuzzer reports as a crash.
//!
//! The coverage-guided fuzzer (`fuzz/` at the repository root, run by `scripts/fuzz.sh`)
//! calls these functions; `tests/replay.rs` replays every saved input of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through them in the ordinary
//! test suite, so a fixed crash stays fixed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

mod classad;
mod image;
mod pool;
mod submit;
mod userlog;

pub use classad::{classad_json, classad_text};
pub use image::{docker_archive, oci_manifest, sif, tar_layer};
pub use pool::pool_frame;
pub use submit::submit;
pub use userlog::userlog;

/// A fuzz target: one input, checked.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and fuzz binary carry.
pub const TARGETS: &[(&str, Target)] = &[
    ("classad_text", classad_text),
    ("classad_json", classad_json),
    ("submit", submit),
    ("pool_frame", pool_frame),
    ("oci_manifest", oci_manifest),
    ("tar_layer", tar_layer),
    ("sif", sif),
    ("docker_archive", docker_archive),
    ("userlog", userlog),
];

/// A fresh, empty directory for one input, removed when dropped. Inside one scratch
/// directory per process, so that inputs run in parallel threads never share one.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new() -> Scratch {
        static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let root = ROOT.get_or_init(|| {
            tempfile::Builder::new()
                .prefix("petrel-fuzz-")
                .tempdir()
                .expect("a scratch directory for the fuzz targets")
        });
        let dir = root
            .path()
            .join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
        std::fs::create_dir(&dir).expect("a scratch directory for one input");
        Scratch(dir)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
