//! Entering a running container: `petrel ssh JOB` and the drivers' `exec`.
//!
//! As `nsenter` and runc's `exec` do, the command joins the namespaces of the container's
//! init instead of getting new ones. The order matters:
//! 1. the container's cgroup, while still outside its user namespace (whose root has no
//!    rights over the host's cgroup files);
//! 2. the user namespace, unless the caller is already in it: every other namespace of the
//!    container belongs to it, so joining it first gives the capabilities needed to join
//!    them (an unprivileged user may join a user namespace it owns);
//! 3. ipc, uts, net, cgroup, pid. A namespace the caller already shares with the container
//!    (the host's network) is skipped: joining it would take rights over the host's
//!    namespace that the container's user namespace does not hold;
//! 4. mount, last: joining it replaces the root and the working directory, so every
//!    namespace file (and the working directory to start in) was opened before;
//! 5. a fork: a pid namespace applies to children only. The child gets the job's hardening
//!    (bounding set emptied, uid and gid, no_new_privs, no capabilities, seccomp) and execs.
//!
//! The kernel refuses to move a multi-threaded process into a user or mount namespace, so
//! all this happens in a forked copy of the caller (which has only the forking thread):
//! ```text
//! caller (waits; passes on the signals that would have killed it)
//!   └─ joiner: in the container's namespaces, its pid namespace only for its children;
//!      │       forwards signals, reaps, reports the status as a container's init does
//!      └─ the command: a process of the container, with the job's restrictions
//! ```

use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::channel::{self, Report};
use crate::container::{self, MaskGuard, INIT_NAME};
use crate::error::{RuntimeError, SetupFailure};
use crate::exec::{self, ExecPlan, Workdir};
use crate::init::{self, JobStatus, FORWARDED};
use crate::seccomp;
use crate::spec::User;

/// A command to run in a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command and its arguments; `argv[0]` is looked up in the `PATH` of `env`.
    pub argv: Vec<String>,
    /// The complete environment (`KEY=VALUE`); nothing is inherited from the caller.
    pub env: Vec<String>,
    /// Working directory inside the container; defaults to the container's scratch target
    /// directory when it has a scratch directory, else `/`.
    pub workdir: Option<String>,
    /// The user to run as, inside the container; `None` keeps the mapped caller, as
    /// [`crate::ContainerSpec::user`] does for the job.
    pub user: Option<User>,
    /// Install the default seccomp filter, as for the job.
    pub seccomp: bool,
}

impl ExecSpec {
    /// A command with the default `PATH`, the default working directory, the caller's
    /// mapped ids and the seccomp filter on.
    pub fn new(argv: Vec<String>) -> Self {
        ExecSpec {
            argv,
            env: vec![format!("PATH={}", crate::DEFAULT_PATH)],
            workdir: None,
            user: None,
            seccomp: true,
        }
    }
}

/// Runs a command inside the running container whose init has host pid `pid` (see
/// [`crate::Container::pid`]) and returns its status once it ends.
///
/// The command's stdin, stdout and stderr are the caller's, so a terminal works for an
/// interactive shell (the terminal is the host's: inside, `tty` finds no name for it in the
/// container's own `/dev/pts`). While it runs, each of SIGTERM, SIGINT, SIGHUP, SIGUSR1,
/// SIGUSR2 and SIGQUIT that would have killed the caller (default action, not blocked) is
/// blocked in the calling thread and, when another process sends it, passed on to the
/// command; signals the caller handles or blocks stay its own (and are delivered once the
/// command has ended). If the caller dies, the command is killed.
///
/// Only the caller's own containers can be entered: `pid` must be owned by the caller's
/// uid, be named as a petrel init is, be pid 1 of a pid namespace below the caller's, and
/// be in another mount namespace; anything else is refused with
/// [`RuntimeError::NotAContainer`]. The caller must not reap the process this forks (no
/// `waitpid(-1)` in a SIGCHLD handler).
pub fn exec_in(pid: i32, spec: &ExecSpec) -> Result<JobStatus, RuntimeError> {
    if spec.argv.is_empty() {
        return Err(RuntimeError::InvalidSpec("no command given".into()));
    }
    let target = Target::open(pid, spec.user)?;
    let plan = exec_plan(pid, spec, &target)?;
    let (report_r, report_w) = container::pipe()?;

    // Blocked across the fork, so the joiner is born with them blocked (it reads them from
    // a signalfd, like a container's init); the caller keeps those it had before.
    let mask = MaskGuard::block(&FORWARDED);
    let passed_on: Vec<libc::c_int> = FORWARDED
        .iter()
        .copied()
        .filter(|&sig| !mask.was_blocked(sig) && default_action(sig))
        .collect();
    let signals = if passed_on.is_empty() {
        None
    } else {
        init::signalfd(&passed_on).ok()
    };
    // SAFETY: getpid has no preconditions.
    let caller = unsafe { libc::getpid() };
    // SAFETY: fork copies only this thread; the child runs `join_and_exec`, which uses the
    // plan prepared above and ends in _exit or execve. glibc's fork resets its allocator's
    // locks in the child, so the error paths there may allocate.
    let joiner = unsafe { libc::fork() };
    if joiner < 0 {
        return Err(RuntimeError::io(
            "forking to enter the container",
            io::Error::last_os_error(),
        ));
    }
    if joiner == 0 {
        drop(report_r);
        join_and_exec(&target, &plan, report_w, caller);
    }
    drop(report_w);
    let mut bytes = Vec::new();
    channel::read(
        &report_r,
        &mut bytes,
        signals.as_ref().map(|s| (s, joiner)),
        |_| false,
    );
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(joiner, &mut status, 0) };
        if r == joiner || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    drop(signals);
    drop(mask);
    let reports = channel::parse(&bytes);
    if let Some((failure, message)) = reports.iter().find_map(|r| match r {
        Report::Failure(f, m) => Some((*f, m.clone())),
        _ => None,
    }) {
        return Err(RuntimeError::InContainer { failure, message });
    }
    match reports.iter().find_map(|r| match r {
        Report::Exit(status) => Some(JobStatus::from_wait_status(*status)),
        _ => None,
    }) {
        Some(status) => Ok(status),
        // The joiner was killed, and the command with it (its parent-death signal).
        None if libc::WIFSIGNALED(status) => Ok(JobStatus::from_wait_status(status)),
        None => Err(RuntimeError::NoReport),
    }
}

/// Whether `sig` would kill the caller: its action is the default one.
fn default_action(sig: libc::c_int) -> bool {
    // SAFETY: sigaction is plain data; a null new action only reads the current one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid signal number and out-pointer.
    unsafe {
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_DFL
    }
}

fn exec_plan(pid: i32, spec: &ExecSpec, target: &Target) -> Result<ExecPlan, RuntimeError> {
    let cstring = |text: &str, what: &str| {
        CString::new(text)
            .map_err(|_| RuntimeError::InvalidSpec(format!("{what} '{text}' contains a NUL byte")))
    };
    let cstrings = |items: &[String], what: &str| {
        items
            .iter()
            .map(|s| cstring(s, what))
            .collect::<Result<Vec<_>, _>>()
    };
    let path = spec
        .env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(crate::DEFAULT_PATH)
        .split(':')
        .map(str::to_string)
        .collect();
    let workdir = match &spec.workdir {
        Some(dir) => Workdir::Path(cstring(dir, "working directory")?),
        None => Workdir::Fd(target.cwd.as_raw_fd()),
    };
    Ok(ExecPlan {
        argv: cstrings(&spec.argv, "argument")?,
        env: cstrings(&spec.env, "environment entry")?,
        path,
        workdir,
        user: spec.user,
        set_groups: target.set_groups,
        keep_caps: Default::default(),
        seccomp: if spec.seccomp {
            Some(seccomp::build()?)
        } else {
            None
        },
        image: format!("the container of process {pid}"),
        die_with_parent: true,
        stdio: [None; 3],
    })
}

/// One namespace of the container to join.
struct Namespace {
    name: &'static str,
    flag: libc::c_int,
    file: OwnedFd,
}

/// The container to enter, checked and opened by the caller, so the joiner only acts.
struct Target {
    /// In the order they are joined.
    namespaces: Vec<Namespace>,
    /// The init's working directory: where commands start by default.
    cwd: OwnedFd,
    /// The `cgroup.procs` files of the container's own cgroups.
    cgroup_procs: Vec<CString>,
    /// Whether `setgroups(2)` is allowed in the container's user namespace.
    set_groups: bool,
}

/// The namespaces joined, in order; see the module docs.
const JOIN_ORDER: [(&str, libc::c_int); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

impl Target {
    /// Checks that `pid` is the init of one of the caller's petrel containers and opens
    /// what entering it takes. Everything is read through one `/proc/PID` descriptor, so a
    /// pid reused by another process in the meantime fails instead of being entered.
    fn open(pid: i32, user: Option<User>) -> Result<Target, RuntimeError> {
        let refuse = |reason: String| RuntimeError::NotAContainer { pid, reason };
        if pid == 1 {
            return Err(refuse("pid 1 is the system's init, not a container".into()));
        }
        if pid <= 0 {
            return Err(refuse("not a process id".into()));
        }
        let dir = open_at(
            None,
            &format!("/proc/{pid}"),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => refuse("no such process".into()),
            _ => RuntimeError::io(format!("opening /proc/{pid}"), e),
        })?;
        let meta = fs::File::from(
            dir.try_clone()
                .map_err(|e| RuntimeError::io("duplicating a descriptor", e))?,
        )
        .metadata()
        .map_err(|e| RuntimeError::io(format!("reading /proc/{pid}"), e))?;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        if meta.uid() != uid {
            return Err(refuse(format!(
                "it belongs to uid {}, and petrel enters only your own containers (uid {uid})",
                meta.uid()
            )));
        }
        let read = |name: &str| {
            read_at(&dir, name)
                .map_err(|e| RuntimeError::io(format!("reading /proc/{pid}/{name}"), e))
        };
        let comm = read("comm")?;
        let comm = comm.trim_end();
        if comm.as_bytes() != INIT_NAME.to_bytes() {
            return Err(refuse(format!(
                "it is '{comm}', not the init of a petrel container (which is named '{}')",
                INIT_NAME.to_string_lossy()
            )));
        }
        let status = read("status")?;
        let state = status.lines().find_map(|l| l.strip_prefix("State:"));
        if state.is_some_and(|s| s.trim_start().starts_with(['Z', 'X'])) {
            return Err(refuse("the container has ended".into()));
        }
        let nspid: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if nspid.len() < 2 || nspid.last() != Some(&"1") {
            return Err(refuse(
                "it is not the init (pid 1) of a pid namespace below yours".into(),
            ));
        }
        let mut namespaces = Vec::new();
        for (name, flag) in JOIN_ORDER {
            // Every kind is required: a command must never start outside the container
            // because a namespace file could not be opened.
            let file =
                open_at(Some(&dir), &format!("ns/{name}"), libc::O_RDONLY).map_err(|e| match e
                    .raw_os_error()
                {
                    // An exiting process has given its namespaces up.
                    Some(libc::ENOENT) | Some(libc::ESRCH) => {
                        refuse("the container has ended".into())
                    }
                    _ => RuntimeError::io(format!("opening /proc/{pid}/ns/{name}"), e),
                })?;
            if same_namespace(&file, name)? {
                if flag == libc::CLONE_NEWNS {
                    return Err(refuse(
                        "it shares your mount namespace, so it is not in a container".into(),
                    ));
                }
                continue;
            }
            namespaces.push(Namespace { name, flag, file });
        }
        let cwd = open_at(Some(&dir), "cwd", libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| RuntimeError::io(format!("opening /proc/{pid}/cwd"), e))?;
        if let Some(user) = user {
            check_mapped(user, &read("uid_map")?, &read("gid_map")?)?;
        }
        let set_groups = user.is_some() && read("setgroups")?.trim() == "allow";
        let cgroup_procs = crate::cgroups::container_procs_files(pid)
            .into_iter()
            .map(|path| {
                CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
                    RuntimeError::InvalidSpec(format!(
                        "cgroup path {} contains a NUL byte",
                        path.display()
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Target {
            namespaces,
            cwd,
            cgroup_procs,
            set_groups,
        })
    }
}

/// `openat(2)` with close-on-exec; `dir` `None` opens `path` as it is.
fn open_at(dir: Option<&OwnedFd>, path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c_path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c_path is a valid C string and the directory descriptor (or AT_FDCWD) is open.
    let fd = unsafe {
        libc::openat(
            dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd()),
            c_path.as_ptr(),
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn read_at(dir: &OwnedFd, name: &str) -> io::Result<String> {
    let mut text = String::new();
    fs::File::from(open_at(Some(dir), name, libc::O_RDONLY)?).read_to_string(&mut text)?;
    Ok(text)
}

/// Whether the namespace `file` is the caller's own namespace of that kind.
fn same_namespace(file: &OwnedFd, name: &str) -> Result<bool, RuntimeError> {
    let own = format!("/proc/self/ns/{name}");
    let mine = fs::metadata(&own).map_err(|e| RuntimeError::io(format!("reading {own}"), e))?;
    let theirs = fs::File::from(
        file.try_clone()
            .map_err(|e| RuntimeError::io("duplicating a descriptor", e))?,
    )
    .metadata()
    .map_err(|e| RuntimeError::io(format!("reading the container's {name} namespace"), e))?;
    Ok(mine.dev() == theirs.dev() && mine.ino() == theirs.ino())
}

/// Refuses a user the container's user namespace has no id for (an unprivileged
/// container maps only its owner's id).
fn check_mapped(user: User, uid_map: &str, gid_map: &str) -> Result<(), RuntimeError> {
    let mapped = |map: &str, id: u32| {
        map.lines().any(|line| {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            matches!(f.as_slice(), [inside, _, count] if (*inside..inside + count).contains(&u64::from(id)))
        })
    };
    if mapped(uid_map, user.uid) && mapped(gid_map, user.gid) {
        return Ok(());
    }
    let inside: Vec<&str> = uid_map
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    Err(RuntimeError::InvalidSpec(format!(
        "user {}:{} has no id in the container's user namespace, which maps uid {} only \
         (an unprivileged container holds one id: its owner's)",
        user.uid,
        user.gid,
        inside.join(", ")
    )))
}

/// The joiner, from the fork to its exit. Never returns.
fn join_and_exec(target: &Target, plan: &ExecPlan, report: OwnedFd, caller: libc::pid_t) -> ! {
    let fail = |message: String| -> ! {
        channel::send_failure(&report, SetupFailure::Step, &message);
        // SAFETY: _exit ends the joiner without running the caller's destructors.
        unsafe { libc::_exit(i32::from(crate::exit_status::SETUP_FAILED)) }
    };
    // SAFETY: prctl with PR_SET_PDEATHSIG takes plain integers; getppid has no
    // preconditions. If the caller is already gone, stop here.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != caller {
            libc::_exit(i32::from(crate::exit_status::SETUP_FAILED));
        }
    }
    for file in &target.cgroup_procs {
        if let Err(e) = write_self(file) {
            fail(format!(
                "joining the container's cgroup ({}): {e}",
                file.to_string_lossy()
            ));
        }
    }
    for ns in &target.namespaces {
        // SAFETY: setns takes a namespace descriptor we own and its type.
        if unsafe { libc::setns(ns.file.as_raw_fd(), ns.flag) } != 0 {
            fail(format!(
                "joining the container's {} namespace: {}",
                ns.name,
                io::Error::last_os_error()
            ));
        }
    }
    let mut watched = FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    init::block(&watched);
    let signals = match init::signalfd(&watched) {
        Ok(fd) => fd,
        Err(e) => fail(format!("creating the joiner's signalfd: {e}")),
    };
    // SAFETY: the joiner has one thread; the child only runs exec_or_report.
    let command = unsafe { libc::fork() };
    if command < 0 {
        let err = io::Error::last_os_error();
        // The kernel refuses new processes in a pid namespace whose init has exited.
        let why = if err.raw_os_error() == Some(libc::ENOMEM) {
            " (the container has ended)"
        } else {
            ""
        };
        fail(format!("starting the command in the container: {err}{why}"));
    }
    if command == 0 {
        drop(signals);
        exec::exec_or_report(plan, &report);
    }
    init::run(command, signals, report)
}

/// Moves the calling process into a cgroup: "0" in `cgroup.procs` means the writer.
fn write_self(file: &CString) -> io::Result<()> {
    // SAFETY: file is a valid C string.
    let fd = unsafe { libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened; the buffer is a one-byte literal.
    let n = unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) };
    let err = io::Error::last_os_error();
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    if n != 1 {
        return Err(err);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ids() {
        let user = User { uid: 0, gid: 0 };
        assert!(check_mapped(user, "0 1000 1\n", "0 1000 1\n").is_ok());
        assert!(check_mapped(user, "0 0 4294967295\n", "0 0 4294967295\n").is_ok());
        let err = check_mapped(User { uid: 5, gid: 5 }, "1000 1000 1\n", "1000 1000 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("5:5") && err.contains("1000"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_container() {
        let spec = ExecSpec::new(vec!["/bin/true".into()]);
        let err = exec_in(1, &spec).unwrap_err().to_string();
        assert!(err.contains("system's init"), "{err}");
        let me = std::process::id() as i32;
        let err = exec_in(me, &spec).unwrap_err().to_string();
        assert!(err.contains("not the init of a petrel container"), "{err}");
        let err = exec_in(i32::MAX, &spec).unwrap_err().to_string();
        assert!(err.contains("no such process"), "{err}");
    }
}
