//! Creating one container: the caller's side up to the clone, and the init's side up to
//! the job's `execve`.
//!
//! The caller checks the spec and plans the setup, creates the cgroup, then `clone`s the
//! container's init straight into the new namespaces (no intermediate process). When the
//! caller itself must act on the child (write a full id map, move it into the cgroup), the
//! child waits on a sync pipe; otherwise it maps its own ids and goes on at once. What the
//! caller does next (wait for the start, forward signals, reap) is in `handle.rs`.

use std::ffi::{CStr, CString};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::cgroups::Cgroup;
use crate::channel;
use crate::error::{RuntimeError, StepError};
use crate::exec::{self, ExecPlan, Workdir};
use crate::idmap::{self, Maps};
use crate::init::{self, FORWARDED};
use crate::setup::{self, OverlayDirs, Plan};
use crate::spec::{ContainerSpec, Overlay, User};
use crate::statedir::StateDir;
use crate::{caps, namespaces, seccomp};

/// The name a container's init gives itself (`/proc/PID/comm`).
pub(crate) const INIT_NAME: &CStr = c"petrel";

/// What the caller prepared for one container: the setup plan and the job's exec plan the
/// child only acts on, and the state directory the container needs while it runs.
pub(crate) struct Prepared {
    plan: Plan,
    exec: ExecPlan,
    maps: Maps,
    /// The init's working directory once setup is done: the scratch target when there is a
    /// scratch directory. [`crate::exec_in`] starts commands there by default.
    init_workdir: Option<CString>,
    pub(crate) state: Option<StateDir>,
}

/// A unique id for this run, from the container's name: names its cgroup and state directory.
pub(crate) fn container_id(spec: &ContainerSpec) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let base: String = spec
        .name
        .as_deref()
        .unwrap_or("petrel")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{base}-{}-{nanos}", std::process::id())
}

/// Checks the spec and prepares everything the child will need, so the child only acts.
pub(crate) fn prepare(
    spec: &ContainerSpec,
    id: &str,
    uid: u32,
    gid: u32,
) -> Result<Prepared, RuntimeError> {
    match fs::metadata(&spec.rootfs) {
        Err(_) => return Err(RuntimeError::RootfsMissing(spec.rootfs.clone())),
        Ok(meta) if !meta.is_dir() => {
            return Err(RuntimeError::RootfsNotDirectory(spec.rootfs.clone()))
        }
        Ok(_) => {}
    }
    if spec.argv.is_empty() {
        return Err(RuntimeError::InvalidSpec("no command given".into()));
    }
    if !spec.cap_add.is_empty() && uid != 0 {
        return Err(RuntimeError::InvalidSpec(
            "--cap-add needs root: an unprivileged user's job holds no capabilities to keep".into(),
        ));
    }
    let keep_caps = caps::parse(&spec.cap_add)?;
    let (maps, user) = choose_ids(spec, uid, gid)?;

    let missing = setup::missing_mount_points(spec);
    let mut overlay = spec.overlay.clone();
    if overlay == Overlay::None && !missing.is_empty() {
        tracing::info!(
            "the image lacks mount points {}; adding a discarded writable layer",
            missing.join(", ")
        );
        overlay = Overlay::Discard;
    }
    let need_state = overlay != Overlay::None || spec.hostname.is_some();
    let state = if need_state {
        Some(StateDir::create(id)?)
    } else {
        None
    };
    let overlay_dirs = match (&overlay, &state) {
        (Overlay::None, _) | (_, None) => None,
        (Overlay::Discard, Some(state)) => Some(OverlayDirs {
            mount: state.path().join("root"),
            upper: state.path().join("upper"),
            work: state.path().join("work"),
        }),
        (Overlay::Keep(dir), Some(state)) => Some(OverlayDirs {
            mount: state.path().join("root"),
            upper: dir.join("upper"),
            work: dir.join("work"),
        }),
    };
    if let Some(dirs) = &overlay_dirs {
        for d in [&dirs.mount, &dirs.upper, &dirs.work] {
            fs::create_dir_all(d)
                .map_err(|e| RuntimeError::io(format!("creating {}", d.display()), e))?;
        }
    }
    let hostname_file = match (&spec.hostname, &state) {
        (Some(name), Some(state)) => {
            let file = state.path().join("hostname");
            fs::write(&file, format!("{name}\n"))
                .map_err(|e| RuntimeError::io(format!("writing {}", file.display()), e))?;
            Some(file)
        }
        _ => None,
    };
    let plan = setup::plan(spec, overlay_dirs.as_ref(), hostname_file.as_deref())?;

    let cstrings = |items: &[String], what: &str| {
        items
            .iter()
            .map(|s| {
                CString::new(s.as_str()).map_err(|_| {
                    RuntimeError::InvalidSpec(format!("{what} '{s}' contains a NUL byte"))
                })
            })
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
    let workdir = spec.workdir.clone().unwrap_or_else(|| {
        if spec.scratch.is_some() {
            spec.target_dir.clone()
        } else {
            "/".into()
        }
    });
    let nul_free = |text: &str, what: &str| {
        CString::new(text)
            .map_err(|_| RuntimeError::InvalidSpec(format!("{what} '{text}' contains a NUL byte")))
    };
    let init_workdir = match &spec.scratch {
        Some(_) => Some(nul_free(&spec.target_dir, "target directory")?),
        None => None,
    };
    let exec = ExecPlan {
        argv: cstrings(&spec.argv, "argument")?,
        env: cstrings(&spec.env, "environment entry")?,
        path,
        workdir: Workdir::Path(nul_free(&workdir, "working directory")?),
        user,
        set_groups: maps == Maps::Full,
        keep_caps,
        seccomp: if spec.seccomp {
            Some(seccomp::build()?)
        } else {
            None
        },
        image: format!("the image {}", spec.rootfs.display()),
        die_with_parent: false,
        stdio: spec
            .stdio
            .each_ref()
            .map(|f| f.as_ref().map(|f| f.as_raw_fd())),
    };
    Ok(Prepared {
        plan,
        exec,
        maps,
        init_workdir,
        state,
    })
}

/// Which id maps the container gets and which user the job switches to.
fn choose_ids(
    spec: &ContainerSpec,
    uid: u32,
    gid: u32,
) -> Result<(Maps, Option<User>), RuntimeError> {
    let maps = Maps::choose(spec.id_mapping, uid, gid);
    let user = match (maps, spec.user) {
        (_, None) => None,
        (Maps::Full, Some(user)) => Some(user),
        // The one id there is: nothing to switch.
        (
            Maps::Single {
                inside_uid,
                inside_gid,
            },
            Some(user),
        ) if user.uid == inside_uid && user.gid == inside_gid => None,
        (Maps::Single { inside_uid, .. }, Some(user)) => {
            return Err(RuntimeError::InvalidSpec(format!(
                "--user {}:{}: an unprivileged user namespace holds only one id (yours, seen as \
                 {inside_uid} inside); run as root to use other ids, or --fakeroot to be 0",
                user.uid, user.gid
            )))
        }
    };
    Ok((maps, user))
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(RuntimeError::io(
            "creating a pipe",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Restores the caller's signal mask when dropped.
pub(crate) struct MaskGuard(libc::sigset_t);

impl MaskGuard {
    /// Blocks `signals` in the calling thread until the guard is dropped.
    pub(crate) fn block(signals: &[libc::c_int]) -> MaskGuard {
        let set = init::sigset(signals);
        // SAFETY: sigset_t is plain data; pthread_sigmask fills `old`.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: set is initialised and old is a valid out-pointer.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        MaskGuard(old)
    }

    /// Whether `sig` was blocked before the guard blocked it.
    pub(crate) fn was_blocked(&self, sig: libc::c_int) -> bool {
        // SAFETY: the saved mask came from pthread_sigmask.
        unsafe { libc::sigismember(&self.0, sig) == 1 }
    }
}

impl Drop for MaskGuard {
    fn drop(&mut self) {
        // SAFETY: the saved mask came from pthread_sigmask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Clones the container's init into its new namespaces and lets it go on; returns its pid
/// and the read end of its report channel.
pub(crate) fn spawn(
    prepared: &Prepared,
    cgroup: Option<&Cgroup>,
    uid: u32,
    gid: u32,
) -> Result<(libc::pid_t, OwnedFd), RuntimeError> {
    let (report_r, report_w) = pipe()?;
    let needs_sync = cgroup.is_some() || prepared.maps.written_by_caller();
    let (sync_r, sync_w) = if needs_sync {
        let (r, w) = pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };

    // The init must be born with the forwarded signals blocked (its signalfd reads them once
    // setup is done; until then they wait). The caller's own mask comes back after the clone.
    let mask = MaskGuard::block(&FORWARDED);
    let flags = namespaces::clone_flags(container_net(&prepared.plan));
    // SAFETY: a raw clone without CLONE_VM and with a null stack behaves like fork: the child
    // gets a copy of this process (only the calling thread) and returns 0 here.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(namespaces::unavailable(
            flags,
            std::io::Error::last_os_error(),
        ));
    }
    if pid == 0 {
        drop(report_r);
        drop(sync_w);
        child(prepared, sync_r, report_w, uid, gid);
    }
    drop(mask);
    let pid = pid as libc::pid_t;
    drop(report_w);
    drop(sync_r);

    if let Err(err) = release_child(prepared, cgroup, pid, sync_w, uid, gid) {
        // SAFETY: kill and waitpid take plain integers and a null status pointer.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(err);
    }
    Ok((pid, report_r))
}

fn container_net(plan: &Plan) -> crate::spec::NetMode {
    if plan.ops.contains(&setup::Op::LoopbackUp) {
        crate::spec::NetMode::None
    } else {
        crate::spec::NetMode::Host
    }
}

/// Does what only the caller can do for the child, then lets it go on.
fn release_child(
    prepared: &Prepared,
    cgroup: Option<&Cgroup>,
    pid: libc::pid_t,
    sync_w: Option<OwnedFd>,
    uid: u32,
    gid: u32,
) -> Result<(), RuntimeError> {
    if let Some(cg) = cgroup {
        cg.add_pid(pid).map_err(|e| RuntimeError::Cgroup {
            path: cg.paths().first().cloned().unwrap_or_default(),
            message: format!("adding the container's init: {e}"),
        })?;
    }
    if prepared.maps.written_by_caller() {
        idmap::write(&pid.to_string(), prepared.maps, uid, gid)
            .map_err(|e| RuntimeError::io("writing the container's id maps", e))?;
    }
    if let Some(w) = sync_w {
        let mut file = fs::File::from(w);
        file.write_all(b"1")
            .map_err(|e| RuntimeError::io("releasing the container's init", e))?;
    }
    Ok(())
}

/// The container's init, from the clone to the job's exit. Never returns.
fn child(prepared: &Prepared, sync_r: Option<OwnedFd>, report: OwnedFd, uid: u32, gid: u32) -> ! {
    // SAFETY: prctl with PR_SET_PDEATHSIG and PR_SET_NAME takes plain integers and a valid
    // C string. If the caller dies, the whole container goes with its init. The name is what
    // `ps` shows as pid 1 inside, whatever program started the container, and what
    // `exec_in` checks to recognise a container's init.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr(), 0, 0, 0);
    }
    let failure = match init_setup(prepared, sync_r, uid, gid) {
        Ok(signals) => match fork_job(prepared, &report, &signals) {
            Ok(job) => {
                // The vfork-style start returns once the job has exec'd (or failed and said so).
                channel::send_started(&report);
                init::run(job, signals, report)
            }
            Err(e) => e,
        },
        Err(e) => e,
    };
    channel::send_failure(&report, failure.failure, &failure.message);
    // SAFETY: _exit ends the child without running the caller's destructors.
    unsafe { libc::_exit(i32::from(crate::exit_status::SETUP_FAILED)) }
}

fn init_setup(
    prepared: &Prepared,
    sync_r: Option<OwnedFd>,
    uid: u32,
    gid: u32,
) -> Result<OwnedFd, StepError> {
    if let Some(r) = sync_r {
        let mut byte = [0u8; 1];
        let mut file = fs::File::from(r);
        if !matches!(file.read(&mut byte), Ok(1)) {
            // The caller gave up (and is about to kill us); say nothing more.
            // SAFETY: see above.
            unsafe { libc::_exit(i32::from(crate::exit_status::SETUP_FAILED)) };
        }
    }
    if !prepared.maps.written_by_caller() {
        idmap::write("self", prepared.maps, uid, gid)
            .map_err(|e| StepError::step(format!("writing the user namespace's id maps: {e}")))?;
    }
    setup::execute(&prepared.plan)?;
    if let Some(dir) = &prepared.init_workdir {
        // SAFETY: dir is a valid C string.
        if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
            return Err(StepError::os(format_args!(
                "entering the scratch directory at {}",
                dir.to_string_lossy()
            )));
        }
    }
    let mut watched = FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    init::block(&watched);
    init::signalfd(&watched)
        .map_err(|e| StepError::step(format!("creating the init's signalfd: {e}")))
}

/// What the job process needs from the init, passed through `clone`'s argument.
struct JobArgs<'a> {
    prepared: &'a Prepared,
    report: &'a OwnedFd,
    signals: libc::c_int,
}

const JOB_STACK: usize = 1 << 20;

/// Starts the job as `vfork` does: sharing the init's memory, with the init suspended until
/// the job execs or exits. That skips copying page tables for a process that will exec at
/// once, which shows in every container's start-up time.
fn fork_job(
    prepared: &Prepared,
    report: &OwnedFd,
    signals: &OwnedFd,
) -> Result<libc::pid_t, StepError> {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            JOB_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(StepError::os("allocating the job's start-up stack"));
    }
    let args = JobArgs {
        prepared,
        report,
        signals: signals.as_raw_fd(),
    };
    // SAFETY: the stack is a fresh mapping of JOB_STACK bytes and grows down from its end;
    // `args` outlives the child's use of it because CLONE_VFORK suspends this process until
    // the child has exec'd or exited. Without CLONE_SIGHAND and CLONE_FILES the child has its
    // own signal dispositions and descriptor table, so its changes do not reach the init.
    let pid = unsafe {
        libc::clone(
            job_main,
            stack.cast::<u8>().add(JOB_STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const JobArgs).cast_mut().cast(),
        )
    };
    let err = StepError::os("starting the job");
    // SAFETY: the child no longer runs on this stack (it exec'd or exited).
    unsafe { libc::munmap(stack, JOB_STACK) };
    if pid < 0 {
        return Err(err);
    }
    Ok(pid)
}

extern "C" fn job_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points to the JobArgs that fork_job keeps alive while this runs.
    let args = unsafe { &*(arg as *const JobArgs) };
    // SAFETY: closing this process's copy of the init's signalfd; the number is valid here.
    unsafe { libc::close(args.signals) };
    exec::exec_or_report(&args.prepared.exec, args.report)
}
