//! `DiskUsage`: how much the job's scratch directory holds.
//!
//! HTCondor's starter sums the sizes of the files in the scratch directory, skipping
//! symbolic links, and reports KiB. Petrel does the same, also counting a file with
//! several hard links once, staying on the scratch directory's file system, and stopping
//! at a time budget so a job that makes millions of files cannot stall the starter (the
//! answer is then a lower bound, flagged as incomplete).

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{Dir, FileType};

use crate::beneath::{lstat_at, open_dir_at, Root};
use crate::MAX_DEPTH;

/// How long [`disk_usage`] may take.
pub const DISK_USAGE_BUDGET: Duration = Duration::from_secs(2);

/// The result of [`disk_usage_within`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes in files, rounded up to KiB (the unit of `DiskUsage`).
    pub kib: u64,
    /// Bytes in files.
    pub bytes: u64,
    /// Bytes the files take on disk (their blocks: a sparse file counts only what it
    /// holds), rounded up to KiB. This is what a disk limit compares, since the apparent
    /// size of a sparse file takes no space.
    pub allocated_kib: u64,
    /// Directory entries looked at.
    pub entries: u64,
    /// False when the walk stopped early (time budget, a directory deeper than petrel
    /// follows, an unreadable directory): the numbers are then a lower bound.
    pub complete: bool,
}

/// `DiskUsage` of a scratch directory in KiB, within [`DISK_USAGE_BUDGET`].
pub fn disk_usage(scratch: &Path) -> u64 {
    disk_usage_within(scratch, DISK_USAGE_BUDGET).kib
}

/// The size of the files under `scratch`, not following symbolic links, giving up after
/// `budget`.
pub fn disk_usage_within(scratch: &Path, budget: Duration) -> DiskUsage {
    let deadline = Instant::now() + budget;
    let mut u = DiskUsage {
        complete: true,
        ..DiskUsage::default()
    };
    let Ok(root) = Root::open(scratch, None) else {
        u.complete = false;
        return u;
    };
    let Ok(root_st) = rustix::fs::fstat(root.fd()) else {
        u.complete = false;
        return u;
    };
    let mut seen_links: HashSet<(u64, u64)> = HashSet::new();
    let mut allocated: u64 = 0;
    let mut stack: Vec<Dir> = match Dir::read_from(root.fd()) {
        Ok(d) => vec![d],
        Err(_) => {
            u.complete = false;
            return u;
        }
    };
    loop {
        let depth = stack.len();
        let Some(dir) = stack.last_mut() else { break };
        let entry = match dir.next() {
            None => {
                stack.pop();
                continue;
            }
            Some(Err(_)) => {
                u.complete = false;
                stack.pop();
                continue;
            }
            Some(Ok(e)) => e,
        };
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        u.entries += 1;
        if u.entries % 256 == 0 && Instant::now() > deadline {
            u.complete = false;
            tracing::warn!(
                scratch = %scratch.display(),
                entries = u.entries,
                "disk usage walk stopped at its time budget"
            );
            break;
        }
        let name = std::ffi::OsStr::from_bytes(name);
        let Ok(dirfd) = dir.fd() else {
            u.complete = false;
            continue;
        };
        let Ok(st) = lstat_at(dirfd, name) else {
            // removed while we looked: nothing to count
            continue;
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {}
            FileType::Directory => {
                if st.st_dev != root_st.st_dev {
                    // a mount inside the scratch directory is not the job's disk
                    continue;
                }
                if depth >= MAX_DEPTH {
                    u.complete = false;
                    continue;
                }
                match open_dir_at(dirfd, name).map(Dir::new) {
                    Ok(Ok(d)) => stack.push(d),
                    _ => u.complete = false,
                }
            }
            _ => {
                if st.st_nlink > 1 && !seen_links.insert((st.st_dev, st.st_ino)) {
                    continue;
                }
                u.bytes += u64::try_from(st.st_size).unwrap_or(0);
                allocated += u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512);
            }
        }
    }
    u.kib = u.bytes.div_ceil(1024);
    u.allocated_kib = allocated.div_ceil(1024);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_once_and_skips_links() {
        let t = tempfile::tempdir().expect("tempdir");
        let s = t.path();
        std::fs::write(s.join("a"), vec![0u8; 3000]).expect("write");
        std::fs::create_dir_all(s.join("d/e")).expect("mkdir");
        std::fs::write(s.join("d/e/b"), vec![0u8; 2000]).expect("write");
        std::fs::hard_link(s.join("a"), s.join("d/a2")).expect("link");
        std::os::unix::fs::symlink("/usr/bin", s.join("big")).expect("symlink");
        let u = disk_usage_within(s, Duration::from_secs(10));
        assert!(u.complete);
        assert_eq!(u.bytes, 5000);
        assert_eq!(u.kib, 5);
        assert_eq!(disk_usage(s), 5);
        // Blocks: at least what was written, in whole file system blocks.
        assert!(u.allocated_kib >= 5, "{u:?}");
    }

    #[test]
    fn allocated_size_ignores_the_holes_of_sparse_files() {
        let t = tempfile::tempdir().expect("tempdir");
        let f = std::fs::File::create(t.path().join("sparse")).expect("create");
        f.set_len(1 << 30).expect("set_len");
        std::fs::write(t.path().join("full"), vec![1u8; 1 << 20]).expect("write");
        let u = disk_usage_within(t.path(), Duration::from_secs(10));
        assert!(u.kib >= (1 << 20), "{u:?}");
        assert!(u.allocated_kib >= 1024, "{u:?}");
        assert!(u.allocated_kib < 4096, "the hole counted: {u:?}");
    }

    #[test]
    fn zero_budget_stops_early_on_a_big_tree() {
        let t = tempfile::tempdir().expect("tempdir");
        for i in 0..600 {
            std::fs::write(t.path().join(format!("f{i}")), "x").expect("write");
        }
        let u = disk_usage_within(t.path(), Duration::ZERO);
        assert!(!u.complete);
        assert!(u.entries < 600);
    }
}
