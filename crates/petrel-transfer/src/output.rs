//! Output transfer: files the job made, from the scratch directory back to the submit
//! side, after it ran.
//!
//! The scratch directory is the job's, so it is read only through
//! [`crate::beneath::Root`]: nothing outside it is ever read, whatever links the job left.
//! The crate documentation states the policy for symbolic links.
//!
//! Destinations are the names of [`crate::plan::OutputItem`], remapped by
//! `TransferOutputRemaps`, placed in `Iwd` unless absolute. Their directories must exist
//! (HTCondor does not create them either), except the directories being transferred.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Stat};

use crate::beneath::{list_dir, lstat_at, open_dir_at, open_file_at, Found, ResolveError, Root};
use crate::catalog::Catalog;
use crate::error::{Direction, ErrorKind, Side, TransferError, ELOOP, EPERM};
use crate::place::{chmod_path, make_dir_path, write_file_replacing};
use crate::plan::{OutputSet, ShouldTransfer, StdFile, StdMode, TransferPlan, WhenToTransfer};
use crate::plan::{STDERR_NAME, STDOUT_NAME};
use crate::{SkipReason, Skipped, TransferStats, MAX_DEPTH};

/// When output transfer happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputEvent {
    /// The job exited; `success` as the job's success condition decides
    /// (`JobSuccessExitCode`, exit code 0 by default). Only `ON_SUCCESS` cares.
    Exit {
        /// Whether the job succeeded.
        success: bool,
    },
    /// The job was evicted (preempted, vacated). Only `ON_EXIT_OR_EVICT` transfers then:
    /// the files go to the given directory (the job's spool) under their scratch names,
    /// without remaps, for [`crate::restore_spool`] to put back when the job restarts.
    Evict,
}

/// Output transfer at a successful exit: [`transfer_output_on`] with
/// `OutputEvent::Exit { success: true }`. `iwd` is where relative destinations go
/// (normally `plan.iwd`); `catalog` is [`crate::InputTransfer::catalog`].
pub fn transfer_output(
    plan: &TransferPlan,
    scratch: &Path,
    iwd: &Path,
    catalog: &Catalog,
) -> Result<TransferStats, TransferError> {
    transfer_output_on(
        plan,
        scratch,
        iwd,
        catalog,
        OutputEvent::Exit { success: true },
    )
}

/// Sends the job's outputs from `scratch` to `dest_dir` (the job's `Iwd` at exit, its
/// spool directory at eviction), as the plan says for `event`. Standard output and error
/// go first, so they arrive even when another file fails. A failure does not stop the
/// other files; the first one is returned (hold code 12, the errno as subcode).
pub fn transfer_output_on(
    plan: &TransferPlan,
    scratch: &Path,
    dest_dir: &Path,
    catalog: &Catalog,
    event: OutputEvent,
) -> Result<TransferStats, TransferError> {
    if plan.should_transfer == ShouldTransfer::No {
        return Ok(TransferStats::default());
    }
    let (spool, std_only) = match (event, plan.when) {
        (OutputEvent::Evict, WhenToTransfer::OnExitOrEvict) => (true, false),
        (OutputEvent::Evict, _) => return Ok(TransferStats::default()),
        (OutputEvent::Exit { success: false }, WhenToTransfer::OnSuccess) => (false, true),
        (OutputEvent::Exit { .. }, _) => (false, false),
    };
    let root = Root::open(scratch, plan.scratch_mount.as_deref()).map_err(|e| {
        TransferError::io(
            Direction::Output,
            Side::ExecutionPoint,
            ErrorKind::Read,
            scratch,
            &e,
        )
    })?;
    let mut run = OutputRun {
        plan,
        root,
        scratch,
        dest_dir,
        spool,
        stats: TransferStats::default(),
        first_error: None,
    };
    for (std, name) in [(&plan.stdout, STDOUT_NAME), (&plan.stderr, STDERR_NAME)] {
        if let Some(std) = std {
            run.send_std(std, name);
        }
    }
    if !std_only {
        match &plan.outputs {
            OutputSet::Listed(items) => {
                for item in items {
                    let name = if spool { &item.source } else { &item.name };
                    run.send_named(&item.source, name);
                }
            }
            OutputSet::NewFiles => run.send_new_files(catalog),
        }
    }
    tracing::debug!(
        scratch = %scratch.display(),
        files = run.stats.files,
        bytes = run.stats.bytes,
        skipped = run.stats.skipped.len(),
        "output transfer done"
    );
    match run.first_error {
        Some(e) => Err(e),
        None => Ok(run.stats),
    }
}

struct OutputRun<'a> {
    plan: &'a TransferPlan,
    root: Root,
    scratch: &'a Path,
    dest_dir: &'a Path,
    /// Eviction: scratch names, no remaps.
    spool: bool,
    stats: TransferStats,
    first_error: Option<TransferError>,
}

impl OutputRun<'_> {
    fn fail(&mut self, e: TransferError) {
        tracing::warn!(error = %e, "output transfer failure");
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    fn read_err(&self, rel: &Path, e: &io::Error) -> TransferError {
        TransferError::io(
            Direction::Output,
            Side::ExecutionPoint,
            ErrorKind::Read,
            &self.scratch.join(rel),
            e,
        )
    }

    fn write_err(&self, kind: ErrorKind, dest: &Path, e: &io::Error) -> TransferError {
        TransferError::io(Direction::Output, Side::AccessPoint, kind, dest, e)
    }

    fn skip(&mut self, rel: &Path, reason: SkipReason) {
        tracing::warn!(path = %self.scratch.join(rel).display(), ?reason, "not transferred");
        self.stats.skipped.push(Skipped {
            path: self.scratch.join(rel),
            reason,
        });
    }

    /// Where a file sent as `name` goes: remapped (unless spooling), placed in the
    /// destination directory unless absolute.
    fn destination(&self, name: &Path) -> Result<PathBuf, TransferError> {
        let mut dest = name.to_path_buf();
        if !self.spool {
            if let Some(s) = name.to_str() {
                match self.plan.remaps.apply(s) {
                    Ok(Some(d)) => dest = PathBuf::from(d),
                    Ok(None) => {}
                    Err(cycle) => {
                        return Err(TransferError::refused(
                            Direction::Output,
                            Side::AccessPoint,
                            ErrorKind::RemapCycle,
                            Some(name),
                            EPERM,
                            format!("remaps resulted in a cycle for {}", cycle.name),
                        ))
                    }
                }
            }
        }
        // the plan checked every name and remap; this guards the combinations
        if dest.components().any(|c| c == Component::ParentDir) || dest.as_os_str().is_empty() {
            return Err(TransferError::refused(
                Direction::Output,
                Side::AccessPoint,
                ErrorKind::PathEscape,
                Some(&dest),
                EPERM,
                "a destination must not use ..",
            ));
        }
        Ok(self.dest_dir.join(dest))
    }

    /// Standard output or error: the file the starter wrote in the scratch directory.
    fn send_std(&mut self, std: &StdFile, scratch_name: &str) {
        if std.mode != StdMode::Transfer {
            return;
        }
        let rel = Path::new(scratch_name);
        let dest = if self.spool {
            self.dest_dir.join(scratch_name)
        } else {
            std.path_in(self.dest_dir)
        };
        match self.root.resolve(rel) {
            Ok(Found::File(mut f, st)) => self.place_file(&dest, &mut f, &st),
            Ok(_) => self.skip(rel, SkipReason::Special),
            Err(ResolveError::Escape) => self.skip(rel, SkipReason::SymlinkOutside),
            Err(ResolveError::Io(e)) if e.raw_os_error() == Some(crate::error::ENOENT) => {
                tracing::debug!(file = scratch_name, "no standard stream file to send back");
            }
            Err(ResolveError::Io(e)) => {
                let err = self.read_err(rel, &e);
                self.fail(err);
            }
        }
    }

    /// An entry of `TransferOutput`: it must exist and must not lead outside.
    fn send_named(&mut self, source: &Path, name: &Path) {
        if let Some(parent) = name.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !self.make_parents(parent) {
                return;
            }
        }
        match self.root.resolve(source) {
            Ok(found) => self.send_found(found, source, name, 0),
            Err(ResolveError::Escape) => {
                let err = TransferError::refused(
                    Direction::Output,
                    Side::ExecutionPoint,
                    ErrorKind::SymlinkEscape,
                    Some(&self.scratch.join(source)),
                    EPERM,
                    "a symbolic link that leads outside the job's scratch directory is not followed",
                );
                self.fail(err);
            }
            Err(ResolveError::Io(e)) => {
                let err = self.read_err(source, &e);
                self.fail(err);
            }
        }
    }

    /// Makes the directories a name kept with its relative path (or spooled) sits in,
    /// each remapped like a name of its own, as HTCondor sends them. Returns false after
    /// a failure.
    fn make_parents(&mut self, parent: &Path) -> bool {
        let mut prefix = PathBuf::new();
        for c in parent.components() {
            prefix.push(c);
            let dest = match self.destination(&prefix) {
                Ok(d) => d,
                Err(e) => {
                    self.fail(e);
                    return false;
                }
            };
            match make_dir_path(&dest, self.plan.owner) {
                Ok(true) => {
                    // the scratch directory's permissions, when the name is one there
                    let mode = match self.root.resolve(&prefix) {
                        Ok(Found::Dir(fd)) => rustix::fs::fstat(&fd).map(|st| st.st_mode).ok(),
                        _ => None,
                    };
                    if let Err(e) = chmod_path(&dest, mode.unwrap_or(0o755)) {
                        let err = self.write_err(ErrorKind::CreateDir, &dest, &e);
                        self.fail(err);
                        return false;
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    let err = self.write_err(ErrorKind::CreateDir, &dest, &e);
                    self.fail(err);
                    return false;
                }
            }
        }
        true
    }

    /// The default output set: new or changed entries at the top of the scratch
    /// directory, except directories, the executable and the starter's own files.
    fn send_new_files(&mut self, catalog: &Catalog) {
        let names = match list_dir(self.root.fd()) {
            Ok(n) => n,
            Err(e) => {
                let err = TransferError::io(
                    Direction::Output,
                    Side::ExecutionPoint,
                    ErrorKind::ListDir,
                    self.scratch,
                    &e,
                );
                return self.fail(err);
            }
        };
        let exe = self
            .plan
            .executable
            .as_ref()
            .and_then(|e| e.in_scratch.as_deref());
        for name in names {
            if self
                .plan
                .starter_files
                .iter()
                .any(|s| OsStr::new(s) == name)
                || exe.is_some_and(|e| e.as_os_str() == name)
            {
                continue;
            }
            let rel = PathBuf::from(&name);
            let st = match lstat_at(self.root.fd(), &name) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(crate::error::ENOENT) => continue,
                Err(e) => {
                    let err = self.read_err(&rel, &e);
                    self.fail(err);
                    continue;
                }
            };
            if catalog.unchanged(&name, &st) {
                continue;
            }
            match FileType::from_raw_mode(st.st_mode) {
                // HTCondor does not search directories for new files
                FileType::Directory => {}
                FileType::RegularFile => match open_file_at(self.root.fd(), &name, &st) {
                    Ok((mut f, st)) => {
                        let dest = self.destination(&rel);
                        match dest {
                            Ok(d) => self.place_file(&d, &mut f, &st),
                            Err(e) => self.fail(e),
                        }
                    }
                    Err(e) => {
                        let err = self.read_err(&rel, &e);
                        self.fail(err);
                    }
                },
                FileType::Symlink => match self.root.resolve(&rel) {
                    Ok(Found::File(mut f, st)) => match self.destination(&rel) {
                        Ok(d) => self.place_file(&d, &mut f, &st),
                        Err(e) => self.fail(e),
                    },
                    Ok(Found::Dir(_)) => {}
                    Ok(_) => self.skip(&rel, SkipReason::Special),
                    Err(ResolveError::Escape) => self.skip(&rel, SkipReason::SymlinkOutside),
                    Err(ResolveError::Io(_)) => self.skip(&rel, SkipReason::BrokenSymlink),
                },
                _ => self.skip(&rel, SkipReason::Special),
            }
        }
    }

    /// Sends what a name resolved to: a file, or a directory and everything in it.
    fn send_found(&mut self, found: Found, source: &Path, name: &Path, depth: usize) {
        match found {
            Found::File(mut f, st) => match self.destination(name) {
                Ok(d) => self.place_file(&d, &mut f, &st),
                Err(e) => self.fail(e),
            },
            Found::Dir(fd) => self.send_dir(fd.as_fd(), source, name, depth),
            Found::Special => self.skip(source, SkipReason::Special),
        }
    }

    fn send_dir(&mut self, fd: BorrowedFd<'_>, source: &Path, name: &Path, depth: usize) {
        if depth >= MAX_DEPTH {
            let err = TransferError::refused(
                Direction::Output,
                Side::ExecutionPoint,
                ErrorKind::TooDeep,
                Some(&self.scratch.join(source)),
                ELOOP,
                format!("directory tree deeper than {MAX_DEPTH} levels"),
            );
            return self.fail(err);
        }
        let dest = match self.destination(name) {
            Ok(d) => d,
            Err(e) => return self.fail(e),
        };
        let created = match make_dir_path(&dest, self.plan.owner) {
            Ok(c) => c,
            Err(e) => {
                let err = self.write_err(ErrorKind::CreateDir, &dest, &e);
                return self.fail(err);
            }
        };
        let mode = rustix::fs::fstat(fd).map(|st| st.st_mode).unwrap_or(0o755);
        let names = match list_dir(fd) {
            Ok(n) => n,
            Err(e) => {
                let err = self.read_err(source, &e);
                return self.fail(err);
            }
        };
        for child in names {
            let src = source.join(&child);
            let sent = name.join(&child);
            self.send_child(fd, &child, &src, &sent, depth + 1);
        }
        if created {
            if let Err(e) = chmod_path(&dest, mode) {
                let err = self.write_err(ErrorKind::CreateDir, &dest, &e);
                self.fail(err);
            }
        }
        self.stats.dirs += 1;
    }

    /// One entry of a transferred directory.
    fn send_child(
        &mut self,
        dir: BorrowedFd<'_>,
        child: &OsStr,
        src: &Path,
        sent: &Path,
        depth: usize,
    ) {
        let st = match lstat_at(dir, child) {
            Ok(st) => st,
            Err(e) => {
                let err = self.read_err(src, &e);
                return self.fail(err);
            }
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => match open_dir_at(dir, child) {
                Ok(fd) => self.send_dir(fd.as_fd(), src, sent, depth),
                Err(e) => {
                    let err = self.read_err(src, &e);
                    self.fail(err);
                }
            },
            FileType::RegularFile => match open_file_at(dir, child, &st) {
                Ok((mut f, st)) => match self.destination(sent) {
                    Ok(d) => self.place_file(&d, &mut f, &st),
                    Err(e) => self.fail(e),
                },
                Err(e) => {
                    let err = self.read_err(src, &e);
                    self.fail(err);
                }
            },
            FileType::Symlink => match self.root.resolve(src) {
                Ok(Found::File(mut f, st)) => match self.destination(sent) {
                    Ok(d) => self.place_file(&d, &mut f, &st),
                    Err(e) => self.fail(e),
                },
                Ok(Found::Dir(_)) => self.skip(src, SkipReason::SymlinkToDirectory),
                Ok(_) => self.skip(src, SkipReason::Special),
                Err(ResolveError::Escape) => self.skip(src, SkipReason::SymlinkOutside),
                Err(ResolveError::Io(_)) => self.skip(src, SkipReason::BrokenSymlink),
            },
            _ => self.skip(src, SkipReason::Special),
        }
    }

    fn place_file(&mut self, dest: &Path, src: &mut File, st: &Stat) {
        match write_file_replacing(
            dest,
            src,
            st.st_mode,
            self.plan.owner,
            self.plan.fsync_output,
        ) {
            Ok(n) => {
                self.stats.files += 1;
                self.stats.bytes += n;
            }
            Err(e) => {
                let err = self.write_err(ErrorKind::Write, dest, &e);
                self.fail(err);
            }
        }
    }
}
