//! Probe results as slot attributes, with HTCondor's names where HTCondor has one.
//!
//! HTCondor's: `HasContainer`, `HasDockerURL`, `HasSIF`, `HasSandboxImage`, `HasDocker`,
//! `DockerVersion` (`"Docker version X"`, the prefix of `docker -v`), `DockerOfflineReason`,
//! `HasSingularity`, `SingularityVersion` (`"apptainer version X"`), `SingularityOfflineReason`,
//! `HasPidNamespaces`. Petrel's: `HasSquashfs`, `HasOCILayout`, `ContainerRuntimes` (the
//! available runtimes, most preferred first) and, per runtime, `Has<R>`, `<R>Version` and
//! `<R>OfflineReason` with `<R>` one of `PetrelRuntime`, `Runc`, `Crun`, `Docker`,
//! `Podman`, `Apptainer`, `Singularity`, `Charliecloud`. An offline reason is published for a
//! runtime that is installed but failed its probe (as HTCondor does for Docker); a runtime
//! that is not installed publishes nothing.

use petrel_classad::{ClassAd, Expr, Value};

use crate::probe::{Health, Probe};
use crate::runtime::ImageKind;

/// The per-runtime attribute stem of a runtime name.
pub fn attribute_stem(runtime: &str) -> String {
    match runtime {
        "embedded" => "PetrelRuntime".to_string(),
        "runc" => "Runc".to_string(),
        "crun" => "Crun".to_string(),
        "docker" => "Docker".to_string(),
        "podman" => "Podman".to_string(),
        "apptainer" => "Apptainer".to_string(),
        "singularity" => "Singularity".to_string(),
        "charliecloud" => "Charliecloud".to_string(),
        other => {
            let mut chars = other.chars().filter(char::is_ascii_alphanumeric);
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + &chars.collect::<String>())
                .unwrap_or_default()
        }
    }
}

/// The slot attributes for `probes` (given in preference order), as values.
pub fn slot_values(probes: &[Probe]) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let available: Vec<&Probe> = probes.iter().filter(|p| p.available()).collect();
    out.push(("HasContainer".into(), Value::from(!available.is_empty())));
    for kind in ImageKind::ALL {
        let has = available.iter().any(|p| p.image_kinds.contains(&kind));
        out.push((kind.attribute().into(), Value::from(has)));
    }
    let pid_ns = available.iter().any(|p| p.capabilities.pid_namespace);
    out.push(("HasPidNamespaces".into(), Value::from(pid_ns)));
    let names: Vec<&str> = available.iter().map(|p| p.runtime.as_str()).collect();
    out.push(("ContainerRuntimes".into(), Value::from(names.join(","))));

    for probe in probes {
        if probe.health == Health::Undetected {
            continue;
        }
        let stem = attribute_stem(&probe.runtime);
        let mut per = |stem: &str, version: Option<String>| {
            out.push((format!("Has{stem}"), Value::from(probe.available())));
            if let Some(v) = version {
                out.push((format!("{stem}Version"), Value::from(v)));
            }
            if let (false, Some(reason)) = (probe.available(), &probe.reason) {
                out.push((format!("{stem}OfflineReason"), Value::from(reason.as_str())));
            }
        };
        match probe.runtime.as_str() {
            // HTCondor's own spellings of the version strings.
            "docker" => per(
                &stem,
                probe
                    .version
                    .as_ref()
                    .map(|v| format!("Docker version {v}")),
            ),
            "apptainer" => {
                per(&stem, probe.version.clone());
                per(
                    "Singularity",
                    probe
                        .version
                        .as_ref()
                        .map(|v| format!("apptainer version {v}")),
                );
            }
            "singularity" => per(
                &stem,
                probe
                    .version
                    .as_ref()
                    .map(|v| format!("singularity version {v}")),
            ),
            _ => per(&stem, probe.version.clone()),
        }
    }
    // A later probe's Has/Version/Reason for the same name (apptainer and singularity
    // both publishing Singularity*) must not undo an available one.
    dedupe(out)
}

/// Keeps the first of each name, except that a true `Has…` beats a false one.
fn dedupe(values: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::with_capacity(values.len());
    for (name, value) in values {
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some((_, existing)) => {
                if *existing == Value::Bool(false) && value == Value::Bool(true) {
                    *existing = value;
                }
            }
            None => out.push((name, value)),
        }
    }
    // An offline reason beside an available runtime of the same name is stale.
    let online: Vec<String> = out
        .iter()
        .filter(|(n, v)| n.starts_with("Has") && *v == Value::Bool(true))
        .map(|(n, _)| n["Has".len()..].to_string())
        .collect();
    out.retain(|(n, _)| {
        !n.strip_suffix("OfflineReason")
            .is_some_and(|stem| online.iter().any(|o| o == stem))
    });
    out
}

/// The slot attributes for `probes` as `(name, ClassAd expression text)` pairs.
pub fn slot_attributes(probes: &[Probe]) -> Vec<(String, String)> {
    slot_values(probes)
        .into_iter()
        .map(|(n, v)| (n, Expr::from_value(v).to_string()))
        .collect()
}

/// The slot attributes for `probes` as a ClassAd, to merge into a slot ad.
pub fn slot_ad(probes: &[Probe]) -> ClassAd {
    let mut ad = ClassAd::new();
    for (name, value) in slot_values(probes) {
        ad.insert_value(&name, value);
    }
    ad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Capabilities;

    fn probe(name: &str, health: Health, kinds: &[ImageKind], version: Option<&str>) -> Probe {
        Probe {
            runtime: name.into(),
            health,
            version: version.map(str::to_string),
            reason: (health != Health::Healthy).then(|| format!("{name} is broken")),
            checks: Vec::new(),
            image_kinds: kinds.to_vec(),
            capabilities: Capabilities {
                signals: true,
                exec: true,
                limits: true,
                pid_namespace: name != "charliecloud",
                network_isolation: true,
            },
            seconds: 0.0,
        }
    }

    #[test]
    fn attributes_for_a_mixed_machine() {
        let probes = vec![
            probe("embedded", Health::Healthy, &ImageKind::ALL, Some("0.1.0")),
            probe(
                "runc",
                Health::Healthy,
                &[ImageKind::DockerUrl],
                Some("1.1.5"),
            ),
            probe("crun", Health::Unhealthy, &[], Some("1.8.1")),
            probe("podman", Health::Undetected, &[], None),
            probe(
                "docker",
                Health::Healthy,
                &[ImageKind::DockerUrl],
                Some("20.10.24"),
            ),
            probe("apptainer", Health::Unhealthy, &[], Some("1.2.5")),
        ];
        let attrs = slot_attributes(&probes);
        let get = |n: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{n} missing from {attrs:?}"))
        };
        assert_eq!(get("HasContainer"), "true");
        assert_eq!(get("HasDockerURL"), "true");
        assert_eq!(get("HasSIF"), "true");
        assert_eq!(get("HasSandboxImage"), "true");
        assert_eq!(get("HasSquashfs"), "true");
        assert_eq!(get("HasOCILayout"), "true");
        assert_eq!(get("HasPidNamespaces"), "true");
        assert_eq!(get("ContainerRuntimes"), "\"embedded,runc,docker\"");
        assert_eq!(get("HasDocker"), "true");
        assert_eq!(get("DockerVersion"), "\"Docker version 20.10.24\"");
        assert_eq!(get("HasCrun"), "false");
        assert_eq!(get("CrunOfflineReason"), "\"crun is broken\"");
        assert_eq!(get("HasSingularity"), "false");
        assert_eq!(get("SingularityVersion"), "\"apptainer version 1.2.5\"");
        assert_eq!(get("SingularityOfflineReason"), "\"apptainer is broken\"");
        assert_eq!(get("PetrelRuntimeVersion"), "\"0.1.0\"");
        assert!(!attrs.iter().any(|(k, _)| k.starts_with("HasPodman")));
        let ad = slot_ad(&probes);
        assert_eq!(ad.eval_bool("HasContainer"), Some(true));
        assert_eq!(
            ad.eval_string("ContainerRuntimes").as_deref(),
            Some("embedded,runc,docker")
        );
    }

    #[test]
    fn nothing_available() {
        let probes = vec![probe("docker", Health::Unhealthy, &[], None)];
        let ad = slot_ad(&probes);
        assert_eq!(ad.eval_bool("HasContainer"), Some(false));
        assert_eq!(ad.eval_bool("HasDockerURL"), Some(false));
        assert_eq!(ad.eval_bool("HasDocker"), Some(false));
        assert_eq!(
            ad.eval_string("DockerOfflineReason").as_deref(),
            Some("docker is broken")
        );
        assert_eq!(ad.eval_string("ContainerRuntimes").as_deref(), Some(""));
    }

    #[test]
    fn stems() {
        assert_eq!(attribute_stem("embedded"), "PetrelRuntime");
        assert_eq!(attribute_stem("charliecloud"), "Charliecloud");
        assert_eq!(attribute_stem("my-rt"), "Myrt");
    }
}
