//! Acting as a job's owner from a root daemon or starter, for one thread and one task.
//!
//! Linux keeps credentials per thread (the raw system calls, not glibc's process-wide
//! wrappers), so switching the effective ids of the calling thread lets root open a
//! user's files with exactly the user's rights and switch back afterwards.

use rustix::process::{Gid, Uid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

/// Runs `f` with the effective uid and gid `uid`/`gid` (and only `gid` as a group) when
/// this thread is root and `uid` is not; otherwise runs it as is.
pub fn as_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> Result<T, String> {
    if !rustix::process::geteuid().is_root() || uid == 0 {
        return Ok(f());
    }
    let user = Uid::from_raw(uid);
    let group = Gid::from_raw(gid);
    // Groups and gid first: once the euid is the user's, they can no longer be changed.
    set_thread_groups(&[group]).map_err(|e| format!("setgroups: {e}"))?;
    set_thread_res_gid(None, group, None).map_err(|e| format!("setresgid: {e}"))?;
    set_thread_res_uid(None, user, None).map_err(|e| format!("setresuid: {e}"))?;
    let out = f();
    let restored = set_thread_res_uid(None, Uid::ROOT, None)
        .and_then(|_| set_thread_res_gid(None, Gid::ROOT, None))
        .and_then(|_| set_thread_groups(&[]));
    if let Err(e) = restored {
        // Carrying on with a user's ids would misattribute everything this thread does.
        tracing::error!("cannot switch back to root's ids: {e}; exiting");
        std::process::exit(70);
    }
    Ok(out)
}
