//! Limits that hold while a job runs, attacked by an unprivileged user of root's pool: a
//! fork bomb meets the pool's pids limit (embedded runtime and runc), a job writing past
//! its `request_disk` is held 34/104 while it still runs; and what a careless user hits:
//! output into a closed pipe, a memory limit that cannot be applied, huge or deeply nested
//! input quoted back in errors.

mod common;

use common::DockerImage;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pool::{cluster_of, Pool};
use common::{As, Ran};

/// A root pool with `config`, started by root, with the test user; `None` to skip.
fn root_pool(config: &str) -> Option<Pool> {
    let pool = Pool::as_root(config)?;
    if !common::need(common::test_user().is_some(), "the unprivileged test user") {
        return None;
    }
    let r = pool.cmd(&["pool", "start"]);
    assert_eq!(r.code, Some(0), "pool start: {}{}", r.stdout, r.stderr);
    Some(pool)
}

/// Processes on the host now.
fn host_pids() -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count()
}

const FORK_LIMIT: u64 = 40;

/// Starts background sleeps until fork fails (at most 300: bounded, should the limit not
/// hold), writing how many it started.
const FORK_BOMB: &str = "n=0; while [ $n -lt 300 ]; do sleep 120 & n=$((n+1)); echo $n > count; \
                         done; echo all-started";

/// The fork bomb as the user's job run by `runtimes` (`host`: a job with no container,
/// run on the host by the bare runner in a cgroup of petrel's).
fn fork_bomb_is_contained(runtimes: &str) {
    let engines = if runtimes == "host" {
        "embedded"
    } else {
        runtimes
    };
    let Some(pool) = root_pool(&format!(
        "JOB_PIDS_LIMIT = {FORK_LIMIT}\nCONTAINER_RUNTIMES = {engines}\n"
    )) else {
        return;
    };
    if runtimes != "embedded" && runtimes != "host" {
        pool.until_slot("ContainerRuntimes", runtimes, 60);
    }
    let docker_image = (runtimes == "docker")
        .then(|| DockerImage::import(&pool.rootfs, "petrel-test/busybox-limits"));
    let image = match (runtimes, &docker_image) {
        ("host", _) => String::new(),
        (_, Some(d)) => format!("universe = docker\ndocker_image = {}\n", d.0),
        _ => "universe = container\ncontainer_image = @ROOTFS@\n".to_string(),
    };
    let dir = pool.dir_of(As::User, "user");
    let bomb = format!(
        "{image}executable = /bin/sh\n\
         transfer_executable = false\narguments = \"-c '{FORK_BOMB}'\"\n\
         transfer_output_files = count\nerror = bomb.err\noutput = bomb.out\nlog = bomb.log\n"
    );
    // The user may not raise the pool's limit for their own job: the submit is refused
    // whole, and nothing of it is queued.
    let forged = dir.join("forged.sub");
    fs::write(
        &forged,
        format!("{bomb}+PetrelPidsLimit = 100000\nqueue\n")
            .replace("@ROOTFS@", &pool.rootfs.to_string_lossy()),
    )
    .unwrap();
    common::give_to_user(&forged, As::User);
    let r = pool.run_in(As::User, &dir, &["submit", "forged.sub"]);
    assert_ne!(
        r.code,
        Some(0),
        "a forged pids limit was queued: {}",
        r.stdout
    );
    assert!(
        r.stderr.contains("PetrelPidsLimit is set by the pool"),
        "{}",
        r.stderr
    );
    assert!(pool.af(false, "true", &["ClusterId"]).is_empty());
    let before = host_pids();
    let cluster =
        cluster_of(&pool.submit_in(As::User, &dir, "bomb.sub", &format!("{bomb}queue\n")));
    // The job ends by itself (its shell dies when fork fails; the rest go with its container).
    let started = Instant::now();
    let mut peak = before;
    loop {
        peak = peak.max(host_pids());
        let rows = pool.af(false, &format!("ClusterId == {cluster}"), &["JobStatus"]);
        if rows.is_empty() {
            break;
        }
        assert_ne!(
            rows[0][0],
            "5",
            "held: {:?}",
            pool.af(false, "true", &["HoldReason"])
        );
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the fork bomb did not end: {rows:?}\n{}",
            pool.diagnose()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let count: u64 = fs::read_to_string(dir.join("count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = fs::read_to_string(dir.join("bomb.out")).unwrap_or_default();
    let err = fs::read_to_string(dir.join("bomb.err")).unwrap_or_default();
    assert!(
        count < FORK_LIMIT && !out.contains("all-started"),
        "{count} processes started under a limit of {FORK_LIMIT}: {out}{err}"
    );
    assert!(
        err.contains("fork") || err.contains("Resource temporarily unavailable"),
        "the job did not see fork fail: {err}"
    );
    assert!(
        peak < before + 150,
        "host processes went from {before} to {peak}"
    );
    // The pool's limit is in the job's ad.
    let ad = pool.af(
        true,
        &format!("ClusterId == {cluster}"),
        &["PetrelPidsLimit"],
    );
    assert_eq!(ad, vec![vec![FORK_LIMIT.to_string()]]);
    // The pool still serves.
    let ok = cluster_of(&pool.submit_in(
        As::User,
        &dir,
        "after.sub",
        &format!(
            "{image}executable = /bin/echo\ntransfer_executable = false\narguments = fine\n\
             output = after.out\nlog = after.log\nqueue\n"
        ),
    ));
    pool.until_q(&format!("ClusterId == {ok}"), 0, 60);
    assert_eq!(fs::read_to_string(dir.join("after.out")).unwrap(), "fine\n");
}

#[test]
fn fork_bomb_is_contained_by_the_pids_limit_embedded() {
    fork_bomb_is_contained("embedded");
}

#[test]
fn fork_bomb_is_contained_by_the_pids_limit_runc() {
    if !common::need(common::which("runc").is_some(), "runc") {
        return;
    }
    fork_bomb_is_contained("runc");
}

#[test]
fn fork_bomb_is_contained_by_the_pids_limit_charliecloud() {
    if !common::need(common::which("ch-run").is_some(), "ch-run") {
        return;
    }
    fork_bomb_is_contained("charliecloud");
}

#[test]
fn fork_bomb_is_contained_by_the_pids_limit_docker() {
    let works = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::need(works, "a running Docker Engine") {
        return;
    }
    fork_bomb_is_contained("docker");
}

#[test]
fn fork_bomb_is_contained_by_the_pids_limit_on_the_host() {
    fork_bomb_is_contained("host");
}

#[test]
fn writing_past_request_disk_is_held_while_the_job_runs() {
    disk_is_watched("embedded");
}

#[test]
fn writing_past_request_disk_is_held_while_the_job_runs_runc() {
    if !common::need(common::which("runc").is_some(), "runc") {
        return;
    }
    disk_is_watched("runc");
}

#[test]
fn writing_past_request_disk_is_held_while_the_job_runs_on_the_host() {
    disk_is_watched("host");
}

/// A job over its `request_disk` held while it runs, by `runtimes` (`host`: no container).
fn disk_is_watched(runtimes: &str) {
    let engines = if runtimes == "host" {
        "embedded"
    } else {
        runtimes
    };
    let Some(pool) = root_pool(&format!(
        "PERIODIC_EXPR_INTERVAL = 1\nCONTAINER_RUNTIMES = {engines}\n"
    )) else {
        return;
    };
    if runtimes != "embedded" && runtimes != "host" {
        pool.until_slot("ContainerRuntimes", runtimes, 60);
    }
    let image = if runtimes == "host" {
        ""
    } else {
        "universe = container\ncontainer_image = @ROOTFS@\n"
    };
    let dir = pool.dir_of(As::User, "user");
    // Proc 0 writes 20 MB into a 2 MB request; proc 1 writes 5 MB into 100 MB and runs on.
    let cluster = cluster_of(&pool.submit_in(
        As::User,
        &dir,
        "disk.sub",
        &format!(
            "{image}executable = /bin/sh\ntransfer_executable = false\nlog = disk.log\n\
             arguments = \"-c 'head -c 20000000 /dev/urandom > big; sleep 300'\"\n\
             request_disk = 2048\nqueue\n\
             arguments = \"-c 'head -c 5000000 /dev/urandom > some; sleep 300'\"\n\
             request_disk = 102400\nqueue\n"
        ),
    ));
    let submitted = Instant::now();
    pool.until_q(
        &format!("ClusterId == {cluster} && ProcId == 0 && JobStatus == 5"),
        1,
        30,
    );
    assert!(
        submitted.elapsed() < Duration::from_secs(25),
        "held only after {:?}",
        submitted.elapsed()
    );
    let held = pool.af(
        false,
        &format!("ClusterId == {cluster} && ProcId == 0"),
        &["HoldReasonCode", "HoldReasonSubCode", "DiskUsage"],
    );
    assert_eq!(held[0][..2], ["34".to_string(), "104".into()]);
    let usage: u64 = held[0][2].parse().unwrap();
    assert!(usage > 2048, "DiskUsage {usage}");
    let reason = pool.af(
        false,
        &format!("ClusterId == {cluster} && ProcId == 0"),
        &["HoldReason"],
    )[0]
    .join(" ");
    assert!(
        reason.contains("request_disk was 2048 KiB") && reason.contains(&format!("{usage} KiB")),
        "{reason}"
    );
    // The job within its request runs on, its DiskUsage following what it wrote.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = pool.af(
            false,
            &format!("ClusterId == {cluster} && ProcId == 1"),
            &["JobStatus", "DiskUsage"],
        );
        assert_eq!(row[0][0], "2", "{row:?}");
        let used: u64 = row[0][1].parse().unwrap_or(0);
        if used >= 4800 {
            break;
        }
        assert!(Instant::now() < deadline, "DiskUsage stayed at {used}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let r = pool.run_in(As::User, &dir, &["rm", &cluster.to_string()]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

/// `program args` as the test user with its stdout a pipe nobody reads any more.
fn into_closed_pipe(pool: &Pool, dir: &Path, program: &Path, args: &[&str]) -> Ran {
    // The write end of a pipe whose only reader, `true`, has exited.
    let mut reader = Command::new("true")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    let mut cmd = common::run_as(As::User, program);
    let out = cmd
        .args(args)
        .env("PETREL_POOL_DIR", &pool.dir)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    out.into()
}

#[test]
fn commands_end_quietly_when_their_output_pipe_is_closed() {
    let Some(pool) = root_pool("") else {
        return;
    };
    let dir = pool.dir_of(As::User, "user");
    let cluster = cluster_of(&pool.submit_in(
        As::User,
        &dir,
        "one.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
         transfer_executable = false\nlog = one.log\nqueue 3\n",
    ));
    pool.until_q(&format!("ClusterId == {cluster}"), 0, 60);
    // HTCondor's names run the same code.
    let names = dir.join("bin");
    fs::create_dir_all(&names).unwrap();
    for name in ["condor_q", "condor_history", "condor_status"] {
        std::os::unix::fs::symlink(common::petrel_bin(), names.join(name)).unwrap();
    }
    let petrel = common::petrel_bin();
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (petrel.into(), vec!["history", "-long"]),
        (petrel.into(), vec!["history", "-json"]),
        (petrel.into(), vec!["classad-eval", "[a=1]", "a"]),
        (petrel.into(), vec!["q", "-long"]),
        (petrel.into(), vec!["status", "-long"]),
        (petrel.into(), vec!["submit", "-dry-run", "one.sub"]),
        (petrel.into(), vec!["--help"]),
        (names.join("condor_history"), vec!["-long"]),
        (names.join("condor_q"), vec!["-nobatch"]),
        (names.join("condor_status"), vec![]),
    ];
    for (program, args) in cases {
        let r = into_closed_pipe(&pool, &dir, &program, &args);
        assert_eq!(
            r.code,
            Some(0),
            "{} {args:?}: {}",
            program.display(),
            r.stderr
        );
        assert!(
            r.stderr.is_empty(),
            "{} {args:?}: {}",
            program.display(),
            r.stderr
        );
    }
}

#[test]
fn a_limit_that_cannot_be_applied_is_warned_of_before_the_job_runs() {
    if !common::need(
        common::test_user().is_some() || !common::is_root(),
        "the test user",
    ) {
        return;
    }
    let tmp = common::open_tempdir();
    let Some(rootfs) = common::busybox_rootfs(tmp.path()) else {
        return;
    };
    let r = common::run_sh(
        As::User,
        &rootfs,
        &["--memory", "50m"],
        "echo job-output >&2; echo job-stdout",
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "job-stdout\n");
    let Some(warning) = r.stderr.find("--memory not applied") else {
        // The user may make cgroups here (delegated cgroup v2): nothing to warn of.
        assert!(
            r.stderr.starts_with("job-output"),
            "unexpected stderr: {}",
            r.stderr
        );
        return;
    };
    let output = r.stderr.find("job-output").expect("the job's output");
    assert!(
        warning < output,
        "the warning came after the job's output:\n{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("not applied").count(), 1, "{}", r.stderr);
}

/// Every error about a huge input stays short, and says what is wrong.
fn assert_bounded(r: &Ran, what: &str, says: &str) {
    assert_ne!(r.code, Some(0), "{what}: accepted");
    assert!(
        r.stderr.len() < 5000 && r.stdout.len() < 5000,
        "{what}: {} bytes of stderr, {} of stdout",
        r.stderr.len(),
        r.stdout.len()
    );
    assert!(r.stderr.contains(says), "{what}: {}", r.stderr);
}

#[test]
fn errors_quote_huge_and_deeply_nested_input_only_in_part() {
    let Some(pool) = root_pool("PERIODIC_EXPR_INTERVAL = 1\n") else {
        return;
    };
    let dir = pool.dir_of(As::User, "user");
    // Each under the kernel's 128 KiB limit on one argument.
    let deep = format!("{}1{}", "(".repeat(60_000), ")".repeat(60_000));
    let open = "[".repeat(120_000);
    let long_string = format!("[a=\"{}", "x".repeat(120_000));
    for (what, input) in [("nested", &deep), ("open", &open), ("string", &long_string)] {
        let r = pool.run_in(As::User, &dir, &["classad-eval", "[a=1]", input]);
        assert_bounded(&r, &format!("classad-eval {what}"), "bytes left out");
    }
    let r = pool.run_in(As::User, &dir, &["classad-eval", &open]);
    assert_bounded(&r, "classad-eval an ad", "Unable to turn");

    for (name, text) in [
        (
            "deep.sub",
            format!(
                "executable = /bin/true\n+Foo = {}\nqueue\n",
                "(".repeat(200_000)
            ),
        ),
        (
            "value.sub",
            format!(
                "executable = /bin/true\nrequest_memory = 5 {}\nqueue\n",
                "X".repeat(200_000)
            ),
        ),
        (
            "universe.sub",
            format!(
                "executable = /bin/true\nuniverse = {}\nqueue\n",
                "X".repeat(200_000)
            ),
        ),
        (
            "line.sub",
            format!(
                "executable = /bin/true\n{} junk\nqueue\n",
                "=".repeat(200_000)
            ),
        ),
    ] {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        common::give_to_user(&path, As::User);
        let r = pool.run_in(As::User, &dir, &["submit", "-dry-run", name]);
        assert_bounded(&r, &format!("submit -dry-run {name}"), name);
        let r = pool.run_in(As::User, &dir, &["submit", name]);
        assert_bounded(&r, &format!("submit {name}"), name);
    }
    // A hold reason quotes what the user wrote, bounded too.
    let c = cluster_of(&pool.submit_in(
        As::User,
        &dir,
        "reason.sub",
        &format!(
            "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/sleep\n\
             transfer_executable = false\narguments = 60\nlog = reason.log\n\
             periodic_hold = JobStatus == 2\nperiodic_hold_reason = \"{}\"\nqueue\n",
            "R".repeat(100_000)
        ),
    ));
    pool.until_q(&format!("ClusterId == {c} && JobStatus == 5"), 1, 60);
    let reason = pool.run_in(
        As::User,
        &dir,
        &[
            "q",
            "-constraint",
            &format!("ClusterId == {c}"),
            "-af",
            "HoldReason",
        ],
    );
    assert_eq!(reason.code, Some(0), "{}", reason.stderr);
    assert!(
        reason.stdout.starts_with("RRRR") && reason.stdout.len() < 5000,
        "{} bytes of HoldReason",
        reason.stdout.len()
    );
    // What the daemon refuses is bounded as well.
    for args in [
        vec!["q", "-constraint", deep.as_str()],
        vec!["rm", "-constraint", deep.as_str()],
        vec!["hold", "-constraint", long_string.as_str()],
    ] {
        let r = pool.run_in(As::User, &dir, &args);
        assert_bounded(&r, &format!("{} -constraint", args[0]), "petrel");
    }
}
