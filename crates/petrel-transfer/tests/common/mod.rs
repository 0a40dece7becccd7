//! Shared helpers: a submit directory and a scratch directory per test, and job ads.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use petrel_classad::ClassAd;
use petrel_submit::{Submission, SubmitOptions};
use petrel_transfer::TransferPlan;

/// A submit directory (the job's `Iwd`) and a scratch directory.
pub struct Dirs {
    pub submit: tempfile::TempDir,
    pub scratch: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        Dirs {
            submit: tempfile::tempdir().expect("submit dir"),
            scratch: tempfile::tempdir().expect("scratch dir"),
        }
    }

    pub fn iwd(&self) -> &Path {
        self.submit.path()
    }

    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Writes a file under the submit directory, making its parents.
    pub fn submit_file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        write(&self.iwd().join(rel), contents)
    }

    /// Writes a file under the scratch directory, making its parents (the job's output).
    pub fn scratch_file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        write(&self.scratch().join(rel), contents)
    }

    /// A job ad with `Iwd`, `ShouldTransferFiles = "YES"` and `extra` attributes
    /// (`name = expr;` in new ClassAd syntax).
    pub fn ad(&self, extra: &str) -> ClassAd {
        let text = format!(
            "[ Iwd = \"{}\"; ShouldTransferFiles = \"YES\"; {extra} ]",
            self.iwd().display()
        );
        ClassAd::parse(&text).unwrap_or_else(|e| panic!("ad {text}: {e}"))
    }

    pub fn plan(&self, extra: &str) -> TransferPlan {
        TransferPlan::from_ad(&self.ad(extra)).unwrap_or_else(|e| panic!("plan: {e}"))
    }

    /// The job ad `petrel submit` makes from `text`, submitted from the submit directory.
    pub fn submit_ad(&self, text: &str) -> ClassAd {
        let opts = SubmitOptions {
            qdate: Some(1_700_000_000),
            owner: Some("alice".into()),
            ..Default::default()
        };
        let sub = Submission::from_text(text, "job.sub", self.iwd(), &opts)
            .unwrap_or_else(|e| panic!("submit: {e}"));
        let result = sub.expand().unwrap_or_else(|e| panic!("expand: {e}"));
        let job = result.full_ad(0).expect("one proc");
        let mut ad = ClassAd::new();
        for (name, expr) in job.iter() {
            ad.insert_expr_str(name, expr)
                .unwrap_or_else(|e| panic!("{name} = {expr}: {e}"));
        }
        ad
    }
}

pub fn write(path: &Path, contents: &[u8]) -> PathBuf {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("mkdir");
    }
    fs::write(path, contents).expect("write");
    path.to_path_buf()
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The sorted relative paths of everything under `dir` (directories end in `/`).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .display()
                .to_string();
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
