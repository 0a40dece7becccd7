//! Starting and watching starter processes (the daemon's side of the starter).
//!
//! Each running job has one `petrel starter` process in its own process group, so it
//! outlives a daemon killed with `kill -9`; a restarted daemon finds it by the pid and
//! spool directory recorded in the job ad and reconnects, or, if it is gone, reads its
//! result file or puts the job back to idle.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use petrel_userlog::Event;
use rustix::process::{Pid, Signal};

use crate::core::{now, Core};
use crate::daemon::Shared;
use crate::error::PoolError;
use crate::job::{JobId, JobStatus};
use crate::machine::Resources;
use crate::queue::Claim;
use crate::starter::task::{self, StarterTask};

/// The job ad attribute that states the job's pids limit (`JOB_PIDS_LIMIT`).
pub const PIDS_LIMIT_ATTR: &str = "PetrelPidsLimit";

/// `PetrelPidsLimit`'s value: the limit, or undefined when the pool sets none (shadowing
/// whatever a user's submit file wrote under that name).
fn pids_limit_value(limit: Option<u64>) -> petrel_classad::Value {
    match limit {
        Some(n) => petrel_classad::Value::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        None => petrel_classad::Value::Undefined,
    }
}

/// Signals a starter's whole process group (the starter forwards to the container).
pub fn signal_starter(pid: u32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        if rustix::process::kill_process_group(p, sig).is_err() {
            let _ = rustix::process::kill_process(p, sig);
        }
    }
}

/// The address the event log gives a starter (HTCondor writes the starter's sinful
/// string; petrel's starters listen on nothing, so the pid stands in for the port).
pub fn starter_address(pid: u32) -> String {
    format!("<127.0.0.1:0?pid={pid}>")
}

/// Whether `pid` is still the starter of `spool` (pids are reused).
pub fn starter_alive(pid: u32, spool: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie has an empty command line: it has finished.
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.iter().any(|a| *a == b"starter")
        && args
            .iter()
            .any(|a| Path::new(std::ffi::OsStr::from_bytes(a)) == spool)
}

/// Starters running for a spool directory under `root` (this pool's), found in `/proc`:
/// `(pid, spool)`.
fn live_starters(root: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let at = args.iter().position(|a| *a == b"starter")?;
            let spool = PathBuf::from(std::ffi::OsStr::from_bytes(args.get(at + 1)?));
            (spool.parent() == Some(root)).then_some((pid, spool))
        })
        .collect()
}

impl Core {
    /// Stops starters that a killed daemon started but did not record (it died between
    /// starting one and writing the job's new state): the job is idle in the queue and
    /// will run again, and two starters of one job would share, and remove, its scratch
    /// and spool directories.
    fn stop_unrecorded_starters(&mut self) {
        for (pid, spool) in live_starters(&self.paths.spool()) {
            let recorded = self.queue.jobs.values().any(|j| {
                j.status.is_active()
                    && j.int("PetrelStarterPid") == Some(i64::from(pid))
                    && j.string("PetrelSpool").map(PathBuf::from).as_ref() == Some(&spool)
            });
            if recorded {
                continue;
            }
            tracing::warn!(
                "starter {pid} of {} was started before the pool restarted but never \
                 recorded; stopping it (its job runs again)",
                spool.display()
            );
            signal_starter(pid, Signal::KILL);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while starter_alive(pid, &spool) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts the starter for a matched job; the job is Running when this returns `Ok`.
    pub fn start_job(
        &mut self,
        id: JobId,
        slot: &str,
        want: Resources,
    ) -> Result<std::process::Child, PoolError> {
        let job = self
            .queue
            .get(id)
            .ok_or_else(|| PoolError::Refused(format!("job {id} left the queue")))?;
        let spool = self
            .paths
            .spool()
            .join(format!("{}.{}", id.cluster, id.proc));
        let scratch = self
            .config
            .execute_dir
            .join(format!("dir_{}_{}", id.cluster, id.proc));
        if spool.exists() {
            let _ = fs::remove_dir_all(&spool);
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&spool)
            .map_err(|e| PoolError::io(format!("creating {}", spool.display()), e))?;
        let uid = job.cluster.owner_uid;
        let gid = job.owner_gid();
        let mut ad = job.full_ad();
        let decision = self
            .container_decision(&ad)
            .map_err(|r| PoolError::Refused(r.reason))?;
        ad.insert_value(
            "RemoteHost",
            petrel_classad::Value::string(format!("{slot}@{}", self.machine.hostname)),
        );
        let pids_limit = self.config.job_pids_limit;
        // The limit in force, set here whatever the user's ad said (it is the pool's).
        ad.insert_value(PIDS_LIMIT_ATTR, pids_limit_value(pids_limit));
        fs::write(spool.join(task::JOB_AD_FILE), ad.to_new_syntax())
            .map_err(|e| PoolError::io(format!("writing the job ad in {}", spool.display()), e))?;
        let task = StarterTask {
            job: id,
            slot: slot.to_string(),
            scratch: scratch.clone(),
            cpus: want.cpus,
            memory_mib: want.memory_mib,
            disk_kib: want.disk_kib,
            uid,
            gid,
            hostname: self.machine.hostname.clone(),
            runtimes: self.runtimes.available().to_vec(),
            container: decision.choice,
            image_reference: decision.image,
            hooks: self.config.hooks.clone(),
            pids_limit,
        };
        task::write_json(&spool.join(task::TASK_FILE), &task)?;
        let log = fs::File::create(spool.join(task::STARTER_LOG))
            .map_err(|e| PoolError::io("creating the starter log", e))?;
        let child = Command::new(&self.config.starter_program)
            .arg("starter")
            .arg(&spool)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                PoolError::io(
                    format!(
                        "starting the starter {}",
                        self.config.starter_program.display()
                    ),
                    e,
                )
            })?;
        let at = now();
        self.queue.set_status(id, JobStatus::Running, at);
        let host = self.machine.hostname.clone();
        if let Some(job) = self.queue.get_mut(id) {
            let starts = job.int("NumJobStarts").unwrap_or(0) + 1;
            job.set_int("NumJobStarts", starts);
            job.set_int("JobRunCount", starts);
            if job.int("JobStartDate").is_none() {
                job.set_int("JobStartDate", at);
            }
            job.set_int("JobCurrentStartDate", at);
            job.set_int("ShadowBday", at);
            job.set_string("RemoteHost", &format!("{slot}@{host}"));
            job.set_string("LastRemoteHost", &format!("{slot}@{host}"));
            job.set_int("PetrelStarterPid", child.id() as i64);
            job.set_string("PetrelSlot", slot);
            job.set_string("PetrelSpool", &spool.to_string_lossy());
            job.set_int("PetrelClaimCpus", want.cpus as i64);
            job.set_int("PetrelClaimMemory", want.memory_mib as i64);
            job.set_int("PetrelClaimDisk", want.disk_kib as i64);
            job.ad
                .insert_value(PIDS_LIMIT_ATTR, pids_limit_value(pids_limit));
            job.claim = Some(Claim {
                slot: slot.to_string(),
                cpus: want.cpus,
                memory_mib: want.memory_mib,
                disk_kib: want.disk_kib,
                starter_pid: child.id(),
                spool,
                scratch,
                pending: None,
            });
        }
        self.persist(id)?;
        self.log(
            id,
            Event::Execute {
                host: format!("<127.0.0.1:0?alias={host}>"),
                slot_name: Some(format!("{slot}@{host}")),
                props: vec![
                    ("Cpus".into(), want.cpus.to_string()),
                    ("Memory".into(), want.memory_mib.to_string()),
                    ("Disk".into(), want.disk_kib.to_string()),
                ],
            },
        );
        Ok(child)
    }

    /// Copies what each running job's starter last measured (`usage.json` in its spool)
    /// into `DiskUsage`, as HTCondor's shadow updates it from the starter while the job
    /// runs; never lowers it below what submit or an earlier run recorded.
    pub fn refresh_running_usage(&mut self) {
        for job in self.queue.jobs.values_mut() {
            let Some(claim) = &job.claim else { continue };
            let file = claim.spool.join(crate::starter::USAGE_FILE);
            let Ok(u) = task::read_json::<crate::starter::RunningUsage>(&file) else {
                continue;
            };
            let now_kib = i64::try_from(u.disk_kib).unwrap_or(i64::MAX);
            if now_kib > job.int("DiskUsage").unwrap_or(0) {
                job.set_int("DiskUsage", now_kib);
            }
        }
    }

    /// After a restart: re-attaches to starters still running, finishes those that ended
    /// while the daemon was down, and puts the rest back to idle. Returns the starters to
    /// watch.
    pub fn recover_running(&mut self) -> Vec<(JobId, u32)> {
        self.stop_unrecorded_starters();
        let running: Vec<JobId> = self
            .queue
            .jobs
            .values()
            .filter(|j| j.status.is_active())
            .map(|j| j.id)
            .collect();
        let mut watch = Vec::new();
        let host = self.machine.hostname.clone();
        for id in running {
            let Some(job) = self.queue.get_mut(id) else {
                continue;
            };
            let pid = job.int("PetrelStarterPid").map(|p| p as u32);
            let spool = job.string("PetrelSpool").map(PathBuf::from);
            let slot = job.string("PetrelSlot");
            let want = Resources {
                cpus: job.int("PetrelClaimCpus").unwrap_or(1) as u32,
                memory_mib: job.int("PetrelClaimMemory").unwrap_or(0) as u64,
                disk_kib: job.int("PetrelClaimDisk").unwrap_or(0) as u64,
            };
            let (Some(pid), Some(spool), Some(slot)) = (pid, spool, slot) else {
                self.requeue_lost(id, "the job's starter was not recorded");
                continue;
            };
            let scratch = self
                .config
                .execute_dir
                .join(format!("dir_{}_{}", id.cluster, id.proc));
            let alive = starter_alive(pid, &spool);
            if !alive && !spool.join(task::RESULT_FILE).exists() {
                self.requeue_lost(
                    id,
                    "the starter ended while the pool was down, without a result",
                );
                continue;
            }
            self.machine.reclaim(&slot, id, want);
            if let Some(job) = self.queue.get_mut(id) {
                job.claim = Some(Claim {
                    slot: slot.clone(),
                    cpus: want.cpus,
                    memory_mib: want.memory_mib,
                    disk_kib: want.disk_kib,
                    starter_pid: pid,
                    spool,
                    scratch,
                    pending: None,
                });
            }
            let startd = format!("{slot}@{host}");
            self.log(
                id,
                Event::Disconnected {
                    reason: "Job disconnected, attempting to reconnect".into(),
                    startd_name: startd.clone(),
                    startd_addr: "<127.0.0.1:0>".into(),
                },
            );
            self.log(
                id,
                Event::Reconnected {
                    startd_name: startd,
                    startd_addr: "<127.0.0.1:0>".into(),
                    starter_addr: starter_address(pid),
                },
            );
            watch.push((id, pid));
        }
        watch
    }

    /// A running job whose starter is gone without a trace: evicted, back to idle.
    fn requeue_lost(&mut self, id: JobId, why: &str) {
        tracing::warn!("job {id}: {why}; back to idle");
        self.queue.set_status(id, JobStatus::Idle, now());
        if let Some(job) = self.queue.get_mut(id) {
            job.claim = None;
            job.clear_run_attrs();
        }
        if let Err(e) = self.persist(id) {
            tracing::error!("job {id}: {e}");
        }
        self.log(id, crate::lifecycle::evicted(why, None));
    }
}

/// Waits for a starter this daemon started, then hands its end to the core.
pub fn watch_child(shared: Arc<Shared>, id: JobId, mut child: std::process::Child) {
    let spawned = std::thread::Builder::new()
        .name(format!("starter-{id}"))
        .spawn(move || {
            let status = child.wait();
            let code = status.as_ref().ok().and_then(|s| s.code());
            shared.starter_ended(id, code);
        });
    if let Err(e) = spawned {
        tracing::error!("job {id}: cannot watch its starter: {e}");
    }
}

/// Polls a starter started by an earlier daemon (not our child: it cannot be waited for).
pub fn watch_orphan(shared: Arc<Shared>, id: JobId, pid: u32, spool: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name(format!("starter-{id}"))
        .spawn(move || {
            let started = SystemTime::now();
            while starter_alive(pid, &spool) {
                std::thread::sleep(Duration::from_millis(100));
            }
            tracing::debug!(
                "job {id}: reattached starter {pid} ended after {:?}",
                started.elapsed()
            );
            shared.starter_ended(id, None);
        });
    if let Err(e) = spawned {
        tracing::error!("job {id}: cannot watch its starter: {e}");
    }
}
