//! Input transfer: submit-side files into the scratch directory, before the job runs.
//!
//! The sources are the submitter's own files, read as HTCondor's shadow reads them: a
//! symbolic link to a file is followed (its contents are sent), a symbolic link to a
//! directory is transferred only when named with a trailing `/` (its contents), and one
//! met inside a transferred directory is an error, as in HTCondor. FIFOs, sockets and
//! device nodes are skipped. The transfer reads with the caller's privileges: a starter
//! running as root must run it as the job's owner, or a job could name a file its owner
//! cannot read.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::beneath::Root;
use crate::catalog::Catalog;
use crate::error::{Direction, ErrorKind, Side, TransferError, EISDIR, ELOOP};
use crate::place::{chmod_fd, make_dir_at, make_dirs_beneath, write_file_at, PERM_BITS};
use crate::plan::{InputItem, InputRole, TransferPlan};
use crate::{SkipReason, Skipped, TransferStats, MAX_DEPTH};

/// What [`transfer_input`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputTransfer {
    /// Files, directories and bytes copied (the event log's bytes sent to the job).
    pub stats: TransferStats,
    /// The top of the scratch directory after the transfer: pass it to
    /// [`crate::transfer_output`] to find the files the job made or changed.
    pub catalog: Catalog,
}

/// Copies the plan's inputs (the `TransferInput` list, the executable and standard
/// input) into `scratch`, which must exist. Does nothing when `ShouldTransferFiles` is
/// `NO`. A missing or unreadable input fails the whole transfer (hold code 13, the
/// errno as subcode), naming the file.
pub fn transfer_input(plan: &TransferPlan, scratch: &Path) -> Result<InputTransfer, TransferError> {
    if !plan.uses_scratch() {
        return Ok(InputTransfer::default());
    }
    let scratch_err = |e: &io::Error| {
        TransferError::io(
            Direction::Input,
            Side::ExecutionPoint,
            ErrorKind::Write,
            scratch,
            e,
        )
    };
    let root = Root::open(scratch, None).map_err(|e| scratch_err(&e))?;
    let mut run = InputRun {
        owner: plan.owner,
        stats: TransferStats::default(),
    };
    for item in &plan.inputs {
        run.send(&root, scratch, item)?;
    }
    tracing::debug!(
        scratch = %scratch.display(),
        files = run.stats.files,
        bytes = run.stats.bytes,
        "input transfer done"
    );
    let catalog = Catalog::scan(scratch).map_err(|e| scratch_err(&e))?;
    Ok(InputTransfer {
        stats: run.stats,
        catalog,
    })
}

/// Copies a spool directory kept at eviction (`ON_EXIT_OR_EVICT`, see
/// [`crate::OutputEvent::Evict`]) back into a new scratch directory, where the job left
/// it. Call it after [`transfer_input`], so the restored files are not in the catalog
/// and come back at exit as the job's output. A missing spool directory restores
/// nothing.
pub fn restore_spool(
    plan: &TransferPlan,
    spool: &Path,
    scratch: &Path,
) -> Result<TransferStats, TransferError> {
    let mut run = InputRun {
        owner: plan.owner,
        stats: TransferStats::default(),
    };
    match fs::metadata(spool) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(run.stats),
        Err(e) => return Err(read_err(spool, &e)),
        Ok(_) => {}
    }
    let root = Root::open(scratch, None).map_err(|e| {
        TransferError::io(
            Direction::Input,
            Side::ExecutionPoint,
            ErrorKind::Write,
            scratch,
            &e,
        )
    })?;
    run.copy_dir_contents(spool, root.fd(), scratch, 0)?;
    Ok(run.stats)
}

fn read_err(path: &Path, e: &io::Error) -> TransferError {
    TransferError::io(
        Direction::Input,
        Side::AccessPoint,
        ErrorKind::Read,
        path,
        e,
    )
}

fn write_err(kind: ErrorKind, path: &Path, e: &io::Error) -> TransferError {
    TransferError::io(Direction::Input, Side::ExecutionPoint, kind, path, e)
}

fn symlink_to_dir(path: &Path) -> TransferError {
    TransferError::refused(
        Direction::Input,
        Side::AccessPoint,
        ErrorKind::SymlinkToDirectory,
        Some(path),
        EISDIR,
        "transfer of symbolic links to directories is not supported (name the directory with a trailing / to send its contents)",
    )
}

struct InputRun {
    owner: Option<(u32, u32)>,
    stats: TransferStats,
}

impl InputRun {
    fn send(&mut self, root: &Root, scratch: &Path, item: &InputItem) -> Result<(), TransferError> {
        let src = &item.source;
        let meta = fs::metadata(src).map_err(|e| read_err(src, &e))?;
        if item.contents_only {
            if !meta.is_dir() {
                return Err(read_err(src, &io::Error::from_raw_os_error(20)));
            }
            return self.copy_dir_contents(src, root.fd(), scratch, 0);
        }
        let (parent, name) = match (item.dest.parent(), item.dest.file_name()) {
            (Some(p), Some(n)) => (p, n),
            _ => {
                return Err(write_err(
                    ErrorKind::Write,
                    &scratch.join(&item.dest),
                    &io::Error::from_raw_os_error(22),
                ))
            }
        };
        let parent_path = scratch.join(parent);
        let parent_fd = make_dirs_beneath(root.fd(), parent, self.owner)
            .map_err(|e| write_err(ErrorKind::CreateDir, &parent_path, &e))?;
        if meta.is_file() {
            let exec = item.role == InputRole::Executable;
            self.copy_file(src, parent_fd.as_fd(), name, &parent_path, exec)
        } else if meta.is_dir() {
            let lmeta = fs::symlink_metadata(src).map_err(|e| read_err(src, &e))?;
            if lmeta.file_type().is_symlink() {
                return Err(symlink_to_dir(src));
            }
            self.copy_dir(src, &meta, parent_fd.as_fd(), name, &parent_path, 0)
        } else {
            self.skip(src, SkipReason::Special);
            Ok(())
        }
    }

    fn skip(&mut self, path: &Path, reason: SkipReason) {
        tracing::warn!(path = %path.display(), ?reason, "not transferred");
        self.stats.skipped.push(Skipped {
            path: path.to_path_buf(),
            reason,
        });
    }

    /// Copies the regular file `src` to `name` in `dir` (`dir_path` names `dir` in
    /// messages). The executable gets execute permission wherever it has read permission.
    fn copy_file(
        &mut self,
        src: &Path,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        dir_path: &Path,
        exec: bool,
    ) -> Result<(), TransferError> {
        let mut f = File::open(src).map_err(|e| read_err(src, &e))?;
        let meta = f.metadata().map_err(|e| read_err(src, &e))?;
        if !meta.is_file() {
            // replaced since it was looked at
            self.skip(src, SkipReason::Special);
            return Ok(());
        }
        let mut mode = meta.permissions().mode() & PERM_BITS;
        if exec {
            mode |= (mode & 0o444) >> 2;
        }
        let dest = dir_path.join(name);
        let n = write_file_at(dir, name, &mut f, mode, self.owner)
            .map_err(|e| write_err(ErrorKind::Write, &dest, &e))?;
        self.stats.files += 1;
        self.stats.bytes += n;
        Ok(())
    }

    /// Copies directory `src` as `name` in `dir`.
    fn copy_dir(
        &mut self,
        src: &Path,
        meta: &Metadata,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        dir_path: &Path,
        depth: usize,
    ) -> Result<(), TransferError> {
        let dest = dir_path.join(name);
        if depth >= MAX_DEPTH {
            return Err(TransferError::refused(
                Direction::Input,
                Side::AccessPoint,
                ErrorKind::TooDeep,
                Some(src),
                ELOOP,
                format!("directory tree deeper than {MAX_DEPTH} levels"),
            ));
        }
        let (fd, created) = make_dir_at(dir, name, self.owner)
            .map_err(|e| write_err(ErrorKind::CreateDir, &dest, &e))?;
        self.copy_dir_contents(src, fd.as_fd(), &dest, depth + 1)?;
        if created {
            chmod_fd(fd.as_fd(), meta.mode())
                .map_err(|e| write_err(ErrorKind::CreateDir, &dest, &e))?;
        }
        self.stats.dirs += 1;
        Ok(())
    }

    /// Copies what is in directory `src` into `dir`.
    fn copy_dir_contents(
        &mut self,
        src: &Path,
        dir: BorrowedFd<'_>,
        dir_path: &Path,
        depth: usize,
    ) -> Result<(), TransferError> {
        let mut names: Vec<PathBuf> = fs::read_dir(src)
            .and_then(|rd| rd.map(|e| e.map(|e| e.path())).collect())
            .map_err(|e| read_err(src, &e))?;
        names.sort();
        for path in names {
            let Some(name) = path.file_name() else {
                continue;
            };
            let lmeta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(read_err(&path, &e)),
            };
            let meta = if lmeta.file_type().is_symlink() {
                let m = fs::metadata(&path).map_err(|e| read_err(&path, &e))?;
                if m.is_dir() {
                    return Err(symlink_to_dir(&path));
                }
                m
            } else {
                lmeta
            };
            if meta.is_file() {
                self.copy_file(&path, dir, name, dir_path, false)?;
            } else if meta.is_dir() {
                self.copy_dir(&path, &meta, dir, name, dir_path, depth)?;
            } else {
                self.skip(&path, SkipReason::Special);
            }
        }
        Ok(())
    }
}
