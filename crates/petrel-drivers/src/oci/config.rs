//! A [`JobSpec`] as an OCI runtime `config.json`, built with the `oci-spec` crate.
//!
//! The container gets petrel's security defaults: the image read-only, no capabilities,
//! `no_new_privileges`, runc's masked and read-only paths. The scratch directory and the
//! binds are `nosuid,nodev` bind mounts. When petrel is not root the config is rootless:
//! a user namespace maps the caller's uid and gid (to the job's ids inside), the network
//! namespace is dropped unless asked for, and no cgroup is requested (runc cannot create
//! one for an unprivileged user on cgroup v1, nor on v2 without delegation).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    get_default_maskedpaths, get_default_mounts, get_default_readonly_paths, get_rootless_mounts,
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMappingBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use crate::error::{DriverError, ErrorKind};
use crate::job_spec::{JobImage, JobSpec, NetMode, User};

/// Where the init binary appears in the container: inside runc's `/dev` tmpfs, so the
/// image (read-only and shared between jobs) never gets a mount point written into it.
pub const INIT_TARGET: &str = "/dev/.petrel-init";

/// The CFS period used for CPU limits, as Docker uses.
const CPU_PERIOD_US: u64 = 100_000;

/// Host facts the config depends on, separate from the job so tests can fix them.
#[derive(Debug, Clone)]
pub struct ConfigOptions {
    /// The ids petrel runs as; not 0 makes the config rootless.
    pub caller: User,
    /// A static init on the host to bind-mount and put in front of the job.
    pub init: Option<PathBuf>,
    /// The cgroup path for the container (ignored when rootless).
    pub cgroups_path: Option<String>,
}

impl ConfigOptions {
    fn rootless(&self) -> bool {
        self.caller.uid != 0
    }
}

fn build_err(what: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::slot(
        ErrorKind::Runtime,
        format!("building the OCI config ({what}): {e}"),
    )
}

/// Builds the `config.json` for `spec`.
pub fn config(spec: &JobSpec, opts: &ConfigOptions) -> Result<Spec, DriverError> {
    let rootfs = match &spec.image {
        JobImage::Rootfs(dir) => dir,
        other => {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!(
                    "an OCI runtime needs an unpacked root file system, not a {}",
                    other.describe()
                ),
            ))
        }
    };
    let user = spec.user.unwrap_or(if opts.rootless() {
        opts.caller
    } else {
        User { uid: 0, gid: 0 }
    });
    let mut args = Vec::with_capacity(spec.argv.len() + 2);
    if let (true, Some(_)) = (spec.init, &opts.init) {
        args.push(INIT_TARGET.to_string());
        args.push("--".to_string());
    }
    args.extend(spec.argv.iter().cloned());
    let no_caps = LinuxCapabilitiesBuilder::default()
        .bounding(HashSet::new())
        .effective(HashSet::new())
        .inheritable(HashSet::new())
        .permitted(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(|e| build_err("capabilities", e))?;
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .build()
                .map_err(|e| build_err("user", e))?,
        )
        .args(args)
        .env(spec.env.clone())
        .cwd(spec.workdir())
        .no_new_privileges(true)
        .capabilities(no_caps)
        .build()
        .map_err(|e| build_err("process", e))?;
    // The job keeps the limits it inherits (the builder would add a 1024-file limit).
    process.set_rlimits(None);

    let mut mounts = if opts.rootless() {
        get_rootless_mounts()
    } else {
        get_default_mounts()
    };
    for bind in spec.all_binds() {
        mounts.push(bind_mount(&bind.source, &bind.target, bind.read_only)?);
    }
    if let (true, Some(init)) = (spec.init, &opts.init) {
        mounts.push(bind_mount(init, INIT_TARGET, true)?);
    }

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if spec.network == NetMode::None {
        namespaces.push(LinuxNamespaceType::Network);
    }
    if opts.rootless() {
        namespaces.push(LinuxNamespaceType::User);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(|e| build_err("namespace", e))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths());
    if opts.rootless() {
        let map = |inside: u32, host: u32| {
            LinuxIdMappingBuilder::default()
                .container_id(inside)
                .host_id(host)
                .size(1u32)
                .build()
                .map_err(|e| build_err("id mapping", e))
        };
        linux = linux
            .uid_mappings(vec![map(user.uid, opts.caller.uid)?])
            .gid_mappings(vec![map(user.gid, opts.caller.gid)?]);
    } else {
        if let Some(path) = &opts.cgroups_path {
            linux = linux.cgroups_path(PathBuf::from(path));
        }
        if spec.limits.any() {
            let mut res = LinuxResourcesBuilder::default();
            if let Some(bytes) = spec.limits.memory_bytes {
                let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
                res = res.memory(
                    LinuxMemoryBuilder::default()
                        .limit(bytes)
                        .swap(bytes)
                        .build()
                        .map_err(|e| build_err("memory", e))?,
                );
            }
            if let Some(cpus) = spec.limits.cpus {
                let quota = ((cpus * CPU_PERIOD_US as f64).round() as i64).max(1000);
                res = res.cpu(
                    LinuxCpuBuilder::default()
                        .quota(quota)
                        .period(CPU_PERIOD_US)
                        .build()
                        .map_err(|e| build_err("cpu", e))?,
                );
            }
            if let Some(pids) = spec.limits.pids {
                res = res.pids(
                    LinuxPidsBuilder::default()
                        .limit(i64::try_from(pids).unwrap_or(i64::MAX))
                        .build()
                        .map_err(|e| build_err("pids", e))?,
                );
            }
            linux = linux.resources(res.build().map_err(|e| build_err("resources", e))?);
        }
    }
    let mut builder = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(rootfs.clone())
                .readonly(true)
                .build()
                .map_err(|e| build_err("root", e))?,
        )
        .process(process)
        .mounts(mounts)
        .linux({
            let mut linux = linux.build().map_err(|e| build_err("linux", e))?;
            if opts.rootless() || !spec.limits.any() {
                // Not the builder's empty default: runc's own device rules apply.
                linux.set_resources(None);
            }
            linux
        });
    if let Some(host) = &spec.hostname {
        builder = builder.hostname(host.clone());
    }
    builder.build().map_err(|e| build_err("spec", e))
}

/// A `nosuid,nodev` bind mount; not `noexec`: jobs run programs from their scratch.
fn bind_mount(source: &Path, target: &str, read_only: bool) -> Result<Mount, DriverError> {
    let options = vec![
        "rbind".to_string(),
        if read_only { "ro" } else { "rw" }.to_string(),
        "nosuid".to_string(),
        "nodev".to_string(),
    ];
    MountBuilder::default()
        .destination(PathBuf::from(target))
        .typ("bind")
        .source(source.to_path_buf())
        .options(options)
        .build()
        .map_err(|e| build_err("mount", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job_spec::{Bind, Limits};
    use serde_json::{json, Value};

    fn sample() -> JobSpec {
        let mut spec = JobSpec::new(
            "petrel_7_0_slot1",
            JobImage::Rootfs("/images/busybox".into()),
            vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        );
        spec.env = vec!["PATH=/bin".into(), "A=1".into()];
        spec.scratch = Some("/scratch/7.0".into());
        spec.binds = vec![Bind {
            source: "/data".into(),
            target: "/data".into(),
            read_only: true,
        }];
        spec.user = Some(User {
            uid: 1000,
            gid: 100,
        });
        spec.limits = Limits {
            cpus: Some(1.5),
            memory_bytes: Some(64 << 20),
            pids: Some(100),
        };
        spec.network = NetMode::None;
        spec
    }

    fn to_json(spec: &Spec) -> Value {
        serde_json::to_value(spec).unwrap()
    }

    #[test]
    fn root_config_for_a_sample_job() {
        let opts = ConfigOptions {
            caller: User { uid: 0, gid: 0 },
            init: Some("/usr/bin/tini-static".into()),
            cgroups_path: Some("/petrel/petrel_7_0_slot1/ctr".into()),
        };
        let v = to_json(&config(&sample(), &opts).unwrap());
        assert_eq!(
            v["root"],
            json!({"path": "/images/busybox", "readonly": true})
        );
        let p = &v["process"];
        assert_eq!(
            p["args"],
            json!([INIT_TARGET, "--", "/bin/sh", "-c", "exit 3"])
        );
        assert_eq!(p["env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(p["cwd"], "/srv");
        assert_eq!(p["user"], json!({"uid": 1000, "gid": 100}));
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["terminal"], false);
        for set in [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ] {
            assert_eq!(p["capabilities"][set], json!([]), "{set}");
        }
        assert!(p.get("rlimits").is_none());
        let mounts = v["mounts"].as_array().unwrap();
        let tail: Vec<&Value> = mounts.iter().rev().take(3).rev().collect();
        assert_eq!(
            tail,
            [
                &json!({"destination": "/srv", "type": "bind", "source": "/scratch/7.0",
                        "options": ["rbind", "rw", "nosuid", "nodev"]}),
                &json!({"destination": "/data", "type": "bind", "source": "/data",
                        "options": ["rbind", "ro", "nosuid", "nodev"]}),
                &json!({"destination": INIT_TARGET, "type": "bind",
                        "source": "/usr/bin/tini-static",
                        "options": ["rbind", "ro", "nosuid", "nodev"]}),
            ]
        );
        assert!(mounts.iter().any(|m| m["destination"] == "/proc"));
        let l = &v["linux"];
        assert_eq!(
            l["namespaces"],
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                   {"type": "network"}])
        );
        assert_eq!(l["cgroupsPath"], "/petrel/petrel_7_0_slot1/ctr");
        assert_eq!(
            l["resources"],
            json!({"memory": {"limit": 67108864, "swap": 67108864},
                   "cpu": {"quota": 150000, "period": 100000},
                   "pids": {"limit": 100}})
        );
        assert!(l.get("uidMappings").is_none());
        assert!(l["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
    }

    #[test]
    fn rootless_config_maps_the_caller_and_asks_for_no_cgroup() {
        let mut spec = sample();
        spec.user = None;
        spec.init = false;
        spec.network = NetMode::Host;
        let opts = ConfigOptions {
            caller: User {
                uid: 1000,
                gid: 1000,
            },
            init: Some("/usr/bin/tini-static".into()),
            cgroups_path: Some("/petrel/x".into()),
        };
        let v = to_json(&config(&spec, &opts).unwrap());
        assert_eq!(v["process"]["args"], json!(["/bin/sh", "-c", "exit 3"]));
        assert_eq!(v["process"]["user"], json!({"uid": 1000, "gid": 1000}));
        let l = &v["linux"];
        assert_eq!(
            l["uidMappings"],
            json!([{"containerID": 1000, "hostID": 1000, "size": 1}])
        );
        assert_eq!(
            l["gidMappings"],
            json!([{"containerID": 1000, "hostID": 1000, "size": 1}])
        );
        assert_eq!(
            l["namespaces"],
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                   {"type": "user"}])
        );
        assert!(l.get("cgroupsPath").is_none());
        assert!(l.get("resources").is_none());
        // rootless mounts: /sys is a bind, not a fresh sysfs
        let sys = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert_eq!(sys["type"], "none");
    }

    #[test]
    fn refuses_images_it_cannot_take() {
        let mut spec = sample();
        spec.image = JobImage::Sif("/x.sif".into());
        let opts = ConfigOptions {
            caller: User { uid: 0, gid: 0 },
            init: None,
            cgroups_path: None,
        };
        let err = config(&spec, &opts).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Spec);
        assert!(err.message.contains("SIF /x.sif"));
    }
}
