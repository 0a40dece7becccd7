//! What to transfer, read from a job ad: [`TransferPlan::from_ad`].
//!
//! The attributes are the ones `condor_submit` writes (and `petrel-submit` produces):
//! `Iwd`, `Cmd`, `TransferExecutable`, `TransferInput`, `In`/`TransferIn`/`StreamIn`,
//! `Out`/`Err` with `TransferOut`/`TransferErr` and `StreamOut`/`StreamErr`,
//! `TransferOutput`, `TransferOutputRemaps`, `ShouldTransferFiles`,
//! `WhenToTransferOutput`, `PreserveRelativePaths`, `ContainerTargetDir`.
//!
//! Everything that can be checked before the job runs is checked here, so a job whose
//! output list could never be transferred is held before it runs, not after.

use std::path::{Component, Path, PathBuf};

use petrel_classad::{ClassAd, Value};

use crate::error::{Direction, ErrorKind, Side, TransferError, EINVAL, ENOTSUP, EPERM};
use crate::remap::Remaps;

/// The file in the scratch directory that receives the job's standard output when it is
/// transferred back at exit (HTCondor's name).
pub const STDOUT_NAME: &str = "_condor_stdout";
/// The file in the scratch directory that receives the job's standard error.
pub const STDERR_NAME: &str = "_condor_stderr";

/// Files a starter writes into the scratch directory for its own use; they are never
/// part of the default output set.
pub const STARTER_FILES: &[&str] = &[
    STDOUT_NAME,
    STDERR_NAME,
    ".job.ad",
    ".machine.ad",
    ".update.ad",
    ".chirp.config",
];

/// Where the scratch directory appears inside a container when the ad does not say
/// (`ContainerTargetDir`), as petrel's design fixes it for every runtime.
pub const DEFAULT_CONTAINER_TARGET_DIR: &str = "/srv";

/// `ShouldTransferFiles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShouldTransfer {
    /// `YES`: the job runs in a scratch directory; inputs are copied in, outputs back.
    Yes,
    /// `IF_NEEDED` (condor_submit's default). HTCondor transfers only when the execute
    /// machine has another `FileSystemDomain`. Petrel's slots are on the submit machine,
    /// so HTCondor would run the job in `Iwd`; petrel runs it in a scratch directory and
    /// transfers as for `YES` instead, because that is what container runtimes mount
    /// (the scratch directory, at [`DEFAULT_CONTAINER_TARGET_DIR`]) and what isolates
    /// one job's files from another's. Copies on one file system are cheap (`fs::copy`
    /// uses `copy_file_range`, which reflinks where the file system can). A job that
    /// reads files from `Iwd` without listing them in `transfer_input_files` must list
    /// them, or ask for `should_transfer_files = NO`.
    IfNeeded,
    /// `NO`: no transfer; the job runs in `Iwd` itself (a shared file system).
    No,
}

/// `WhenToTransferOutput`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenToTransfer {
    /// `ON_EXIT`: outputs come back when the job exits, not when it is evicted.
    OnExit,
    /// `ON_EXIT_OR_EVICT`: also at eviction, into the spool directory, so a restarted
    /// job finds them (see [`crate::restore_spool`]).
    OnExitOrEvict,
    /// `ON_SUCCESS`: outputs come back only when the job succeeded; otherwise only its
    /// standard output and error.
    OnSuccess,
}

/// Why a file is in the input list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputRole {
    /// Named by `TransferInput`.
    Listed,
    /// The executable (`Cmd`, with `TransferExecutable` not false).
    Executable,
    /// Standard input (`In`).
    Stdin,
}

/// One input: a submit-side file or directory and where it goes in the scratch directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputItem {
    /// The submit-side path (absolute: relative names are joined to `Iwd`).
    pub source: PathBuf,
    /// Where it goes, relative to the scratch directory: its base name, or its relative
    /// path with `PreserveRelativePaths`. Empty for `contents_only` (the top).
    pub dest: PathBuf,
    /// The name ended in `/`: a directory's contents go where the directory would have.
    pub contents_only: bool,
    /// Why it is transferred.
    pub role: InputRole,
}

/// Which files come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSet {
    /// No `TransferOutput`: every file at the top of the scratch directory that is new or
    /// changed since input transfer (directories are not searched), as HTCondor does.
    NewFiles,
    /// `TransferOutput`: exactly these (missing ones hold the job). Empty for
    /// `transfer_output_files = ""`.
    Listed(Vec<OutputItem>),
}

/// One entry of `TransferOutput`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputItem {
    /// The path in the scratch directory (relative, without `..`).
    pub source: PathBuf,
    /// The name it is sent under, to which remaps apply and which is placed relative to
    /// `Iwd`: its base name, or `source` itself with `PreserveRelativePaths`.
    pub name: PathBuf,
}

/// How the job's standard output or error reaches its submit-side file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdMode {
    /// The starter writes [`STDOUT_NAME`] / [`STDERR_NAME`] in the scratch directory and
    /// output transfer copies it to the file.
    Transfer,
    /// The starter writes the submit-side file itself while the job runs
    /// (`stream_output`, or `transfer_output = false`).
    Direct,
}

/// `Out` or `Err`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StdFile {
    /// The path as the ad gives it (relative paths are relative to `Iwd`).
    pub path: PathBuf,
    /// Who writes it.
    pub mode: StdMode,
}

impl StdFile {
    /// The submit-side file, with a relative path placed in `iwd`.
    pub fn path_in(&self, iwd: &Path) -> PathBuf {
        iwd.join(&self.path)
    }
}

/// `In`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stdin {
    /// The submit-side file (absolute).
    pub path: PathBuf,
    /// Its name in the scratch directory when it is transferred (the starter opens that);
    /// `None` when the starter should open `path` itself (`TransferIn = false` or
    /// `StreamIn = true`).
    pub in_scratch: Option<PathBuf>,
}

/// `Cmd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executable {
    /// `Cmd` as the ad gives it.
    pub path: PathBuf,
    /// Its name in the scratch directory when it is transferred.
    pub in_scratch: Option<PathBuf>,
}

/// What one job transfers, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferPlan {
    /// `ShouldTransferFiles`.
    pub should_transfer: ShouldTransfer,
    /// `WhenToTransferOutput`.
    pub when: WhenToTransfer,
    /// `Iwd`: where relative submit-side names are.
    pub iwd: PathBuf,
    /// Everything copied into the scratch directory, in order (later entries overwrite
    /// earlier ones of the same name, as in HTCondor).
    pub inputs: Vec<InputItem>,
    /// What comes back.
    pub outputs: OutputSet,
    /// `TransferOutputRemaps`.
    pub remaps: Remaps,
    /// Standard input, unless `/dev/null`.
    pub stdin: Option<Stdin>,
    /// Standard output, unless `/dev/null`.
    pub stdout: Option<StdFile>,
    /// Standard error, unless `/dev/null`.
    pub stderr: Option<StdFile>,
    /// The executable.
    pub executable: Option<Executable>,
    /// `PreserveRelativePaths`.
    pub preserve_relative_paths: bool,
    /// Where the scratch directory is mounted inside the job's container
    /// (`ContainerTargetDir`, or [`DEFAULT_CONTAINER_TARGET_DIR`] for container jobs):
    /// absolute output names and symbolic links under it mean the scratch directory.
    pub scratch_mount: Option<PathBuf>,
    /// Names at the top of the scratch directory never sent back by default
    /// ([`STARTER_FILES`]; a starter may add its own).
    pub starter_files: Vec<String>,
    /// Owner (uid, gid) to give every file and directory created, when the transfer runs
    /// as another user (root). `None`: the creating process's.
    pub owner: Option<(u32, u32)>,
    /// Flush each output file to disk before it replaces the destination, so a job marked
    /// complete has its outputs even after a crash. On by default.
    pub fsync_output: bool,
}

fn bad(direction: Direction, attribute: &str, why: String) -> TransferError {
    TransferError::refused(
        direction,
        Side::AccessPoint,
        ErrorKind::BadAttribute {
            attribute: attribute.to_string(),
        },
        None,
        EINVAL,
        format!("{attribute}: {why}"),
    )
}

/// A string attribute: `Ok(None)` when absent or UNDEFINED, an error for another type.
fn string_attr(
    ad: &ClassAd,
    name: &str,
    direction: Direction,
) -> Result<Option<String>, TransferError> {
    match ad.eval_attr(name) {
        Value::Undefined => Ok(None),
        Value::String(s) => Ok(Some(s.to_string())),
        v => Err(bad(
            direction,
            name,
            format!("expected a string, found {}", v.type_name()),
        )),
    }
}

/// A boolean attribute (numbers count, as in HTCondor): `Ok(None)` when absent.
fn bool_attr(
    ad: &ClassAd,
    name: &str,
    direction: Direction,
) -> Result<Option<bool>, TransferError> {
    match ad.eval_attr(name) {
        Value::Undefined => Ok(None),
        v => match v.bool_equiv() {
            Some(b) => Ok(Some(b)),
            None => Err(bad(
                direction,
                name,
                format!("expected a boolean, found {}", v.type_name()),
            )),
        },
    }
}

/// HTCondor's file lists: comma-separated, blanks trimmed, empty entries dropped.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// A relative path without `.` components; `None` if it has `..`, is absolute or empty.
pub(crate) fn clean_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The last component of a path (`a/b/` gives `b`), if it is a usable name.
fn base_name(p: &Path) -> Option<PathBuf> {
    match p.components().next_back()? {
        Component::Normal(n) => Some(PathBuf::from(n)),
        _ => None,
    }
}

fn is_null_file(s: &str) -> bool {
    s.is_empty() || s == "/dev/null"
}

impl TransferPlan {
    /// Reads the plan from a job ad. Fails (with the hold code the job should get) when
    /// the ad asks for something that cannot be done: a relative `Iwd`, a URL input (no
    /// transfer plugins yet, except `file://`), an output name or remap with `..`, an
    /// absolute output name outside the scratch directory.
    pub fn from_ad(ad: &ClassAd) -> Result<TransferPlan, TransferError> {
        use Direction::{Input, Output};
        let iwd = match string_attr(ad, "Iwd", Input)? {
            Some(s) if Path::new(&s).is_absolute() => PathBuf::from(s),
            Some(s) => return Err(bad(Input, "Iwd", format!("{s:?} is not an absolute path"))),
            None => return Err(bad(Input, "Iwd", "missing".into())),
        };
        let should_transfer = match string_attr(ad, "ShouldTransferFiles", Input)?
            .map(|s| s.to_ascii_uppercase())
            .as_deref()
        {
            None | Some("IF_NEEDED") => ShouldTransfer::IfNeeded,
            Some("YES") => ShouldTransfer::Yes,
            Some("NO") => ShouldTransfer::No,
            Some(s) => {
                return Err(bad(
                    Input,
                    "ShouldTransferFiles",
                    format!("{s:?} is not YES, NO or IF_NEEDED"),
                ))
            }
        };
        let when = match string_attr(ad, "WhenToTransferOutput", Output)?
            .map(|s| s.to_ascii_uppercase())
            .as_deref()
        {
            None | Some("ON_EXIT") => WhenToTransfer::OnExit,
            Some("ON_EXIT_OR_EVICT") => WhenToTransfer::OnExitOrEvict,
            Some("ON_SUCCESS") => WhenToTransfer::OnSuccess,
            Some(s) => {
                return Err(bad(
                    Output,
                    "WhenToTransferOutput",
                    format!("{s:?} is not ON_EXIT, ON_EXIT_OR_EVICT or ON_SUCCESS"),
                ))
            }
        };
        let preserve_relative_paths =
            bool_attr(ad, "PreserveRelativePaths", Input)?.unwrap_or(false);
        let in_container = bool_attr(ad, "WantContainer", Input)?.unwrap_or(false)
            || ad.eval_int("JobUniverse") == Some(14);
        let scratch_mount = match string_attr(ad, "ContainerTargetDir", Input)? {
            Some(d) if Path::new(&d).is_absolute() => Some(PathBuf::from(d)),
            Some(d) => {
                return Err(bad(
                    Input,
                    "ContainerTargetDir",
                    format!("{d:?} is not an absolute path"),
                ))
            }
            None if in_container => Some(PathBuf::from(DEFAULT_CONTAINER_TARGET_DIR)),
            None => None,
        };
        let transfers = should_transfer != ShouldTransfer::No;

        let mut plan = TransferPlan {
            should_transfer,
            when,
            iwd,
            inputs: Vec::new(),
            outputs: OutputSet::NewFiles,
            remaps: Remaps::default(),
            stdin: None,
            stdout: None,
            stderr: None,
            executable: None,
            preserve_relative_paths,
            scratch_mount,
            starter_files: STARTER_FILES.iter().map(|s| s.to_string()).collect(),
            owner: None,
            fsync_output: true,
        };

        // inputs: TransferInput, then the executable, then standard input (HTCondor's order)
        if transfers {
            if let Some(list) = string_attr(ad, "TransferInput", Input)? {
                for item in split_list(&list) {
                    let input = plan.input_item(item, InputRole::Listed)?;
                    plan.inputs.push(input);
                }
            }
        }
        if let Some(cmd) = string_attr(ad, "Cmd", Input)? {
            let transfer_exe =
                transfers && bool_attr(ad, "TransferExecutable", Input)?.unwrap_or(true);
            let mut exe = Executable {
                path: PathBuf::from(&cmd),
                in_scratch: None,
            };
            if transfer_exe && !cmd.is_empty() {
                let item = plan.input_item(cmd.trim_end_matches('/'), InputRole::Executable)?;
                exe.in_scratch = Some(item.dest.clone());
                // the executable named in TransferInput too is sent once
                if !plan.inputs.iter().any(|i| i.source == item.source) {
                    plan.inputs.push(item);
                }
            }
            plan.executable = Some(exe);
        }
        if let Some(stdin) = string_attr(ad, "In", Input)?.filter(|s| !is_null_file(s)) {
            let transfer_in = transfers
                && bool_attr(ad, "TransferIn", Input)?.unwrap_or(true)
                && !bool_attr(ad, "StreamIn", Input)?.unwrap_or(false);
            let mut s = Stdin {
                path: plan.iwd.join(&stdin),
                in_scratch: None,
            };
            if transfer_in {
                let item = plan.input_item(stdin.trim_end_matches('/'), InputRole::Stdin)?;
                s.in_scratch = Some(item.dest.clone());
                if !plan.inputs.iter().any(|i| i.source == item.source) {
                    plan.inputs.push(item);
                }
            }
            plan.stdin = Some(s);
        }

        // outputs
        plan.stdout = std_file(ad, "Out", "TransferOut", "StreamOut", transfers)?;
        plan.stderr = std_file(ad, "Err", "TransferErr", "StreamErr", transfers)?;
        if transfers {
            if let Some(list) = string_attr(ad, "TransferOutput", Output)? {
                let mut items = Vec::new();
                for item in split_list(&list) {
                    items.push(plan.output_item(item)?);
                }
                plan.outputs = OutputSet::Listed(items);
            }
            if let Some(r) = string_attr(ad, "TransferOutputRemaps", Output)? {
                plan.remaps = Remaps::parse(&r);
                for (name, dest) in plan.remaps.entries() {
                    check_remap(name, dest)?;
                }
            }
        }
        Ok(plan)
    }

    /// Whether the job runs in a scratch directory (transfer on) or in `Iwd` (`NO`).
    pub fn uses_scratch(&self) -> bool {
        self.should_transfer != ShouldTransfer::No
    }

    fn input_item(&self, name: &str, role: InputRole) -> Result<InputItem, TransferError> {
        let refuse = |why: &str| {
            TransferError::refused(
                Direction::Input,
                Side::AccessPoint,
                ErrorKind::PathEscape,
                Some(Path::new(name)),
                EPERM,
                why,
            )
        };
        let path = if let Some((scheme, rest)) = name.split_once("://") {
            if !scheme.eq_ignore_ascii_case("file") {
                return Err(TransferError::refused(
                    Direction::Input,
                    Side::ExecutionPoint,
                    ErrorKind::UnsupportedUrl,
                    Some(Path::new(name)),
                    ENOTSUP,
                    format!("no file transfer plugin for {scheme}:// URLs"),
                ));
            }
            if !rest.starts_with('/') {
                return Err(refuse("a file:// URL needs an absolute path"));
            }
            rest
        } else {
            name
        };
        let contents_only = path.ends_with('/') && role == InputRole::Listed;
        let rel = Path::new(path);
        let dest = if contents_only {
            PathBuf::new()
        } else if self.preserve_relative_paths && rel.is_relative() {
            clean_relative(rel).ok_or_else(|| {
                refuse("with preserve_relative_paths, an input name must not use ..")
            })?
        } else {
            base_name(rel).ok_or_else(|| {
                refuse("the name has no file name to place in the scratch directory")
            })?
        };
        Ok(InputItem {
            source: self.iwd.join(rel),
            dest,
            contents_only,
            role,
        })
    }

    fn output_item(&self, name: &str) -> Result<OutputItem, TransferError> {
        let refuse = |why: &str| {
            TransferError::refused(
                Direction::Output,
                Side::ExecutionPoint,
                ErrorKind::PathEscape,
                Some(Path::new(name)),
                EPERM,
                why,
            )
        };
        let p = Path::new(name);
        let (source, relative) = if p.is_absolute() {
            let inside = self
                .scratch_mount
                .as_deref()
                .and_then(|m| p.strip_prefix(m).ok());
            match inside {
                Some(rest) => (rest.to_path_buf(), false),
                None => {
                    return Err(refuse(
                        "an absolute output name must be inside the scratch directory",
                    ))
                }
            }
        } else {
            (p.to_path_buf(), true)
        };
        let source = clean_relative(&source).ok_or_else(|| {
            refuse("an output name must stay inside the scratch directory (no ..)")
        })?;
        let name = if self.preserve_relative_paths && relative {
            source.clone()
        } else {
            base_name(&source).unwrap_or_else(|| source.clone())
        };
        Ok(OutputItem { source, name })
    }
}

fn std_file(
    ad: &ClassAd,
    attr: &str,
    transfer_attr: &str,
    stream_attr: &str,
    transfers: bool,
) -> Result<Option<StdFile>, TransferError> {
    let Some(path) = string_attr(ad, attr, Direction::Output)?.filter(|s| !is_null_file(s)) else {
        return Ok(None);
    };
    let transfer = transfers
        && bool_attr(ad, transfer_attr, Direction::Output)?.unwrap_or(true)
        && !bool_attr(ad, stream_attr, Direction::Output)?.unwrap_or(false);
    Ok(Some(StdFile {
        path: PathBuf::from(path),
        mode: if transfer {
            StdMode::Transfer
        } else {
            StdMode::Direct
        },
    }))
}

/// A remap destination must be a plain path: no URL (no plugins yet), no `..` (it must
/// not climb out of `Iwd`, or out of the absolute directory it names).
fn check_remap(name: &str, dest: &str) -> Result<(), TransferError> {
    let refuse = |kind: ErrorKind, errno: i32, why: &str| {
        Err(TransferError::refused(
            Direction::Output,
            Side::AccessPoint,
            kind,
            Some(Path::new(dest)),
            errno,
            format!("remap of {name}: {why}"),
        ))
    };
    if let Some((scheme, _)) = dest.split_once("://") {
        return refuse(
            ErrorKind::UnsupportedUrl,
            ENOTSUP,
            &format!("no file transfer plugin for {scheme}:// URLs"),
        );
    }
    if dest.is_empty() {
        return refuse(ErrorKind::PathEscape, EINVAL, "empty destination");
    }
    if Path::new(dest)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return refuse(
            ErrorKind::PathEscape,
            EPERM,
            "a destination must not use .. (it would leave the job's Iwd)",
        );
    }
    Ok(())
}
