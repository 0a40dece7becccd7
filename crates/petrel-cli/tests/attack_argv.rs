//! Options smuggled into a runtime's command line: an unprivileged user of root's pool
//! names an image, an executable, arguments, a target directory or an `ssh` command that
//! a runtime's CLI could read as its own option (`--volume=/:/host`, `--user=0:0`,
//! `--privileged`). Each must be refused, held with a clear reason, or run as plain data:
//! the job runs as its owner and never sees the host's root file system.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pool::Pool;
use common::{As, Ran};

/// What a host-root job would print: the first line of `/etc/shadow` starts `root:`.
const SHADOW_MARK: &str = "root:";

fn docker_works() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A busybox image in Docker's store, removed at the end of the test.
struct DockerImage(String);

impl DockerImage {
    fn import(rootfs: &std::path::Path, tag: &str) -> DockerImage {
        let name = format!("petrel-attack/{tag}:{}", std::process::id());
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C '{}' -c . | docker import - {name} >/dev/null",
                rootfs.display()
            ))
            .status()
            .expect("docker import");
        assert!(status.success(), "docker import failed");
        DockerImage(name)
    }
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "--force", &self.0])
            .output();
    }
}

/// A directory of the test user's inside the pool's work directory, to submit from.
fn user_dir(pool: &Pool, name: &str) -> PathBuf {
    let dir = pool.work.join(name);
    fs::create_dir_all(&dir).unwrap();
    common::give_to_user(&dir, As::User);
    dir
}

/// Submits `text` as the unprivileged user from `dir`.
fn submit_as_user(pool: &Pool, dir: &std::path::Path, text: &str) -> Ran {
    let file = dir.join("job.sub");
    fs::write(
        &file,
        text.replace("@ROOTFS@", &pool.rootfs.to_string_lossy()),
    )
    .unwrap();
    common::give_to_user(&file, As::User);
    common::petrel(As::User)
        .args(["submit", "job.sub"])
        .env("PETREL_POOL_DIR", &pool.dir)
        .current_dir(dir)
        .output()
        .expect("run petrel")
        .into()
}

fn cluster_of(r: &Ran) -> i64 {
    assert_eq!(r.code, Some(0), "submit failed: {}{}", r.stdout, r.stderr);
    r.stdout
        .lines()
        .find(|l| l.contains("submitted to cluster"))
        .and_then(|l| l.trim_end_matches('.').rsplit(' ').next())
        .and_then(|c| c.parse().ok())
        .expect("cluster number")
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

fn docker_pool() -> Option<(Pool, DockerImage)> {
    let pool = Pool::as_root("CONTAINER_RUNTIMES = docker\n")?;
    if !common::need(docker_works(), "a running Docker Engine")
        || !common::need(common::test_user().is_some(), "the unprivileged test user")
    {
        return None;
    }
    let image = DockerImage::import(&pool.rootfs, "anyimage");
    pool.until_slot("HasDocker", "true", 90);
    Some((pool, image))
}

/// The attack, word for word (with a real image for the last `--user` to run).
#[test]
fn docker_image_that_is_an_option_gives_no_host_root() {
    let Some((pool, image)) = docker_pool() else {
        return;
    };
    let dir = user_dir(&pool, "issue");
    let text = format!(
        "universe = docker\ndocker_image = --volume=/:/host\nexecutable = --user=0:0\n\
         transfer_executable = false\n\
         arguments = \"{} /bin/sh -c 'id; cat /host/etc/shadow'\"\n\
         output = out\nerror = err\nlog = log\nqueue\n",
        image.0
    );
    let r = submit_as_user(&pool, &dir, &text);
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
        let dir = user_dir(&pool, &format!("raw{i}"));
        let text = format!(
            "universe = docker\ndocker_image = {img}\n+DockerImage = \"{bad}\"\n\
             executable = --user=0:0\ntransfer_executable = false\n\
             arguments = \"{img} /bin/sh -c 'id -u; cat /host/etc/shadow'\"\n\
             output = out\nerror = err\nlog = log\nqueue\n",
            img = image.0
        );
        let c = cluster_of(&submit_as_user(&pool, &dir, &text));
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
