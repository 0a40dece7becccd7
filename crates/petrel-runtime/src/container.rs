//! Running one container: the caller's side.
//!
//! The caller checks the spec and plans the setup, creates the cgroup, then `clone`s the
//! container's init straight into the new namespaces (no intermediate process). When the
//! caller itself must act on the child (write a full id map, move it into the cgroup), the
//! child waits on a sync pipe; otherwise it maps its own ids and goes on at once. The
//! caller then forwards signals and reads the report channel until it closes, reaps the
//! init, and collects usage.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use serde::Serialize;

use crate::cgroups::{self, Cgroup, NotApplied};
use crate::channel::{self, Report};
use crate::error::{RuntimeError, SetupFailure, StepError};
use crate::exec::{self, ExecPlan};
use crate::idmap::{self, Maps};
use crate::init::{self, JobStatus, FORWARDED};
use crate::setup::{self, OverlayDirs, Plan};
use crate::spec::{ContainerSpec, Overlay, User};
use crate::statedir::StateDir;
use crate::{caps, namespaces, seccomp};

/// What a finished container did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub status: JobStatus,
    /// The kernel's OOM killer killed a process of the job because of the memory limit.
    pub oom_killed: bool,
    pub usage: Usage,
    /// Limits that were asked for but are not in force, with the reason.
    pub not_applied: Vec<NotApplied>,
    /// The cgroup layout used, if a cgroup was made.
    pub cgroup: Option<cgroups::Layout>,
}

/// Resource usage of the whole container.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// Peak memory: of the cgroup when there was one, else the largest process's RSS.
    pub peak_memory_bytes: Option<u64>,
    /// `cgroup` or `rusage`: where the memory figure comes from.
    pub memory_source: &'static str,
    pub user_cpu_seconds: f64,
    pub system_cpu_seconds: f64,
    pub wall_seconds: f64,
}

struct Prepared {
    plan: Plan,
    exec: ExecPlan,
    maps: Maps,
    _state: Option<StateDir>,
}

/// Runs the container to completion.
pub fn run(spec: &ContainerSpec) -> Result<Outcome, RuntimeError> {
    let started = Instant::now();
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let name = container_id(spec);
    let prepared = prepare(spec, &name, uid, gid)?;
    let (cgroup, not_applied) = if spec.limits.any() {
        Cgroup::create(&name, &spec.limits)
    } else {
        (None, Vec::new())
    };
    let layout = cgroup.as_ref().map(Cgroup::layout);
    let (status, rusage) = spawn_and_wait(&prepared, cgroup.as_ref(), uid, gid)?;
    let oom_killed = cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0);
    let cg_usage = cgroup.as_ref().map(Cgroup::usage).unwrap_or_default();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let usage = Usage {
        peak_memory_bytes: cg_usage
            .peak_memory_bytes
            .or(Some(rusage.ru_maxrss as u64 * 1024)),
        memory_source: if cg_usage.peak_memory_bytes.is_some() {
            "cgroup"
        } else {
            "rusage"
        },
        user_cpu_seconds: cg_usage
            .user_cpu
            .map_or(tv(rusage.ru_utime), |d| d.as_secs_f64()),
        system_cpu_seconds: cg_usage
            .system_cpu
            .map_or(tv(rusage.ru_stime), |d| d.as_secs_f64()),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    drop(cgroup);
    Ok(Outcome {
        status,
        oom_killed,
        usage,
        not_applied,
        cgroup: layout,
    })
}

/// A unique id for this run, from the container's name: names its cgroup and state directory.
fn container_id(spec: &ContainerSpec) -> String {
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
fn prepare(spec: &ContainerSpec, id: &str, uid: u32, gid: u32) -> Result<Prepared, RuntimeError> {
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
    let exec = ExecPlan {
        argv: cstrings(&spec.argv, "argument")?,
        env: cstrings(&spec.env, "environment entry")?,
        path,
        workdir: CString::new(workdir.clone()).map_err(|_| {
            RuntimeError::InvalidSpec(format!("working directory '{workdir}' contains a NUL byte"))
        })?,
        user,
        set_groups: maps == Maps::Full,
        keep_caps,
        seccomp: if spec.seccomp {
            Some(seccomp::build()?)
        } else {
            None
        },
        rootfs_name: spec.rootfs.display().to_string(),
    };
    Ok(Prepared {
        plan,
        exec,
        maps,
        _state: state,
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

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
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
struct MaskGuard(libc::sigset_t);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        // SAFETY: the saved mask came from pthread_sigmask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

fn spawn_and_wait(
    prepared: &Prepared,
    cgroup: Option<&Cgroup>,
    uid: u32,
    gid: u32,
) -> Result<(JobStatus, libc::rusage), RuntimeError> {
    let (report_r, report_w) = pipe()?;
    let needs_sync = cgroup.is_some() || prepared.maps.written_by_caller();
    let (sync_r, sync_w) = if needs_sync {
        let (r, w) = pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };

    // Block the forwarded signals before the clone, so none is lost in between; the child
    // inherits the mask and its init reads them from a signalfd too.
    let set = init::sigset(&FORWARDED);
    // SAFETY: sigset_t is plain data; pthread_sigmask fills `old`.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is initialised and old is a valid out-pointer.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    let _mask = MaskGuard(old);

    let flags = namespaces::clone_flags(container_net(&prepared.plan));
    // SAFETY: a raw clone without CLONE_VM and with a null stack behaves like fork: the child
    // gets a copy of this (single-threaded at this point) process and returns 0 here.
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
    let bytes = read_reports(&report_r, pid);
    // SAFETY: rusage is plain data; wait4 fills it and the status.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut init_status = 0;
    loop {
        // SAFETY: valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut init_status, 0, &mut rusage) };
        if r == pid || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    let reports = channel::parse(&bytes);
    if let Some((failure, message)) = reports.iter().find_map(|r| match r {
        Report::Failure(f, m) => Some((*f, m.clone())),
        Report::Exit(_) => None,
    }) {
        return Err(RuntimeError::InContainer { failure, message });
    }
    let status = reports.iter().find_map(|r| match r {
        Report::Exit(status) => Some(JobStatus::from_wait_status(*status)),
        Report::Failure(..) => None,
    });
    match status {
        Some(status) => Ok((status, rusage)),
        // The init itself was killed (by the OOM killer, or SIGKILL from outside).
        None if libc::WIFSIGNALED(init_status) => {
            Ok((JobStatus::from_wait_status(init_status), rusage))
        }
        None => Err(RuntimeError::NoReport),
    }
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

/// Reads the report channel until it closes, forwarding signals meanwhile.
fn read_reports(report: &OwnedFd, pid: libc::pid_t) -> Vec<u8> {
    let signals = init::signalfd(&FORWARDED).ok();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: report.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.as_ref().map_or(-1, |s| s.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Some(info) = signals.as_ref().and_then(init::read_signal) {
                if init::sent_by_process(&info) {
                    // SAFETY: kill takes plain integers.
                    unsafe { libc::kill(pid, info.ssi_signo as libc::c_int) };
                }
            }
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            // SAFETY: buf is a valid buffer of its length.
            let r = unsafe { libc::read(report.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                bytes.extend_from_slice(&buf[..r as usize]);
            } else if r == 0
                || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
    }
    bytes
}

/// The container's init, from the clone to the job's exit. Never returns.
fn child(prepared: &Prepared, sync_r: Option<OwnedFd>, report: OwnedFd, uid: u32, gid: u32) -> ! {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes plain integers; if the caller dies, the
    // whole container goes with its init.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let failure = match init_setup(prepared, sync_r, uid, gid) {
        Ok(signals) => match fork_job(prepared, &report, &signals) {
            Ok(job) => init::run(job, signals, report),
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
    let failure = exec::exec_job(&args.prepared.exec);
    channel::send_failure(args.report, failure.failure, &failure.message);
    let code = match failure.failure {
        SetupFailure::CommandNotFound => crate::exit_status::NOT_FOUND,
        SetupFailure::NotExecutable => crate::exit_status::NOT_EXECUTABLE,
        _ => crate::exit_status::SETUP_FAILED,
    };
    // SAFETY: _exit leaves without touching the memory shared with the suspended init.
    unsafe { libc::_exit(i32::from(code)) }
}
