//! `petrel pool`: schedd, negotiator and startd in one process.
//!
//! Threads: one accepts connections (one short-lived thread per client), one runs
//! negotiation and the periodic policy, one per running starter waits for it, and one
//! writes event logs. They share the [`Core`] behind a mutex; a negotiation cycle runs at
//! once when jobs arrive or a slot frees up, and at the latest every
//! `NEGOTIATOR_INTERVAL`.

use std::fs;
use std::io::{BufReader, BufWriter};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;

use crate::config::{PoolConfig, PoolPaths};
use crate::core::{Core, Peer};
use crate::error::PoolError;
use crate::events::EventSink;
use crate::gate::Gate;
use crate::job::JobId;
use crate::proto::{read_request, write_frame, ReadLimits, Request, Response};
use crate::queue::Pending;
use crate::starter::task::{self, ContainerInfo};
use crate::starters;

/// What the daemon's threads share.
pub struct Shared {
    core: Mutex<Core>,
    kick: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock aborts the process (panic = "abort" in release),
        // so a poisoned lock only happens in tests; the state is still consistent on disk.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a negotiation cycle soon.
    pub fn kick(&self) {
        *self.kick.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Called by a starter's watcher when the starter has exited.
    pub fn starter_ended(&self, id: JobId, exit_code: Option<i32>) {
        {
            let mut core = self.lock();
            if let Err(e) = core.starter_ended(id, exit_code) {
                tracing::error!("job {id}: {e}");
            }
        }
        self.kick();
    }
}

/// Runs the pool until `petrel pool stop` (or SIGTERM).
pub fn run(paths: PoolPaths) -> Result<(), PoolError> {
    let root = rustix::process::getuid().is_root();
    // The daemon runs what the pool's config names: only from a directory no other
    // user can have made or change.
    crate::trust::check_pool_dir(&paths.dir)?;
    prepare_dirs(&paths, root)?;
    crate::trust::check_pool_dir(&paths.dir)?;
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(paths.lock())
        .map_err(|e| PoolError::io(format!("opening {}", paths.lock().display()), e))?;
    if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(PoolError::Refused(format!(
            "a pool daemon is already running for {}",
            paths.dir.display()
        )));
    }
    // The log names jobs, their owners and their failures: the daemon's user alone reads
    // it (a pool started before this rule had it world-readable).
    match fs::set_permissions(paths.log(), fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(PoolError::io(
                format!("making {} private", paths.log().display()),
                e,
            ))
        }
        _ => {}
    }
    let config = PoolConfig::load(&paths)?;
    raise_open_files();
    let gate = Gate::new(config.clients.clone());
    let read_limits = ReadLimits {
        idle: config.clients.idle,
        message: config.clients.message,
        max: crate::proto::MAX_FRAME,
    };
    let events = EventSink::start();
    let probe_interval = config.probe_interval;
    let mut core = Core::open(paths.clone(), config, events)?;
    let watch = core.recover_running();
    let socket = paths.socket();
    let _ = fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .map_err(|e| PoolError::io(format!("listening on {}", socket.display()), e))?;
    // The system pool is open to every local user; each may act only on their own jobs.
    let perm = if root { 0o666 } else { 0o600 };
    fs::set_permissions(&socket, fs::Permissions::from_mode(perm))
        .map_err(|e| PoolError::io(format!("setting permissions of {}", socket.display()), e))?;
    tracing::info!(
        "pool {} up: {} cpus, {} MiB, {} KiB disk; {} job(s) in the queue",
        paths.dir.display(),
        core.machine.total.cpus,
        core.machine.total.memory_mib,
        core.machine.total.disk_kib,
        core.queue.jobs.len()
    );
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        kick: Mutex::new(true),
        wake: Condvar::new(),
    });
    for (id, pid) in watch {
        let spool = shared
            .lock()
            .queue
            .get(id)
            .and_then(|j| j.claim.as_ref().map(|c| c.spool.clone()));
        if let Some(spool) = spool {
            starters::watch_orphan(shared.clone(), id, pid, spool);
        }
    }
    crate::runtimes::start_prober(&shared, paths.dir.join("probe"), probe_interval)?;
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("negotiator".into())
            .spawn(move || scheduler(shared))
            .map_err(|e| PoolError::io("starting the negotiator", e))?;
    }
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                // Out of descriptors, say: wait for some to close rather than spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let cred = match rustix::net::sockopt::socket_peercred(&stream) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("reading a client's credentials: {e}");
                continue;
            }
        };
        // Counted here, before a thread is spent on it.
        let admitted = match gate.admit(cred.uid.as_raw()) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("client refused: {e}");
                refuse(stream, &e);
                continue;
            }
        };
        let for_client = shared.clone();
        let gate = gate.clone();
        let spawned = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                let _admitted = admitted;
                let (uid, gid) = (cred.uid.as_raw(), cred.gid.as_raw());
                let reserve = |n| gate.reserve(uid, n);
                if let Err(e) = serve(&for_client, stream, (uid, gid), &read_limits, reserve) {
                    tracing::debug!("client: {e}");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot serve a client: {e}");
        }
        if shared.lock().stopping {
            break;
        }
    }
    shutdown(&shared, &paths);
    Ok(())
}

/// Makes the pool's directories, no wider than their users need, and narrows those of a
/// pool made before: in root's pool every user must reach the socket and their own
/// job's scratch directory (each owned by the job's owner, mode 0700), so the pool and
/// execute directories may be traversed but not listed; the spool is the daemon's and
/// its starters' alone. A user's own pool is theirs alone.
fn prepare_dirs(paths: &PoolPaths, root: bool) -> Result<(), PoolError> {
    let traverse = if root { 0o711 } else { 0o700 };
    for (dir, mode) in [
        (paths.dir.clone(), traverse),
        (paths.spool(), 0o700),
        (paths.execute(), traverse),
    ] {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&dir)
            .map_err(|e| PoolError::io(format!("creating {}", dir.display()), e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(|e| PoolError::io(format!("setting the mode of {}", dir.display()), e))?;
    }
    Ok(())
}

/// Lets the daemon hold more descriptors than the usual 1024: each user may keep
/// `MAX_CONNECTIONS_PER_USER` connections (two descriptors each), and many users may.
/// Modestly, as the starters and their jobs inherit it.
fn raise_open_files() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    const WANT: u64 = 16384;
    let mut limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.map_or(WANT, |max| max.min(WANT));
    if limit.current.is_some_and(|cur| cur < want) {
        limit.current = Some(want);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
    }
}

/// Negotiation and periodic policy.
fn scheduler(shared: Arc<Shared>) {
    let mut last_periodic = Instant::now();
    loop {
        let (interval, periodic_every) = {
            let core = shared.lock();
            (
                core.config.negotiator_interval,
                core.config.periodic_interval,
            )
        };
        {
            let guard = shared.kick.lock().unwrap_or_else(|p| p.into_inner());
            let wait = interval.min(periodic_every.saturating_sub(last_periodic.elapsed()));
            let (mut kicked, _) = shared
                .wake
                .wait_timeout_while(guard, wait.max(Duration::from_millis(10)), |k| !*k)
                .unwrap_or_else(|p| p.into_inner());
            *kicked = false;
        }
        let mut core = shared.lock();
        if core.stopping {
            return;
        }
        if last_periodic.elapsed() >= periodic_every {
            last_periodic = Instant::now();
            core.refresh_running_usage();
            core.periodic();
        }
        for (id, slot, want) in core.negotiate() {
            match core.start_job(id, &slot, want) {
                Ok(child) => starters::watch_child(shared.clone(), id, child),
                Err(e) => {
                    tracing::error!("job {id}: cannot start: {e}");
                    core.machine.release(&slot);
                }
            }
        }
    }
}

/// Tells a client it was not let in, without waiting on it.
fn refuse(stream: UnixStream, e: &PoolError) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let mut w = BufWriter::new(stream);
    let _ = write_frame(
        &mut w,
        &Response::Error {
            message: e.to_string(),
        },
    );
}

fn serve<G>(
    shared: &Arc<Shared>,
    stream: UnixStream,
    (uid, gid): (u32, u32),
    limits: &ReadLimits,
    reserve: impl Fn(usize) -> Result<G, PoolError>,
) -> Result<(), PoolError> {
    // A client that does not take its answer is dropped like one that does not send.
    stream
        .set_write_timeout(Some(limits.message))
        .map_err(|e| PoolError::io("setting the socket's timeout", e))?;
    let peer = shared.lock().peer(uid, gid);
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| PoolError::io("socket", e))?);
    let mut writer = BufWriter::new(stream);
    loop {
        let request = match read_request(&mut reader, limits, &reserve) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                // Tell the client what was wrong, then drop only this connection.
                let _ = write_frame(
                    &mut writer,
                    &Response::Error {
                        message: e.to_string(),
                    },
                );
                return Err(e);
            }
        };
        if let Request::Enter { job, command, term } = request {
            let target = crate::enter::target(&shared.lock(), &peer, job);
            return crate::enter::serve(target, command, term, reader, writer);
        }
        let stop = matches!(request, Request::Stop) && peer.admin;
        let response = handle(shared, &peer, request).unwrap_or_else(|e| Response::Error {
            message: e.to_string(),
        });
        write_frame(&mut writer, &response)?;
        if stop {
            // Wake the accept loop so it notices.
            let _ = UnixStream::connect(shared.lock().paths.socket());
            return Ok(());
        }
    }
}

fn handle(shared: &Arc<Shared>, peer: &Peer, request: Request) -> Result<Response, PoolError> {
    Ok(match request {
        Request::Hello => Response::Hello {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uid: peer.uid,
        },
        Request::NewCluster => Response::Cluster {
            id: shared.lock().new_cluster(peer)?,
        },
        Request::Submit {
            cluster,
            cluster_ad,
            procs,
        } => {
            let count = shared.lock().submit(peer, cluster, cluster_ad, procs)?;
            shared.kick();
            Response::Submitted { cluster, count }
        }
        Request::Query {
            constraint,
            attrs,
            history,
            limit,
        } => Response::Ads {
            ads: shared
                .lock()
                .query(peer, constraint.as_deref(), &attrs, history, limit)?,
        },
        Request::Act {
            action,
            targets,
            constraint,
            all,
            reason,
        } => {
            // A client's reason is stored in every job it selects: bounded first.
            let reason =
                reason.map(|r| petrel_classad::excerpt(&r, crate::holdcodes::MAX_REASON_CHARS));
            let ((done, skipped), events) = {
                let mut core = shared.lock();
                let r = core.act(peer, action, &targets, constraint.as_deref(), all, reason)?;
                (r, core.events.clone())
            };
            // Not under the lock: a slow log must not stop the rest of the pool.
            events.flush();
            shared.kick();
            Response::Acted { done, skipped }
        }
        Request::Analyze { job } => {
            let core = shared.lock();
            match core.queue.get(job) {
                Some(j) if !peer.may_touch(j) => {
                    return Err(PoolError::Refused(format!("job {job}: permission denied")))
                }
                _ => {}
            }
            Response::Text {
                text: core
                    .analyze(job)
                    .ok_or_else(|| PoolError::Refused(format!("job {job} is not in the queue")))?,
            }
        }
        Request::Status => {
            let core = shared.lock();
            let mut slots = vec![core.machine.free_ad().to_new_syntax()];
            for name in core.machine.dynamic.keys() {
                if let Some(ad) = core.machine.dynamic_ad(name) {
                    slots.push(ad.to_new_syntax());
                }
            }
            Response::Status { slots }
        }
        Request::JobInfo { job } => job_info(&shared.lock(), peer, job)?,
        Request::Enter { .. } | Request::Signal { .. } => {
            return Err(PoolError::Refused(
                "a signal is only for a command entered with this connection".into(),
            ))
        }
        Request::Stop => {
            if !peer.admin {
                return Err(PoolError::Refused(
                    "only the pool's owner, root or a QUEUE_SUPER_USERS member may stop it".into(),
                ));
            }
            shared.lock().stopping = true;
            shared.kick();
            Response::Ok
        }
    })
}

fn job_info(core: &Core, peer: &Peer, id: JobId) -> Result<Response, PoolError> {
    let job = core.job_for(peer, id)?;
    let claim = job.claim.as_ref();
    let container: Option<ContainerInfo> =
        claim.and_then(|c| task::read_json(&c.spool.join(task::CONTAINER_FILE)).ok());
    let scratch = claim.map(|c| c.scratch.clone());
    let in_scratch = |name: &str| {
        scratch
            .as_ref()
            .map(|s| s.join(name).to_string_lossy().into_owned())
    };
    Ok(Response::JobInfo {
        status: job.status.code(),
        stdout: in_scratch(crate::starter::STDOUT_NAME),
        stderr: in_scratch(crate::starter::STDERR_NAME),
        scratch: scratch.map(|s| s.to_string_lossy().into_owned()),
        container_pid: container.as_ref().map(|c| c.pid),
        runtime: container.as_ref().map(|c| c.runtime.clone()),
        container_name: container.as_ref().map(|c| c.name.clone()),
        job_user: container.as_ref().map(|c| (c.uid, c.gid)),
        target_dir: container
            .map(|c| c.target_dir)
            .unwrap_or_else(|| petrel_runtime::DEFAULT_TARGET_DIR.to_string()),
    })
}

/// Stops cleanly: running jobs are vacated (back to idle, logged as evicted), the queue
/// is on disk, and the socket is removed.
fn shutdown(shared: &Arc<Shared>, paths: &PoolPaths) {
    let running: Vec<JobId> = {
        let mut core = shared.lock();
        let ids: Vec<JobId> = core
            .queue
            .jobs
            .values()
            .filter(|j| j.claim.is_some())
            .map(|j| j.id)
            .collect();
        for id in &ids {
            core.stop_running(*id, Pending::Vacate("the pool was shut down".into()));
        }
        ids
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let left = {
            let core = shared.lock();
            running
                .iter()
                .filter(|id| core.queue.get(**id).is_some_and(|j| j.claim.is_some()))
                .count()
        };
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = shared.lock().events.clone();
    events.flush();
    let _ = fs::remove_file(paths.socket());
    tracing::info!("pool {} stopped", paths.dir.display());
}

/// Whether `dir` is a pool this user may start: root may start any; a user, one in a
/// directory of their own, or one they would make in a shared sticky directory of
/// root's (`/tmp/petrel-UID`, made theirs alone and checked before use).
pub fn may_start(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let uid = rustix::process::getuid().as_raw();
    let mut probe = Some(dir);
    while let Some(p) = probe {
        if let Ok(meta) = fs::metadata(p) {
            let shared_sticky = meta.uid() == 0 && meta.mode() & 0o1002 == 0o1002;
            return uid == 0 || meta.uid() == uid || (p != dir && shared_sticky);
        }
        probe = p.parent();
    }
    false
}
