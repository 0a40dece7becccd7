//! The daemon's state and what clients ask of it: submit, query, remove/hold/release.
//!
//! Every change is written to the store before it is answered, one transaction per
//! change, so a crash at any point leaves a queue that a restart reads back whole.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use petrel_classad::ClassAd;
use petrel_userlog::Event;

use crate::config::{PoolConfig, PoolPaths};
use crate::error::PoolError;
use crate::events::{EventSink, Record};
use crate::holdcodes::{self, Hold};
use crate::job::{JobId, JobSelector, JobStatus};
use crate::machine::Machine;
use crate::proto::Action;
use crate::queue::{Cluster, Job, Pending, Queue};
use crate::store::Store;

/// Jobs acted on, and jobs named but left alone with why.
pub type Selection = (Vec<JobId>, Vec<(JobId, String)>);

/// Who is asking, from `SO_PEERCRED`.
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    /// Root, the daemon's own user, or a `QUEUE_SUPER_USERS` member: may act on any job.
    pub admin: bool,
}

impl Peer {
    pub fn may_touch(&self, job: &Job) -> bool {
        self.admin || job.cluster.owner_uid == self.uid
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Core {
    pub paths: PoolPaths,
    pub config: PoolConfig,
    pub store: Store,
    pub queue: Queue,
    pub machine: Machine,
    pub events: EventSink,
    pub runtimes: crate::runtimes::RuntimeState,
    /// Cluster ids handed out and not yet used, with who asked for them.
    pub(crate) reserved: HashMap<i64, u32>,
    /// Each queued cluster's owner and the bytes its ads took when stored (counted
    /// against `MAX_QUEUE_MEMORY_PER_OWNER` until the cluster leaves the queue).
    pub(crate) cluster_bytes: HashMap<i64, (u32, usize)>,
    pub stopping: bool,
    /// Images this slot refuses for a while: a validation script failed in them.
    pub image_marks: crate::policy::Marks,
}

impl Core {
    /// Opens the store and reads the queue back.
    pub fn open(
        paths: PoolPaths,
        config: PoolConfig,
        events: EventSink,
    ) -> Result<Core, PoolError> {
        let runtimes = crate::runtimes::RuntimeState::new(&config.runtimes)?;
        let store = Store::open(&paths.database())?;
        let loaded = store.load()?;
        let mut queue = Queue::default();
        let mut clusters = HashMap::new();
        let mut cluster_bytes = HashMap::new();
        for (id, uid, text) in loaded.clusters {
            cluster_bytes.insert(id, (uid, text.len()));
            let ad = ClassAd::parse(&text).map_err(|e| {
                PoolError::Config(format!(
                    "cluster {id} in the queue database is unreadable: {e}"
                ))
            })?;
            clusters.insert(id, Arc::new(Cluster::new(id, uid, ad)));
        }
        for (id, text) in loaded.jobs {
            if let Some((_, bytes)) = cluster_bytes.get_mut(&id.cluster) {
                *bytes += text.len();
            }
            let Some(cluster) = clusters.get(&id.cluster) else {
                tracing::warn!("job {id} has no cluster ad in the queue database; ignored");
                continue;
            };
            match ClassAd::parse(&text) {
                Ok(mut ad) => {
                    for name in crate::protected::CLUSTER_ONLY {
                        if ad.remove(name).is_some() {
                            tracing::warn!("job {id}: dropped a forged {name} from its ad");
                        }
                    }
                    queue.insert(cluster.clone(), id, ad)
                }
                Err(e) => tracing::warn!("job {id} in the queue database is unreadable: {e}"),
            }
        }
        let machine = Machine::new(&config);
        Ok(Core {
            paths,
            config,
            store,
            queue,
            machine,
            events,
            runtimes,
            reserved: HashMap::new(),
            cluster_bytes,
            stopping: false,
            image_marks: crate::policy::Marks::default(),
        })
    }

    pub fn new_cluster(&mut self, peer: &Peer) -> Result<i64, PoolError> {
        // A client that reserves and never submits must not grow the table without
        // bound: past a few, a user's oldest reservation lapses.
        const RESERVED_PER_USER: usize = 16;
        let mut mine: Vec<i64> = (self.reserved.iter())
            .filter(|(_, uid)| **uid == peer.uid)
            .map(|(id, _)| *id)
            .collect();
        if mine.len() >= RESERVED_PER_USER {
            mine.sort_unstable();
            for id in &mine[..=mine.len() - RESERVED_PER_USER] {
                self.reserved.remove(id);
            }
        }
        let id = self.store.new_cluster_id()?;
        self.reserved.insert(id, peer.uid);
        Ok(id)
    }

    /// Ads of queued (or finished) jobs the peer may see, passing `constraint`.
    pub fn query(
        &self,
        peer: &Peer,
        constraint: Option<&str>,
        attrs: &[String],
        history: bool,
        limit: Option<usize>,
    ) -> Result<Vec<String>, PoolError> {
        let constraint = constraint
            .map(|c| {
                petrel_classad::parse_expr(c)
                    .map_err(|e| PoolError::Refused(format!("constraint '{c}': {e}")))
            })
            .transpose()?;
        let limit = limit.unwrap_or(usize::MAX);
        let passes = |ad: &ClassAd| match &constraint {
            None => true,
            Some(e) => ad.eval(e).is_true(),
        };
        let project = |ad: &ClassAd| -> String {
            if attrs.is_empty() {
                return ad.to_new_syntax();
            }
            let mut out = ClassAd::new();
            for a in attrs {
                if let Some(e) = ad.lookup(a) {
                    out.insert(a, e.clone());
                }
            }
            out.to_new_syntax()
        };
        if history {
            let mut parsed_ok = Vec::new();
            for text in self
                .store
                .history(limit, |uid, _| peer.admin || uid == peer.uid)?
            {
                if constraint.is_none() && attrs.is_empty() {
                    parsed_ok.push(text);
                    continue;
                }
                if let Ok(ad) = ClassAd::parse(&text) {
                    if passes(&ad) {
                        parsed_ok.push(project(&ad));
                    }
                }
            }
            return Ok(parsed_ok);
        }
        let mut out = Vec::new();
        for job in self.queue.jobs.values() {
            if !peer.may_touch(job) {
                continue;
            }
            let ad = job.full_ad();
            if passes(&ad) {
                out.push(project(&ad));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The jobs a command names, the ones the peer may not touch set apart.
    fn select(
        &self,
        peer: &Peer,
        targets: &[JobSelector],
        constraint: Option<&str>,
        all: bool,
    ) -> Result<Selection, PoolError> {
        let constraint = constraint
            .map(|c| {
                petrel_classad::parse_expr(c)
                    .map_err(|e| PoolError::Refused(format!("constraint '{c}': {e}")))
            })
            .transpose()?;
        if targets.is_empty() && constraint.is_none() && !all {
            return Err(PoolError::Refused(
                "name jobs (CLUSTER or CLUSTER.PROC), -constraint EXPR or -all".into(),
            ));
        }
        let mut chosen = Vec::new();
        let mut refused = Vec::new();
        for job in self.queue.jobs.values() {
            let named = all
                || targets.iter().any(|t| t.covers(job.id))
                || constraint
                    .as_ref()
                    .is_some_and(|e| job.full_ad().eval(e).is_true());
            if !named {
                continue;
            }
            if peer.may_touch(job) {
                chosen.push(job.id);
            } else if !all && constraint.is_none() {
                refused.push((job.id, "permission denied: not your job".to_string()));
            }
        }
        for t in targets {
            if let JobSelector::Job(id) = t {
                if self.queue.get(*id).is_none() {
                    refused.push((*id, "no such job in the queue".to_string()));
                }
            } else if let JobSelector::Cluster(c) = t {
                if !self.queue.clusters.contains_key(c) {
                    refused.push((JobId::new(*c, -1), format!("no cluster {c} in the queue")));
                }
            }
        }
        Ok((chosen, refused))
    }

    /// `petrel rm|hold|release`.
    pub fn act(
        &mut self,
        peer: &Peer,
        action: Action,
        targets: &[JobSelector],
        constraint: Option<&str>,
        all: bool,
        reason: Option<String>,
    ) -> Result<Selection, PoolError> {
        let (chosen, mut skipped) = self.select(peer, targets, constraint, all)?;
        let tool = match action {
            Action::Remove => "condor_rm",
            Action::Hold => "condor_hold",
            Action::Release => "condor_release",
        };
        let reason = reason.unwrap_or_else(|| format!("via {tool} (by user {})", peer.name));
        let mut done = Vec::new();
        for id in chosen {
            let Some(job) = self.queue.get(id) else {
                continue;
            };
            let status = job.status;
            let result = match (action, status) {
                (Action::Remove, JobStatus::Removed) => Err("already being removed"),
                (Action::Remove, s) if s.is_active() => {
                    self.stop_running(id, Pending::Remove(reason.clone()));
                    Ok(())
                }
                (Action::Remove, _) => {
                    self.remove_now(id, &reason)?;
                    Ok(())
                }
                (Action::Hold, JobStatus::Held) => Err("already held"),
                (Action::Hold, JobStatus::Completed | JobStatus::Removed) => {
                    Err("finished; cannot be held")
                }
                (Action::Hold, s) => {
                    let hold = Hold::new(holdcodes::USER_REQUEST, 0, reason.clone());
                    if s.is_active() {
                        self.stop_running(id, Pending::Hold(hold));
                    } else {
                        self.hold_now(id, hold)?;
                    }
                    Ok(())
                }
                (Action::Release, JobStatus::Held) => {
                    self.release_now(id, &reason)?;
                    Ok(())
                }
                (Action::Release, _) => Err("not held"),
            };
            match result {
                Ok(()) => done.push(id),
                Err(why) => skipped.push((id, why.to_string())),
            }
        }
        Ok((done, skipped))
    }

    /// Asks a running job's starter to stop; `pending` is applied when it has.
    pub fn stop_running(&mut self, id: JobId, pending: Pending) {
        if let Some(job) = self.queue.get_mut(id) {
            if let Some(claim) = job.claim.as_mut() {
                if claim.pending.is_none() {
                    claim.pending = Some(pending);
                }
                crate::starters::signal_starter(claim.starter_pid, rustix::process::Signal::TERM);
            }
        }
    }

    pub fn hold_now(&mut self, id: JobId, hold: Hold) -> Result<(), PoolError> {
        let at = now();
        self.queue.set_status(id, JobStatus::Held, at);
        let Some(job) = self.queue.get_mut(id) else {
            return Ok(());
        };
        job.set_string("HoldReason", &hold.reason);
        job.set_int("HoldReasonCode", hold.code);
        job.set_int("HoldReasonSubCode", hold.subcode);
        let holds = job.int("NumHolds").unwrap_or(0) + 1;
        job.set_int("NumHolds", holds);
        self.persist(id)?;
        self.log(
            id,
            Event::Held {
                reason: Some(hold.reason.clone()),
                code: hold.code as i32,
                subcode: hold.subcode as i32,
            },
        );
        tracing::info!(
            "job {id} held: {} (code {}/{})",
            hold.reason,
            hold.code,
            hold.subcode
        );
        Ok(())
    }

    pub fn release_now(&mut self, id: JobId, reason: &str) -> Result<(), PoolError> {
        let at = now();
        self.queue.set_status(id, JobStatus::Idle, at);
        let Some(job) = self.queue.get_mut(id) else {
            return Ok(());
        };
        for (from, to) in [
            ("HoldReason", "LastHoldReason"),
            ("HoldReasonCode", "LastHoldReasonCode"),
            ("HoldReasonSubCode", "LastHoldReasonSubCode"),
        ] {
            if let Some(e) = job.ad.remove(from) {
                job.ad.insert(to, e);
            }
        }
        job.set_string("ReleaseReason", reason);
        self.persist(id)?;
        self.log(
            id,
            Event::Released {
                reason: Some(reason.to_string()),
            },
        );
        Ok(())
    }

    pub fn remove_now(&mut self, id: JobId, reason: &str) -> Result<(), PoolError> {
        let at = now();
        self.queue.set_status(id, JobStatus::Removed, at);
        if let Some(job) = self.queue.get_mut(id) {
            job.set_string("RemoveReason", reason);
        }
        self.log(
            id,
            Event::Aborted {
                reason: Some(reason.to_string()),
            },
        );
        self.retire(id)
    }

    /// Moves a finished job (completed or removed) to the history.
    pub fn retire(&mut self, id: JobId) -> Result<(), PoolError> {
        let Some(job) = self.queue.get_mut(id) else {
            return Ok(());
        };
        let at = now();
        job.set_int("CompletionDate", at);
        let uid = job.cluster.owner_uid;
        let text = job.full_ad().to_new_syntax();
        let Some((_, empty)) = self.queue.remove(id) else {
            return Ok(());
        };
        let empty_clusters = if empty {
            self.cluster_bytes.remove(&id.cluster);
            vec![id.cluster]
        } else {
            Vec::new()
        };
        self.store
            .retire_jobs([(id, uid, at, text.as_str())], &empty_clusters)?;
        Ok(())
    }

    /// Writes a job's proc ad to the store.
    pub fn persist(&mut self, id: JobId) -> Result<(), PoolError> {
        if let Some(job) = self.queue.get(id) {
            let text = job.ad.to_new_syntax();
            self.store.update_job(id, &text)?;
        }
        Ok(())
    }

    /// Sends an event to the job's log, if it has one.
    pub fn log(&self, id: JobId, event: Event) {
        self.log_at(id, SystemTime::now(), event);
    }

    /// Sends an event that happened at `at` (as a starter recorded it) to the job's log.
    pub fn log_at(&self, id: JobId, at: SystemTime, event: Event) {
        let Some(job) = self.queue.get(id) else {
            return;
        };
        let Some(path) = user_log(&job.cluster.ad).or_else(|| user_log(&job.ad)) else {
            return;
        };
        self.events.send(Record {
            path,
            uid: job.cluster.owner_uid,
            gid: job.owner_gid(),
            job: id,
            at,
            event,
            info: info_of(job),
        });
    }

    /// Job `id`, if it is in the queue and `peer` may touch it.
    pub fn job_for(&self, peer: &Peer, id: JobId) -> Result<&Job, PoolError> {
        let job = self
            .queue
            .get(id)
            .ok_or_else(|| PoolError::Refused(format!("job {id} is not in the queue")))?;
        if !peer.may_touch(job) {
            return Err(PoolError::Refused(format!(
                "job {id}: permission denied: not your job"
            )));
        }
        Ok(job)
    }

    /// The peer for `uid`, as the daemon judges it.
    pub fn peer(&self, uid: u32, gid: u32) -> Peer {
        let name = user_name(uid);
        let own = rustix::process::getuid().as_raw();
        let admin = uid == 0 || uid == own || self.config.super_users.contains(&name);
        Peer {
            uid,
            gid,
            name,
            admin,
        }
    }
}

/// The attributes for the 028 event that follows each of the job's events, when it
/// asks for them (`job_ad_information_attrs`).
fn info_of(job: &Job) -> Option<Vec<(String, String)>> {
    info_of_ads(&job.cluster.ad, &job.ad)
}

/// As [`info_of`], for a job given as its cluster and proc ads.
pub(crate) fn info_of_ads(cluster: &ClassAd, proc: &ClassAd) -> Option<Vec<(String, String)>> {
    const ATTR: &str = "JobAdInformationAttrs";
    if !proc.contains(ATTR) && !cluster.contains(ATTR) {
        return None;
    }
    let mut full = cluster.clone();
    full.update(proc);
    crate::events::job_info(&full)
}

/// The job's `UserLog`, made absolute against its `Iwd`.
pub fn user_log(ad: &ClassAd) -> Option<PathBuf> {
    let log = ad.eval_attr("UserLog");
    let log = log.as_str()?;
    if log.is_empty() {
        return None;
    }
    let path = PathBuf::from(log);
    if path.is_absolute() {
        return Some(path);
    }
    let iwd = ad.eval_attr("Iwd");
    Some(PathBuf::from(iwd.as_str().unwrap_or("/")).join(path))
}

/// A user's name from `/etc/passwd`, or the number when there is none.
pub fn user_name(uid: u32) -> String {
    if let Ok(text) = std::fs::read_to_string("/etc/passwd") {
        for line in text.lines() {
            let mut f = line.split(':');
            if let (Some(name), Some(_), Some(u)) = (f.next(), f.next(), f.next()) {
                if u.parse::<u32>().ok() == Some(uid) {
                    return name.to_string();
                }
            }
        }
    }
    uid.to_string()
}
