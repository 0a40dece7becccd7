//! Matchmaking: idle jobs against the partitionable slot, both sides' `Requirements`,
//! in priority and submission order; and `-better-analyze` for a job that does not run.

use std::collections::HashMap;

use petrel_classad::{matching, ClassAd, Semantics, Value};

use crate::core::Core;
use crate::job::{JobId, JobStatus};
use crate::machine::Resources;
use crate::policy::{self, Decision, JobContainer, Refusal};

/// What a job asks for, evaluated against the slot it would run on.
pub fn requests(job: &ClassAd, slot: &ClassAd) -> Resources {
    let num = |name: &str| match matching::eval_attr_with_target(name, job, slot, Semantics::Compat)
    {
        Value::Int(i) => Some(i.max(0) as u64),
        Value::Real(r) if r.is_finite() => Some(r.max(0.0).ceil() as u64),
        _ => None,
    };
    // HTCondor's startd rounds requests up (MODIFY_REQUEST_EXPR_REQUEST*: memory to
    // 128 MiB, disk to 1 MiB), so dynamic slots come in few sizes.
    let quantize = |v: u64, q: u64| v.div_ceil(q).max(1) * q;
    Resources {
        cpus: num("RequestCpus").unwrap_or(1).clamp(1, u32::MAX as u64) as u32,
        memory_mib: quantize(num("RequestMemory").unwrap_or(128), 128),
        disk_kib: quantize(num("RequestDisk").unwrap_or(0), 1024),
    }
}

impl Core {
    /// One negotiation cycle; returns the jobs matched, with their slot and resources.
    pub fn negotiate(&mut self) -> Vec<(JobId, String, Resources)> {
        let mut matched = Vec::new();
        if self.stopping {
            return matched;
        }
        // Per cycle: a signature that did not match stays unmatched (resources only shrink).
        let mut failed: HashMap<u64, ()> = HashMap::new();
        let idle: Vec<JobId> = self.queue.idle().collect();
        let at = crate::core::now();
        for id in idle {
            if self.machine.free.cpus == 0 || self.machine.free.memory_mib == 0 {
                break;
            }
            let Some(job) = self.queue.get(id) else {
                continue;
            };
            if job.status != JobStatus::Idle || failed.contains_key(&job.signature) {
                continue;
            }
            if job
                .ad
                .eval_attr("PetrelNotBefore")
                .as_int()
                .is_some_and(|t| t > at)
            {
                continue;
            }
            let signature = job.signature;
            let ad = job.full_ad();
            let slot = self.machine.free_ad();
            if !matching::matches(&ad, &slot) {
                failed.insert(signature, ());
                continue;
            }
            // Not cached by signature: the image is not part of it, and refusals by mark
            // run out.
            if let Err(refused) = self.container_decision(&ad) {
                tracing::debug!("job {id} not matched: {}", refused.reason);
                continue;
            }
            let want = requests(&ad, &slot);
            match self.machine.claim(id, want) {
                Some(name) => matched.push((id, name, want)),
                None => {
                    failed.insert(signature, ());
                }
            }
        }
        matched
    }

    /// Where the job would run here under the container policy, or why it may not.
    pub fn container_decision(&self, ad: &ClassAd) -> Result<Decision, Refusal> {
        let job = JobContainer::from_ad(ad).map_err(|reason| Refusal {
            reason,
            temporary: false,
        })?;
        policy::decide(
            &job,
            &self.config.container,
            &self.image_marks,
            crate::core::now(),
        )
    }

    /// Why a job does or does not run, in the spirit of `condor_q -better-analyze`.
    pub fn analyze(&self, id: JobId) -> Option<String> {
        let job = self.queue.get(id)?;
        let ad = job.full_ad();
        let mut out = String::new();
        let status = job.status;
        out.push_str(&format!("Job {id} is {status:?}.\n"));
        if status == JobStatus::Held {
            out.push_str(&format!(
                "Hold reason: {} (code {}, subcode {})\n",
                job.string("HoldReason").unwrap_or_default(),
                job.int("HoldReasonCode").unwrap_or(0),
                job.int("HoldReasonSubCode").unwrap_or(0)
            ));
        }
        let whole = self.machine.slot_ad(self.machine.total);
        let free = self.machine.free_ad();
        let want = requests(&ad, &whole);
        let req = ad
            .lookup("Requirements")
            .map(|e| e.to_string())
            .unwrap_or_else(|| "(none)".into());
        out.push_str(&format!(
            "The Requirements expression for this job is\n\n    {req}\n\n"
        ));
        out.push_str(&format!(
            "It requests {} cpu(s), {} MiB of memory and {} KiB of disk; the machine has {} \
             cpu(s), {} MiB and {} KiB in all, of which {} cpu(s), {} MiB and {} KiB are free.\n",
            want.cpus,
            want.memory_mib,
            want.disk_kib,
            self.machine.total.cpus,
            self.machine.total.memory_mib,
            self.machine.total.disk_kib,
            self.machine.free.cpus,
            self.machine.free.memory_mib,
            self.machine.free.disk_kib
        ));
        let mut never = Vec::new();
        if want.cpus > self.machine.total.cpus {
            never.push(format!(
                "RequestCpus {} > the machine's {} cpus",
                want.cpus, self.machine.total.cpus
            ));
        }
        if want.memory_mib > self.machine.total.memory_mib {
            never.push(format!(
                "RequestMemory {} MiB > the machine's {} MiB",
                want.memory_mib, self.machine.total.memory_mib
            ));
        }
        if want.disk_kib > self.machine.total.disk_kib {
            never.push(format!(
                "RequestDisk {} KiB > the machine's {} KiB",
                want.disk_kib, self.machine.total.disk_kib
            ));
        }
        let job_side = matching::requirements_met(&ad, &whole, Semantics::Compat);
        let slot_side = matching::requirements_met(&whole, &ad, Semantics::Compat);
        let mut waits = None;
        match self.container_decision(&ad) {
            Ok(d) => out.push_str(&format!("Container policy: the job {}.\n", d.why)),
            Err(r) if r.temporary => waits = Some(format!("container policy: {}", r.reason)),
            Err(r) => never.push(format!("container policy: {}", r.reason)),
        }
        if !job_side {
            never.push(
                "the job's Requirements are not met by the slot even when it is empty".into(),
            );
            for clause in top_level_clauses(&req) {
                if let Ok(e) = petrel_classad::parse_expr(&clause) {
                    let v = matching::eval_with_target(&e, &ad, &whole, Semantics::Compat);
                    if !v.is_true() {
                        out.push_str(&format!(
                            "  clause not satisfied: {clause}   (evaluates to {v})\n"
                        ));
                    }
                }
            }
        }
        if !slot_side {
            never.push("the slot's Requirements (START) reject this job".into());
        }
        if never.is_empty() {
            if status == JobStatus::Idle {
                let fits_now = matching::matches(&ad, &free) && want.fits_in(&self.machine.free);
                if let Some(why) = waits {
                    out.push_str(&format!("The job waits: {why}.\n"));
                } else if fits_now {
                    out.push_str("The job matches the free part of the slot; it will start at the next negotiation cycle.\n");
                } else {
                    out.push_str("The job matches the slot, but not what is free now: it waits for running jobs to finish.\n");
                }
            }
        } else {
            out.push_str("This job can never run here:\n");
            for n in never {
                out.push_str(&format!("  - {n}\n"));
            }
        }
        Some(out)
    }
}

/// Splits `a && b && (c || d)` at its top-level `&&`s.
fn top_level_clauses(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut in_str) = (0i32, 0usize, false);
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_str = !in_str,
            b'\\' if in_str => i += 1,
            b'(' | b'[' | b'{' if !in_str => depth += 1,
            b')' | b']' | b'}' if !in_str => depth -= 1,
            b'&' if !in_str && depth == 0 && bytes.get(i + 1) == Some(&b'&') => {
                out.push(expr[start..i].trim().to_string());
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(expr[start..].trim().to_string());
    out.retain(|c| !c.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses() {
        assert_eq!(
            top_level_clauses("a && (b && c) && d == \"x&&y\""),
            vec!["a", "(b && c)", "d == \"x&&y\""]
        );
    }
}
