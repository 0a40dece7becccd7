//! The job process: the last steps before `execve`, in the order that keeps each one
//! possible (capabilities are still needed to drop the bounding set and to change uid),
//! and the command lookup with errors that say what was looked for where.

use std::ffi::{CStr, CString};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;

use ::caps::CapsHashSet;

use crate::caps;
use crate::channel;
use crate::error::{SetupFailure, StepError};
use crate::seccomp::Filters;
use crate::spec::User;

/// Everything the job needs to start, prepared before `fork` so the child only acts.
pub(crate) struct ExecPlan {
    pub(crate) argv: Vec<CString>,
    pub(crate) env: Vec<CString>,
    /// `PATH` entries from the container's environment, for the command lookup.
    pub(crate) path: Vec<String>,
    pub(crate) workdir: Workdir,
    /// A user to switch to; `set_groups` is false in single-id user namespaces, where
    /// `setgroups(2)` is denied.
    pub(crate) user: Option<User>,
    pub(crate) set_groups: bool,
    pub(crate) keep_caps: CapsHashSet,
    pub(crate) seccomp: Option<Filters>,
    /// What "not found" errors say the command was looked for in: "the image /srv/rootfs".
    pub(crate) image: String,
    /// Ask for SIGKILL when the parent dies (a command entering a running container goes
    /// with the process that waits for it; a job goes with its pid namespace anyway).
    pub(crate) die_with_parent: bool,
    /// Descriptors to make the command's stdin, stdout and stderr (`None`: keep its own).
    pub(crate) stdio: [Option<RawFd>; 3],
}

/// Where the command starts.
pub(crate) enum Workdir {
    /// A path inside the container.
    Path(CString),
    /// A directory opened beforehand (`nsenter --wd` style): the working directory of the
    /// container's init, so it is always a directory inside the container.
    Fd(RawFd),
}

impl Workdir {
    fn enter(&self) -> Result<(), StepError> {
        // SAFETY: the path is a valid C string; fchdir takes a plain descriptor number.
        let rc = unsafe {
            match self {
                Workdir::Path(path) => libc::chdir(path.as_ptr()),
                Workdir::Fd(fd) => libc::fchdir(*fd),
            }
        };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        let which = match self {
            Workdir::Path(path) => path.to_string_lossy().into_owned(),
            Workdir::Fd(_) => "the container's working directory".into(),
        };
        Err(fail(
            SetupFailure::Workdir,
            format!("cannot use {which} as the working directory inside the container: {err}"),
        ))
    }
}

fn fail(failure: SetupFailure, message: String) -> StepError {
    StepError { failure, message }
}

/// Runs in the forked job; returns only on failure.
pub(crate) fn exec_job(plan: &ExecPlan) -> StepError {
    match prepare(plan) {
        Ok(()) => exec_command(plan),
        Err(e) => e,
    }
}

/// Execs the command, or reports why not on `report` and exits with the shell's status for
/// it (127 not found, 126 not executable, 125 anything else).
pub(crate) fn exec_or_report(plan: &ExecPlan, report: &OwnedFd) -> ! {
    let failure = exec_job(plan);
    channel::send_failure(report, failure.failure, &failure.message);
    let code = match failure.failure {
        SetupFailure::CommandNotFound => crate::exit_status::NOT_FOUND,
        SetupFailure::NotExecutable => crate::exit_status::NOT_EXECUTABLE,
        _ => crate::exit_status::SETUP_FAILED,
    };
    // SAFETY: _exit leaves without running destructors or touching memory the process may
    // share with a suspended parent (the vfork-style start).
    unsafe { libc::_exit(i32::from(code)) }
}

fn prepare(plan: &ExecPlan) -> Result<(), StepError> {
    for (target, fd) in (0..).zip(plan.stdio) {
        // SAFETY: dup2 takes plain descriptor numbers; the caller keeps `fd` open while the
        // container starts (it is in the spec it lends to `start`).
        if fd.is_some_and(|fd| unsafe { libc::dup2(fd, target) } < 0) {
            return Err(StepError::os("redirecting the job's standard streams"));
        }
    }
    reset_signals();
    caps::drop_bounding(&plan.keep_caps)?;
    if let Some(user) = plan.user {
        switch_user(user, plan.set_groups, !plan.keep_caps.is_empty())?;
    }
    // After the uid change, which clears the parent-death signal.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes plain integers.
    if plan.die_with_parent
        && unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0
    {
        return Err(StepError::os("asking to die with the parent"));
    }
    plan.workdir.enter()?;
    caps::set_final(&plan.keep_caps)?;
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(StepError::os("setting no_new_privs"));
    }
    close_inherited_fds();
    if let Some(filters) = &plan.seccomp {
        filters.install()?;
    }
    Ok(())
}

/// Undoes what the caller's process set up for itself: blocked signals (the init blocks the
/// ones it forwards) and ignored ones (Rust ignores SIGPIPE), which `execve` would keep.
fn reset_signals() {
    // SAFETY: sigset_t is plain data; the calls take valid pointers to it.
    unsafe {
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

fn switch_user(user: User, set_groups: bool, keep_caps: bool) -> Result<(), StepError> {
    let user_fail = |what: &str| {
        fail(
            SetupFailure::User,
            format!(
                "cannot switch to uid {} gid {} inside the container ({what}: {})",
                user.uid,
                user.gid,
                std::io::Error::last_os_error()
            ),
        )
    };
    // Raw system calls, not the C library's wrappers: the job shares the init's memory
    // until it execs, and glibc's set*id wrappers consult process-wide thread state.
    // SAFETY: these calls take plain integers or a pointer to a one-element array.
    unsafe {
        if set_groups && libc::syscall(libc::SYS_setgroups, 1, &user.gid as *const u32) != 0 {
            return Err(user_fail("setgroups"));
        }
        if keep_caps && libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
            return Err(user_fail("keepcaps"));
        }
        if libc::syscall(libc::SYS_setresgid, user.gid, user.gid, user.gid) != 0 {
            return Err(user_fail("setresgid"));
        }
        if libc::syscall(libc::SYS_setresuid, user.uid, user.uid, user.uid) != 0 {
            return Err(user_fail("setresuid"));
        }
    }
    Ok(())
}

/// Marks every inherited descriptor above stderr close-on-exec, so the job sees only
/// stdin, stdout and stderr (the report channel closes at `execve` too).
fn close_inherited_fds() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        // Before Linux 5.11: set the flag one by one on what /proc lists.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2)
                .collect();
            for fd in fds {
                // SAFETY: fcntl on a number that may not be open only returns EBADF.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> i32 {
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings kept alive by the plan.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ptrs(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `execvp` semantics inside the container: search `PATH` unless the name has a slash, fall
/// back to `/bin/sh` for a script without `#!`, and explain every failure.
fn exec_command(plan: &ExecPlan) -> StepError {
    let Some(argv0) = plan.argv.first() else {
        return fail(SetupFailure::CommandNotFound, "no command to run".into());
    };
    let name = argv0.to_string_lossy().into_owned();
    let candidates: Vec<String> = if name.contains('/') {
        vec![name.clone()]
    } else {
        plan.path
            .iter()
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{name}", d.trim_end_matches('/')))
            .collect()
    };
    let argv = ptrs(&plan.argv);
    let envp = ptrs(&plan.env);
    let mut denied: Option<String> = None;
    let mut unstartable: Option<String> = None;
    for candidate in &candidates {
        let Ok(c_path) = CString::new(candidate.as_str()) else {
            continue;
        };
        match execve(&c_path, &argv, &envp) {
            libc::ENOENT | libc::ENOTDIR => {
                if std::fs::symlink_metadata(candidate).is_ok() && unstartable.is_none() {
                    unstartable = Some(candidate.clone());
                }
            }
            libc::EACCES => {
                if denied.is_none() {
                    denied = Some(candidate.clone());
                }
            }
            libc::ENOEXEC => return exec_with_shell(plan, candidate, &envp),
            errno => {
                return fail(
                    SetupFailure::NotExecutable,
                    format!(
                        "cannot execute {candidate} in the container: {}",
                        std::io::Error::from_raw_os_error(errno)
                    ),
                )
            }
        }
    }
    if let Some(path) = denied {
        return fail(SetupFailure::NotExecutable, not_executable_message(&path));
    }
    if let Some(path) = unstartable {
        return fail(
            SetupFailure::NotExecutable,
            format!(
                "{path} exists in the image but cannot be started: its interpreter{} or its \
                 dynamic loader is missing from the image",
                interpreter(&path)
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default()
            ),
        );
    }
    let message = if name.contains('/') {
        format!("{name} does not exist in {}", plan.image)
    } else {
        format!(
            "command '{name}' not found in {}: looked inside the container in PATH={}",
            plan.image,
            plan.path.join(":")
        )
    };
    fail(SetupFailure::CommandNotFound, message)
}

fn not_executable_message(path: &str) -> String {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => format!("{path} in the image is a directory, not a program"),
        Ok(meta) => format!(
            "{path} in the image is not executable (mode {:04o})",
            meta.permissions().mode() & 0o7777
        ),
        Err(e) => format!("{path} in the image cannot be executed: {e}"),
    }
}

/// The `#!` line of a script, if it has one.
fn interpreter(path: &str) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 128];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let line = text.strip_prefix("#!")?.lines().next()?.trim().to_string();
    Some(line)
}

fn exec_with_shell(plan: &ExecPlan, script: &str, envp: &[*const libc::c_char]) -> StepError {
    let mut argv: Vec<CString> = vec![c"/bin/sh".to_owned()];
    argv.extend(CString::new(script).ok());
    argv.extend(plan.argv.iter().skip(1).cloned());
    let errno = execve(c"/bin/sh", &ptrs(&argv), envp);
    let why = if errno == libc::ENOENT {
        "the image has no /bin/sh".to_string()
    } else {
        format!("/bin/sh: {}", std::io::Error::from_raw_os_error(errno))
    };
    fail(
        SetupFailure::NotExecutable,
        format!("{script} has no #! line, so it needs a shell to run, but {why}"),
    )
}
