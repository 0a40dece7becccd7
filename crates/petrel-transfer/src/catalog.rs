//! What the top of the scratch directory held before the job ran.
//!
//! Without `transfer_output_files`, HTCondor sends back the files at the top of the
//! scratch directory that are new or changed since input transfer, comparing each file's
//! size and modification time with a catalog taken then. Petrel does the same and adds
//! the inode number, so a file deleted and re-created with the same size and time still
//! counts as new. A job that rewrites a file and then back-dates it to the same second
//! and size is not noticed (nor is it by HTCondor).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::Stat;

use crate::beneath::{list_dir, lstat_at, Root};

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Signature {
    ino: u64,
    size: i64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Signature {
    fn of(st: &Stat) -> Signature {
        Signature {
            ino: st.st_ino,
            size: st.st_size,
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
        }
    }
}

/// The names at the top of a scratch directory and what each was, taken after input
/// transfer (see [`crate::transfer_input`]); the default output set is what differs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    entries: BTreeMap<OsString, Signature>,
}

impl Catalog {
    /// Records the top of `scratch` (not following symbolic links).
    pub fn scan(scratch: &Path) -> io::Result<Catalog> {
        let root = Root::open(scratch, None)?;
        let mut entries = BTreeMap::new();
        for name in list_dir(root.fd())? {
            match lstat_at(root.fd(), &name) {
                Ok(st) => {
                    entries.insert(name, Signature::of(&st));
                }
                // gone between the listing and the look: not there, then
                Err(e) if e.raw_os_error() == Some(crate::error::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Catalog { entries })
    }

    /// How many names are recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `name` is recorded.
    pub fn contains(&self, name: &OsStr) -> bool {
        self.entries.contains_key(name)
    }

    /// Whether `name`, now described by `st`, is as recorded.
    pub(crate) fn unchanged(&self, name: &OsStr, st: &Stat) -> bool {
        self.entries.get(name) == Some(&Signature::of(st))
    }

    /// A text form to keep the catalog across a starter restart: one line per name,
    /// `inode size mtime nsec hex-name`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, s) in &self.entries {
            let hex: String = name.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(
                "{} {} {} {} {hex}\n",
                s.ino, s.size, s.mtime, s.mtime_nsec
            ));
        }
        out
    }

    /// Reads [`Catalog::to_text`]'s form; `None` if it is not that.
    pub fn from_text(text: &str) -> Option<Catalog> {
        let mut entries = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut f = line.split(' ');
            let sig = Signature {
                ino: f.next()?.parse().ok()?,
                size: f.next()?.parse().ok()?,
                mtime: f.next()?.parse().ok()?,
                mtime_nsec: f.next()?.parse().ok()?,
            };
            let hex = f.next()?;
            if f.next().is_some() || hex.len() % 2 != 0 || hex.is_empty() {
                return None;
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            entries.insert(OsStr::from_bytes(&bytes).to_os_string(), sig);
        }
        Some(Catalog { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("a b"), "x").expect("write");
        std::fs::write(t.path().join(OsStr::from_bytes(b"\xff\n")), "y").expect("write");
        std::fs::create_dir(t.path().join("d")).expect("mkdir");
        let c = Catalog::scan(t.path()).expect("scan");
        assert_eq!(c.len(), 3);
        let text = c.to_text();
        assert_eq!(Catalog::from_text(&text), Some(c));
        assert_eq!(Catalog::from_text("1 2 3\n"), None);
        assert_eq!(Catalog::from_text("1 2 3 4 6g\n"), None);
    }
}
