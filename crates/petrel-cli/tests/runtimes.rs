//! The pool with the site's container runtimes: what the probes find is what the slot
//! advertises, jobs land only where their image kind runs, `universe = docker` goes to
//! Docker, and a runtime that breaks stops being advertised while its job goes back to
//! idle (black-hole protection).

mod common;

use common::DockerImage;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pool::Pool;
use common::As;

/// Runs `cmd` and fails the test with its stderr unless it succeeds.
fn succeed(cmd: &mut Command) {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn docker_works() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn one(pool: &Pool, history: bool, constraint: &str, attrs: &[&str]) -> Vec<String> {
    let rows = pool.af(history, constraint, attrs);
    assert_eq!(rows.len(), 1, "{constraint}: {rows:?}");
    rows.into_iter().next().unwrap_or_default()
}

#[test]
fn jobs_land_only_where_their_image_kind_runs() {
    let Some(pool) = Pool::as_root("CONTAINER_RUNTIMES = charliecloud\n") else {
        return;
    };
    if !common::need(
        common::which("ch-run").is_some(),
        "ch-run (charliecloud-runtime)",
    ) {
        return;
    }
    // Charliecloud runs directories only: no SIF, no registry image, no squashfs here.
    pool.until_slot("ContainerRuntimes", "charliecloud", 60);
    let ad = pool.cmd(&[
        "status",
        "-af",
        "HasSandboxImage",
        "HasSIF",
        "HasDockerURL",
        "HasSquashfs",
        "HasPetrelRuntime",
    ]);
    assert_eq!(
        ad.stdout.trim(),
        "true false false false undefined",
        "{}",
        ad.stdout
    );
    fs::write(pool.path("img.sif"), b"not really a SIF; never transferred").unwrap();
    let c = pool.submit(
        "kinds.sub",
        "universe = container\nexecutable = /bin/sh\ntransfer_executable = false\n\
         arguments = \"-c 'echo ran here'\"\noutput = out.$(Process)\nlog = kinds.log\n\
         container_image = @ROOTFS@\nqueue\n\
         container_image = img.sif\nqueue\n\
         container_image = docker://localhost:5999/busybox:1\nqueue\n\
         container_image = img.sqfs\nqueue\n",
    );
    let done = format!("ClusterId == {c} && ProcId == 0");
    let start = Instant::now();
    while pool.af(true, &done, &["ProcId"]).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the directory job never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        one(&pool, true, &done, &["ExitCode", "ContainerRuntimeUsed"]),
        ["0", "charliecloud"]
    );
    assert_eq!(
        fs::read_to_string(pool.path("out.0")).unwrap(),
        "ran here\n"
    );
    for (proc, attr) in [
        (1, "TARGET.HasSIF"),
        (2, "TARGET.HasDockerURL"),
        (3, "TARGET.HasSquashfs"),
    ] {
        let job = format!("{c}.{proc}");
        assert_eq!(
            one(
                &pool,
                false,
                &format!("ClusterId == {c} && ProcId == {proc}"),
                &["JobStatus", "HoldReason"]
            ),
            ["1", "undefined"]
        );
        let why = pool.cmd(&["q", "-better-analyze", &job]);
        assert!(
            why.stdout
                .contains(&format!("clause not satisfied: {attr}")),
            "{job} should be refused for {attr}: {}",
            why.stdout
        );
    }
}

#[test]
fn docker_universe_runs_through_docker_with_the_embedded_runtime_disabled() {
    let Some(pool) = Pool::as_root("CONTAINER_RUNTIMES = docker\n") else {
        return;
    };
    if !common::need(docker_works(), "a running Docker Engine") {
        return;
    }
    let image = DockerImage::import(&pool.rootfs, "petrel-test/busybox");
    pool.until_slot("HasDocker", "true", 90);
    assert_eq!(
        pool.cmd(&["status", "-af", "ContainerRuntimes"])
            .stdout
            .trim(),
        "docker"
    );
    let c = pool.submit(
        "docker.sub",
        &format!(
            "universe = docker\ndocker_image = {}\nexecutable = /bin/sh\ntransfer_executable = false\n\
             arguments = \"-c 'pwd; echo result > made.txt; [ $(process) = 1 ] && sleep 60; exit 3'\"\n\
             transfer_output_files = made.txt\noutput = out.$(Process)\nerror = err.$(Process)\n\
             log = docker.log\nqueue 2\n",
            image.0
        ),
    );
    // The sleeping job is entered through Docker: `petrel ssh` runs in its container.
    pool.until_q(
        &format!("ClusterId == {c} && ProcId == 1 && JobStatus == 2"),
        1,
        60,
    );
    let job = format!("{c}.1");
    let start = Instant::now();
    let entered = loop {
        let r = pool.cmd(&[
            "ssh",
            &job,
            "sh",
            "-c",
            "cat made.txt; hostname >/dev/null; pwd",
        ]);
        if r.code == Some(0) || start.elapsed() > Duration::from_secs(30) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        entered.code,
        Some(0),
        "ssh: {}{}",
        entered.stdout,
        entered.stderr
    );
    assert_eq!(entered.stdout, "result\n/srv\n");
    assert_eq!(pool.cmd(&["rm", &job]).code, Some(0));
    pool.wait_log("docker.log", 90);
    assert_eq!(
        one(
            &pool,
            true,
            &format!("ClusterId == {c} && ProcId == 0"),
            &["ExitCode", "ContainerRuntimeUsed", "JobStatus"]
        ),
        ["3", "docker", "4"]
    );
    assert_eq!(fs::read_to_string(pool.path("out.0")).unwrap(), "/srv\n");
    assert_eq!(
        fs::read_to_string(pool.path("made.txt")).unwrap(),
        "result\n"
    );
    let gone = Command::new("docker")
        .args(["ps", "-a", "--filter", &format!("name=petrel_{c}_"), "-q"])
        .output()
        .unwrap();
    assert!(
        gone.stdout.is_empty(),
        "containers left behind: {}",
        String::from_utf8_lossy(&gone.stdout)
    );
}

#[test]
fn a_runtime_that_breaks_stops_being_advertised_and_its_job_goes_back_to_idle() {
    let Some(pool) = Pool::as_root("CONTAINER_RUNTIMES = runc\nRUNTIME_PROBE_INTERVAL = 2\n")
    else {
        return;
    };
    let Some(real) = common::which("runc") else {
        common::need(false, "runc");
        return;
    };
    let real = real.display();
    // A runc that works until the flag file exists, then fails every container it starts
    // the way runc does: an error in its JSON log and exit status 1.
    let bin = pool.work.join("bin");
    fs::create_dir(&bin).unwrap();
    let flag = pool.work.join("break-runc");
    fs::write(
        bin.join("runc"),
        format!(
            "#!/bin/sh\nlog=\nfor a in \"$@\"; do\n  [ \"$prev\" = --log ] && log=$a\n  prev=$a\n\
             \x20 case $a in run|create) if [ -e '{}' ]; then\n\
             \x20   echo '{{\"level\":\"error\",\"msg\":\"runc run failed: injected failure: container init broke\"}}' >> \"$log\"\n\
             \x20   exit 1; fi;; esac\ndone\nexec '{real}' \"$@\"\n",
            flag.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(bin.join("runc"))
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    succeed(
        common::petrel(As::Root)
            .args(["pool", "start"])
            .env("PETREL_POOL_DIR", &pool.dir)
            .env("PATH", &path),
    );
    pool.until_slot("ContainerRuntimes", "runc", 60);

    fs::write(&flag, "").unwrap();
    let c = pool.submit(
        "runc.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/echo\n\
         transfer_executable = false\narguments = survived\noutput = out\nlog = runc.log\nqueue\n",
    );
    // The failure blames runc, not the job: no hold; the slot stops offering runc.
    pool.until_slot("HasRunc", "false", 60);
    let reason = pool.cmd(&[
        "status",
        "-af",
        "RuncOfflineReason",
        "ContainerRuntimes",
        "HasContainer",
    ]);
    assert!(
        reason.stdout.contains("injected failure"),
        "{}",
        reason.stdout
    );
    assert!(
        reason.stdout.trim_end().ends_with("false"),
        "{}",
        reason.stdout
    );
    let job = one(
        &pool,
        false,
        &format!("ClusterId == {c}"),
        &["JobStatus", "NumJobStarts"],
    );
    assert_eq!(job[0], "1", "the job must be idle again, not held: {job:?}");
    let log = fs::read_to_string(pool.path("runc.log")).unwrap();
    assert!(
        log.contains("\n004 ") || log.starts_with("004 "),
        "evicted event expected: {log}"
    );

    // Fixed: the next periodic probe passes, runc is offered again and the job runs.
    fs::remove_file(&flag).unwrap();
    pool.until_slot("HasRunc", "true", 60);
    pool.wait_log("runc.log", 90);
    assert_eq!(
        one(
            &pool,
            true,
            &format!("ClusterId == {c}"),
            &["ExitCode", "ContainerRuntimeUsed"]
        ),
        ["0", "runc"]
    );
    assert_eq!(fs::read_to_string(pool.path("out")).unwrap(), "survived\n");
}

#[test]
fn a_squashfs_image_runs_where_a_runtime_for_it_is_advertised() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    if !common::need(
        common::which("mksquashfs").is_some(),
        "mksquashfs (squashfs-tools)",
    ) {
        return;
    }
    succeed(
        Command::new("mksquashfs")
            .arg(&pool.rootfs)
            .arg(pool.path("img.sqfs"))
            .args(["-noappend", "-quiet", "-no-progress", "-all-root"]),
    );
    pool.until_slot("HasSquashfs", "true", 30);
    let c = pool.submit(
        "sqfs.sub",
        "universe = container\ncontainer_image = img.sqfs\nexecutable = /bin/sh\n\
         transfer_executable = false\narguments = \"-c 'ls /bin/busybox; pwd'\"\n\
         output = out\nlog = sqfs.log\nqueue\n",
    );
    pool.wait_log("sqfs.log", 60);
    assert_eq!(
        one(
            &pool,
            true,
            &format!("ClusterId == {c}"),
            &["ExitCode", "ContainerRuntimeUsed"]
        ),
        ["0", "embedded"]
    );
    assert_eq!(
        fs::read_to_string(pool.path("out")).unwrap(),
        "/bin/busybox\n/srv\n"
    );
}
