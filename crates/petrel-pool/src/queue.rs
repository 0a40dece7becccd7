//! The queue in memory: clusters, procs and the order idle jobs are considered in.
//!
//! A job's ad is its cluster's ad overlaid with its own proc ad, as in HTCondor's schedd.
//! Only the proc ad changes while a job lives; the cluster ad is shared by all its procs
//! (an `Arc`), which keeps 100,000 idle jobs in well under the daemon's memory budget.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use petrel_classad::{ClassAd, Expr, Value};

use crate::job::{JobId, JobStatus};

pub struct Cluster {
    pub id: i64,
    pub owner_uid: u32,
    pub ad: ClassAd,
    /// [`match_text`] of the cluster ad, computed once.
    pub match_text: String,
    /// The cluster ad's `JobStatus` and `JobPrio`, for procs without their own.
    status: Option<i64>,
    prio: Option<i64>,
}

impl Cluster {
    pub fn new(id: i64, owner_uid: u32, ad: ClassAd) -> Cluster {
        let match_text = match_text(&ad, &ClassAd::EMPTY);
        Cluster {
            id,
            owner_uid,
            status: int_attr(&ad, "JobStatus"),
            prio: int_attr(&ad, "JobPrio"),
            ad,
            match_text,
        }
    }
}

/// An integer attribute of `ad`, read straight from a literal when it is one (evaluating
/// `ProcId = 7` in every proc of a large cluster would cost more than building its ad).
pub(crate) fn int_attr(ad: &ClassAd, name: &str) -> Option<i64> {
    let e = ad.lookup(name)?;
    literal_int(e).or_else(|| ad.eval_attr(name).as_int())
}

/// The value of an integer literal.
pub(crate) fn literal_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

/// A running job's claim on the machine.
#[derive(Debug, Clone)]
pub struct Claim {
    pub slot: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_kib: u64,
    /// The starter process, and the directory it works in.
    pub starter_pid: u32,
    pub spool: PathBuf,
    pub scratch: PathBuf,
    /// What the schedd asked of the job while it runs (hold/remove), applied when the
    /// starter has stopped.
    pub pending: Option<Pending>,
}

#[derive(Debug, Clone)]
pub enum Pending {
    Hold(crate::holdcodes::Hold),
    Remove(String),
    /// Back to idle without a hold (`petrel pool stop`, a vacate).
    Vacate(String),
}

pub struct Job {
    pub id: JobId,
    pub cluster: Arc<Cluster>,
    /// The proc ad: what differs from the cluster ad, and everything the pool sets.
    pub ad: ClassAd,
    pub status: JobStatus,
    pub claim: Option<Claim>,
    /// Jobs with the same signature match the same slots (HTCondor's autoclusters).
    pub signature: u64,
    prio: i64,
}

impl Job {
    /// The full job ad.
    pub fn full_ad(&self) -> ClassAd {
        let mut ad = self.cluster.ad.clone();
        ad.update(&self.ad);
        ad
    }

    /// An attribute of the full ad, without building it.
    pub fn lookup_value(&self, name: &str) -> Value {
        if self.ad.contains(name) {
            self.ad.eval_attr(name)
        } else {
            self.cluster.ad.eval_attr(name)
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.lookup_value(name).as_int()
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.lookup_value(name).as_str().map(str::to_string)
    }

    pub fn set_int(&mut self, name: &str, v: i64) {
        self.ad.insert_value(name, v);
    }

    pub fn set_string(&mut self, name: &str, v: &str) {
        self.ad.insert_value(name, Value::string(v));
    }

    /// Drops what only a running job has (its host and starter), keeping `LastRemoteHost`.
    pub fn clear_run_attrs(&mut self) {
        for a in [
            "RemoteHost",
            "PetrelStarterPid",
            "PetrelSlot",
            "PetrelSpool",
        ] {
            self.ad.remove(a);
        }
    }

    /// The job owner's gid (recorded at submit), else the uid's number. Read from the
    /// cluster ad alone: the daemon wrote it there, and a proc ad may not name it.
    pub fn owner_gid(&self) -> u32 {
        self.cluster
            .ad
            .eval_attr("PetrelOwnerGid")
            .as_int()
            .map(|g| g as u32)
            .unwrap_or(self.cluster.owner_uid)
    }

    pub fn set_status(&mut self, status: JobStatus, now: i64) {
        let last = self.status;
        self.status = status;
        self.set_int("LastJobStatus", last.code());
        self.set_int("JobStatus", status.code());
        self.set_int("EnteredCurrentStatus", now);
    }
}

/// Attributes whose value a job's match depends on: a proc that changes one of these is
/// matched on its own, others share their cluster's result.
const MATCH_ATTRS: [&str; 5] = [
    "Requirements",
    "Rank",
    "RequestCpus",
    "RequestMemory",
    "RequestDisk",
];

/// The signature of a job for match caching: its cluster, plus every proc attribute that
/// the cluster's or the proc's match expressions mention.
pub fn signature(cluster: &Cluster, proc_ad: &ClassAd) -> u64 {
    signature_with(cluster, proc_ad, &mut Mentions::default())
}

/// Which attributes the cluster's match expressions mention, as learnt from its procs:
/// those of a large cluster mostly name the same few.
#[derive(Default)]
struct Mentions(Vec<(String, bool)>);

fn signature_with(cluster: &Cluster, proc_ad: &ClassAd, mentions: &mut Mentions) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cluster.id.hash(&mut h);
    // The common case, a proc that changes none of the match expressions, reuses the
    // cluster's text (unparsing Requirements per proc would dominate a large submit).
    let own: String;
    let own_text = proc_ad.names().any(is_match_attr);
    let text = if own_text {
        own = match_text(proc_ad, &cluster.ad);
        &own
    } else {
        &cluster.match_text
    };
    for (name, expr) in proc_ad.iter() {
        if same_name(name, "ProcId") || same_name(name, "JobStatus") {
            continue;
        }
        let significant = is_match_attr(name)
            || match mentions.0.iter().find(|(n, _)| n == name) {
                Some((_, known)) if !own_text => *known,
                _ => {
                    let found = text.contains(&name.to_ascii_lowercase());
                    if !own_text {
                        mentions.0.push((name.to_string(), found));
                    }
                    found
                }
            };
        if significant {
            name.to_ascii_lowercase().hash(&mut h);
            expr.to_string().hash(&mut h);
        }
    }
    h.finish()
}

fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
}

fn is_match_attr(name: &str) -> bool {
    MATCH_ATTRS.iter().any(|m| same_name(m, name))
}

/// The match expressions of `first`, else of `then`, lower-cased, one per line.
pub fn match_text(first: &ClassAd, then: &ClassAd) -> String {
    let mut text = String::new();
    for name in MATCH_ATTRS {
        if let Some(e) = first.lookup(name).or_else(|| then.lookup(name)) {
            text.push_str(&e.to_string().to_ascii_lowercase());
            text.push('\n');
        }
    }
    text
}

#[derive(Default)]
pub struct Queue {
    pub clusters: HashMap<i64, Arc<Cluster>>,
    /// Procs of each cluster still in the queue; the cluster leaves with the last one.
    cluster_procs: HashMap<i64, usize>,
    pub jobs: BTreeMap<JobId, Job>,
    /// Idle jobs in the order the negotiator considers them: `JobPrio` high first, then
    /// submission order.
    idle: BTreeSet<(Reverse<i64>, JobId)>,
}

impl Queue {
    pub fn insert(&mut self, cluster: Arc<Cluster>, id: JobId, ad: ClassAd) {
        self.insert_procs(cluster, [(id.proc, ad)]);
    }

    /// Adds procs (id and proc ad) of one cluster.
    pub fn insert_procs(
        &mut self,
        cluster: Arc<Cluster>,
        procs: impl IntoIterator<Item = (i64, ClassAd)>,
    ) {
        let mut mentions = Mentions::default();
        let mut count = 0;
        for (proc, ad) in procs {
            let id = JobId::new(cluster.id, proc);
            let status = int_attr(&ad, "JobStatus")
                .or(cluster.status)
                .and_then(JobStatus::from_code)
                .unwrap_or(JobStatus::Idle);
            let prio = int_attr(&ad, "JobPrio").or(cluster.prio).unwrap_or(0);
            let signature = signature_with(&cluster, &ad, &mut mentions);
            if status == JobStatus::Idle {
                self.idle.insert((Reverse(prio), id));
            }
            self.jobs.insert(
                id,
                Job {
                    id,
                    cluster: cluster.clone(),
                    ad,
                    status,
                    claim: None,
                    signature,
                    prio,
                },
            );
            count += 1;
        }
        if count > 0 {
            *self.cluster_procs.entry(cluster.id).or_insert(0) += count;
            self.clusters.entry(cluster.id).or_insert(cluster);
        }
    }

    pub fn get(&self, id: JobId) -> Option<&Job> {
        self.jobs.get(&id)
    }

    /// Changes a job's status, keeping the idle index right.
    pub fn set_status(&mut self, id: JobId, status: JobStatus, now: i64) {
        if let Some(job) = self.jobs.get_mut(&id) {
            if job.status == JobStatus::Idle {
                self.idle.remove(&(Reverse(job.prio), id));
            }
            job.set_status(status, now);
            if status == JobStatus::Idle {
                self.idle.insert((Reverse(job.prio), id));
            }
        }
    }

    pub fn get_mut(&mut self, id: JobId) -> Option<&mut Job> {
        self.jobs.get_mut(&id)
    }

    /// Takes a job out of the queue; returns whether its cluster is now empty.
    pub fn remove(&mut self, id: JobId) -> Option<(Job, bool)> {
        let job = self.jobs.remove(&id)?;
        self.idle.remove(&(Reverse(job.prio), id));
        let left = self.cluster_procs.entry(id.cluster).or_insert(1);
        *left = left.saturating_sub(1);
        let empty = *left == 0;
        if empty {
            self.clusters.remove(&id.cluster);
            self.cluster_procs.remove(&id.cluster);
        }
        Some((job, empty))
    }

    /// Idle job ids in negotiation order.
    pub fn idle(&self) -> impl Iterator<Item = JobId> + '_ {
        self.idle.iter().map(|(_, id)| *id)
    }

    pub fn idle_count(&self) -> usize {
        self.idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(text: &str) -> ClassAd {
        ClassAd::parse(text).unwrap()
    }

    #[test]
    fn procs_share_a_signature_unless_they_change_what_matching_reads() {
        let cluster = Arc::new(Cluster::new(
            3,
            0,
            ad("Requirements = TARGET.Memory >= MY.Need\nJobPrio = 2\nJobStatus = 5"),
        ));
        let mut q = Queue::default();
        q.insert_procs(
            cluster.clone(),
            [
                (0, ad("ProcId = 0\nArgs = \"a\"\nNeed = 1")),
                (1, ad("ProcId = 1\nArgs = \"b\"\nNeed = 1")),
                (2, ad("ProcId = 2\nArgs = \"c\"\nNeed = 2")),
                (3, ad("ProcId = 3\nArgs = \"d\"\nNeed = 1\nJobStatus = 1")),
                (
                    4,
                    ad("ProcId = 4\nNeed = 1\nRequirements = MY.Args =!= \"x\""),
                ),
                (
                    5,
                    ad("ProcId = 5\nArgs = \"e\"\nNeed = 1\nRequirements = MY.Args =!= \"x\""),
                ),
            ],
        );
        let sig = |p| q.get(JobId::new(3, p)).unwrap().signature;
        assert_eq!(sig(0), sig(1));
        assert_ne!(sig(0), sig(2));
        assert_eq!(sig(0), sig(3));
        assert_ne!(sig(4), sig(5));
        assert_eq!(
            sig(1),
            signature(&cluster, &q.get(JobId::new(3, 1)).unwrap().ad)
        );
        // The cluster's status and priority unless the proc has its own.
        assert_eq!(q.get(JobId::new(3, 0)).unwrap().status, JobStatus::Held);
        assert_eq!(q.idle().collect::<Vec<_>>(), [JobId::new(3, 3)]);
        assert_eq!(q.get(JobId::new(3, 3)).unwrap().prio, 2);
        assert_eq!(
            q.remove(JobId::new(3, 0)).map(|(_, empty)| empty),
            Some(false)
        );
        assert!(q.clusters.contains_key(&3));
    }
}
