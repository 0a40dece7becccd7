//! Options smuggled into a runtime's command line: an unprivileged user of root's pool
//! names an image, an executable, arguments, a target directory or an `ssh` command that
//! a runtime's CLI could read as its own option (`--volume=/:/host`, `--user=0:0`,
//! `--privileged`). Each must be refused, held with a clear reason, or run as plain data:
//! the job runs as its owner and never sees the host's root file system.

mod common;

use common::DockerImage;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pool::{cluster_of, Pool};
use common::As;

/// What a host-root job would print: the first line of `/etc/shadow` starts `root:`.
const SHADOW_MARK: &str = "root:";

fn docker_works() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Submits `text` as the test user from a new directory `name` of theirs; returns the
/// directory and the cluster.
fn user_job(pool: &Pool, name: &str, text: &str) -> (PathBuf, i64) {
    let dir = pool.dir_of(As::User, name);
    let c = cluster_of(&pool.submit_in(As::User, &dir, "job.sub", text));
    (dir, c)
}

/// Waits until job `c.0` is held or has left the queue; returns (status, hold code,
/// hold reason) from the queue or the history.
fn settle(pool: &Pool, c: i64, secs: u64) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let constraint = format!("ClusterId == {c} && ProcId == 0");
    let attrs = ["JobStatus", "HoldReasonCode", "HoldReason"];
    loop {
        let row = pool_row(pool, false, &constraint, &attrs)
            .or_else(|| pool_row(pool, true, &constraint, &attrs));
        if let Some(row) = row {
            if row.0 == "5" || row.0 == "4" || row.0 == "3" {
                return row;
            }
        }
        assert!(
            Instant::now() < deadline,
            "job {c}.0 did not settle:\n{}",
            pool.diagnose()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pool_row(
    pool: &Pool,
    history: bool,
    constraint: &str,
    attrs: &[&str],
) -> Option<(String, String, String)> {
    let mut args = vec![
        if history { "history" } else { "q" },
        "-constraint",
        constraint,
        "-af",
    ];
    args.extend_from_slice(attrs);
    let r = pool.cmd(&args);
    let line = r.stdout.lines().next()?.to_string();
    let mut parts = line.splitn(3, ' ');
    Some((
        parts.next()?.trim().to_string(),
        parts.next()?.trim().to_string(),
        parts.next()?.trim().to_string(),
    ))
}

/// Everything the job could have written where the user can read it.
fn outputs(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("out") || name.starts_with("err") {
            all.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    all
}

fn assert_no_host_root(dir: &std::path::Path, what: &str) {
    let out = outputs(dir);
    assert!(
        !out.contains(SHADOW_MARK),
        "{what}: the host's /etc/shadow leaked: {out}"
    );
    assert!(
        !out.lines().any(|l| l.trim() == "0" || l.contains("uid=0(")),
        "{what}: the job ran as root: {out}"
    );
}

/// Asserts that job `c.0` is held with `code` for a reason naming `naming`, that nothing
/// in `dir` shows host root, and removes the job; returns the reason.
fn assert_held(pool: &Pool, c: i64, code: &str, naming: &str, dir: &Path, what: &str) -> String {
    let (status, got, reason) = settle(pool, c, 120);
    assert_eq!(
        (status.as_str(), got.as_str()),
        ("5", code),
        "{what}: {reason}"
    );
    assert!(reason.contains(naming), "{what}: {reason}");
    assert_no_host_root(dir, what);
    assert_eq!(pool.cmd(&["rm", &c.to_string()]).code, Some(0));
    reason
}

fn docker_pool() -> Option<(Pool, DockerImage)> {
    let pool = Pool::as_root("CONTAINER_RUNTIMES = docker\n")?;
    if !common::need(docker_works(), "a running Docker Engine")
        || !common::need(common::test_user().is_some(), "the unprivileged test user")
    {
        return None;
    }
    let image = DockerImage::import(&pool.rootfs, "petrel-attack/anyimage");
    pool.until_slot("HasDocker", "true", 90);
    Some((pool, image))
}

/// The attack, word for word (with a real image for the last `--user` to run).
#[test]
fn docker_image_that_is_an_option_gives_no_host_root() {
    let Some((pool, image)) = docker_pool() else {
        return;
    };
    let dir = pool.dir_of(As::User, "issue");
    let text = format!(
        "universe = docker\ndocker_image = --volume=/:/host\nexecutable = --user=0:0\n\
         transfer_executable = false\n\
         arguments = \"{} /bin/sh -c 'id; cat /host/etc/shadow'\"\n\
         output = out\nerror = err\nlog = log\nqueue\n",
        image.0
    );
    let r = pool.submit_in(As::User, &dir, "job.sub", &text);
    assert_ne!(r.code, Some(0), "submitted: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("docker_image") && r.stderr.contains("--volume=/:/host"),
        "unclear refusal: {}",
        r.stderr
    );
    assert!(pool.af(false, "true", &["ClusterId"]).is_empty());
    assert_no_host_root(&dir, "the issue's attack");
}

/// The same attack with the image set as a raw attribute (`+DockerImage`), which no
/// client-side check sees: the starter holds the job (code 35) and runs nothing.
#[test]
fn docker_image_option_sent_as_a_raw_attribute_is_held_not_run() {
    let Some((pool, image)) = docker_pool() else {
        return;
    };
    for (i, bad) in [
        "--volume=/:/host",
        "-v=/:/host",
        "--privileged",
        "--user=0",
        "-",
        "busybox --volume=/:/host",
    ]
    .into_iter()
    .enumerate()
    {
        let dir = pool.dir_of(As::User, &format!("raw{i}"));
        let text = format!(
            "universe = docker\ndocker_image = {img}\n+DockerImage = \"{bad}\"\n\
             executable = --user=0:0\ntransfer_executable = false\n\
             arguments = \"{img} /bin/sh -c 'id -u; cat /host/etc/shadow'\"\n\
             output = out\nerror = err\nlog = log\nqueue\n",
            img = image.0
        );
        let c = cluster_of(&pool.submit_in(As::User, &dir, "job.sub", &text));
        let (status, code, reason) = settle(&pool, c, 60);
        assert_no_host_root(&dir, bad);
        assert_eq!(status, "5", "{bad}: not held ({code} {reason})");
        assert_eq!(code, "35", "{bad}: {reason}");
        assert!(
            reason.contains("image") && reason.contains(bad.split(' ').next().unwrap()),
            "{bad}: unclear reason: {reason}"
        );
        assert_no_host_root(&dir, bad);
        assert_eq!(pool.cmd(&["rm", &c.to_string()]).code, Some(0));
    }
}

/// Waits for job `c.0` to finish and returns its exit code from the history.
fn exit_code(pool: &Pool, c: i64) -> String {
    let (status, code, reason) = settle(pool, c, 120);
    assert_eq!(
        status, "4",
        "job {c}.0 did not complete: held {code} {reason}"
    );
    pool.af(
        true,
        &format!("ClusterId == {c} && ProcId == 0"),
        &["ExitCode"],
    )
    .first()
    .and_then(|r| r.first().cloned())
    .unwrap_or_default()
}

/// Option-looking arguments, environment and executable run only as the job's own
/// command, as its owner, with no host root file system: in the docker universe and in
/// the container universe with each runtime that builds a command line.
#[test]
fn option_like_command_environment_and_paths_are_only_data() {
    let Some(pool) = Pool::as_root("CONTAINER_RUNTIMES = docker, runc, charliecloud\n") else {
        return;
    };
    if !common::need(docker_works(), "a running Docker Engine")
        || !common::need(common::which("runc").is_some(), "runc")
        || !common::need(common::which("skopeo").is_some(), "skopeo")
        || !common::need(common::which("ch-run").is_some(), "ch-run (charliecloud)")
        || !common::need(common::test_user().is_some(), "the unprivileged test user")
    {
        return;
    }
    let image = DockerImage::import(&pool.rootfs, "petrel-attack/argv");
    let layout = pool.work.join("layout");
    let copied = Command::new("skopeo")
        .arg("copy")
        .arg(format!("docker-daemon:{}", image.0))
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .expect("run skopeo");
    assert!(
        copied.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let layout = layout.display().to_string();
    pool.until_slot("ContainerRuntimes", "docker,runc,charliecloud", 120);
    let uid = As::User.uid().to_string();
    let hostile_args = "\"-c 'id -u; cat /host/etc/shadow; echo done' --volume=/:/host \
                        --user=0:0 --privileged -v /:/host --bind=/:/host\"";
    let hostile_env = "\"X=--privileged Y='--volume=/:/host' Z=-v\"";
    let universes = [
        format!("universe = docker\ndocker_image = {}\n", image.0),
        // Docker runs registry and OCI-layout images, not directories.
        format!(
            "universe = container\ncontainer_image = {}\ncontainer_runtime = docker\n",
            layout
        ),
        "universe = container\ncontainer_image = @ROOTFS@\ncontainer_runtime = runc\n".into(),
        "universe = container\ncontainer_image = @ROOTFS@\ncontainer_runtime = charliecloud\n"
            .into(),
    ];
    for (i, head) in universes.iter().enumerate() {
        let what = head.lines().last().unwrap_or_default();
        // The command itself: option-looking words after the image are its arguments.
        let (dir, c) = user_job(
            &pool,
            &format!("args{i}"),
            &format!(
                "{head}executable = /bin/sh\ntransfer_executable = false\n\
                 arguments = {hostile_args}\nenvironment = {hostile_env}\n\
                 output = out\nerror = err\nlog = log\nqueue\n"
            ),
        );
        exit_code(&pool, c);
        let out = fs::read_to_string(dir.join("out")).unwrap_or_default();
        assert_eq!(out, format!("{uid}\ndone\n"), "{what}: {}", outputs(&dir));
        assert_no_host_root(&dir, what);

        // An option as the executable is a command the image lacks: held, never run.
        let (dir, c) = user_job(
            &pool,
            &format!("exe{i}"),
            &format!(
                "{head}executable = --user=0:0\ntransfer_executable = false\n\
                 arguments = \"--privileged /bin/sh -c 'id -u; cat /host/etc/shadow'\"\n\
                 output = out\nerror = err\nlog = log\nqueue\n"
            ),
        );
        let (status, _, _) = settle(&pool, c, 120);
        assert_no_host_root(&dir, what);
        if status == "4" {
            assert_ne!(exit_code(&pool, c), "0", "{what}: --user=0:0 ran");
        } else {
            assert_held(&pool, c, "6", "--user=0:0", &dir, what);
        }

        // A target directory that a mount option would split into more mounts.
        for target in ["/srv:/host", "/srv,/:/host"] {
            let (dir, c) = user_job(
                &pool,
                &format!("target{i}"),
                &format!(
                    "{head}executable = /bin/sh\ntransfer_executable = false\n\
                     arguments = \"-c 'id -u; cat /host/etc/shadow'\"\n\
                     +ContainerTargetDir = \"{target}\"\n\
                     output = out\nerror = err\nlog = log\nqueue\n"
                ),
            );
            let reason = assert_held(&pool, c, "6", target, &dir, what);
            assert!(reason.contains("target dir"), "{reason}");
        }
    }
    // A container image that is an option, sent past submit's check.
    for rt in ["docker", "runc", "charliecloud"] {
        let (dir, c) = user_job(
            &pool,
            &format!("img-{rt}"),
            &format!(
                "universe = container\ncontainer_image = {img}\ncontainer_runtime = {rt}\n\
                 +ContainerImage = \"--volume=/:/host\"\nexecutable = /bin/sh\n\
                 transfer_executable = false\narguments = \"-c 'cat /host/etc/shadow'\"\n\
                 output = out\nerror = err\nlog = log\nqueue\n",
                img = if rt == "docker" {
                    layout.as_str()
                } else {
                    "@ROOTFS@"
                }
            ),
        );
        assert_held(&pool, c, "35", "--volume=/:/host", &dir, rt);
    }
}

/// `petrel ssh JOB -- --option ...` by the job's owner: the words are the command run in
/// the container (which has no such program), never options of `docker exec`,
/// `runc exec` or `nsenter`; a plain command runs as the owner.
#[test]
fn ssh_commands_that_look_like_options_are_only_commands() {
    let Some(pool) = Pool::as_root("CONTAINER_RUNTIMES = docker, runc, charliecloud\n") else {
        return;
    };
    if !common::need(docker_works(), "a running Docker Engine")
        || !common::need(common::which("runc").is_some(), "runc")
        || !common::need(common::which("ch-run").is_some(), "ch-run (charliecloud)")
        || !common::need(common::test_user().is_some(), "the unprivileged test user")
    {
        return;
    }
    let image = DockerImage::import(&pool.rootfs, "petrel-attack/ssh");
    pool.until_slot("ContainerRuntimes", "docker,runc,charliecloud", 120);
    let uid = As::User.uid().to_string();
    let heads = [
        format!("universe = docker\ndocker_image = {}\n", image.0),
        "universe = container\ncontainer_image = @ROOTFS@\ncontainer_runtime = runc\n".into(),
        "universe = container\ncontainer_image = @ROOTFS@\ncontainer_runtime = charliecloud\n"
            .into(),
    ];
    for (i, head) in heads.iter().enumerate() {
        let what = head.lines().last().unwrap_or_default();
        let (_, c) = user_job(
            &pool,
            &format!("ssh{i}"),
            &format!(
                "{head}executable = /bin/sh\ntransfer_executable = false\n\
                 arguments = \"-c 'sleep 120'\"\noutput = out\nerror = err\nlog = log\nqueue\n"
            ),
        );
        pool.until_q(&format!("ClusterId == {c} && JobStatus == 2"), 1, 60);
        let job = format!("{c}.0");
        let ssh = |args: &[&str]| {
            let mut all = vec!["ssh", job.as_str()];
            all.extend_from_slice(args);
            pool.cmd_as(As::User, &all)
        };
        // The container is up a moment after the job is marked running.
        let start = Instant::now();
        let plain = loop {
            let r = ssh(&["id", "-u"]);
            if r.code == Some(0) || start.elapsed() > Duration::from_secs(30) {
                break r;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(
            plain.code,
            Some(0),
            "{what}: {}{}",
            plain.stdout,
            plain.stderr
        );
        assert_eq!(plain.stdout.trim(), uid, "{what}");
        for attack in [
            &["--", "--user=0:0", "id", "-u"][..],
            &["--", "--privileged", "cat", "/host/etc/shadow"],
            &["--", "-u", "0", "id", "-u"],
            &["--", "--root=/", "cat", "/etc/shadow"],
            &["--", "--setuid=0", "id", "-u"],
            &["--", "-v", "/:/host", "cat", "/host/etc/shadow"],
        ] {
            let r = ssh(attack);
            assert_ne!(
                r.code,
                Some(0),
                "{what} {attack:?}: {}{}",
                r.stdout,
                r.stderr
            );
            let said = format!("{}{}", r.stdout, r.stderr);
            assert!(
                !said.contains(SHADOW_MARK) && !said.lines().any(|l| l.trim() == "0"),
                "{what} {attack:?}: {said}"
            );
        }
        assert_eq!(pool.cmd(&["rm", &job]).code, Some(0));
    }
}

/// Hooks get the job's text only in their environment: a hostile image name is
/// `PETREL_IMAGE`, never an argument, and the job is then held for it.
#[test]
fn hooks_get_job_text_only_in_their_environment() {
    let tmp = common::open_tempdir();
    let hooks = tmp.path().join("hooks");
    fs::create_dir(&hooks).unwrap();
    let script = hooks.join("hook.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$#\" \"$*\" \"$PETREL_IMAGE\" >> {}/seen.$PETREL_JOB_ID\n",
            hooks.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&hooks, fs::Permissions::from_mode(0o1777)).unwrap();
    let Some(pool) = Pool::as_root(&format!(
        "HOOK_PREPARE_JOB = {s}\nHOOK_JOB_EXIT = {s}\n",
        s = script.display()
    )) else {
        return;
    };
    if !common::need(common::test_user().is_some(), "the unprivileged test user") {
        return;
    }
    // Root's pool runs before its users submit.
    pool.until_slot("HasContainer", "true", 60);
    let (dir, c) = user_job(
        &pool,
        "hook",
        "universe = container\ncontainer_image = @ROOTFS@\n\
         +ContainerImage = \"--volume=/:/host\"\nexecutable = /bin/sh\n\
         transfer_executable = false\narguments = \"-c 'id -u'\"\n\
         output = out\nerror = err\nlog = log\nqueue\n",
    );
    let (status, code, reason) = settle(&pool, c, 60);
    assert_eq!((status.as_str(), code.as_str()), ("5", "35"), "{reason}");
    let seen = hooks.join(format!("seen.{c}.0"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(&seen)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "hooks did not run: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        fs::read_to_string(&seen).unwrap(),
        "0||--volume=/:/host\n1|hold|--volume=/:/host\n"
    );
    assert_no_host_root(&dir, "hooks");
}

/// Validation scripts run in the job's container with the job's text only in their
/// environment (their argv is their own path), and a job whose text a runtime could
/// read as more mounts is held before any script runs.
#[test]
fn validation_scripts_get_job_text_only_in_their_environment() {
    let tmp = common::open_tempdir();
    let script = tmp.path().join("check.sh");
    fs::write(
        &script,
        "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$#\" \"$*\" \"$X\" > \"$_CONDOR_SCRATCH_DIR/seen\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let Some(pool) = Pool::as_root(&format!(
        "CONTAINER_RUNTIMES = runc\nCONTAINER_VALIDATION_SCRIPTS = {}\n",
        script.display()
    )) else {
        return;
    };
    if !common::need(common::which("runc").is_some(), "runc")
        || !common::need(common::test_user().is_some(), "the unprivileged test user")
    {
        return;
    }
    pool.until_slot("ContainerRuntimes", "runc", 120);
    // (ch-run binds nothing read-only, so it runs no validation scripts.)
    let rt = "runc";
    let (dir, c) = user_job(
        &pool,
        &format!("validate-{rt}"),
        &format!(
            "universe = container\ncontainer_image = @ROOTFS@\ncontainer_runtime = {rt}\n\
             executable = /bin/sh\ntransfer_executable = false\n\
             arguments = \"-c 'cat seen' --volume=/:/host --privileged\"\n\
             environment = \"X='--volume=/:/host --privileged'\"\n\
             output = out\nerror = err\nlog = log\nqueue\n"
        ),
    );
    exit_code(&pool, c);
    assert_eq!(
        fs::read_to_string(dir.join("out")).unwrap_or_default(),
        "0||--volume=/:/host --privileged\n",
        "{rt}: {}",
        outputs(&dir)
    );
    assert_no_host_root(&dir, rt);

    let (dir, c) = user_job(
        &pool,
        &format!("validate-target-{rt}"),
        &format!(
            "universe = container\ncontainer_image = @ROOTFS@\ncontainer_runtime = {rt}\n\
             executable = /bin/sh\ntransfer_executable = false\n\
             arguments = \"-c 'cat /host/etc/shadow'\"\n\
             +ContainerTargetDir = \"/srv,/:/host\"\n\
             output = out\nerror = err\nlog = log\nqueue\n"
        ),
    );
    assert_held(&pool, c, "6", "target dir", &dir, rt);
}
