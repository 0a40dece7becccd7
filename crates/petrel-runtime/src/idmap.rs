//! User-namespace id maps.
//!
//! An unprivileged process may map exactly one uid and one gid: its own, to any id inside,
//! and only after denying `setgroups`. That is what an unprivileged caller gets
//! (`Identity`: uid ↦ uid; `FakeRoot`: uid ↦ 0). Root gets every id mapped onto itself
//! instead: files in an image owned by other users keep their owners (a single-id map would
//! show them as `nobody`, and overlayfs could not copy them up), and `--user` can become any
//! uid. Only a process outside the namespace may write such a map, so the caller does it.

use std::fs;
use std::io;

use crate::spec::IdMapping;

/// The id maps a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Maps {
    /// One uid and one gid: the caller's, seen inside as (uid, gid). Written by the child.
    Single { inside_uid: u32, inside_gid: u32 },
    /// Every id maps to itself (root callers). Written by the caller.
    Full,
}

impl Maps {
    pub(crate) fn choose(mapping: IdMapping, caller_uid: u32, caller_gid: u32) -> Maps {
        if caller_uid == 0 {
            return Maps::Full;
        }
        match mapping {
            IdMapping::Identity => Maps::Single {
                inside_uid: caller_uid,
                inside_gid: caller_gid,
            },
            IdMapping::FakeRoot => Maps::Single {
                inside_uid: 0,
                inside_gid: 0,
            },
        }
    }

    /// Whether the caller, rather than the child, writes the maps.
    pub(crate) fn written_by_caller(self) -> bool {
        self == Maps::Full
    }
}

/// Writes the maps of process `pid` ("self" from the child).
pub(crate) fn write(pid: &str, maps: Maps, outside_uid: u32, outside_gid: u32) -> io::Result<()> {
    match maps {
        Maps::Single {
            inside_uid,
            inside_gid,
        } => {
            fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
            fs::write(
                format!("/proc/{pid}/uid_map"),
                format!("{inside_uid} {outside_uid} 1\n"),
            )?;
            fs::write(
                format!("/proc/{pid}/gid_map"),
                format!("{inside_gid} {outside_gid} 1\n"),
            )
        }
        Maps::Full => {
            fs::write(format!("/proc/{pid}/uid_map"), "0 0 4294967295\n")?;
            fs::write(format!("/proc/{pid}/gid_map"), "0 0 4294967295\n")
        }
    }
}
