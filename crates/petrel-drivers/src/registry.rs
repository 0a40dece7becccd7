//! The set of runtimes a slot uses: which drivers, in which order of preference, what
//! their last probes found; choosing a runtime for a job; preparing its image.

use std::collections::HashMap;
use std::sync::Mutex;

use petrel_image::{ImageRef, PreparedImage, Store};

use crate::apptainer::{Apptainer, ApptainerFlavor};
use crate::charliecloud::Charliecloud;
use crate::embedded::Embedded;
use crate::engine::{EngineFlavor, EngineRuntime};
use crate::error::{DriverError, ErrorKind};
use crate::job_spec::JobImage;
use crate::oci::{OciFlavor, OciRuntime};
use crate::probe::{probe_all, Probe, ProbeContext};
use crate::runtime::{ImageKind, Runtime};

/// Every runtime petrel knows, in its default order of preference: its own first, then
/// the daemonless OCI runtimes, the HPC runtimes, then the engines with a daemon.
pub const DEFAULT_PREFERENCE: [&str; 8] = [
    "embedded",
    "runc",
    "crun",
    "charliecloud",
    "apptainer",
    "singularity",
    "podman",
    "docker",
];

/// The canonical name of a runtime as users may write it (`container_runtime = ch-run`).
pub fn canonical_name(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    Some(match lower.as_str() {
        "embedded" | "petrel" | "petrel-runtime" => "embedded",
        "runc" => "runc",
        "crun" => "crun",
        "charliecloud" | "ch-run" => "charliecloud",
        "apptainer" => "apptainer",
        "singularity" => "singularity",
        "podman" => "podman",
        "docker" => "docker",
        _ => return None,
    })
}

/// Parses a preference list (`"embedded, runc,docker"`); unknown names are an error.
pub fn parse_preference(text: &str) -> Result<Vec<&'static str>, String> {
    text.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|name| {
            canonical_name(name).ok_or_else(|| format!("unknown container runtime '{name}'"))
        })
        .collect()
}

/// The driver for a runtime name, with default settings.
pub fn driver(name: &str) -> Option<Box<dyn Runtime>> {
    Some(match canonical_name(name)? {
        "embedded" => Box::new(Embedded::new()),
        "runc" => Box::new(OciRuntime::new(OciFlavor::Runc)),
        "crun" => Box::new(OciRuntime::new(OciFlavor::Crun)),
        "charliecloud" => Box::new(Charliecloud::new()),
        "apptainer" => Box::new(Apptainer::new(ApptainerFlavor::Apptainer)),
        "singularity" => Box::new(Apptainer::new(ApptainerFlavor::Singularity)),
        "podman" => Box::new(EngineRuntime::new(EngineFlavor::Podman)),
        "docker" => Box::new(EngineRuntime::new(EngineFlavor::Docker)),
        _ => return None,
    })
}

/// A slot's runtimes, in preference order, with their last probe results.
pub struct Drivers {
    runtimes: Vec<Box<dyn Runtime>>,
    probes: Mutex<HashMap<&'static str, Probe>>,
}

impl Drivers {
    /// The drivers for `preference` (names, most preferred first); runtimes not named are
    /// not used at all (how a pool disables one).
    pub fn new(preference: &[&str]) -> Result<Drivers, String> {
        let mut runtimes: Vec<Box<dyn Runtime>> = Vec::new();
        for name in preference {
            let rt = driver(name).ok_or_else(|| format!("unknown container runtime '{name}'"))?;
            if !runtimes.iter().any(|r| r.name() == rt.name()) {
                runtimes.push(rt);
            }
        }
        Ok(Drivers::from_runtimes(runtimes))
    }

    /// Every known driver in the default order.
    pub fn all() -> Drivers {
        Drivers::from_runtimes(
            DEFAULT_PREFERENCE
                .iter()
                .filter_map(|n| driver(n))
                .collect(),
        )
    }

    /// These drivers (configured by the caller), in this order.
    pub fn from_runtimes(runtimes: Vec<Box<dyn Runtime>>) -> Drivers {
        Drivers {
            runtimes,
            probes: Mutex::new(HashMap::new()),
        }
    }

    pub fn runtimes(&self) -> &[Box<dyn Runtime>] {
        &self.runtimes
    }

    pub fn get(&self, name: &str) -> Option<&dyn Runtime> {
        let name = canonical_name(name).unwrap_or(name);
        self.runtimes
            .iter()
            .find(|r| r.name() == name)
            .map(|r| r.as_ref())
    }

    /// Probes every runtime (in parallel) and remembers the results, in preference order.
    pub fn probe(&self, ctx: &ProbeContext) -> Vec<Probe> {
        let probes = probe_all(&self.runtimes, ctx);
        if let Ok(mut map) = self.probes.lock() {
            for (rt, p) in self.runtimes.iter().zip(&probes) {
                map.insert(rt.name(), p.clone());
            }
        }
        probes
    }

    /// Probes one runtime again, after a job failed in a way that blamed it.
    pub fn reprobe(&self, name: &str, ctx: &ProbeContext) -> Option<Probe> {
        let rt = self.get(name)?;
        let probe = rt.probe(ctx);
        if let Ok(mut map) = self.probes.lock() {
            map.insert(rt.name(), probe.clone());
        }
        Some(probe)
    }

    /// The last probe results, in preference order (runtimes never probed are left out).
    pub fn probes(&self) -> Vec<Probe> {
        let map = self.probes.lock().map(|m| m.clone()).unwrap_or_default();
        self.runtimes
            .iter()
            .filter_map(|rt| map.get(rt.name()).cloned())
            .collect()
    }

    /// The slot attributes from the last probes.
    pub fn slot_attributes(&self) -> Vec<(String, String)> {
        crate::attrs::slot_attributes(&self.probes())
    }

    /// The runtime for a job whose image is of `kind`: the one the job asked for
    /// (`container_runtime`, attribute `ContainerRuntime`), else the most preferred
    /// available runtime that runs `kind`. Only runtimes whose last probe passed count.
    pub fn choose(
        &self,
        kind: ImageKind,
        requested: Option<&str>,
    ) -> Result<&dyn Runtime, DriverError> {
        let probes = self.probes();
        let available: Vec<&str> = probes
            .iter()
            .filter(|p| p.available())
            .map(|p| p.runtime.as_str())
            .collect();
        choose(&self.runtimes, &available, kind, requested)
    }
}

/// Chooses among `runtimes` (in preference order) those named in `available` (the slot
/// ad's `ContainerRuntimes`, for a starter that did not probe itself).
pub fn choose<'a>(
    runtimes: &'a [Box<dyn Runtime>],
    available: &[&str],
    kind: ImageKind,
    requested: Option<&str>,
) -> Result<&'a dyn Runtime, DriverError> {
    let mut usable = runtimes
        .iter()
        .map(|rt| rt.as_ref())
        .filter(|rt| available.contains(&rt.name()));
    if let Some(asked) = requested.map(str::trim).filter(|s| !s.is_empty()) {
        let Some(name) = canonical_name(asked) else {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!("container_runtime = {asked}: petrel knows no such runtime"),
            ));
        };
        let rt = usable.find(|rt| rt.name() == name).ok_or_else(|| {
            DriverError::slot(
                ErrorKind::Unavailable,
                format!("container_runtime = {name} is not available on this slot"),
            )
        })?;
        if !rt.image_kinds().contains(&kind) {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!(
                    "container_runtime = {name} cannot run {} images",
                    kind.label()
                ),
            ));
        }
        return Ok(rt);
    }
    usable
        .find(|rt| rt.image_kinds().contains(&kind))
        .ok_or_else(|| {
            DriverError::slot(
                ErrorKind::Unavailable,
                format!(
                    "no available container runtime here runs {} images",
                    kind.label()
                ),
            )
        })
}

/// An image in the form a runtime takes it, with what keeps it alive.
#[derive(Debug)]
pub struct PreparedJobImage {
    pub image: JobImage,
    /// The store's lease (and squashfs mount) when the store prepared it; drop it after
    /// the job.
    pub prepared: Option<PreparedImage>,
}

/// Turns the user's image reference into a form `runtime` takes: a SIF or squashfs file
/// as it is for a runtime that reads them itself, anything else unpacked by `store`.
pub fn prepare_image(
    runtime: &dyn Runtime,
    image: &ImageRef,
    store: &Store,
) -> Result<PreparedJobImage, DriverError> {
    let direct = match image {
        ImageRef::Sif(p) => Some(JobImage::Sif(p.clone())),
        ImageRef::Squashfs(p) => Some(JobImage::Squashfs(p.clone())),
        ImageRef::Dir(p) => Some(JobImage::Rootfs(p.clone())),
        _ => None,
    };
    if let Some(image) = direct.filter(|i| runtime.accepts(i)) {
        return Ok(PreparedJobImage {
            image,
            prepared: None,
        });
    }
    let prepared = store
        .prepare(image)
        .map_err(|e| DriverError::job(ErrorKind::Image, format!("preparing image {image}: {e}")))?;
    let rootfs = JobImage::Rootfs(prepared.rootfs.clone());
    if !runtime.accepts(&rootfs) {
        return Err(DriverError::job(
            ErrorKind::Spec,
            format!("{} cannot run image {image}", runtime.name()),
        ));
    }
    Ok(PreparedJobImage {
        image: rootfs,
        prepared: Some(prepared),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Health;

    #[test]
    fn names_and_preferences() {
        assert_eq!(canonical_name("ch-run"), Some("charliecloud"));
        assert_eq!(canonical_name(" Docker "), Some("docker"));
        assert_eq!(canonical_name("lxc"), None);
        assert_eq!(
            parse_preference("runc, docker embedded").unwrap(),
            ["runc", "docker", "embedded"]
        );
        assert!(parse_preference("runc,lxc").unwrap_err().contains("lxc"));
        for name in DEFAULT_PREFERENCE {
            assert_eq!(driver(name).unwrap().name(), name);
        }
    }

    #[test]
    fn choosing_follows_kind_preference_and_request() {
        let drivers = Drivers::new(&["embedded", "runc", "charliecloud", "docker"]).unwrap();
        let rts = drivers.runtimes();
        let all = ["embedded", "runc", "charliecloud", "docker"];
        let pick = |avail: &[&str], kind, req| choose(rts, avail, kind, req).map(|r| r.name());
        assert_eq!(pick(&all, ImageKind::DockerUrl, None).unwrap(), "embedded");
        assert_eq!(
            pick(&["runc", "docker"], ImageKind::DockerUrl, None).unwrap(),
            "runc"
        );
        assert_eq!(
            pick(&["docker"], ImageKind::DockerUrl, None).unwrap(),
            "docker"
        );
        assert_eq!(
            pick(&["charliecloud", "docker"], ImageKind::Squashfs, None).unwrap(),
            "charliecloud"
        );
        let err = pick(&["docker"], ImageKind::Sif, None).unwrap_err();
        assert_eq!(err.blame, crate::Blame::Slot);
        assert_eq!(
            pick(&all, ImageKind::DockerUrl, Some("docker")).unwrap(),
            "docker"
        );
        assert_eq!(
            pick(&all, ImageKind::SandboxDir, Some("ch-run")).unwrap(),
            "charliecloud"
        );
        let err = pick(&all, ImageKind::Sif, Some("docker")).unwrap_err();
        assert_eq!((err.blame, err.kind), (crate::Blame::Job, ErrorKind::Spec));
        let err = pick(&["embedded"], ImageKind::DockerUrl, Some("docker")).unwrap_err();
        assert_eq!(err.blame, crate::Blame::Slot);
        assert_eq!(
            pick(&all, ImageKind::DockerUrl, Some("lxc"))
                .unwrap_err()
                .blame,
            crate::Blame::Job
        );
    }

    #[test]
    fn choose_uses_the_last_probes() {
        let drivers = Drivers::new(&["runc", "docker"]).unwrap();
        assert!(
            drivers.choose(ImageKind::DockerUrl, None).is_err(),
            "nothing probed yet"
        );
        let caps = drivers.get("docker").unwrap().capabilities();
        let mut map = drivers.probes.lock().unwrap();
        map.insert(
            "docker",
            Probe {
                runtime: "docker".into(),
                health: Health::Healthy,
                version: Some("1".into()),
                reason: None,
                checks: Vec::new(),
                image_kinds: vec![ImageKind::DockerUrl],
                capabilities: caps,
                seconds: 0.0,
            },
        );
        drop(map);
        assert_eq!(
            drivers.choose(ImageKind::DockerUrl, None).unwrap().name(),
            "docker"
        );
        assert_eq!(
            drivers.slot_attributes()[0],
            ("HasContainer".to_string(), "true".to_string())
        );
    }
}
