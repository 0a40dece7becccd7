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
        let mut ad = parse_ad(cluster_ad.iter().map(|(k, v)| (&**k, &**v)), "cluster ad")?;
        // The owner is who the kernel says connected, whatever the ad claims.
        ad.insert_value("Owner", Value::string(peer.name.as_str()));
        ad.insert_value(
            "User",
            Value::string(format!("{}@{}", peer.name, self.machine.hostname)),
        );
        ad.insert_value("ClusterId", cluster);
        // The job runs with the submitter's primary group, as the kernel reported it.
        ad.insert_value("PetrelOwnerGid", i64::from(peer.gid));
        let at = now();
        if !ad.contains("QDate") {
            ad.insert_value("QDate", at);
        }
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
            texts.push(pad.to_old_syntax());
            parsed.push((proc, pad));
        }
        drop(procs);
        let cluster_text = ad.to_old_syntax();
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
        let shared = Arc::new(Cluster::new(cluster, peer.uid, ad));
        let count = parsed.len();
        let log = user_log(&shared.ad);
        if let Some(path) = &log {
            let host = format!("<127.0.0.1:0?alias={}>", self.machine.hostname);
            for (proc, _) in &parsed {
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
        let pad = parse_ad(text.iter(), &what())?;
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
