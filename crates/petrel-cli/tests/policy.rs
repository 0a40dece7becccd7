//! The container policy end to end (GlideinWMS's REQUIRED/PREFERRED/OPTIONAL/NEVER on both
//! sides): refused jobs stay idle and `petrel q -better-analyze` says why, the pool's
//! default image, jobs with no container on the host, the execute-side hooks and the
//! validation scripts.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::pool::Pool;

/// The `-better-analyze` text for a job.
fn analyze(pool: &Pool, job: &str) -> String {
    let r = pool.cmd(&["q", "-better-analyze", job]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    r.stdout
}

/// Adds settings to the pool's config (read when the daemon starts, at the first command).
fn configure(pool: &Pool, settings: &str) {
    let config = pool.dir.join("config");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(settings);
    fs::write(&config, text).unwrap();
}

/// Waits until the job sent back to idle says why (`LastVacateReason`).
fn vacate_reason(pool: &Pool, constraint: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = pool.af(false, constraint, &["LastVacateReason"]);
        if let Some(row) = r.first().filter(|row| row[0] != "undefined") {
            return row.join(" ");
        }
        assert!(
            Instant::now() < deadline,
            "{constraint}: not sent back to idle"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn executable(path: &Path, body: &str) {
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn refused_jobs_stay_idle_and_analyze_says_why() {
    let Some(pool) = Pool::as_root(
        "CONTAINER_POLICY = REQUIRED\nCONTAINER_IMAGE_DENY = */denied/*, docker://evil.example/*\n",
    ) else {
        return;
    };
    let denied = pool.work.join("denied");
    fs::create_dir(&denied).unwrap();
    std::os::unix::fs::symlink(&pool.rootfs, denied.join("rootfs")).unwrap();
    let c = pool.submit(
        "refused.sub",
        &format!(
            "executable = /bin/true\ntransfer_executable = false\nlog = r.log\nqueue\n\
             container_policy = never\nqueue\n\
             container_policy =\nuniverse = container\ncontainer_image = {}\nqueue\n\
             container_image = @ROOTFS@\n+ContainerPolicy = \"sometimes\"\nqueue\n\
             container_image = docker://evil.example/miner:1\n+ContainerPolicy = undefined\nqueue\n\
             container_image = @ROOTFS@\nqueue\n",
            denied.join("rootfs").display()
        ),
    );
    // The last job is allowed: once it has run, every cycle has seen the others.
    pool.until_q(&format!("ClusterId == {c} && ProcId == 5"), 0, 60);
    let idle = pool.af(
        false,
        &format!("ClusterId == {c}"),
        &["ProcId", "JobStatus", "NumJobStarts"],
    );
    let want: Vec<Vec<String>> = (0..5)
        .map(|p| vec![p.to_string(), "1".into(), "0".into()])
        .collect();
    assert_eq!(idle, want, "refused jobs never start");
    let reasons = [
        "container policy: the job needs a container (job OPTIONAL, pool REQUIRED) but the \
         job names no image and the pool has no CONTAINER_DEFAULT_IMAGE",
        "container policy: the job says NEVER run in a container and the pool's \
         CONTAINER_POLICY is REQUIRED",
        "matches '*/denied/*' in the pool's CONTAINER_IMAGE_DENY",
        "container policy: the job's ContainerPolicy \"sometimes\" is not REQUIRED, PREFERRED, \
         OPTIONAL or NEVER",
        "image 'docker://evil.example/miner:1' matches 'docker://evil.example/*'",
    ];
    for (p, reason) in reasons.iter().enumerate() {
        let text = analyze(&pool, &format!("{c}.{p}"));
        assert!(text.contains("can never run here"), "{text}");
        let line = text
            .lines()
            .find(|l| l.contains("container policy"))
            .unwrap_or_else(|| panic!("no policy line in {text}"));
        assert!(line.contains(reason), "job {p}: {line}");
    }
    // The transferred image is judged by where it came from, in one line.
    let line = analyze(&pool, &format!("{c}.2"));
    assert!(line.contains(&format!("'{}", denied.display())), "{line}");
    // The slot says what the pool's policy is.
    let s = pool.cmd(&["status", "-af", "ContainerPolicy"]);
    assert_eq!(s.stdout.trim(), "REQUIRED", "{}", s.stderr);
}

#[test]
fn a_job_without_an_image_runs_in_the_pool_default_image() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    fs::write(pool.rootfs.join("etc/marker"), "the default image\n").unwrap();
    configure(
        &pool,
        &format!(
            "CONTAINER_POLICY = PREFERRED\nCONTAINER_DEFAULT_IMAGE = {}\n",
            pool.rootfs.display()
        ),
    );
    let c = pool.submit(
        "default.sub",
        "executable = /bin/sh\narguments = \"-c 'cat /etc/marker; pwd'\"\n\
         transfer_executable = false\noutput = d.out\nlog = d.log\nqueue\n",
    );
    let text = analyze(&pool, &format!("{c}.0"));
    assert!(
        text.contains("Container policy: the job runs in a container, the pool's default image"),
        "{text}"
    );
    pool.wait_log("d.log", 60);
    assert_eq!(
        fs::read_to_string(pool.path("d.out")).unwrap(),
        "the default image\n/srv\n"
    );
    let s = pool.cmd(&["status", "-af", "ContainerPolicy", "ContainerDefaultImage"]);
    assert_eq!(
        s.stdout.trim(),
        format!("PREFERRED {}", pool.rootfs.display())
    );
}

#[test]
fn a_job_with_no_container_runs_on_the_host_as_its_owner() {
    for who in common::modes() {
        let Some(pool) = Pool::new(who, "") else {
            return;
        };
        let c = pool.submit(
            "host.sub",
            "executable = /bin/sh\n\
             arguments = \"-c 'pwd; echo $_CONDOR_SCRATCH_DIR; id -u; test -e /etc/os-release && echo host; echo made > result; exit 3'\"\n\
             transfer_executable = false\noutput = h.out\nerror = h.err\nlog = h.log\nqueue\n",
        );
        pool.wait_log("h.log", 60);
        let uid = who.uid();
        let scratch = pool.dir.join(format!("execute/dir_{c}_0"));
        let out = fs::read_to_string(pool.path("h.out")).unwrap();
        assert_eq!(
            out,
            format!("{s}\n{s}\n{uid}\nhost\n", s = scratch.display()),
            "{who:?}: {}",
            fs::read_to_string(pool.path("h.err")).unwrap_or_default()
        );
        assert_eq!(fs::read_to_string(pool.path("result")).unwrap(), "made\n");
        let done = pool.af(
            true,
            &format!("ClusterId == {c}"),
            &["ExitCode", "JobStatus", "NumJobStarts"],
        );
        assert_eq!(done, vec![vec!["3".to_string(), "4".into(), "1".into()]]);
    }
}

#[test]
fn a_job_on_the_host_keeps_its_memory_limit() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let c = pool.submit(
        "oom.sub",
        "executable = /bin/sh\narguments = \"-c 'head -c 400000000 /dev/zero | tail > /dev/null'\"\n\
         request_memory = 100M\ntransfer_executable = false\nlog = o.log\nqueue\n",
    );
    pool.until_q(&format!("ClusterId == {c} && JobStatus == 5"), 1, 60);
    let held = pool.af(false, "true", &["HoldReasonCode", "HoldReasonSubCode"]);
    assert_eq!(held, vec![vec!["34".to_string(), "102".into()]]);
}

#[test]
fn hooks_run_around_the_job_and_a_failing_prepare_hook_requeues_it() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let hooks = pool.work.join("hooks");
    fs::create_dir(&hooks).unwrap();
    let record = pool.work.join("record");
    executable(
        &hooks.join("prepare"),
        &format!(
            "#!/bin/sh\necho \"prepare $PETREL_JOB_ID $PETREL_IMAGE $(pwd)\" >> {r}\n\
             grep -q 'ProcId = 0' && exit 0\necho 'quota check failed for this job'\nexit 2\n",
            r = record.display()
        ),
    );
    executable(
        &hooks.join("exit"),
        &format!(
            "#!/bin/sh\necho \"exit $1 $PETREL_JOB_ID\" >> {}\n",
            record.display()
        ),
    );
    configure(
        &pool,
        &format!(
            "HOOK_PREPARE_JOB = {}\nHOOK_JOB_EXIT = {}\n",
            hooks.join("prepare").display(),
            hooks.join("exit").display()
        ),
    );
    let c = pool.submit(
        "hooked.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
         transfer_executable = false\nlog = k.log\nqueue 2\n",
    );
    pool.until_q(&format!("ClusterId == {c} && ProcId == 0"), 0, 60);
    // The second job's prepare hook fails: back to idle, the slot blamed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let reason = loop {
        let r = pool.af(
            false,
            &format!("ClusterId == {c} && ProcId == 1"),
            &["LastVacateReason"],
        );
        if let Some(row) = r.first().filter(|row| row[0] != "undefined") {
            break row.join(" ");
        }
        assert!(
            Instant::now() < deadline,
            "the prepare hook did not requeue"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        reason.contains(&hooks.join("prepare").display().to_string())
            && reason.contains("exit status 2")
            && reason.contains("quota check failed for this job"),
        "{reason}"
    );
    let lines = fs::read_to_string(&record).unwrap();
    let scratch = pool.dir.join(format!("execute/dir_{c}_0"));
    assert!(
        lines.contains(&format!(
            "prepare {c}.0 {} {}",
            pool.rootfs.display(),
            scratch.display()
        )),
        "{lines}"
    );
    assert!(lines.contains(&format!("exit exit {c}.0")), "{lines}");
    assert!(lines.contains(&format!("exit evict {c}.1")), "{lines}");
    assert_eq!(pool.cmd(&["rm", &c.to_string()]).code, Some(0));
}

#[test]
fn a_failing_validation_script_requeues_the_job_and_the_slot_refuses_the_image() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let scripts = pool.work.join("validate");
    fs::create_dir(&scripts).unwrap();
    // Runs inside the job's image (busybox has no /etc/os-release), bound read-only.
    executable(
        &scripts.join("ok.sh"),
        "#!/bin/sh\ntest ! -e /etc/os-release && test -w . && ! touch \"$0\" 2>/dev/null\n",
    );
    executable(
        &scripts.join("gpu.sh"),
        "#!/bin/sh\nif test -e /etc/gpu-ready; then exit 0; fi\necho 'no GPU driver in this image' >&2\nexit 1\n",
    );
    configure(
        &pool,
        &format!(
            "CONTAINER_VALIDATION_SCRIPTS = {}, {}\nCONTAINER_VALIDATION_BLOCK_TIME = 600\n",
            scripts.join("ok.sh").display(),
            scripts.join("gpu.sh").display()
        ),
    );
    let c = pool.submit(
        "validated.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/sh\n\
         arguments = \"-c 'echo ran > ran'\"\ntransfer_executable = false\nlog = v.log\nqueue\n",
    );
    let reason = vacate_reason(&pool, &format!("ClusterId == {c}"));
    assert!(
        reason.contains("gpu.sh")
            && reason.contains("exit status 1")
            && reason.contains("no GPU driver in this image"),
        "{reason}"
    );
    assert!(!pool.path("ran").exists(), "the job itself must not run");
    let text = analyze(&pool, &format!("{c}.0"));
    let line = text.lines().find(|l| l.contains("waits")).unwrap_or("");
    assert!(
        line.contains("a validation script failed in image")
            && line.contains("refuses that image for"),
        "{text}"
    );
    // Fixing the image does not help until the mark runs out (or the pool restarts): past
    // the requeue's back-off the job is still idle, started once.
    fs::write(pool.rootfs.join("etc/gpu-ready"), "").unwrap();
    let not_before: u64 = pool.af(false, "true", &["PetrelNotBefore"])[0][0]
        .parse()
        .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    while now() <= not_before + 2 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let still = pool.af(false, "true", &["JobStatus", "NumJobStarts"]);
    assert_eq!(still, vec![vec!["1".to_string(), "1".into()]]);
    assert_eq!(pool.cmd(&["pool", "stop"]).code, Some(0));
    assert_eq!(pool.cmd(&["pool", "start"]).code, Some(0));
    pool.wait_log("v.log", 60);
    assert_eq!(fs::read_to_string(pool.path("ran")).unwrap(), "ran\n");
}

#[test]
fn petrel_ssh_reaches_a_job_on_the_host() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let c = pool.submit(
        "ssh.sub",
        "executable = /bin/sleep\narguments = 60\ntransfer_executable = false\n\
         environment = \"MARK=host-job\"\nqueue\n",
    );
    pool.until_q(&format!("ClusterId == {c} && JobStatus == 2"), 1, 30);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ssh = loop {
        let r = pool.cmd(&["ssh", &format!("{c}.0"), "sh", "-c", "pwd; echo $MARK"]);
        if r.code == Some(0) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let scratch = pool.dir.join(format!("execute/dir_{c}_0"));
    assert_eq!(
        ssh.stdout,
        format!("{}\nhost-job\n", scratch.display()),
        "{}",
        ssh.stderr
    );
    assert_eq!(pool.cmd(&["rm", &c.to_string()]).code, Some(0));
}
