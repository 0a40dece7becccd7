//! `petrel run` with real containers, as root and as an unprivileged user.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{busybox_rootfs, give_to_user, modes, need, open_tempdir, petrel, run_sh, As};

/// A temp dir with a busybox rootfs, or `None` when busybox is missing (skip).
fn setup() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let dir = open_tempdir();
    let rootfs = busybox_rootfs(dir.path());
    need(rootfs.is_some(), "busybox (apt-get install busybox-static)").then_some(())?;
    rootfs.map(|r| (dir, r))
}

#[test]
fn exit_codes_and_signal_deaths() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    for who in modes() {
        let ran = run_sh(who, &rootfs, &[], "exit 3");
        assert_eq!(ran.code, Some(3), "{who:?}: {}", ran.stderr);
        let ran = run_sh(who, &rootfs, &[], "echo out; echo err >&2");
        assert_eq!(
            (ran.code, ran.stdout.as_str(), ran.stderr.as_str()),
            (Some(0), "out\n", "err\n")
        );
        let ran = run_sh(who, &rootfs, &[], "kill -KILL $$");
        assert_eq!(ran.code, Some(128 + 9), "{who:?}: {}", ran.stderr);
        let ran = run_sh(who, &rootfs, &[], "kill -SEGV $$");
        assert_eq!(ran.code, Some(128 + 11), "{who:?}: {}", ran.stderr);
    }
}

#[test]
fn sigterm_reaches_the_job() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    for who in modes() {
        let mut child = petrel(who)
            .arg("run")
            .arg(&rootfs)
            .args([
                "--",
                "/bin/sh",
                "-c",
                "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        // As root the child is setpriv, which execs petrel: same pid either way.
        // SAFETY: kill takes plain integers.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().expect("wait");
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        assert_eq!(rest, ["got-term"], "{who:?}");
        assert_eq!(status.code(), Some(42), "{who:?}");
    }
}

#[test]
fn orphans_are_reaped_and_nothing_outlives_the_job() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    let marker = format!("{}", 900 + std::process::id() % 97);
    for who in modes() {
        // The subshell exits at once, orphaning its `sleep`, which init must reap when it
        // ends; a zombie would show state Z.
        let script = format!(
            "(sleep 0.1 &); sleep 0.6; cat /proc/[0-9]*/stat | awk '{{print $3}}' | sort | uniq -c; \
             sleep {marker} & echo started"
        );
        let ran = run_sh(who, &rootfs, &[], &script);
        assert_eq!(ran.code, Some(0), "{who:?}: {}", ran.stderr);
        assert!(
            !ran.stdout.contains(" Z"),
            "{who:?}: zombies inside: {}",
            ran.stdout
        );
        assert!(ran.stdout.contains("started"));
        let leftover = std::process::Command::new("pgrep")
            .args(["-f", &format!("^sleep {marker}$")])
            .output()
            .expect("pgrep");
        assert!(
            leftover.stdout.is_empty(),
            "{who:?}: background process outlived the job: {}",
            String::from_utf8_lossy(&leftover.stdout)
        );
    }
}

#[test]
fn scratch_is_the_writable_cwd_and_the_image_is_read_only() {
    let Some((dir, rootfs)) = setup() else { return };
    for who in modes() {
        let scratch = dir.path().join(format!("scratch-{who:?}"));
        fs::create_dir(&scratch).expect("mkdir");
        fs::write(scratch.join("input.txt"), "data\n").expect("write");
        give_to_user(&scratch, who);
        let opts = ["--scratch", scratch.to_str().expect("utf8")];
        let ran = run_sh(
            who,
            &rootfs,
            &opts,
            "pwd; cat input.txt; echo result > output.txt; touch /bin/x 2>&1; touch /etc/y 2>&1; true",
        );
        assert_eq!(ran.code, Some(0), "{who:?}: {}", ran.stderr);
        let lines: Vec<&str> = ran.stdout.lines().collect();
        assert_eq!(lines[..2], ["/srv", "data"], "{who:?}");
        assert!(
            lines[2].contains("Read-only file system"),
            "{who:?}: {}",
            ran.stdout
        );
        assert!(
            lines[3].contains("Read-only file system"),
            "{who:?}: {}",
            ran.stdout
        );
        assert_eq!(
            fs::read_to_string(scratch.join("output.txt")).expect("output"),
            "result\n"
        );
        assert!(!rootfs.join("bin/x").exists());

        let target = [
            "--scratch",
            scratch.to_str().expect("utf8"),
            "--target-dir",
            "/work/job",
        ];
        let ran = run_sh(who, &rootfs, &target, "pwd; ls");
        assert_eq!(ran.code, Some(0), "{who:?}: {}", ran.stderr);
        assert!(
            ran.stdout.starts_with("/work/job\n"),
            "{who:?}: {}",
            ran.stdout
        );
        assert!(ran.stdout.contains("output.txt"));
    }
}

#[test]
fn setuid_root_binaries_do_not_give_root() {
    let Some((dir, rootfs)) = setup() else { return };
    if !need(common::is_root(), "root, to make a setuid-root binary") {
        return;
    }
    // Named busybox, since busybox picks the applet from its own name.
    fs::create_dir(rootfs.join("opt")).expect("mkdir");
    let suid = rootfs.join("opt/busybox");
    fs::copy(rootfs.join("bin/busybox"), &suid).expect("copy");
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    let _keep = dir;
    // As root, become an ordinary uid inside and try the setuid binary.
    let ran = run_sh(
        As::Root,
        &rootfs,
        &["--user", "1000:1000"],
        "/opt/busybox id -u; id -u",
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, "1000\n1000\n");
    // As an unprivileged user.
    if let Some((uid, _)) = common::test_user() {
        let ran = run_sh(As::User, &rootfs, &[], "/opt/busybox id -u");
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        assert_eq!(ran.stdout.trim(), uid.to_string());
    }
}

#[test]
fn the_job_holds_no_capabilities() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    for who in modes() {
        for opts in [&[][..], &["--fakeroot"][..]] {
            let ran = run_sh(who, &rootfs, opts, "grep ^Cap /proc/self/status; grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status");
            assert_eq!(ran.code, Some(0), "{who:?} {opts:?}: {}", ran.stderr);
            for line in ran.stdout.lines().filter(|l| l.starts_with("Cap")) {
                assert!(
                    line.ends_with("0000000000000000"),
                    "{who:?} {opts:?}: {line}"
                );
            }
            assert!(ran.stdout.contains("NoNewPrivs:\t1"), "{}", ran.stdout);
            assert!(ran.stdout.contains("Seccomp:\t2"), "{}", ran.stdout);
        }
    }
    if common::is_root() {
        let ran = run_sh(
            As::Root,
            &rootfs,
            &["--cap-add", "net_raw"],
            "grep CapEff /proc/self/status",
        );
        assert_eq!(
            ran.stdout.trim(),
            "CapEff:\t0000000000002000",
            "{}",
            ran.stderr
        );
    }
    if common::test_user().is_some() {
        let ran = run_sh(As::User, &rootfs, &["--cap-add", "net_raw"], "true");
        assert_eq!(ran.code, Some(125));
        assert!(
            ran.stderr.contains("--cap-add needs root"),
            "{}",
            ran.stderr
        );
    }
}

#[test]
fn proc_shows_only_the_jobs_processes() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    for who in modes() {
        let ran = run_sh(
            who,
            &rootfs,
            &[],
            "ls /proc | grep -c '^[0-9]'; cat /proc/1/comm",
        );
        assert_eq!(ran.code, Some(0), "{who:?}: {}", ran.stderr);
        let lines: Vec<&str> = ran.stdout.lines().collect();
        let count: u32 = lines[0].parse().expect("count");
        // init, sh, ls and grep (the pipeline), never the host's processes.
        assert!(count <= 4, "{who:?}: {count} processes visible");
        assert_eq!(lines[1], "petrel", "{who:?}: pid 1 is petrel's init");
    }
}

#[test]
fn ids_inside_the_user_namespace() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    for who in modes() {
        let ran = run_sh(who, &rootfs, &["--fakeroot"], "id -u; id -g");
        assert_eq!(ran.stdout, "0\n0\n", "{who:?}: {}", ran.stderr);
        let expected = who.uid().to_string();
        let ran = run_sh(who, &rootfs, &[], "id -u");
        assert_eq!(ran.stdout.trim(), expected, "{who:?}: {}", ran.stderr);
    }
    if common::test_user().is_some() {
        let ran = run_sh(As::User, &rootfs, &["--user", "5"], "true");
        assert_eq!(ran.code, Some(125));
        assert!(ran.stderr.contains("only one id"), "{}", ran.stderr);
    }
}

#[test]
fn environment_hostname_and_network() {
    let Some((dir, rootfs)) = setup() else { return };
    let env_file = dir.path().join("job.env");
    fs::write(&env_file, "# comment\nFROM_FILE=1\n\nSHARED=file\n").expect("write");
    for who in modes() {
        let opts = [
            "--env",
            "A=b c",
            "--env-file",
            env_file.to_str().expect("utf8"),
            "--env",
            "SHARED=flag",
            "--hostname",
            "box",
            "--net",
            "none",
        ];
        let ran = run_sh(
            who,
            &rootfs,
            &opts,
            "env | sort; touch /bin/x 2>/dev/null && echo WRITABLE; hostname; cat /etc/hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
        );
        assert_eq!(ran.code, Some(0), "{who:?}: {}", ran.stderr);
        let out = &ran.stdout;
        for want in [
            "A=b c\n",
            "FROM_FILE=1\n",
            "SHARED=flag\n",
            "PATH=/usr/local/sbin:",
        ] {
            assert!(out.contains(want), "{who:?}: {want} missing in {out}");
        }
        assert!(
            !out.contains("CARGO"),
            "{who:?}: host environment leaked: {out}"
        );
        // The overlay added for /etc/hostname must not make the image writable.
        assert!(!out.contains("WRITABLE"), "{who:?}: {out}");
        // /etc/hostname is added to a root-owned image only when root runs it: an
        // unprivileged user cannot create the file in a directory owned by root.
        let expect = if who == As::Root {
            "box\nbox\n"
        } else {
            "box\n"
        };
        assert!(out.contains(expect), "{who:?}: {out}");
        assert!(out.trim_end().ends_with("lo"), "{who:?}: {out}");
        assert_eq!(out.lines().filter(|l| l.trim() == "lo").count(), 1, "{out}");
    }
    let bad = dir.path().join("bad.env");
    fs::write(&bad, "OK=1\n9BAD=x\n").expect("write");
    let ran = run_sh(
        modes()[0],
        &rootfs,
        &["--env-file", bad.to_str().expect("utf8")],
        "true",
    );
    assert_eq!(ran.code, Some(125));
    assert!(ran.stderr.contains("bad.env:2"), "{}", ran.stderr);
}

#[test]
fn writable_layers_are_discarded_or_kept() {
    let Some((dir, rootfs)) = setup() else { return };
    // A directory anyone may write, so the unprivileged user's writes are allowed too.
    fs::create_dir(rootfs.join("data")).expect("mkdir");
    fs::set_permissions(rootfs.join("data"), fs::Permissions::from_mode(0o777)).expect("chmod");
    // overlayfs copies a directory up with its owner, which must be mapped in the user's
    // namespace: images for unprivileged users are unpacked owned by them, as here.
    give_to_user(
        &rootfs.join("data"),
        modes().last().copied().unwrap_or(As::Root),
    );
    for who in modes() {
        let ran = run_sh(
            who,
            &rootfs,
            &["--writable"],
            "echo hi > /data/new && cat /data/new",
        );
        assert_eq!(
            (ran.code, ran.stdout.as_str()),
            (Some(0), "hi\n"),
            "{who:?}: {}",
            ran.stderr
        );
        assert!(!rootfs.join("data/new").exists());
        let keep = dir.path().join(format!("changes-{who:?}"));
        fs::create_dir(&keep).expect("mkdir");
        give_to_user(&keep, who);
        let opts = ["--keep-changes", keep.to_str().expect("utf8")];
        let ran = run_sh(who, &rootfs, &opts, "echo kept > /data/file");
        assert_eq!(ran.code, Some(0), "{who:?}: {}", ran.stderr);
        let ran = run_sh(who, &rootfs, &opts, "cat /data/file");
        assert_eq!(ran.stdout, "kept\n", "{who:?}: {}", ran.stderr);
        assert_eq!(
            fs::read_to_string(keep.join("upper/data/file")).expect("upper"),
            "kept\n"
        );
        assert!(!rootfs.join("data/file").exists());
    }
}

#[test]
fn memory_limit_kills_and_reports_out_of_memory() {
    let Some((dir, rootfs)) = setup() else { return };
    if !need(
        common::is_root(),
        "root, for cgroup limits on a host without delegation",
    ) {
        return;
    }
    let stats = dir.path().join("stats.json");
    let hog = "a=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; while true; do a=\"$a$a\"; done";
    let opts = [
        "--memory",
        "32m",
        "--stats-json",
        stats.to_str().expect("utf8"),
    ];
    let ran = run_sh(As::Root, &rootfs, &opts, hog);
    assert_eq!(ran.code, Some(247), "{}", ran.stderr);
    assert!(ran.stderr.contains("ran out of memory"), "{}", ran.stderr);
    assert!(ran.stderr.contains("32.0 MiB"), "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&stats).expect("stats")).expect("json");
    assert_eq!(json["oom_killed"], true);
    assert_eq!(json["signal"], 9);
    let peak = json["peak_memory_bytes"].as_u64().expect("peak");
    assert!(peak > 16 << 20 && peak <= 33 << 20, "peak {peak}");

    // Under the limit the job runs normally and its usage is measured by the cgroup.
    let ran = run_sh(As::Root, &rootfs, &opts, "echo fine");
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (Some(0), "fine\n"),
        "{}",
        ran.stderr
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&stats).expect("stats")).expect("json");
    assert_eq!(json["oom_killed"], false);
    assert_eq!(json["peak_memory_source"], "cgroup");
}

#[test]
fn limits_that_cannot_be_applied_are_named() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    if !need(common::test_user().is_some(), "an unprivileged test user") {
        return;
    }
    if petrel_runtime::cgroups::layout() != Some(petrel_runtime::cgroups::Layout::V1) {
        eprintln!(
            "skipped: this host's cgroups may be delegated; the v1 refusal is what is tested"
        );
        return;
    }
    let ran = run_sh(
        As::User,
        &rootfs,
        &["--memory", "64m", "--pids", "10"],
        "echo ran",
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, "ran\n");
    assert!(
        ran.stderr.contains("--memory not applied"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("--pids not applied"), "{}", ran.stderr);
    assert!(ran.stderr.contains("not delegated"), "{}", ran.stderr);
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    if !need(common::is_root(), "root, for cgroup limits") {
        return;
    }
    let started = Instant::now();
    // Once the bomb has used up the pids, the shell cannot fork either: it starts the bomb
    // with a single fork, then waits and counts with builtins only (a loop, a glob).
    let bomb = "bomb() { bomb | bomb & }; (bomb) 2>/dev/null; \
                i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; \
                set -- /proc/[0-9]*; echo $#";
    let ran = run_sh(As::Root, &rootfs, &["--pids", "40"], bomb);
    let count: u32 = ran.stdout.trim().parse().unwrap_or(u32::MAX);
    assert!(
        count <= 40,
        "{count} processes despite --pids 40: {}",
        ran.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn clear_errors_for_bad_input() {
    let Some((dir, rootfs)) = setup() else { return };
    let who = modes()[0];
    let run = |args: &[&str]| -> common::Ran {
        petrel(who)
            .arg("run")
            .args(args)
            .output()
            .expect("run")
            .into()
    };
    let root = rootfs.to_str().expect("utf8");

    let ran = run(&["/nonexistent/rootfs", "--", "/bin/true"]);
    assert_eq!(ran.code, Some(125));
    assert!(
        ran.stderr.contains("/nonexistent/rootfs does not exist"),
        "{}",
        ran.stderr
    );

    let ran = run(&[root, "--", "frobnicate"]);
    assert_eq!(ran.code, Some(127));
    assert!(
        ran.stderr.contains("'frobnicate' not found in the image"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("PATH="), "{}", ran.stderr);

    fs::write(rootfs.join("bin/notes.txt"), "hello").expect("write");
    let ran = run(&[root, "--", "/bin/notes.txt"]);
    assert_eq!(ran.code, Some(126));
    assert!(
        ran.stderr.contains("not executable (mode 0644)"),
        "{}",
        ran.stderr
    );

    let ran = run(&[root, "--", "/bin"]);
    assert_eq!(ran.code, Some(126));
    assert!(ran.stderr.contains("is a directory"), "{}", ran.stderr);

    // A script without #! needs /bin/sh, and an image without one says so.
    let shell_less = dir.path().join("noshell");
    fs::create_dir_all(shell_less.join("bin")).expect("mkdir");
    for d in ["proc", "dev"] {
        fs::create_dir_all(shell_less.join(d)).expect("mkdir");
    }
    fs::write(shell_less.join("bin/script"), "echo hi\n").expect("write");
    fs::set_permissions(
        shell_less.join("bin/script"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let ran = run(&[shell_less.to_str().expect("utf8"), "--", "/bin/script"]);
    assert_eq!(ran.code, Some(126), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("needs a shell") && ran.stderr.contains("no /bin/sh"),
        "{}",
        ran.stderr
    );
    let ran = run(&[shell_less.to_str().expect("utf8")]);
    assert_eq!(ran.code, Some(125));
    assert!(ran.stderr.contains("has no /bin/sh"), "{}", ran.stderr);

    // A script whose interpreter is missing.
    fs::write(rootfs.join("bin/py"), "#!/usr/bin/python3\nprint(1)\n").expect("write");
    fs::set_permissions(rootfs.join("bin/py"), fs::Permissions::from_mode(0o755)).expect("chmod");
    let ran = run(&[root, "--", "/bin/py"]);
    assert_eq!(ran.code, Some(126));
    assert!(ran.stderr.contains("/usr/bin/python3"), "{}", ran.stderr);

    for (args, needle) in [
        (
            &["--memory", "12x", root, "--", "true"][..],
            "invalid --memory '12x'",
        ),
        (&["--cpus=-1", root, "--", "true"][..], "invalid --cpus"),
        (
            &["--bind", "/tmp:relative", root, "--", "true"][..],
            "must be an absolute path",
        ),
        (
            &["--bind", "/does/not/exist:/x", root, "--", "true"][..],
            "/does/not/exist",
        ),
        (
            &["--scratch", "/does/not/exist", root, "--", "true"][..],
            "scratch directory /does/not/exist",
        ),
        (
            &["--workdir", "/nope", root, "--", "true"][..],
            "/nope as the working directory",
        ),
        (
            &["--cap-add", "CAP_FLY", root, "--", "true"][..],
            "unknown capability",
        ),
        (
            &["--user", "ghost", root, "--", "true"][..],
            "neither a number nor a user",
        ),
    ] {
        let ran = run(args);
        assert_eq!(ran.code, Some(125), "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(needle), "{args:?}: {}", ran.stderr);
    }
}

#[test]
fn unavailable_namespaces_name_the_setting() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    let unshare = std::path::Path::new("/usr/bin/unshare");
    if !need(unshare.exists(), "unshare (util-linux)") {
        return;
    }
    // user.max_user_namespaces is per user namespace: set it to 0 in a throw-away one.
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} run {} -- /bin/true",
        common::petrel_bin().display(),
        rootfs.display()
    );
    let out = std::process::Command::new(unshare)
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let ran: common::Ran = out.into();
    assert_eq!(ran.code, Some(125), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("cannot create user, mount, pid"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("sysctl -w user.max_user_namespaces="),
        "{}",
        ran.stderr
    );
}

/// Mounts are per-namespace and vanish with it; cgroups, state directories and processes
/// are petrel's to clean up. 200 runs must leave none behind.
#[test]
fn no_leaks_after_200_runs() {
    let Some((dir, rootfs)) = setup() else { return };
    let who = modes()[0];
    let scratch = dir.path().join("scratch");
    fs::create_dir(&scratch).expect("mkdir");
    give_to_user(&scratch, who);
    let name = format!("leakcheck-{}", std::process::id());
    let snapshot = || {
        // Only mounts of this test's files count: other tests (squashfs images) may mount
        // and unmount on the host while this one runs.
        let ours = dir.path().to_string_lossy().into_owned();
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .filter(|l| l.contains(&ours) || l.contains(&name))
            .count();
        let cgroups = count_cgroups(&name);
        let procs = fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter(|e| {
                fs::read_to_string(e.path().join("cmdline"))
                    .is_ok_and(|c| c.contains(rootfs.to_str().expect("utf8")))
            })
            .count();
        (mounts, cgroups, procs)
    };
    let before = snapshot();
    let state_before = count_state_dirs(&name);
    let limits: &[&str] = if common::is_root() {
        &["--memory", "64m", "--pids", "64"]
    } else {
        &[]
    };
    for i in 0..200 {
        let mut opts: Vec<&str> = vec![
            "--name",
            &name,
            "--scratch",
            scratch.to_str().expect("utf8"),
        ];
        opts.extend_from_slice(limits);
        if i % 4 == 0 {
            opts.push("--writable");
        }
        let ran = run_sh(who, &rootfs, &opts, "sleep 30 & true");
        assert_eq!(ran.code, Some(0), "run {i}: {}", ran.stderr);
    }
    assert_eq!(
        snapshot(),
        before,
        "(mounts, cgroups, processes) before and after 200 runs"
    );
    assert_eq!(
        count_state_dirs(&name),
        state_before,
        "state directories left behind"
    );
}

fn count_cgroups(prefix: &str) -> usize {
    let mut count = 0;
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if entry.file_name().to_string_lossy().starts_with(prefix) {
                    count += 1;
                }
                stack.push(entry.path());
            }
        }
    }
    count
}

/// Per-run state directories named after `prefix`, wherever petrel may put them.
fn count_state_dirs(prefix: &str) -> usize {
    let mut bases = vec![std::path::PathBuf::from("/run/petrel")];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(std::path::PathBuf::from(xdg).join("petrel"));
    }
    if let Ok(entries) = fs::read_dir("/tmp") {
        bases.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("petrel-"))
                .map(|e| e.path()),
        );
    }
    bases
        .iter()
        .filter_map(|b| fs::read_dir(b).ok())
        .flat_map(|it| it.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .count()
}

/// Every limit lands in the job's own cgroup, read from inside the container.
#[test]
fn limits_are_written_to_the_jobs_cgroup() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    if !need(common::is_root(), "root, for cgroup limits") {
        return;
    }
    let opts = [
        "--memory",
        "100m",
        "--cpus",
        "0.5",
        "--cpu-weight",
        "200",
        "--pids",
        "77",
    ];
    let script = match petrel_runtime::cgroups::layout() {
        Some(petrel_runtime::cgroups::Layout::V2) => {
            "d=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup); \
             cat $d/memory.max $d/cpu.max $d/cpu.weight $d/pids.max"
        }
        _ => {
            "p() { sed -n \"s/^[0-9]*:[^:]*\\b$1\\b[^:]*://p\" /proc/self/cgroup; }; \
             cat /sys/fs/cgroup/memory$(p memory)/memory.limit_in_bytes \
                 /sys/fs/cgroup/cpu$(p cpu)/cpu.cfs_quota_us \
                 /sys/fs/cgroup/cpu$(p cpu)/cpu.shares \
                 /sys/fs/cgroup/pids$(p pids)/pids.max"
        }
    };
    let ran = run_sh(As::Root, &rootfs, &opts, script);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let values: Vec<&str> = ran.stdout.lines().collect();
    let expected_v1 = ["104857600", "50000", "2048", "77"];
    let expected_v2 = ["104857600", "50000 100000", "200", "77"];
    assert!(
        values == expected_v1 || values == expected_v2,
        "cgroup files hold {values:?}"
    );
}

/// An OCI image runs with its config applied as `docker run` applies it: Entrypoint, Cmd
/// (replaced by the given command), Env and WorkingDir.
#[test]
fn images_run_with_their_config() {
    let Some((dir, rootfs)) = setup() else { return };
    if !need(
        std::path::Path::new("/usr/bin/umoci").exists() && common::is_root(),
        "umoci, and root to unpack with it",
    ) {
        return;
    }
    let layout = dir.path().join("layout");
    let bundle = dir.path().join("bundle");
    let image = format!("{}:bb", layout.display());
    let umoci = |args: &[&str]| {
        let out = std::process::Command::new("umoci")
            .args(args)
            .output()
            .expect("umoci");
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    umoci(&["init", "--layout", layout.to_str().expect("utf8")]);
    umoci(&["new", "--image", &image]);
    umoci(&["unpack", "--image", &image, bundle.to_str().expect("utf8")]);
    let copy = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", rootfs.display()))
        .arg(bundle.join("rootfs"))
        .status()
        .expect("cp");
    assert!(copy.success());
    umoci(&["repack", "--image", &image, bundle.to_str().expect("utf8")]);
    umoci(&[
        "config",
        "--image",
        &image,
        "--config.env",
        "GREETING=from-image",
        "--config.workingdir",
        "/tmp",
        "--config.entrypoint",
        "/bin/sh",
        "--config.entrypoint",
        "-c",
        "--config.cmd",
        "echo $GREETING in $(pwd)",
    ]);
    let store = dir.path().join("store");
    let reference = format!("oci:{image}");
    let run = |extra: &[&str]| -> common::Ran {
        petrel(As::Root)
            .env("PETREL_IMAGE_STORE", &store)
            .arg("run")
            .arg(&reference)
            .args(extra)
            .output()
            .expect("run")
            .into()
    };
    let ran = run(&[]);
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (Some(0), "from-image in /tmp\n"),
        "{}",
        ran.stderr
    );
    // A command replaces Cmd and follows the Entrypoint; --env overrides the image's Env.
    let ran = run(&[
        "--env",
        "GREETING=overridden",
        "--",
        "echo $GREETING; exit 4",
    ]);
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (Some(4), "overridden\n"),
        "{}",
        ran.stderr
    );
    // The second run used the stored copy: the store holds one image.
    let listed = petrel(As::Root)
        .env("PETREL_IMAGE_STORE", &store)
        .args(["image", "ls", "--json"])
        .output()
        .expect("ls");
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
}

/// The seccomp filter, not just the missing capabilities, is what refuses new namespaces:
/// without it the same unshare succeeds.
#[test]
fn seccomp_refuses_new_namespaces() {
    let Some((_dir, rootfs)) = setup() else {
        return;
    };
    for who in modes() {
        let ran = run_sh(who, &rootfs, &[], "unshare -U true 2>&1; echo rc=$?");
        assert!(
            ran.stdout.contains("Operation not permitted"),
            "{who:?}: {}",
            ran.stdout
        );
        assert!(ran.stdout.contains("rc=1"), "{who:?}: {}", ran.stdout);
        let ran = run_sh(
            who,
            &rootfs,
            &["--no-seccomp"],
            "unshare -U true 2>&1; echo rc=$?",
        );
        assert_eq!(ran.stdout, "rc=0\n", "{who:?}: {}", ran.stderr);
    }
}
