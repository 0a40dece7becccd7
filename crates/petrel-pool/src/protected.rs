//! The job attributes the daemon owns, and what it does when a client sends one.
//!
//! A client is hostile: whatever it writes in a cluster or proc ad, the job's identity
//! (owner, uid/gid, ids), its status and the daemon's own bookkeeping (every `Petrel*`
//! name: the starter's pid, its spool, the claim's size, back-off times) come from the
//! peer's credentials (`SO_PEERCRED`) and the daemon's state. The schedd of HTCondor does
//! the same: it sets `Owner`, `User`, `ClusterId`, `ProcId` and `QDate` itself, takes a
//! `JobStatus` of idle or held only at submit, and refuses to let a client write the
//! attributes it keeps about a run.
//!
//! Each name is decided once, here ([`PROTECTED`]), and [`check_cluster_ad`] and
//! [`check_proc_name`] apply the list to every ad a client sends. Names are matched as
//! ClassAd names are, without regard to case. No request edits a queued ad after the
//! submit (`rm`, `hold` and `release` only name jobs), so the submit is the one place a
//! client's attributes enter the queue.

use petrel_classad::{ClassAd, Value};

use crate::error::PoolError;

/// What the daemon does with a protected name a client sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// condor_submit sends it and the daemon checks it: `ProcId` (an integer, once per
    /// proc), `JobStatus` (idle, or held for `hold = true`) and the hold reason that goes
    /// with `hold = true`. Allowed in the cluster ad and in proc ads.
    Checked,
    /// The daemon sets it from the peer's credentials or its own state (`Owner`, `User`,
    /// `ClusterId`, `QDate`). condor_submit sends some of these in the
    /// cluster ad, so there a client's value is replaced; a proc may not set one.
    Daemon,
    /// A run counter condor_submit sends with its starting value: in the cluster ad the
    /// value is reset to that start (a job does not begin with runs it never had); a proc
    /// may not set one.
    Initial(Start),
    /// Only the daemon writes it, as a job runs or leaves the queue: refused at any level.
    Refused,
}

/// The starting value of a run counter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    Int(i64),
    Real(f64),
    Bool(bool),
}

impl From<Start> for Value {
    fn from(s: Start) -> Value {
        match s {
            Start::Int(i) => Value::Int(i),
            Start::Real(r) => Value::Real(r),
            Start::Bool(b) => Value::Bool(b),
        }
    }
}

/// Every attribute the daemon or its starters write into a job ad, with its [`Rule`].
/// Any name starting with `Petrel` is the daemon's too ([`rule`]), listed or not.
///
/// Left out on purpose: `ImageSize` and `DiskUsage`, condor_submit's estimates of the
/// job's size that the user may give and the daemon replaces with what a run measured.
pub const PROTECTED: &[(&str, Rule)] = &[
    ("ProcId", Rule::Checked),
    ("JobStatus", Rule::Checked),
    ("HoldReason", Rule::Checked),
    ("HoldReasonCode", Rule::Checked),
    ("HoldReasonSubCode", Rule::Checked),
    ("Owner", Rule::Daemon),
    ("User", Rule::Daemon),
    ("ClusterId", Rule::Daemon),
    ("QDate", Rule::Daemon),
    ("EnteredCurrentStatus", Rule::Daemon),
    ("NumJobStarts", Rule::Initial(Start::Int(0))),
    ("NumJobCompletions", Rule::Initial(Start::Int(0))),
    ("CumulativeSlotTime", Rule::Initial(Start::Int(0))),
    ("ExitStatus", Rule::Initial(Start::Int(0))),
    ("ExitBySignal", Rule::Initial(Start::Bool(false))),
    ("RemoteSysCpu", Rule::Initial(Start::Real(0.0))),
    ("RemoteUserCpu", Rule::Initial(Start::Real(0.0))),
    ("RemoteWallClockTime", Rule::Initial(Start::Real(0.0))),
    ("LastJobStatus", Rule::Refused),
    ("NumHolds", Rule::Refused),
    ("LastHoldReason", Rule::Refused),
    ("LastHoldReasonCode", Rule::Refused),
    ("LastHoldReasonSubCode", Rule::Refused),
    ("ReleaseReason", Rule::Refused),
    ("RemoveReason", Rule::Refused),
    ("CompletionDate", Rule::Refused),
    ("RemoteHost", Rule::Refused),
    ("LastRemoteHost", Rule::Refused),
    ("JobStartDate", Rule::Refused),
    ("JobCurrentStartDate", Rule::Refused),
    ("ShadowBday", Rule::Refused),
    ("JobRunCount", Rule::Refused),
    ("LastVacateReason", Rule::Refused),
    ("ExitCode", Rule::Refused),
    ("ExitSignal", Rule::Refused),
    ("ContainerRuntimeUsed", Rule::Refused),
    ("CpusProvisioned", Rule::Refused),
    ("MemoryProvisioned", Rule::Refused),
    ("DiskProvisioned", Rule::Refused),
    ("ResidentSetSize", Rule::Refused),
    ("MemoryUsage", Rule::Refused),
    ("BytesRecvd", Rule::Refused),
    ("BytesSent", Rule::Refused),
    ("TransferInStarted", Rule::Refused),
    ("TransferInFinished", Rule::Refused),
    ("TransferOutStarted", Rule::Refused),
    ("TransferOutFinished", Rule::Refused),
    ("NumInputXferStarts", Rule::Refused),
    ("NumOutputXferStarts", Rule::Refused),
    ("JobCurrentFinishTransferOutputDate", Rule::Refused),
    ("LastRemoteWallClockTime", Rule::Refused),
    // The gid the job runs as; the daemon sets it from the peer's credentials.
    ("PetrelOwnerGid", Rule::Refused),
    ("PetrelStarterPid", Rule::Refused),
    ("PetrelSlot", Rule::Refused),
    ("PetrelSpool", Rule::Refused),
    ("PetrelClaimCpus", Rule::Refused),
    ("PetrelClaimMemory", Rule::Refused),
    ("PetrelClaimDisk", Rule::Refused),
    ("PetrelLimitsNotApplied", Rule::Refused),
    ("PetrelSlotFailures", Rule::Refused),
    ("PetrelNotBefore", Rule::Refused),
];

/// The names the daemon sets in the cluster ad alone: a proc ad holding one was forged
/// (by a client of a petrel that did not check proc ads) and is not believed.
pub const CLUSTER_ONLY: [&str; 5] = ["Owner", "User", "ClusterId", "QDate", "PetrelOwnerGid"];

/// The rule for `name`, if the daemon owns it.
pub fn rule(name: &str) -> Option<Rule> {
    if let Some((_, r)) = PROTECTED.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(*r);
    }
    let petrel = name
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("petrel"));
    petrel.then_some(Rule::Refused)
}

fn refusal(what: &str, name: &str) -> PoolError {
    PoolError::Refused(format!(
        "{what}: {name} is set by the pool, not by a submit"
    ))
}

/// Checks a proc ad's attribute name: only [`Rule::Checked`] names of the protected ones.
pub fn check_proc_name(what: &str, name: &str) -> Result<(), PoolError> {
    match rule(name) {
        None | Some(Rule::Checked) => Ok(()),
        Some(_) => Err(refusal(what, name)),
    }
}

/// Applies the rules to a client's cluster ad: refused names fail the submit, the
/// daemon's own and the run counters are dropped here (the caller sets the daemon's) or
/// reset to their start.
pub fn check_cluster_ad(ad: &mut ClassAd) -> Result<(), PoolError> {
    let mut reset = Vec::new();
    for name in ad.names() {
        match rule(name) {
            None | Some(Rule::Checked) => {}
            Some(Rule::Refused) => return Err(refusal("cluster ad", name)),
            Some(Rule::Daemon) => reset.push((name.to_string(), None)),
            Some(Rule::Initial(start)) => reset.push((name.to_string(), Some(start))),
        }
    }
    for (name, start) in reset {
        // Removed first so that the stored name has the daemon's spelling.
        ad.remove(&name);
        if let Some(start) = start {
            let canonical = PROTECTED
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map_or(name.as_str(), |(n, _)| n);
            ad.insert_value(canonical, Value::from(start));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_daemon_written_name_is_listed_and_petrel_names_are_refused() {
        for name in [
            "PetrelOwnerGid",
            "petrelownergid",
            "PETRELSPOOL",
            "PetrelNew",
        ] {
            assert!(rule(name).is_some(), "{name}");
        }
        assert_eq!(rule("PetrelFuture"), Some(Rule::Refused));
        assert_eq!(rule("owner"), Some(Rule::Daemon));
        assert_eq!(rule("Petre"), None);
        assert_eq!(rule("Cmd"), None);
        assert_eq!(rule("ImageSize"), None);
        // No name twice, so no name has two rules.
        for (i, (a, _)) in PROTECTED.iter().enumerate() {
            for (b, _) in &PROTECTED[i + 1..] {
                assert!(!a.eq_ignore_ascii_case(b), "{a} twice");
            }
        }
    }

    #[test]
    fn a_cluster_ad_loses_the_daemons_names_and_keeps_the_rest() {
        let mut ad = ClassAd::parse(
            "owner = \"root\"\nQDate = 1\nNumJobStarts = 7\nRemoteUserCpu = 9.5\n\
             Cmd = \"/bin/true\"\nJobStatus = 5\nHoldReason = \"x\"",
        )
        .unwrap();
        check_cluster_ad(&mut ad).unwrap();
        assert!(ad.lookup("Owner").is_none() && ad.lookup("QDate").is_none());
        assert_eq!(ad.eval_attr("NumJobStarts").as_int(), Some(0));
        assert_eq!(ad.eval_attr("RemoteUserCpu").as_f64(), Some(0.0));
        assert!(ad.names().any(|n| n == "NumJobStarts"));
        assert_eq!(ad.eval_attr("JobStatus").as_int(), Some(5));
        assert_eq!(ad.eval_attr("Cmd").as_str(), Some("/bin/true"));

        for refused in ["PetrelOwnerGid", "petrelspool", "RemoteHost", "NumHolds"] {
            let mut ad = ClassAd::parse(&format!("{refused} = 1")).unwrap();
            let e = check_cluster_ad(&mut ad).unwrap_err().to_string();
            assert!(e.contains(refused) && e.contains("set by the pool"), "{e}");
        }
    }

    #[test]
    fn a_proc_may_only_set_the_checked_names() {
        for ok in ["ProcId", "jobstatus", "HoldReason", "Args", "ImageSize"] {
            check_proc_name("proc 0", ok).unwrap();
        }
        for (name, _) in PROTECTED.iter().filter(|(_, r)| *r != Rule::Checked) {
            let e = check_proc_name("proc 3", name).unwrap_err().to_string();
            assert!(e.contains("proc 3") && e.contains(name), "{e}");
            check_proc_name("proc 3", &name.to_ascii_uppercase()).unwrap_err();
        }
        check_proc_name("proc 0", "PetrelAnything").unwrap_err();
    }
}
