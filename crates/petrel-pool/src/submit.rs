//! Queueing a submit: the cluster ad and its procs, checked, stored and queued whole.
//!
//! A large submit is many procs that differ in a value or two (`ProcId`, `Args`), so each
//! proc ad is made from the previous one when both name the same attributes: the copy
//! shares the attribute names and lookup table, and only the values are parsed. Every
//! value is still parsed and every name checked once per distinct list of names.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use petrel_classad::{ClassAd, Expr, Value};
use petrel_userlog::Event;

use crate::core::{now, user_log, Core, Peer};
use crate::error::PoolError;
use crate::events::Record;
use crate::job::JobId;
use crate::proc_ads::{ProcAd, ProcAds};
use crate::protected;
use crate::proto::AdText;
use crate::queue::{literal_int, Cluster};

impl Core {
    /// Queues a submit's procs: all of them, or none with the reason.
    pub fn submit(
        &mut self,
        peer: &Peer,
        cluster: i64,
        cluster_ad: AdText,
        procs: ProcAds,
    ) -> Result<usize, PoolError> {
        if self.reserved.get(&cluster) != Some(&peer.uid) {
            return Err(PoolError::Refused(format!(
                "cluster {cluster} was not reserved by this user (ask for a new cluster first)"
            )));
        }
        if procs.is_empty() {
            return Err(PoolError::Refused(
                "a submit needs at least one proc".into(),
            ));
        }
        self.check_job_limits(peer, procs.len())?;
        let mut ad = parse_ad(cluster_ad.iter().map(|(k, v)| (&**k, &**v)), "cluster ad")?;
        protected::check_cluster_ad(&mut ad)?;
        // The owner is who the kernel says connected, whatever the ad claimed.
        ad.insert_value("Owner", Value::string(peer.name.as_str()));
        ad.insert_value(
            "User",
            Value::string(format!("{}@{}", peer.name, self.machine.hostname)),
        );
        ad.insert_value("ClusterId", cluster);
        // The job runs with the submitter's primary group, as the kernel reported it.
        ad.insert_value("PetrelOwnerGid", i64::from(peer.gid));
        let at = now();
        ad.insert_value("QDate", at);
        let mut builder = ProcBuilder::new(&ad, at);
        let mut parsed = Vec::with_capacity(procs.len());
        let mut texts = Vec::with_capacity(procs.len());
        let mut seen = HashSet::with_capacity(procs.len());
        for (i, p) in procs.iter().enumerate() {
            let (proc, pad) = builder.build(i, &p)?;
            if proc < 0 || !seen.insert(proc) {
                return Err(PoolError::Refused(format!(
                    "ProcId {proc} is negative or repeated"
                )));
            }
            texts.push(pad.to_new_syntax());
            parsed.push((proc, pad));
        }
        drop(procs);
        let cluster_text = ad.to_new_syntax();
        let bytes = cluster_text.len() + texts.iter().map(String::len).sum::<usize>();
        self.check_queue_bytes(peer, bytes)?;
        self.store.insert_cluster(
            cluster,
            peer.uid,
            &cluster_text,
            parsed
                .iter()
                .zip(&texts)
                .map(|((p, _), t)| (*p, t.as_str())),
        )?;
        drop(texts);
        self.reserved.remove(&cluster);
        self.cluster_bytes.insert(cluster, (peer.uid, bytes));
        let shared = Arc::new(Cluster::new(cluster, peer.uid, ad));
        let count = parsed.len();
        let log = user_log(&shared.ad);
        if let Some(path) = &log {
            let host = format!("<127.0.0.1:0?alias={}>", self.machine.hostname);
            for (proc, pad) in &parsed {
                self.events.send(Record {
                    path: path.clone(),
                    uid: peer.uid,
                    gid: peer.gid,
                    job: JobId::new(cluster, *proc),
                    at: SystemTime::now(),
                    event: Event::Submit {
                        host: host.clone(),
                        log_notes: None,
                        user_notes: None,
                    },
                    info: crate::core::info_of_ads(&shared.ad, pad),
                });
            }
        }
        self.queue.insert_procs(shared, parsed);
        tracing::info!(
            "cluster {cluster}: {count} job(s) submitted by {}",
            peer.name
        );
        Ok(count)
    }
}

impl Core {
    /// Refuses a submit that would take the queue, or the submitter's share of it, past
    /// its limit (HTCondor's `MAX_JOBS_SUBMITTED` and `MAX_JOBS_PER_OWNER`). Root, the
    /// pool's own user and the super users answer for the pool and have no share.
    fn check_job_limits(&self, peer: &Peer, adding: usize) -> Result<(), PoolError> {
        let limits = &self.config.clients;
        let queued = self.queue.jobs.len();
        if queued.saturating_add(adding) > limits.jobs_submitted {
            return Err(PoolError::Refused(format!(
                "the queue holds {queued} jobs; {adding} more would pass the pool's limit \
                 of {} (MAX_JOBS_SUBMITTED). Nothing was queued",
                limits.jobs_submitted
            )));
        }
        if peer.admin {
            return Ok(());
        }
        let mine = self
            .queue
            .jobs
            .values()
            .filter(|j| j.cluster.owner_uid == peer.uid)
            .count();
        if mine.saturating_add(adding) > limits.jobs_per_owner {
            return Err(PoolError::Refused(format!(
                "{} has {mine} jobs in the queue; {adding} more would pass the limit of {} \
                 jobs per user (MAX_JOBS_PER_OWNER). Nothing was queued",
                peer.name, limits.jobs_per_owner
            )));
        }
        Ok(())
    }
}

impl Core {
    /// Refuses a submit whose ads would take the submitter's queued ads past
    /// `MAX_QUEUE_MEMORY_PER_OWNER` (root, the pool's user and super users excepted).
    fn check_queue_bytes(&self, peer: &Peer, adding: usize) -> Result<(), PoolError> {
        if peer.admin {
            return Ok(());
        }
        let limit = self.config.clients.queue_bytes_per_owner;
        let mine: usize = (self.cluster_bytes.values())
            .filter(|(uid, _)| *uid == peer.uid)
            .map(|(_, b)| b)
            .sum();
        if mine.saturating_add(adding) > limit {
            return Err(PoolError::Refused(format!(
                "{}'s queued job ads take {} MiB; this submit's {} MiB more would pass the \
                 limit of {} MiB per user (MAX_QUEUE_MEMORY_PER_OWNER). Nothing was queued",
                peer.name,
                mine >> 20,
                adding.div_ceil(1 << 20),
                limit >> 20
            )));
        }
        Ok(())
    }
}

/// Makes the proc ads of one submit (see the module docs).
struct ProcBuilder {
    /// The cluster ad's `JobStatus`, for procs that do not set their own.
    cluster_status: Option<i64>,
    /// `EnteredCurrentStatus`, and `JobStatus` idle and held: one tree each for every proc.
    entered: Arc<Expr>,
    idle: Arc<Expr>,
    held: Arc<Expr>,
    last: Option<Template>,
}

/// The last proc made in full: its attribute names as received, and its ad.
struct Template {
    names: Vec<String>,
    has_status: bool,
    ad: ClassAd,
}

impl ProcBuilder {
    fn new(cluster_ad: &ClassAd, at: i64) -> ProcBuilder {
        ProcBuilder {
            cluster_status: cluster_ad.eval_attr("JobStatus").as_int(),
            entered: Arc::new(Expr::from_value(Value::Int(at))),
            idle: Arc::new(Expr::from_value(Value::Int(1))),
            held: Arc::new(Expr::from_value(Value::Int(5))),
            last: None,
        }
    }

    /// Proc `i`'s id and ad, with the status it is queued in.
    fn build(&mut self, i: usize, text: &ProcAd) -> Result<(i64, ClassAd), PoolError> {
        let what = || format!("proc {i}");
        if let Some(t) = &self.last {
            let same_names = t.names.len() == text.len()
                && t.names.iter().zip(text.names()).all(|(n, k)| n == k);
            if same_names {
                let mut pad = t.ad.clone();
                for (k, v) in text.iter() {
                    pad.insert(k, parse_value(k, v, what)?);
                }
                // Literals mean the same in any ad; anything else is evaluated below
                // in an ad made from this proc's attributes alone.
                let proc = pad.lookup("ProcId").and_then(literal_int);
                let status = match t.has_status {
                    true => pad.lookup("JobStatus").and_then(literal_int),
                    false => Some(self.cluster_status.unwrap_or(1)),
                };
                if let (Some(proc), Some(status)) = (proc, status) {
                    return self.finish(proc, status, pad);
                }
            }
        }
        let what = what();
        for name in text.names() {
            protected::check_proc_name(&what, name)?;
        }
        let pad = parse_ad(text.iter(), &what)?;
        let proc = pad
            .eval_attr("ProcId")
            .as_int()
            .ok_or_else(|| PoolError::Refused(format!("proc {i} has no integer ProcId")))?;
        let status = pad
            .eval_attr("JobStatus")
            .as_int()
            .or(self.cluster_status)
            .unwrap_or(1);
        let (proc, pad) = self.finish(proc, status, pad)?;
        self.last = Some(Template {
            names: text.names().map(str::to_string).collect(),
            has_status: text.names().any(|k| k.eq_ignore_ascii_case("JobStatus")),
            ad: pad.clone(),
        });
        Ok((proc, pad))
    }

    fn finish(
        &self,
        proc: i64,
        status: i64,
        mut pad: ClassAd,
    ) -> Result<(i64, ClassAd), PoolError> {
        let status = match status {
            1 => self.idle.clone(),
            5 => self.held.clone(),
            _ => {
                return Err(PoolError::Refused(format!(
                    "proc {proc}: a job is submitted idle (1) or held (5), not JobStatus {status}"
                )))
            }
        };
        pad.insert_shared("JobStatus", status);
        pad.insert_shared("EnteredCurrentStatus", self.entered.clone());
        Ok((proc, pad))
    }
}

/// An ad from a client, each name checked and each value parsed.
fn parse_ad<'a>(
    text: impl Iterator<Item = (&'a str, &'a str)>,
    what: &str,
) -> Result<ClassAd, PoolError> {
    let mut ad = ClassAd::new();
    for (k, v) in text {
        // The queue stores ads in the old syntax and must read them back after a
        // restart: a name it would have to quote ('A.B', 'true') could not be.
        let storable = k
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && petrel_classad::unparse::unparse_name(k) == *k;
        if !storable {
            return Err(PoolError::Refused(format!(
                "{what}: '{k}' is not an attribute name (letters, digits and '_', not a keyword)"
            )));
        }
        let e = parse_value(k, v, || what.to_string())?;
        ad.insert(k, e);
    }
    Ok(ad)
}

fn parse_value(k: &str, v: &str, what: impl Fn() -> String) -> Result<Expr, PoolError> {
    petrel_classad::parse_expr(v)
        .map_err(|e| PoolError::Refused(format!("{}: {k} = {v}: {e}", what())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PoolConfig, PoolPaths};
    use crate::events::EventSink;

    type Procs = Vec<Vec<(String, String)>>;

    fn open(dir: &std::path::Path) -> Core {
        let paths = PoolPaths::new(dir);
        let config = PoolConfig::load(&paths).unwrap();
        Core::open(paths, config, EventSink::start()).unwrap()
    }

    fn me(core: &Core) -> Peer {
        core.peer(
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
    }

    fn text(pairs: &[(&str, &str)]) -> AdText {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A fresh pool in a new directory, its user and a cluster reserved for them.
    fn pool() -> (tempfile::TempDir, Core, Peer, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        let peer = me(&core);
        let cluster = core.new_cluster(&peer).unwrap();
        (dir, core, peer, cluster)
    }

    fn procs(list: &[Vec<(String, String)>]) -> ProcAds {
        let mut out = ProcAds::new();
        for p in list {
            out.push(p.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        out
    }

    fn full_ads(core: &Core) -> Vec<String> {
        let ads = core
            .queue
            .jobs
            .values()
            .map(|j| j.full_ad().to_old_syntax());
        ads.collect()
    }

    #[test]
    fn a_large_submit_is_queued_as_sent_and_read_back_whole() {
        let (dir, mut core, peer, cluster) = pool();
        let cluster_ad = text(&[
            ("Cmd", "\"/bin/true\""),
            ("JobStatus", "5"),
            ("JobPrio", "3"),
            ("Requirements", "TARGET.Memory >= MY.Need"),
        ]);
        // Procs made from the one before, and some that are not: other attributes, a
        // ProcId to evaluate, their own JobStatus.
        let list: Procs = (0..150)
            .map(|p| {
                let mut ad = vec![("ProcId".to_string(), p.to_string())];
                match p {
                    20 => ad[0].1 = "19 + 1".into(),
                    30 | 31 => ad.push(("JobStatus".into(), "1".into())),
                    p if p % 50 == 7 => ad.push(("Extra".into(), "true".into())),
                    _ => {}
                }
                ad.push(("Args".into(), format!("\"n {p}\"")));
                ad.push(("Need".into(), (p % 2).to_string()));
                ad
            })
            .collect();
        let n = core
            .submit(&peer, cluster, cluster_ad, procs(&list))
            .unwrap();
        assert_eq!(n, 150);
        let job = |p| core.queue.get(JobId::new(cluster, p)).unwrap();
        assert_eq!(job(20).int("ProcId"), Some(20));
        assert_eq!(job(57).string("Args").as_deref(), Some("n 57"));
        assert!(job(57).lookup_value("Extra").is_true());
        assert!(job(58).lookup_value("Extra").is_undefined());
        let statuses: Vec<_> = (29..33).map(|p| job(p).int("JobStatus")).collect();
        assert_eq!(statuses, [Some(5), Some(1), Some(1), Some(5)]);
        assert_eq!(core.queue.idle().count(), 2);
        assert_eq!(job(1).signature, job(3).signature);
        assert_ne!(job(1).signature, job(2).signature);
        assert_eq!(job(0).int("EnteredCurrentStatus"), job(149).int("QDate"));
        let before = full_ads(&core);
        drop(core);
        assert_eq!(full_ads(&open(dir.path())), before);
    }

    /// Old-syntax text cannot carry a newline inside a string (HTCondor prints it raw);
    /// the queue must still read such a job back, or one user's string would stop the
    /// pool from opening its queue after a restart.
    #[test]
    fn strings_with_newlines_and_backslashes_survive_a_restart() {
        let (dir, mut core, peer, cluster) = pool();
        let odd = r#""a\nb\\n\"c\"\r\t""#;
        let cluster_ad = text(&[("Cmd", "\"/bin/true\""), ("Note", odd)]);
        let list: Procs = vec![vec![
            ("ProcId".to_string(), "0".to_string()),
            ("ProcNote".to_string(), odd.to_string()),
        ]];
        core.submit(&peer, cluster, cluster_ad, procs(&list))
            .unwrap();
        let id = JobId::new(cluster, 0);
        let want = Some("a\nb\\n\"c\"\r\t".to_string());
        drop(core);
        let core = open(dir.path());
        let job = core.queue.get(id).expect("the job is still queued");
        assert_eq!(job.string("Note"), want);
        assert_eq!(job.string("ProcNote"), want);
        let texts = core.query(&peer, None, &[], false, None).unwrap();
        let back = ClassAd::parse(&texts[0]).unwrap();
        assert_eq!(back.eval_attr("Note").as_str().map(str::to_string), want);
    }

    #[test]
    fn a_bad_submit_is_refused_whole() {
        let (_dir, mut core, peer, cluster) = pool();
        let good = |p: i64| vec![("ProcId".to_string(), p.to_string())];
        let cmd = text(&[("Cmd", "\"/bin/true\"")]);
        let cases: Vec<(AdText, Procs, &str)> = vec![
            // Names the queue could not read back after a restart.
            (
                text(&[("A.B", "1")]),
                vec![good(0)],
                "'A.B' is not an attribute name",
            ),
            (
                text(&[("true", "1")]),
                vec![good(0)],
                "'true' is not an attribute name",
            ),
            (
                cmd.clone(),
                vec![
                    good(0),
                    vec![("ProcId".into(), "1".into()), ("x y".into(), "1".into())],
                ],
                "'x y' is not an attribute name",
            ),
            (
                cmd.clone(),
                vec![good(0), good(1), good(1)],
                "ProcId 1 is negative or repeated",
            ),
            (
                cmd.clone(),
                vec![good(0), good(-1)],
                "ProcId -1 is negative or repeated",
            ),
            (
                cmd.clone(),
                vec![good(0), vec![("ProcId".into(), "\"one\"".into())]],
                "proc 1 has no integer ProcId",
            ),
            (
                cmd.clone(),
                vec![good(0), vec![("ProcId".into(), "1 +".into())]],
                "proc 1: ProcId = 1 +",
            ),
            (
                text(&[("Cmd", "\"/bin/true\""), ("JobStatus", "2")]),
                vec![good(0)],
                "not JobStatus 2",
            ),
        ];
        for (cluster_ad, list, why) in cases {
            let e = core
                .submit(&peer, cluster, cluster_ad, procs(&list))
                .unwrap_err();
            assert!(e.to_string().contains(why), "{e} (expected {why})");
            assert!(core.queue.jobs.is_empty());
            let stored = core.store.load().unwrap();
            assert!(stored.clusters.is_empty() && stored.jobs.is_empty());
        }
        // The cluster is still reserved: a good submit goes through.
        assert_eq!(
            core.submit(&peer, cluster, cmd, procs(&[good(0), good(1)]))
                .unwrap(),
            2
        );
    }

    #[test]
    fn every_protected_name_is_refused_or_overwritten_at_both_levels() {
        use crate::protected::{Rule, PROTECTED};
        let forged = |name: &str| match name {
            "Owner" | "User" => "\"mallory\"".to_string(),
            _ => "424242".to_string(),
        };
        let mut names: Vec<(String, Rule)> =
            PROTECTED.iter().map(|(n, r)| (n.to_string(), *r)).collect();
        names.push(("PetrelSomethingNew".into(), Rule::Refused));
        // Any spelling: ClassAd names ignore case.
        let lower: Vec<_> = names
            .iter()
            .map(|(n, r)| (n.to_ascii_lowercase(), *r))
            .collect();
        names.extend(lower);
        for (name, rule) in names {
            if rule == Rule::Checked {
                continue;
            }
            // Proc level: always refused.
            let (_dir, mut core, peer, cluster) = pool();
            let proc = vec![
                ("ProcId".to_string(), "0".to_string()),
                (name.clone(), forged(&name)),
            ];
            let cmd = text(&[("Cmd", "\"/bin/true\"")]);
            let e = core
                .submit(&peer, cluster, cmd, procs(&[proc]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&name) && e.contains("set by the pool"), "{e}");
            assert!(core.queue.jobs.is_empty());

            // Cluster level: refused, or the daemon's value in the queued job.
            let cluster_ad = text(&[("Cmd", "\"/bin/true\""), (&name, &forged(&name))]);
            let one = vec![vec![("ProcId".to_string(), "0".to_string())]];
            let r = core.submit(&peer, cluster, cluster_ad, procs(&one));
            if rule == Rule::Refused {
                let e = r.unwrap_err().to_string();
                assert!(e.contains(&name) && e.contains("set by the pool"), "{e}");
                assert!(core.queue.jobs.is_empty());
                continue;
            }
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
            let job = core.queue.get(JobId::new(cluster, 0)).unwrap();
            let ad = job.full_ad();
            let value = ad.eval_attr(&name);
            assert!(
                !ad.to_old_syntax().contains("424242") && !ad.to_old_syntax().contains("mallory"),
                "{name}: {}",
                ad.to_old_syntax()
            );
            match rule {
                Rule::Initial(start) => assert_eq!(value, Value::from(start), "{name}"),
                _ => assert!(!value.is_undefined(), "{name}"),
            }
            assert_eq!(job.owner_gid(), peer.gid);
            assert_eq!(ad.eval_attr("Owner").as_str(), Some(peer.name.as_str()));
            assert_eq!(ad.eval_attr("ClusterId").as_int(), Some(cluster));
        }
    }

    #[test]
    fn a_submit_on_hold_keeps_its_status_and_reason() {
        let (_dir, mut core, peer, cluster) = pool();
        let cluster_ad = text(&[
            ("Cmd", "\"/bin/true\""),
            ("JobStatus", "5"),
            ("HoldReason", "\"submitted on hold at user's request\""),
            ("HoldReasonCode", "15"),
            ("QDate", "1"),
        ]);
        let one = vec![vec![("ProcId".to_string(), "0".to_string())]];
        core.submit(&peer, cluster, cluster_ad, procs(&one))
            .unwrap();
        let job = core.queue.get(JobId::new(cluster, 0)).unwrap();
        assert_eq!(job.status, crate::job::JobStatus::Held);
        assert_eq!(job.int("HoldReasonCode"), Some(15));
        assert!(job.int("QDate").unwrap() > 1);
    }

    /// A user's queued ads are bounded in bytes, not only in jobs, and the count
    /// survives a restart.
    #[test]
    fn queued_ad_bytes_are_bounded_per_owner_across_restarts() {
        let (dir, mut core, mut peer, cluster) = pool();
        peer.admin = false;
        core.config.clients.queue_bytes_per_owner = 1 << 20;
        let big = format!("\"{}\"", "x".repeat(700 << 10));
        let ad = |extra: &str| text(&[("Cmd", "\"/bin/true\""), ("Big", extra)]);
        let one = vec![vec![("ProcId".to_string(), "0".to_string())]];
        core.submit(&peer, cluster, ad(&big), procs(&one)).unwrap();
        drop(core);
        let mut core = open(dir.path());
        core.config.clients.queue_bytes_per_owner = 1 << 20;
        let next = core.new_cluster(&peer).unwrap();
        let e = core
            .submit(&peer, next, ad(&big), procs(&one))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MAX_QUEUE_MEMORY_PER_OWNER") && e.contains("Nothing was queued"),
            "{e}"
        );
        core.submit(&peer, next, ad("1"), procs(&one)).unwrap();
        // Gone from the queue, its bytes count no more.
        core.retire(JobId::new(cluster, 0)).unwrap();
        let last = core.new_cluster(&peer).unwrap();
        core.submit(&peer, last, ad(&big), procs(&one)).unwrap();
    }

    #[test]
    fn a_submit_past_the_job_limits_is_refused_whole() {
        let (_dir, mut core, mut peer, cluster) = pool();
        core.config.clients.jobs_per_owner = 3;
        core.config.clients.jobs_submitted = 5;
        let list = |n: i64| -> Procs {
            (0..n)
                .map(|p| vec![("ProcId".to_string(), p.to_string())])
                .collect()
        };
        let cmd = text(&[("Cmd", "\"/bin/true\"")]);
        peer.admin = false;
        let e = core
            .submit(&peer, cluster, cmd.clone(), procs(&list(4)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MAX_JOBS_PER_OWNER") && e.contains("0 jobs"),
            "{e}"
        );
        assert!(core.queue.jobs.is_empty());
        assert_eq!(
            core.submit(&peer, cluster, cmd.clone(), procs(&list(3)))
                .unwrap(),
            3
        );
        let next = core.new_cluster(&peer).unwrap();
        let e = core
            .submit(&peer, next, cmd.clone(), procs(&list(1)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has 3 jobs"), "{e}");
        // The pool's own user has no share, but the pool's limit holds for all.
        peer.admin = true;
        assert_eq!(
            core.submit(&peer, next, cmd.clone(), procs(&list(2)))
                .unwrap(),
            2
        );
        let last = core.new_cluster(&peer).unwrap();
        let e = core
            .submit(&peer, last, cmd, procs(&list(1)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("MAX_JOBS_SUBMITTED"), "{e}");
        assert_eq!(core.queue.jobs.len(), 5);
    }

    #[test]
    fn a_forged_owner_stored_by_an_older_pool_is_not_believed() {
        let (dir, mut core, peer, cluster) = pool();
        let one = vec![vec![("ProcId".to_string(), "0".to_string())]];
        let cmd = text(&[("Cmd", "\"/bin/true\""), ("JobStatus", "5")]);
        core.submit(&peer, cluster, cmd, procs(&one)).unwrap();
        let id = JobId::new(cluster, 0);
        let forged = format!(
            "{}\nOwner = \"mallory\"\nPetrelOwnerGid = 4242\nUser = \"mallory@x\"",
            core.queue.get(id).unwrap().ad.to_old_syntax()
        );
        core.store.update_job(id, &forged).unwrap();
        drop(core);
        let core = open(dir.path());
        let job = core.queue.get(id).unwrap();
        assert_eq!(job.string("Owner").as_deref(), Some(peer.name.as_str()));
        assert_eq!(job.owner_gid(), peer.gid);
        assert!(!job.full_ad().to_old_syntax().contains("mallory"));
    }
}
