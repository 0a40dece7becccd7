//! HTCondor's file transfer, for a job that runs in a scratch directory on the machine it
//! was submitted from.
//!
//! A starter uses it in three steps:
//!
//! 1. [`TransferPlan::from_ad`] reads what to transfer from the job ad, with
//!    `condor_submit`'s attribute names: the `TransferInput` list (files and
//!    directories, absolute or relative to `Iwd`; `dir/` sends the directory's
//!    contents), the executable (`Cmd`, unless `TransferExecutable = false`), standard
//!    input (`In`), the `TransferOutput` list or, when there is none, every new or
//!    changed file at the top of the scratch directory, standard output and error
//!    (`Out`, `Err`), `TransferOutputRemaps`, `ShouldTransferFiles` and
//!    `WhenToTransferOutput`. See [`ShouldTransfer::IfNeeded`] for what `IF_NEEDED`
//!    means on one machine (petrel transfers).
//! 2. [`transfer_input`] copies the inputs into the scratch directory before the job
//!    runs and returns the bytes sent and a [`Catalog`] of what was there.
//! 3. [`transfer_output`] (or [`transfer_output_on`] for eviction and `ON_SUCCESS`)
//!    copies the outputs back after the job ran.
//!
//! [`disk_usage`] measures the scratch directory for `DiskUsage` while the job runs.
//!
//! A failure is a [`TransferError`] that knows the hold it should cause:
//! [`TransferError::hold_code`] is `(13, errno)` for input (`TransferInputError`),
//! `(12, errno)` for output (`TransferOutputError`), and
//! [`TransferError::hold_reason`] words `HoldReason` as HTCondor does.
//!
//! ```
//! use petrel_classad::ClassAd;
//! use petrel_transfer::{transfer_input, transfer_output, TransferPlan};
//!
//! let submit = tempfile::tempdir()?;
//! let scratch = tempfile::tempdir()?;
//! std::fs::write(submit.path().join("in.txt"), "data")?;
//! let ad = ClassAd::parse(&format!(
//!     r#"[ Iwd = "{}"; TransferInput = "in.txt"; ShouldTransferFiles = "YES" ]"#,
//!     submit.path().display()
//! ))?;
//! let plan = TransferPlan::from_ad(&ad)?;
//! let input = transfer_input(&plan, scratch.path())?;
//! assert_eq!(input.stats.bytes, 4);
//! // the job runs, and writes a file
//! std::fs::write(scratch.path().join("result"), "42")?;
//! let out = transfer_output(&plan, scratch.path(), &plan.iwd, &input.catalog)?;
//! assert_eq!(out.files, 1); // only the new file comes back
//! assert_eq!(std::fs::read_to_string(submit.path().join("result"))?, "42");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//!
//! The job is untrusted and owns its scratch directory. Output transfer reads it only by
//! descriptor, one path component at a time with `O_NOFOLLOW`, and never follows a
//! symbolic link out of it, so a job that leaves `out.txt -> /etc/shadow` gets nothing
//! read through that link. The policy for symbolic links in the scratch directory:
//!
//! * a link whose target is a regular file inside the scratch directory is sent as that
//!   file's contents (what HTCondor does for every link); an absolute target under the
//!   container mount point ([`TransferPlan::scratch_mount`], `/srv` by default for
//!   container jobs) counts as inside;
//! * a link leading outside, named in `transfer_output_files` (itself or a directory on
//!   its path), holds the job: code 12, subcode `EPERM`, [`ErrorKind::SymlinkEscape`];
//! * a link leading outside anywhere else (the default output set, inside a transferred
//!   directory, standard output or error replaced by a link) is skipped and listed in
//!   [`TransferStats::skipped`];
//! * a link to a directory inside a transferred directory is skipped (no loops); FIFOs,
//!   sockets and device nodes are never opened.
//!
//! Names from the job ad that would climb out (`..` in `transfer_output_files`, in a
//! remap destination, or in an input name kept with `preserve_relative_paths`; an
//! absolute output name outside the scratch directory) are refused when the plan is
//! made, before the job runs. Output files are written under a temporary name and
//! renamed over their destination: a failed transfer leaves no truncated file, an
//! existing link at the destination is replaced rather than written through, and
//! set-user-ID, set-group-ID and sticky bits are never kept.
//!
//! What is not promised: the transfer runs with the caller's privileges. Submit-side
//! paths (`Iwd`, inputs, absolute remap destinations) are the submitter's and are used
//! as named, so a starter running as root must run the transfer as the job's owner (and
//! can set [`TransferPlan::owner`] for the files it creates).
//!
//! # Not supported
//!
//! URLs other than `file://` in `transfer_input_files` and remaps (there are no transfer
//! plugins), `output_destination`, `public_input_files`, encryption lists, and
//! `TransferInputRemaps`.
#![deny(missing_docs)]

mod beneath;
mod catalog;
pub mod error;
mod input;
mod output;
mod place;
pub mod plan;
pub mod remap;
mod usage;

use std::path::PathBuf;

pub use catalog::Catalog;
pub use error::{Direction, ErrorKind, Side, TransferError};
pub use input::{restore_spool, transfer_input, InputTransfer};
pub use output::{transfer_output, transfer_output_on, OutputEvent};
pub use plan::{
    InputItem, InputRole, OutputItem, OutputSet, ShouldTransfer, StdFile, StdMode, Stdin,
    TransferPlan, WhenToTransfer, STDERR_NAME, STDOUT_NAME,
};
pub use remap::Remaps;
pub use usage::{disk_usage, disk_usage_within, DiskUsage, DISK_USAGE_BUDGET};

/// The deepest directory tree transferred or measured: each level holds a descriptor
/// open, and nothing a job needs comes close.
pub const MAX_DEPTH: usize = 256;

/// What one transfer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Files copied.
    pub files: u64,
    /// Directories copied (made, or merged into an existing one).
    pub dirs: u64,
    /// Bytes of file contents copied: the event log's bytes sent to the job (input) or
    /// received from it (output).
    pub bytes: u64,
    /// Entries left out on purpose.
    pub skipped: Vec<Skipped>,
}

/// An entry a transfer left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The entry.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// Why an entry was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A FIFO, socket or device node (HTCondor skips FIFOs and sockets too).
    Special,
    /// A symbolic link in the scratch directory that leads outside it.
    SymlinkOutside,
    /// A symbolic link to a directory inside a transferred tree.
    SymlinkToDirectory,
    /// A symbolic link whose target does not exist (or cannot be resolved).
    BrokenSymlink,
}
