//! The default seccomp filter: the system calls Docker's default profile denies to a
//! container without extra capabilities fail with `EPERM`; everything else is allowed.
//!
//! Docker's profile is an allow-list; petrel uses the equivalent deny-list, which is shorter
//! and does not break programs on system calls newer than the list. Deviations from Docker
//! (also in SECURITY.md): `personality` is allowed with any argument, and `clone3` fails with
//! `ENOSYS` (as in Docker) so the C library falls back to `clone`, whose namespace flags the
//! filter can inspect.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{RuntimeError, StepError};

/// System calls the default filter denies, by name (for documentation and `--help`).
pub const BLOCKED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "clone (with namespace flags)",
    "clone3 (ENOSYS)",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "userfaultfd",
    "vhangup",
    "and on x86_64: \
    ioperm, iopl, lookup_dcookie, nfsservctl, _sysctl, sysfs, uselib, ustat",
];

fn denied() -> Vec<libc::c_long> {
    let mut list = vec![
        libc::SYS_acct,
        libc::SYS_add_key,
        libc::SYS_bpf,
        libc::SYS_clock_adjtime,
        libc::SYS_clock_settime,
        libc::SYS_delete_module,
        libc::SYS_fanotify_init,
        libc::SYS_finit_module,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fsopen,
        libc::SYS_fspick,
        libc::SYS_get_mempolicy,
        libc::SYS_init_module,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_io_uring_setup,
        libc::SYS_kcmp,
        libc::SYS_kexec_file_load,
        libc::SYS_kexec_load,
        libc::SYS_keyctl,
        libc::SYS_mbind,
        libc::SYS_mount,
        libc::SYS_mount_setattr,
        libc::SYS_move_mount,
        libc::SYS_move_pages,
        libc::SYS_name_to_handle_at,
        libc::SYS_open_by_handle_at,
        libc::SYS_open_tree,
        libc::SYS_perf_event_open,
        libc::SYS_pivot_root,
        libc::SYS_quotactl,
        libc::SYS_reboot,
        libc::SYS_request_key,
        libc::SYS_set_mempolicy,
        libc::SYS_setdomainname,
        libc::SYS_sethostname,
        libc::SYS_setns,
        libc::SYS_settimeofday,
        libc::SYS_swapoff,
        libc::SYS_swapon,
        libc::SYS_syslog,
        libc::SYS_umount2,
        libc::SYS_unshare,
        libc::SYS_userfaultfd,
        libc::SYS_vhangup,
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        libc::SYS_ioperm,
        libc::SYS_iopl,
        libc::SYS_lookup_dcookie,
        libc::SYS_nfsservctl,
        libc::SYS__sysctl,
        libc::SYS_sysfs,
        libc::SYS_uselib,
        libc::SYS_ustat,
    ]);
    list
}

const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The compiled filters, built by the caller before `clone` so the job only installs them.
pub(crate) struct Filters {
    programs: Vec<BpfProgram>,
}

fn arch() -> Result<TargetArch, RuntimeError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        RuntimeError::InvalidSpec(format!(
            "no seccomp filter for architecture {}; run with --no-seccomp",
            std::env::consts::ARCH
        ))
    })
}

fn compile_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidSpec(format!("building the seccomp filter: {e}"))
}

pub(crate) fn build() -> Result<Filters, RuntimeError> {
    let arch = arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied().into_iter().map(|nr| (nr, Vec::new())).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag as u64),
                flag as u64,
            )
            .map_err(compile_err)?;
            SeccompRule::new(vec![cond]).map_err(compile_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(compile_err)?;
    let no_clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(compile_err)?;
    let programs = [deny, no_clone3]
        .into_iter()
        .map(|f| BpfProgram::try_from(f).map_err(compile_err))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Filters { programs })
}

impl Filters {
    /// Installs the filters on the calling thread; needs `no_new_privs` set first.
    pub(crate) fn install(&self) -> Result<(), StepError> {
        for program in &self.programs {
            seccompiler::apply_filter(program)
                .map_err(|e| StepError::step(format!("installing the seccomp filter: {e}")))?;
        }
        Ok(())
    }
}
