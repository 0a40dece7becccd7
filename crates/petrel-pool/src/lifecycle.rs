//! HTCondor's job lifecycle after a run: exit status and usage into the job ad,
//! `on_exit_hold` / `on_exit_remove` (which carries `max_retries`), holds with their
//! codes, requeues that blame the slot, and the `periodic_*` expressions.

use petrel_classad::{ClassAd, Value};
use petrel_userlog::{
    CpuUsage, Event, Evicted, ReasonCode, ResourceUsage, Terminated, Termination, TransferStep,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::{now, Core};
use crate::error::PoolError;
use crate::holdcodes::{self, Hold};
use crate::job::{JobId, JobStatus};
use crate::queue::{Claim, Pending};
use crate::starter::task::{self, Ending, StarterResult, TransferTimes, Usage};

/// HTCondor's vacate code for "the starter failed" (a requeue that blames the slot).
const STARTER_ERROR: i32 = 1007;

pub fn evicted(reason: &str, code: Option<ReasonCode>) -> Event {
    Event::Evicted(Evicted {
        checkpointed: false,
        run_remote_usage: CpuUsage::default(),
        run_local_usage: CpuUsage::default(),
        bytes_sent: 0,
        bytes_received: 0,
        requeued: None,
        reason: Some(reason.to_string()),
        reason_code: code,
        resources: Vec::new(),
    })
}

/// A starter's recorded time (Unix seconds) as a time for the log.
fn unix_time(t: f64) -> Option<SystemTime> {
    (t.is_finite() && t > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(t))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl Core {
    /// A starter has exited: apply what it reports (or what was asked of the job meanwhile).
    pub fn starter_ended(&mut self, id: JobId, exit_code: Option<i32>) -> Result<(), PoolError> {
        let Some(job) = self.queue.get_mut(id) else {
            return Ok(());
        };
        let Some(claim) = job.claim.take() else {
            return Ok(());
        };
        self.machine.release(&claim.slot);
        let result: Option<StarterResult> =
            match task::read_json(&claim.spool.join(task::RESULT_FILE)) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(
                        "job {id}: starter exited ({exit_code:?}) without a result: {e}"
                    );
                    None
                }
            };
        let times = result
            .as_ref()
            .map(|r| r.usage.transfers)
            .unwrap_or_default();
        if let Some(r) = &result {
            self.record_usage(id, &claim, &r.usage);
            if let (Some(rt), Some(job)) = (&r.runtime, self.queue.get_mut(id)) {
                job.ad
                    .insert_value("ContainerRuntimeUsed", Value::string(rt.as_str()));
            }
            if let Some(image) = &r.refused_image {
                self.mark_image(image, &r.ending);
            }
        }
        self.log_input_transfer(id, claim.starter_pid, &times);
        if let Some(job) = self.queue.get_mut(id) {
            job.clear_run_attrs();
        }
        if std::env::var_os("PETREL_KEEP_SPOOL").is_none() {
            let _ = std::fs::remove_dir_all(&claim.spool);
        }
        if claim.pending.is_some() {
            self.log_output_transfer(id, &times);
        }
        match claim.pending {
            Some(Pending::Hold(h)) => return self.hold_now(id, h),
            Some(Pending::Remove(r)) => return self.remove_now(id, &r),
            Some(Pending::Vacate(r)) => return self.requeue(id, &r, None, false),
            None => {}
        }
        let Some(result) = result else {
            let why = format!(
                "the starter failed (exit status {}); see the pool's daemon.log",
                exit_code.map_or("unknown".into(), |c| c.to_string())
            );
            return self.requeue(id, &why, Some(ReasonCode::new(STARTER_ERROR, 0)), true);
        };
        match result.ending {
            Ending::Requeue { reason } => {
                if let (true, Some(rt)) = (result.runtime_failed, &result.runtime) {
                    self.blame_runtime(rt, &reason);
                }
                self.log_output_transfer(id, &times);
                self.log_starter_error(id, &claim, &reason, None);
                self.requeue(id, &reason, Some(ReasonCode::new(STARTER_ERROR, 0)), true)
            }
            Ending::Hold(mut hold) => {
                self.log_image_size(id, SystemTime::now());
                self.log_output_transfer(id, &times);
                if execute_side(&hold) {
                    let code = ReasonCode::new(hold.code as i32, hold.subcode as i32);
                    self.log_starter_error(id, &claim, &hold.reason, Some(code));
                    // As HTCondor's shadow words a hold the starter asked for.
                    hold.reason = format!("Error from {}: {}", self.slot_name(&claim), hold.reason);
                }
                self.hold_now(id, hold)
            }
            Ending::Exited { code } => self.job_exited(
                id,
                Termination::Exited { return_value: code },
                &result.usage,
            ),
            Ending::Signaled { signal } => self.job_exited(
                id,
                Termination::Signaled {
                    signal,
                    core_file: None,
                },
                &result.usage,
            ),
        }
    }

    /// A validation script failed in `image`: the slot refuses it for
    /// `CONTAINER_VALIDATION_BLOCK_TIME` (the marks live as long as the daemon).
    fn mark_image(&mut self, image: &str, ending: &Ending) {
        let at = now();
        self.image_marks.expire(at);
        let why = match ending {
            Ending::Requeue { reason } => reason.as_str(),
            _ => "a validation script failed",
        };
        let until = at + self.config.validation_block.as_secs() as i64;
        tracing::warn!("refusing image {image} until {until}: {why}");
        self.image_marks.mark(image, until, why);
    }

    /// Usage of this run into the job ad (HTCondor's attribute names and units).
    fn record_usage(&mut self, id: JobId, claim: &Claim, u: &Usage) {
        let Some(job) = self.queue.get_mut(id) else {
            return;
        };
        let add = |job: &mut crate::queue::Job, name: &str, v: f64| {
            let old = job.lookup_value(name).as_f64().unwrap_or(0.0);
            job.ad.insert_value(name, Value::Real(old + v));
        };
        add(job, "RemoteUserCpu", u.user_cpu_secs);
        add(job, "RemoteSysCpu", u.sys_cpu_secs);
        add(job, "RemoteWallClockTime", u.wall_secs);
        add(job, "CumulativeSlotTime", u.wall_secs);
        job.set_int("LastRemoteWallClockTime", u.wall_secs.round() as i64);
        let peak_kib = u.peak_memory_kib as i64;
        job.set_int("ResidentSetSize", peak_kib);
        job.set_int("MemoryUsage", (peak_kib + 1023) / 1024);
        let image = job.int("ImageSize").unwrap_or(0).max(peak_kib);
        job.set_int("ImageSize", image);
        job.set_int("DiskUsage", (u.disk_kib as i64).max(1));
        let recvd = job.lookup_value("BytesRecvd").as_f64().unwrap_or(0.0);
        job.ad
            .insert_value("BytesRecvd", Value::Real(recvd + u.bytes_received as f64));
        let sent = job.lookup_value("BytesSent").as_f64().unwrap_or(0.0);
        job.ad
            .insert_value("BytesSent", Value::Real(sent + u.bytes_sent as f64));
        if let Some(t) = u.ended {
            job.set_int("JobCurrentFinishTransferOutputDate", t);
        }
        // The attributes HTCondor's shadow sets as it logs each transfer step.
        let t = &u.transfers;
        for (name, at) in [
            ("TransferInStarted", t.input_started),
            ("TransferInFinished", t.input_finished),
            ("TransferOutStarted", t.output_started),
            ("TransferOutFinished", t.output_finished),
        ] {
            if let Some(at) = at {
                job.set_int(name, at as i64);
            }
        }
        for (name, started) in [
            ("NumInputXferStarts", t.input_started),
            ("NumOutputXferStarts", t.output_started),
        ] {
            if started.is_some() {
                let n = job.int(name).unwrap_or(0) + 1;
                job.set_int(name, n);
            }
        }
        job.set_int("CpusProvisioned", claim.cpus as i64);
        job.set_int("MemoryProvisioned", claim.memory_mib as i64);
        job.set_int("DiskProvisioned", claim.disk_kib as i64);
        if !u.not_applied.is_empty() {
            job.set_string("PetrelLimitsNotApplied", &u.not_applied.join(", "));
        }
    }

    /// `slot1_2@host`, as HTCondor names the execution point in errors.
    fn slot_name(&self, claim: &Claim) -> String {
        format!("{}@{}", claim.slot, self.machine.hostname)
    }

    /// Event 021, as HTCondor's shadow logs an error its starter reports: the starter
    /// failed for a reason on the execute side, and the job is held (with the hold's
    /// code) or goes back to idle.
    fn log_starter_error(&self, id: JobId, claim: &Claim, why: &str, code: Option<ReasonCode>) {
        self.log(
            id,
            Event::RemoteError {
                daemon: "starter".into(),
                host: self.slot_name(claim),
                message: why.to_string(),
                hold_code: code,
            },
        );
    }

    /// The input half of event 040, at the times the starter recorded: started (with
    /// the starter's address, as HTCondor's shadow writes it when the transfer was not
    /// queued) and finished.
    fn log_input_transfer(&self, id: JobId, starter_pid: u32, t: &TransferTimes) {
        let host = crate::starters::starter_address(starter_pid);
        self.log_transfer_step(id, TransferStep::InputStarted, t.input_started, Some(host));
        self.log_transfer_step(id, TransferStep::InputFinished, t.input_finished, None);
    }

    /// The output half of event 040.
    fn log_output_transfer(&self, id: JobId, t: &TransferTimes) {
        self.log_transfer_step(id, TransferStep::OutputStarted, t.output_started, None);
        self.log_transfer_step(id, TransferStep::OutputFinished, t.output_finished, None);
    }

    fn log_transfer_step(
        &self,
        id: JobId,
        step: TransferStep,
        at: Option<f64>,
        host: Option<String>,
    ) {
        let Some(at) = at.and_then(unix_time) else {
            return;
        };
        let event = Event::FileTransfer {
            step,
            queueing_delay: None,
            host,
        };
        self.log_at(id, at, event);
    }

    fn log_image_size(&self, id: JobId, at: SystemTime) {
        let Some(job) = self.queue.get(id) else {
            return;
        };
        let rss = job.int("ResidentSetSize").unwrap_or(0);
        if rss > 0 {
            self.log_at(
                id,
                at,
                Event::ImageSize {
                    image_size_kib: job.int("ImageSize").unwrap_or(rss),
                    memory_usage_mib: job.int("MemoryUsage"),
                    resident_set_size_kib: rss,
                    proportional_set_size_kib: None,
                },
            );
        }
    }

    /// Back to idle, logged as an eviction. When the slot is to blame, the job waits a
    /// little longer after each failure (5 s, doubling, at most 5 min), so a broken slot
    /// does not spin starting and failing it.
    fn requeue(
        &mut self,
        id: JobId,
        reason: &str,
        code: Option<ReasonCode>,
        slot_failed: bool,
    ) -> Result<(), PoolError> {
        tracing::info!("job {id} back to idle: {reason}");
        let at = now();
        self.queue.set_status(id, JobStatus::Idle, at);
        if let Some(job) = self.queue.get_mut(id) {
            job.set_string("LastVacateReason", reason);
            if slot_failed {
                let n = job.int("PetrelSlotFailures").unwrap_or(0) + 1;
                job.set_int("PetrelSlotFailures", n);
                let backoff = (5i64 << (n - 1).clamp(0, 6)).min(300);
                job.set_int("PetrelNotBefore", at + backoff);
            }
        }
        self.persist(id)?;
        self.log(id, evicted(reason, code));
        Ok(())
    }

    fn job_exited(&mut self, id: JobId, how: Termination, usage: &Usage) -> Result<(), PoolError> {
        let Some(job) = self.queue.get_mut(id) else {
            return Ok(());
        };
        match &how {
            Termination::Exited { return_value } => {
                job.set_int("ExitCode", i64::from(*return_value));
                job.ad.insert_value("ExitBySignal", false);
                job.ad.remove("ExitSignal");
                job.set_int("ExitStatus", i64::from(*return_value));
            }
            Termination::Signaled { signal, .. } => {
                job.ad.remove("ExitCode");
                job.ad.insert_value("ExitBySignal", true);
                job.set_int("ExitSignal", i64::from(*signal));
                job.set_int("ExitStatus", 0);
            }
        }
        job.set_int("LastJobStatus", JobStatus::Running.code());
        // max_retries is `OnExitRemove = NumJobCompletions > JobMaxRetries || ...`.
        let completions = job.int("NumJobCompletions").unwrap_or(0) + 1;
        job.set_int("NumJobCompletions", completions);
        // The size is the job's at its end, before its output went back, as in HTCondor.
        let ended = usage.transfers.output_started.and_then(unix_time);
        self.log_image_size(id, ended.unwrap_or_else(SystemTime::now));
        self.log_output_transfer(id, &usage.transfers);
        let Some(job) = self.queue.get(id) else {
            return Ok(());
        };
        let ad = job.full_ad();
        if policy_true(&ad, "OnExitHold") {
            let reason = ad
                .eval_attr("OnExitHoldReason")
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "The job attribute OnExitHold expression '{}' evaluated to TRUE",
                        ad.lookup("OnExitHold")
                            .map(|e| e.to_string())
                            .unwrap_or_default()
                    )
                });
            let sub = ad.eval_attr("OnExitHoldSubCode").as_int().unwrap_or(0);
            return self.hold_now(id, Hold::new(holdcodes::JOB_POLICY, sub, reason));
        }
        // OnExitRemove undefined means remove, as in HTCondor.
        let remove = match ad.eval_attr("OnExitRemove") {
            Value::Bool(b) => b,
            Value::Int(i) => i != 0,
            _ => true,
        };
        let job = self.queue.get(id);
        let total = CpuUsage::new(
            secs(
                job.and_then(|j| j.lookup_value("RemoteUserCpu").as_f64())
                    .unwrap_or(0.0),
            ),
            secs(
                job.and_then(|j| j.lookup_value("RemoteSysCpu").as_f64())
                    .unwrap_or(0.0),
            ),
        );
        let run = CpuUsage::new(secs(usage.user_cpu_secs), secs(usage.sys_cpu_secs));
        let resources = job.map(|j| resource_rows(j, usage)).unwrap_or_default();
        if !remove {
            let event = Event::Evicted(Evicted {
                checkpointed: false,
                run_remote_usage: run,
                run_local_usage: CpuUsage::default(),
                bytes_sent: usage.bytes_sent,
                bytes_received: usage.bytes_received,
                requeued: Some(how),
                reason: Some("The job exited and OnExitRemove is false; it runs again".into()),
                reason_code: None,
                resources,
            });
            self.queue.set_status(id, JobStatus::Idle, now());
            self.persist(id)?;
            self.log(id, event);
            return Ok(());
        }
        let job = self.queue.get(id);
        let (sent, recvd) = job
            .map(|j| {
                (
                    j.lookup_value("BytesSent").as_f64().unwrap_or(0.0) as u64,
                    j.lookup_value("BytesRecvd").as_f64().unwrap_or(0.0) as u64,
                )
            })
            .unwrap_or_default();
        self.log(
            id,
            Event::Terminated(Terminated {
                termination: how,
                run_remote_usage: run,
                run_local_usage: CpuUsage::default(),
                total_remote_usage: total,
                total_local_usage: CpuUsage::default(),
                bytes_sent: usage.bytes_sent,
                bytes_received: usage.bytes_received,
                total_bytes_sent: sent,
                total_bytes_received: recvd,
                resources,
            }),
        );
        self.queue.set_status(id, JobStatus::Completed, now());
        let leave = self
            .queue
            .get(id)
            .is_some_and(|j| j.lookup_value("LeaveJobInQueue").is_true());
        if leave {
            self.persist(id)
        } else {
            self.retire(id)
        }
    }

    /// Evaluates `periodic_hold`, `periodic_release` and `periodic_remove` for every job
    /// that has one; returns how many jobs changed.
    pub fn periodic(&mut self) -> usize {
        let candidates: Vec<JobId> = self
            .queue
            .jobs
            .values()
            .filter(|j| {
                ["PeriodicHold", "PeriodicRelease", "PeriodicRemove"]
                    .iter()
                    .any(|a| has_policy(&j.cluster.ad, a) || has_policy(&j.ad, a))
            })
            .map(|j| j.id)
            .collect();
        let mut changed = 0;
        for id in candidates {
            let Some(job) = self.queue.get(id) else {
                continue;
            };
            let ad = job.full_ad();
            let status = job.status;
            let result = if policy_true(&ad, "PeriodicRemove") && status != JobStatus::Removed {
                let reason = policy_reason(&ad, "PeriodicRemove", "PeriodicRemoveReason");
                if status.is_active() {
                    self.stop_running(id, Pending::Remove(reason));
                    Ok(())
                } else {
                    self.remove_now(id, &reason)
                }
            } else if matches!(status, JobStatus::Idle | JobStatus::Running)
                && policy_true(&ad, "PeriodicHold")
            {
                let reason = policy_reason(&ad, "PeriodicHold", "PeriodicHoldReason");
                let sub = ad.eval_attr("PeriodicHoldSubCode").as_int().unwrap_or(0);
                let hold = Hold::new(holdcodes::JOB_POLICY, sub, reason);
                if status.is_active() {
                    self.stop_running(id, Pending::Hold(hold));
                    Ok(())
                } else {
                    self.hold_now(id, hold)
                }
            } else if status == JobStatus::Held && policy_true(&ad, "PeriodicRelease") {
                let reason = policy_reason(&ad, "PeriodicRelease", "PeriodicReleaseReason");
                self.release_now(id, &reason)
            } else {
                continue;
            };
            changed += 1;
            if let Err(e) = result {
                tracing::error!("job {id}: periodic policy: {e}");
            }
        }
        changed
    }
}

/// Whether a hold is the starter's (its container, image, limits) rather than a file
/// transfer's, which HTCondor reports through the transfer and logs no 021 for.
fn execute_side(hold: &Hold) -> bool {
    !matches!(
        hold.code,
        holdcodes::TRANSFER_INPUT_ERROR | holdcodes::TRANSFER_OUTPUT_ERROR
    )
}

fn has_policy(ad: &ClassAd, name: &str) -> bool {
    ad.lookup(name)
        .is_some_and(|e| e.as_literal() != Some(Value::Bool(false)))
}

fn policy_true(ad: &ClassAd, name: &str) -> bool {
    matches!(ad.eval_attr(name), Value::Bool(true))
        || matches!(ad.eval_attr(name), Value::Int(i) if i != 0)
}

fn policy_reason(ad: &ClassAd, policy: &str, reason_attr: &str) -> String {
    ad.eval_attr(reason_attr)
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "The job attribute {policy} expression '{}' evaluated to TRUE",
                ad.lookup(policy).map(|e| e.to_string()).unwrap_or_default()
            )
        })
}

fn resource_rows(job: &crate::queue::Job, usage: &Usage) -> Vec<ResourceUsage> {
    let n = |name: &str| job.lookup_value(name).as_f64().unwrap_or(0.0);
    let cpu_usage = if usage.wall_secs > 0.0 {
        (usage.user_cpu_secs + usage.sys_cpu_secs) / usage.wall_secs
    } else {
        0.0
    };
    vec![
        ResourceUsage::new(
            "Cpus",
            (cpu_usage * 100.0).round() / 100.0,
            n("RequestCpus"),
            n("CpusProvisioned"),
        ),
        ResourceUsage::new(
            "Disk",
            usage.disk_kib as f64,
            n("RequestDisk"),
            n("DiskProvisioned"),
        ),
        ResourceUsage::new(
            "Memory",
            (usage.peak_memory_kib as f64 / 1024.0).ceil(),
            n("RequestMemory"),
            n("MemoryProvisioned"),
        ),
    ]
}
