//! The slot's container runtimes: which ones it uses (probed by real test jobs, as
//! HTCondor's startd does before it advertises Docker or Singularity), what the slot ad
//! says about them, and black-hole protection: a runtime that a job's failure blames stops
//! being advertised until a new probe passes, so no further job is sent to it.
//!
//! Probing runs on its own thread, so the daemon answers at once on start-up; each
//! runtime's result is advertised as soon as it is in (the embedded runtime's after a few
//! milliseconds, Docker's after its test containers ran), and a negotiation cycle follows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use petrel_drivers::{Drivers, Health, Probe, ProbeContext};

use crate::core::Core;
use crate::daemon::Shared;
use crate::error::PoolError;

/// What the daemon knows of its runtimes.
pub struct RuntimeState {
    drivers: Arc<Drivers>,
    /// Runtimes a job's failure blamed, with the failure, until their next probe.
    suspects: BTreeMap<String, String>,
    /// The available runtimes, most preferred first (the slot's `ContainerRuntimes`).
    available: Vec<String>,
    reprobe: Option<Sender<String>>,
}

impl RuntimeState {
    /// The runtimes named (most preferred first); none is probed yet, so none is
    /// advertised until [`start_prober`] has run its tests.
    pub fn new(names: &[String]) -> Result<RuntimeState, PoolError> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let drivers = Drivers::new(&names).map_err(PoolError::Config)?;
        Ok(RuntimeState {
            drivers: Arc::new(drivers),
            suspects: BTreeMap::new(),
            available: Vec::new(),
            reprobe: None,
        })
    }

    /// The runtimes a job matched now may use, most preferred first.
    pub fn available(&self) -> &[String] {
        &self.available
    }

    /// The last probes, with suspects shown as unavailable for the failure that blamed them.
    pub fn probes(&self) -> Vec<Probe> {
        let mut probes = self.drivers.probes();
        for p in &mut probes {
            if let Some(why) = self.suspects.get(&p.runtime) {
                p.health = Health::Unhealthy;
                p.image_kinds.clear();
                p.reason = Some(format!("a job failed in it, probing it again: {why}"));
            }
        }
        probes
    }

    /// The slot attributes for what is usable now; updates [`RuntimeState::available`].
    fn slot_attributes(&mut self) -> Vec<(String, String)> {
        let probes = self.probes();
        self.available = probes
            .iter()
            .filter(|p| p.available())
            .map(|p| p.runtime.clone())
            .collect();
        petrel_drivers::slot_attributes(&probes)
    }
}

impl Core {
    /// Puts what the runtimes' last probes found into the slot ad.
    pub fn refresh_runtimes(&mut self) {
        let attrs = self.runtimes.slot_attributes();
        self.machine.set_runtime_attrs(&attrs);
    }

    /// A job failed in a way that blames `runtime` (the runtime broke, not the job): stop
    /// advertising it and probe it again (once, however many of its jobs fail meanwhile).
    pub fn blame_runtime(&mut self, runtime: &str, why: &str) {
        let known = self.runtimes.drivers.get(runtime).is_some();
        if !known || self.runtimes.suspects.contains_key(runtime) {
            return;
        }
        tracing::warn!("runtime {runtime} failed a job ({why}); no longer advertised until it passes a new probe");
        self.runtimes
            .suspects
            .insert(runtime.to_string(), why.to_string());
        self.refresh_runtimes();
        if let Some(tx) = &self.runtimes.reprobe {
            let _ = tx.send(runtime.to_string());
        }
    }
}

/// Starts the thread that probes every runtime now, each again after `interval`, and a
/// blamed one at once. Probe images and scratch directories go under `work_dir`.
pub fn start_prober(
    shared: &Arc<Shared>,
    work_dir: PathBuf,
    interval: Duration,
) -> Result<(), PoolError> {
    let (tx, rx) = mpsc::channel();
    let drivers = {
        let mut core = shared.lock();
        core.runtimes.reprobe = Some(tx);
        core.runtimes.drivers.clone()
    };
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| PoolError::io(format!("creating {}", work_dir.display()), e))?;
    // The probe jobs run as `nobody` when the pool is root's: they must reach their image.
    set_mode_755(&work_dir);
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("prober".into())
        .spawn(move || prober(&shared, &drivers, work_dir, interval, &rx))
        .map_err(|e| PoolError::io("starting the runtime prober", e))?;
    Ok(())
}

fn set_mode_755(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

fn prober(
    shared: &Arc<Shared>,
    drivers: &Drivers,
    work_dir: PathBuf,
    interval: Duration,
    rx: &Receiver<String>,
) {
    let mut ctx = ProbeContext::new();
    ctx.work_dir = work_dir;
    if let Err(e) = ctx.image() {
        tracing::error!("cannot build the runtime probe image: {e}; no runtime is advertised");
    }
    let names: Vec<&'static str> = drivers.runtimes().iter().map(|r| r.name()).collect();
    probe_each(shared, drivers, &ctx, &names);
    loop {
        match rx.recv_timeout(interval) {
            Ok(name) => probe_one(shared, drivers, &ctx, &name, Blamed::Clear),
            Err(RecvTimeoutError::Timeout) => probe_each(shared, drivers, &ctx, &names),
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if shared.lock().stopping {
            return;
        }
    }
}

/// Probes the runtimes in parallel and advertises each result as it comes in.
fn probe_each(shared: &Arc<Shared>, drivers: &Drivers, ctx: &ProbeContext, names: &[&str]) {
    std::thread::scope(|s| {
        for name in names {
            s.spawn(move || probe_one(shared, drivers, ctx, name, Blamed::Keep));
        }
    });
}

/// Whether a probe ends a runtime's time as a suspect: only the probe its blame asked for
/// does, since a periodic one may have started before the job failed.
#[derive(Clone, Copy, PartialEq)]
enum Blamed {
    Clear,
    Keep,
}

/// Probes one runtime and advertises the result.
fn probe_one(
    shared: &Arc<Shared>,
    drivers: &Drivers,
    ctx: &ProbeContext,
    name: &str,
    blamed: Blamed,
) {
    let Some(probe) = drivers.reprobe(name, ctx) else {
        return;
    };
    log_probe(&probe);
    {
        let mut core = shared.lock();
        if blamed == Blamed::Clear {
            core.runtimes.suspects.remove(name);
        }
        core.refresh_runtimes();
    }
    shared.kick();
}

fn log_probe(p: &Probe) {
    match (&p.health, &p.reason) {
        (Health::Healthy, _) => tracing::info!(
            "runtime {} {} available ({:.2}s)",
            p.runtime,
            p.version.as_deref().unwrap_or(""),
            p.seconds
        ),
        (Health::Undetected, reason) => tracing::debug!(
            "runtime {} not installed: {}",
            p.runtime,
            reason.as_deref().unwrap_or("")
        ),
        (Health::Unhealthy, reason) => tracing::warn!(
            "runtime {} unavailable: {}",
            p.runtime,
            reason.as_deref().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn submit_spells_every_runtime_as_the_drivers_do() {
        for name in petrel_drivers::DEFAULT_PREFERENCE {
            assert_eq!(
                petrel_submit::to_ads::canonical_runtime(name),
                Some(name),
                "{name}"
            );
        }
        for alias in ["ch-run", "petrel", "Docker", " runc "] {
            assert_eq!(
                petrel_submit::to_ads::canonical_runtime(alias),
                petrel_drivers::canonical_name(alias),
                "{alias}"
            );
        }
        assert_eq!(petrel_submit::to_ads::canonical_runtime("lxc"), None);
    }
}
