//! Probing by test jobs: the runtimes that work here pass every check and are advertised;
//! those that are absent or broken (podman, crun, apptainer on the project's machines) are
//! detected as such and reported with a one-line reason. Nothing is assumed: each test
//! looks at what is installed first.

mod common;

use std::path::Path;

use common::{is_root, need};
use petrel_drivers::engine::{EngineFlavor, EngineRuntime};
use petrel_drivers::oci::{OciFlavor, OciRuntime};
use petrel_drivers::{driver, Drivers, Health, ImageKind, JobImage, Probe, ProbeContext, Runtime};

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn assert_one_line_reason(probe: &Probe) {
    let reason = probe
        .reason
        .as_deref()
        .expect("an unavailable runtime says why");
    assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
    assert!(reason.chars().count() <= 401, "{reason:?}");
}

#[test]
fn the_working_runtimes_pass_every_check_and_are_advertised() {
    if !need(is_root(), "root (the probe's test jobs run as nobody)") {
        return;
    }
    let wanted = ["embedded", "runc", "charliecloud", "docker"];
    let mut present = Vec::new();
    for name in wanted {
        let rt = driver(name).unwrap();
        if need(
            rt.version().is_ok(),
            &format!("runtime {name} installed and answering"),
        ) {
            present.push(name);
        }
    }
    let ctx = ProbeContext::new();
    if !need(ctx.busybox.is_some(), "a static busybox (busybox-static)") {
        return;
    }
    let drivers = Drivers::new(&present).unwrap();
    let started = std::time::Instant::now();
    let probes = drivers.probe(&ctx);
    eprintln!(
        "probed {present:?} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for probe in &probes {
        eprintln!("{}: {:?} {:?}", probe.runtime, probe.health, probe.reason);
        assert_eq!(probe.health, Health::Healthy, "{probe:#?}");
        assert!(probe.reason.is_none());
        let names: Vec<&str> = probe.checks.iter().map(|c| c.name).collect();
        assert!(names.starts_with(&["basic", "signal"]), "{names:?}");
        if probe.capabilities.limits {
            assert!(names.contains(&"memory"), "{names:?}");
        }
        let required = ["basic", "signal", "memory"];
        assert!(
            probe
                .checks
                .iter()
                .filter(|c| required.contains(&c.name))
                .all(|c| c.passed),
            "{:#?}",
            probe.checks
        );
        // The squashfs check is optional: failing it only withdraws the squashfs claim
        // (ch-run mounts squashfs with FUSE, which needs /dev/fuse for the job's user).
        if let Some(sq) = probe.checks.iter().find(|c| c.name == "squashfs") {
            assert_eq!(
                sq.passed,
                probe.image_kinds.contains(&ImageKind::Squashfs),
                "{sq:?}"
            );
        }
        assert!(
            probe.checks[0].detail.contains("exit 37"),
            "{}",
            probe.checks[0].detail
        );
    }
    let attrs = drivers.slot_attributes();
    let get = |name: &str| {
        attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("HasContainer").as_deref(), Some("true"));
    assert_eq!(
        get("ContainerRuntimes"),
        Some(format!("\"{}\"", present.join(",")))
    );
    if present.contains(&"docker") {
        assert_eq!(get("HasDocker").as_deref(), Some("true"));
        assert!(get("DockerVersion")
            .unwrap()
            .starts_with("\"Docker version "));
        // The probe cleaned up after itself: no container of its, no imported image.
        let docker = EngineRuntime::new(EngineFlavor::Docker);
        let tag = docker.import_tag(&ctx.image().unwrap().rootfs).unwrap();
        let out = std::process::Command::new("docker")
            .args(["image", "inspect", &tag])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the probe left {tag} behind");
        let out = std::process::Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
            .unwrap();
        let prefix = format!("petrel_probe_docker_{}_", std::process::id());
        let names = String::from_utf8_lossy(&out.stdout);
        assert!(!names.lines().any(|n| n.starts_with(&prefix)), "{names}");
    }
    if present.contains(&"charliecloud") && ctx.image().unwrap().squashfs.is_some() {
        let ch = probes.iter().find(|p| p.runtime == "charliecloud").unwrap();
        assert!(
            ch.checks.iter().any(|c| c.name == "squashfs"),
            "{:#?}",
            ch.checks
        );
    }
    assert_eq!(get("HasPidNamespaces").as_deref(), Some("true"));
    // A docker:// job goes to the most preferred runtime that passed.
    assert_eq!(
        drivers.choose(ImageKind::DockerUrl, None).unwrap().name(),
        present
            .iter()
            .copied()
            .find(|n| *n != "charliecloud")
            .unwrap()
    );
}

/// Podman, crun, Apptainer and Singularity: absent or broken on the project's machines.
/// Whatever they are here, the probe must say so truthfully.
#[test]
fn absent_or_broken_runtimes_are_reported_with_a_reason() {
    let ctx = ProbeContext::new();
    for name in ["podman", "crun", "apptainer", "singularity"] {
        let rt = driver(name).unwrap();
        let probe = rt.probe(&ctx);
        eprintln!("{name}: {:?}: {:?}", probe.health, probe.reason);
        match probe.health {
            Health::Undetected => {
                assert!(
                    !installed(name),
                    "{name} is installed but reported undetected"
                );
                assert_one_line_reason(&probe);
                assert!(probe.reason.as_deref().unwrap().contains("not installed"));
                assert!(probe.checks.is_empty());
            }
            Health::Unhealthy => {
                assert!(installed(name));
                assert_one_line_reason(&probe);
                // It ran: either its version failed, or a test job did and says which.
                assert!(
                    probe.checks.iter().any(|c| !c.passed)
                        || probe.version.is_none()
                        || probe.reason.as_deref().unwrap().contains("probe image"),
                    "{probe:#?}"
                );
            }
            Health::Healthy => {
                // Working after all: then every check passed and it has no reason.
                assert!(probe.reason.is_none());
                assert!(probe.checks.iter().all(|c| c.passed));
            }
        }
    }
}

#[test]
fn crun_and_podman_on_this_machine_fail_their_test_jobs() {
    // Debian 12's crun refuses hybrid cgroup hosts, and its podman inherits that; when they
    // are installed here, the probe must catch it by running a job, not by guessing.
    let ctx = ProbeContext::new();
    if !installed("crun") {
        eprintln!("skipped: crun is not installed");
        return;
    }
    let crun = OciRuntime::new(OciFlavor::Crun);
    let probe = crun.probe(&ctx);
    eprintln!("crun: {probe:#?}");
    if probe.available() {
        return;
    }
    assert_eq!(probe.health, Health::Unhealthy);
    assert!(probe.version.is_some(), "crun answered --version");
    assert!(
        probe
            .reason
            .as_deref()
            .unwrap()
            .starts_with("basic test failed: "),
        "{probe:#?}"
    );
}

#[test]
fn a_runtime_whose_jobs_fail_is_unhealthy_with_the_failing_check() {
    if !need(is_root(), "root") {
        return;
    }
    // A "runc" that answers --version but cannot run anything, as a broken install does.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("runc");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in --version) echo 'runc version 9.9.9'; exit 0;; esac\n\
         for a; do [ \"$a\" = state ] && exit 1; done\n\
         echo 'cgroups: cannot join the container cgroup' >&2; exit 1\n",
    )
    .unwrap();
    common::chmod(&fake, 0o755);
    let rt = OciRuntime::new(OciFlavor::Runc)
        .with_program(fake.to_str().unwrap())
        .with_state_dir(dir.path().join("state"));
    let ctx = ProbeContext::new();
    if !need(ctx.busybox.is_some(), "a static busybox") {
        return;
    }
    let probe = rt.probe(&ctx);
    assert_eq!(probe.health, Health::Unhealthy, "{probe:#?}");
    assert_eq!(probe.version.as_deref(), Some("9.9.9"));
    let reason = probe.reason.unwrap();
    assert!(
        reason.starts_with(
            "basic test failed: the test job exited with status 1, expected exit status 37"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("cannot join the container cgroup"),
        "{reason}"
    );
    assert!(probe.image_kinds.is_empty());
    // A program that does not even answer --version is installed but unhealthy.
    let rt = OciRuntime::new(OciFlavor::Runc).with_program("/bin/false");
    let probe = rt.probe(&ctx);
    assert_eq!(probe.health, Health::Unhealthy);
    assert!(probe.reason.unwrap().contains("--version"));
    // And one that is not there is undetected.
    let rt = OciRuntime::new(OciFlavor::Runc).with_program("/nonexistent/runc");
    let probe = rt.probe(&ctx);
    assert_eq!(probe.health, Health::Undetected);
}

#[test]
fn the_probe_image_is_a_working_busybox_root() {
    let ctx = ProbeContext::new();
    if !need(ctx.busybox.is_some(), "a static busybox") {
        return;
    }
    let image = ctx.image().unwrap();
    for entry in [
        "bin/sh",
        "bin/busybox",
        "etc/passwd",
        "srv",
        "proc",
        "dev",
        "tmp",
    ] {
        assert!(
            image.rootfs.join(entry).symlink_metadata().is_ok(),
            "{entry} missing from the probe image"
        );
    }
    assert!(petrel_drivers::host::is_static_elf(
        &image.rootfs.join("bin/busybox")
    ));
    let embedded = driver("embedded").unwrap();
    assert!(embedded.accepts(&JobImage::Rootfs(image.rootfs.clone())));
    assert!(!Path::new(&image.rootfs).join("bin/no-such").exists());
}
