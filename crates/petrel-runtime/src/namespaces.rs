//! The namespaces a container gets, and why the kernel may refuse them.
//!
//! Order matters only for `unshare`-style setup; petrel creates them all in one `clone(2)`:
//! - **user**: the container's own uid/gid space; every other namespace is owned by it, so
//!   an unprivileged caller may create them and mount inside them.
//! - **mount**: the container's own mount table (new root, `/proc`, `/dev`, binds).
//! - **pid**: the job sees only its own processes; petrel's init is pid 1.
//! - **uts**: its own hostname.
//! - **ipc**: its own System V IPC and POSIX message queues.
//! - **net** (on request): only a loopback interface.

use std::io;

use crate::error::RuntimeError;
use crate::spec::NetMode;

/// The `clone(2)` flags for a container with the given network mode.
pub(crate) fn clone_flags(net: NetMode) -> libc::c_int {
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC;
    if net == NetMode::None {
        flags |= libc::CLONE_NEWNET;
    }
    flags
}

fn names(flags: libc::c_int) -> String {
    let all = [
        (libc::CLONE_NEWUSER, "user"),
        (libc::CLONE_NEWNS, "mount"),
        (libc::CLONE_NEWPID, "pid"),
        (libc::CLONE_NEWUTS, "uts"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWNET, "network"),
    ];
    all.iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns a failed `clone` into an error that says which kernel setting to change.
pub(crate) fn unavailable(flags: libc::c_int, err: io::Error) -> RuntimeError {
    RuntimeError::NamespaceUnavailable {
        namespaces: names(flags),
        hint: hint(flags),
        source: err,
    }
}

fn read_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn hint(flags: libc::c_int) -> String {
    let limits = [
        (libc::CLONE_NEWUSER, "user.max_user_namespaces"),
        (libc::CLONE_NEWNS, "user.max_mnt_namespaces"),
        (libc::CLONE_NEWPID, "user.max_pid_namespaces"),
        (libc::CLONE_NEWUTS, "user.max_uts_namespaces"),
        (libc::CLONE_NEWIPC, "user.max_ipc_namespaces"),
        (libc::CLONE_NEWNET, "user.max_net_namespaces"),
    ];
    for (flag, name) in limits {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        if flags & flag != 0 && read_sysctl(&path) == Some(0) {
            return format!(
                "; the kernel setting {name} is 0 (in this user namespace): raise it, e.g. \
                 `sysctl -w {name}=15000`"
            );
        }
    }
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        return "; unprivileged user namespaces are disabled: \
                `sysctl -w kernel.unprivileged_userns_clone=1`"
            .into();
    }
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return "; AppArmor restricts unprivileged user namespaces: \
                `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or give petrel an \
                AppArmor profile with `userns,`"
            .into();
    }
    if read_sysctl("/proc/sys/user/max_user_namespaces").is_none() {
        return "; this kernel may lack user namespace support (CONFIG_USER_NS)".into();
    }
    String::new()
}
