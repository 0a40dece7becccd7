//! `start`, `Container` and `exec_in` with real containers, as root and as an unprivileged
//! user. Commands entered with `exec_in` share the test's stdout, so they write what they
//! saw into the scratch directory, where the test reads it from the host.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{as_root_and_user, busybox_dir, eventually, me, processes_with, run_as_user, As};
use petrel_runtime::{
    exec_in, start, Container, ContainerSpec, ExecSpec, JobStatus, NetMode, Overlay, RuntimeError,
    User,
};

fn sh(script: &str) -> ExecSpec {
    ExecSpec::new(vec!["/bin/sh".into(), "-c".into(), script.into()])
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// A `sleep` job with `scratch` at /srv.
fn sleeper(rootfs: &Path, scratch: &Path, seconds: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(rootfs, vec!["sleep".into(), seconds.into()]);
    spec.scratch = Some(scratch.to_path_buf());
    spec
}

fn own_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

#[test]
fn container_handles_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Container>();
}

#[test]
fn exec_joins_the_running_container() {
    as_root_and_user("exec_joins_the_running_container", || {
        let Some((_dir, rootfs, scratch)) = busybox_dir() else {
            return;
        };
        fs::write(scratch.join("hello.txt"), "hello from the scratch\n").unwrap();
        let mut spec = sleeper(&rootfs, &scratch, "1000");
        spec.hostname = Some("petrelbox".into());
        spec.net = NetMode::None;
        let container = start(&spec).expect("start");
        let pid = container.pid();
        assert!(!container.name().is_empty());

        let status = exec_in(
            pid,
            &sh(
                "pwd > out.pwd; cat hello.txt > out.read; hostname > out.host; \
                 echo $$ > out.pid; ps > out.ps; ls /proc | grep -c '^[0-9]' > out.count; \
                 grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' \
                   /proc/self/status > out.status; \
                 id -u > out.uid; cat /proc/net/dev > out.net",
            ),
        )
        .expect("exec");
        assert_eq!(status, JobStatus::Exited(0));
        // The default working directory is the scratch target, where the job's files are.
        assert_eq!(read(&scratch, "out.pwd"), "/srv\n");
        assert_eq!(read(&scratch, "out.read"), "hello from the scratch\n");
        assert_eq!(read(&scratch, "out.host"), "petrelbox\n");
        // In the container's pid namespace: a small pid, and the job is visible.
        let inner_pid: u32 = read(&scratch, "out.pid").trim().parse().unwrap();
        assert!(inner_pid < 20, "the command is pid {inner_pid} inside");
        let ps = read(&scratch, "out.ps");
        assert!(ps.contains("sleep 1000"), "{ps}");
        let count: u32 = read(&scratch, "out.count").trim().parse().unwrap();
        assert!(count <= 5, "{count} processes visible: {ps}");
        let status = read(&scratch, "out.status");
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert!(
                status.contains(&format!("{cap}:\t0000000000000000")),
                "{cap} not empty:\n{status}"
            );
        }
        assert!(status.contains("NoNewPrivs:\t1"), "{status}");
        assert!(status.contains("Seccomp:\t2"), "{status}");
        assert_eq!(read(&scratch, "out.uid").trim(), own_uid().to_string());
        // The container's own network: only a loopback interface.
        let net = read(&scratch, "out.net");
        let interfaces: Vec<&str> = net.lines().skip(2).collect();
        assert!(
            interfaces.len() == 1 && interfaces[0].trim_start().starts_with("lo:"),
            "{net}"
        );

        // Exit codes and signal deaths come back as they are.
        assert_eq!(exec_in(pid, &sh("exit 7")).unwrap(), JobStatus::Exited(7));
        assert_eq!(
            exec_in(pid, &sh("kill -KILL $$")).unwrap(),
            JobStatus::Signaled(libc::SIGKILL)
        );

        // The caller's working directory and environment, not the defaults.
        let mut spec2 = sh("pwd > /srv/out.pwd2; echo \"$GREETING\" > /srv/out.env");
        spec2.workdir = Some("/tmp".into());
        spec2.env = vec!["PATH=/bin".into(), "GREETING=hi there".into()];
        assert_eq!(exec_in(pid, &spec2).unwrap(), JobStatus::Exited(0));
        assert_eq!(read(&scratch, "out.pwd2"), "/tmp\n");
        assert_eq!(read(&scratch, "out.env"), "hi there\n");
        let mut nowhere = sh("true");
        nowhere.workdir = Some("/no/such/dir".into());
        let err = exec_in(pid, &nowhere).unwrap_err().to_string();
        assert!(err.contains("/no/such/dir"), "{err}");

        // The same "not found" and "not executable" errors as for the job.
        let err = exec_in(pid, &ExecSpec::new(vec!["no-such-command".into()])).unwrap_err();
        assert_eq!(err.exit_status(), 127, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("'no-such-command' not found in the container of process")
                && text.contains("PATH="),
            "{text}"
        );
        fs::write(scratch.join("script.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(scratch.join("script.sh"), fs::Permissions::from_mode(0o644)).unwrap();
        let err = exec_in(pid, &ExecSpec::new(vec!["/srv/script.sh".into()])).unwrap_err();
        assert_eq!(err.exit_status(), 126, "{err}");
        assert!(err.to_string().contains("not executable"), "{err}");

        // Another user inside: any id for root's containers, none but one's own otherwise.
        let mut nobody = sh("id -u > /srv/out.nobody");
        nobody.user = Some(User {
            uid: 65534,
            gid: 65534,
        });
        match me() {
            As::Root => {
                fs::set_permissions(&scratch, fs::Permissions::from_mode(0o777)).unwrap();
                assert_eq!(exec_in(pid, &nobody).unwrap(), JobStatus::Exited(0));
                assert_eq!(read(&scratch, "out.nobody"), "65534\n");
            }
            As::User => {
                let err = exec_in(pid, &nobody).unwrap_err().to_string();
                assert!(err.contains("65534:65534 has no id"), "{err}");
            }
        }

        // The seccomp filter holds: no new namespaces from inside.
        let status = exec_in(pid, &sh("unshare -U true 2> /srv/out.unshare")).unwrap();
        let why = read(&scratch, "out.unshare");
        assert_eq!(status, JobStatus::Exited(1), "{why}");
        assert!(why.contains("Operation not permitted"), "{why}");

        // SIGTERM ends the job; wait says so.
        container.signal(libc::SIGTERM).expect("signal");
        // Ended but not yet waited for: the init is a zombie, with no namespaces to join.
        assert!(eventually(10, || state(pid) == 'Z'), "the init did not end");
        let err = exec_in(pid, &sh("true")).unwrap_err().to_string();
        assert!(err.contains("the container has ended"), "{err}");
        let outcome = container.wait().expect("wait");
        assert_eq!(outcome.status, JobStatus::Signaled(libc::SIGTERM));
        assert!(
            matches!(
                exec_in(pid, &sh("true")),
                Err(RuntimeError::NotAContainer { .. })
            ),
            "entered a container that has ended"
        );
    });
}

#[test]
fn usage_signals_and_cgroup_of_a_running_container() {
    as_root_and_user("usage_signals_and_cgroup_of_a_running_container", || {
        let Some((_dir, rootfs, scratch)) = busybox_dir() else {
            return;
        };
        let mut spec = ContainerSpec::new(
            &rootfs,
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; touch busy-done; \
                 exec sleep 1000"
                    .into(),
            ],
        );
        spec.scratch = Some(scratch.clone());
        let cgroup = me() == As::Root;
        if cgroup {
            spec.limits.memory_bytes = Some(256 << 20);
        }
        let container = start(&spec).expect("start");
        assert!(
            !cgroup || container.not_applied().is_empty(),
            "{:?}",
            container.not_applied()
        );
        assert!(
            eventually(120, || scratch.join("busy-done").exists()),
            "the busy loop did not finish"
        );
        let usage = container.usage();
        assert!(
            usage.user_cpu_seconds + usage.system_cpu_seconds > 0.05,
            "{usage:?}"
        );
        assert!(usage.peak_memory_bytes.unwrap_or(0) > 0, "{usage:?}");
        assert_eq!(
            usage.memory_source,
            if cgroup { "cgroup" } else { "proc" },
            "{usage:?}"
        );
        assert!(usage.wall_seconds > 0.0);

        // An entered command joins the container's cgroup (when it has one).
        assert_eq!(
            exec_in(container.pid(), &sh("cat /proc/self/cgroup > out.cgroup")).unwrap(),
            JobStatus::Exited(0)
        );
        let job_cgroups = fs::read_to_string(format!("/proc/{}/cgroup", container.pid())).unwrap();
        assert_eq!(read(&scratch, "out.cgroup"), job_cgroups);
        if cgroup {
            let mine = fs::read_to_string("/proc/self/cgroup").unwrap();
            assert_ne!(mine, job_cgroups, "the container got no cgroup of its own");
        }

        // Signals the init does not forward go to the job's own process.
        let job = job_pid(container.pid());
        container.signal(libc::SIGSTOP).expect("SIGSTOP");
        assert!(eventually(10, || state(job) == 'T'), "the job did not stop");
        container.signal(libc::SIGCONT).expect("SIGCONT");
        assert!(
            eventually(10, || state(job) == 'S'),
            "the job did not go on"
        );
        container.signal(0).expect("the container is alive");

        container.signal(libc::SIGTERM).expect("SIGTERM");
        let outcome = container.wait().expect("wait");
        assert_eq!(outcome.status, JobStatus::Signaled(libc::SIGTERM));
        assert!(outcome.usage.user_cpu_seconds + 0.01 >= usage.user_cpu_seconds);
    });
}

/// The host pid of the init's first child: the job.
fn job_pid(init: i32) -> i32 {
    let children = fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

fn state(pid: i32) -> char {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|s| s.trim().chars().next())
        .unwrap_or('?')
}

/// Where the state directory of container `name` would be, for either kind of caller.
fn state_dirs(name: &str) -> Vec<std::path::PathBuf> {
    let mut bases = vec![
        std::path::PathBuf::from("/run/petrel"),
        format!("/tmp/petrel-{}", own_uid()).into(),
    ];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(Path::new(&dir).join("petrel"));
    }
    bases.into_iter().map(|b| b.join(name)).collect()
}

/// cgroup directories named `name`, two levels below each hierarchy's own cgroup.
fn cgroup_dirs(name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![(std::path::PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name().to_string_lossy() == name {
                found.push(entry.path());
            } else if depth < 6 {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    found
}

#[test]
fn dropping_a_container_leaves_nothing_behind() {
    as_root_and_user("dropping_a_container_leaves_nothing_behind", || {
        let Some((_dir, rootfs, scratch)) = busybox_dir() else {
            return;
        };
        let job_marker = format!("7{}1", std::process::id());
        let exec_marker = format!("7{}2", std::process::id());
        let mut spec = ContainerSpec::new(
            &rootfs,
            vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("sleep {job_marker} & sleep {job_marker}"),
            ],
        );
        spec.scratch = Some(scratch.clone());
        spec.overlay = Overlay::Discard;
        spec.name = Some("petrel-drop-test".into());
        if me() == As::Root {
            spec.limits.memory_bytes = Some(256 << 20);
        }
        let container = start(&spec).expect("start");
        let pid = container.pid();
        let name = container.name().to_string();
        assert!(name.starts_with("petrel-drop-test-"), "{name}");
        assert!(
            eventually(10, || processes_with(&job_marker).len() == 2),
            "{:?}",
            processes_with(&job_marker)
        );
        assert!(
            state_dirs(&name).iter().any(|d| d.is_dir()),
            "no state directory for {name}"
        );
        let had_cgroups = !cgroup_dirs(&name).is_empty();
        assert_eq!(had_cgroups, me() == As::Root, "cgroups of {name}");

        // A command entered into the container ends with it.
        let exec = std::thread::spawn({
            let marker = exec_marker.clone();
            move || exec_in(pid, &ExecSpec::new(vec!["sleep".into(), marker]))
        });
        assert!(
            eventually(10, || processes_with(&exec_marker).len() == 1),
            "the entered command did not start"
        );

        drop(container);
        assert!(processes_with(&job_marker).is_empty());
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        let status = exec.join().expect("exec thread").expect("exec_in");
        assert_eq!(status, JobStatus::Signaled(libc::SIGKILL));
        assert!(processes_with(&exec_marker).is_empty());
        assert!(state_dirs(&name).iter().all(|d| !d.exists()));
        assert!(cgroup_dirs(&name).is_empty(), "{:?}", cgroup_dirs(&name));
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&name), "a mount of {name} is left");
    });
}

#[test]
fn start_reports_setup_failures() {
    as_root_and_user("start_reports_setup_failures", || {
        let Some((_dir, rootfs, scratch)) = busybox_dir() else {
            return;
        };
        let mut spec = sleeper(&rootfs, &scratch, "1");
        spec.argv = vec!["no-such-command".into()];
        spec.name = Some("petrel-fail-test".into());
        let err = start(&spec).err().expect("a missing command fails start");
        assert_eq!(err.exit_status(), 127, "{err}");
        assert!(
            err.to_string()
                .contains("'no-such-command' not found in the image"),
            "{err}"
        );

        let mut spec = sleeper(&rootfs, &scratch, "1");
        spec.workdir = Some("/no/such/dir".into());
        let err = start(&spec).err().expect("a missing workdir fails start");
        assert!(err.to_string().contains("/no/such/dir"), "{err}");

        let spec = sleeper(&rootfs.join("missing"), &scratch, "1");
        assert!(matches!(start(&spec), Err(RuntimeError::RootfsMissing(_))));

        // A container that ends at once still waits cleanly.
        let spec = ContainerSpec::new(
            &rootfs,
            vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        );
        let outcome = start(&spec).expect("start").wait().expect("wait");
        assert_eq!(outcome.status, JobStatus::Exited(3));
    });
}

/// Set in the copy of this test that runs as the test user: a container of root's.
const FOREIGN_PID: &str = "PETREL_TEST_FOREIGN_PID";

#[test]
fn exec_refuses_a_container_of_another_user() {
    if let Ok(pid) = std::env::var(FOREIGN_PID) {
        let pid: i32 = pid.parse().unwrap();
        let err = exec_in(pid, &sh("true")).unwrap_err().to_string();
        assert!(
            err.contains("belongs to uid 0") && err.contains("only your own containers"),
            "{err}"
        );
        return;
    }
    if me() != As::Root {
        return;
    }
    let Some((_dir, rootfs, scratch)) = busybox_dir() else {
        return;
    };
    let container = start(&sleeper(&rootfs, &scratch, "1000")).expect("start");
    run_as_user(
        "exec_refuses_a_container_of_another_user",
        &[(FOREIGN_PID, container.pid().to_string())],
    );
    // The job is untouched.
    assert_eq!(state(job_pid(container.pid())), 'S');
    drop(container);
}

#[test]
fn run_is_start_then_wait() {
    as_root_and_user("run_is_start_then_wait", || {
        let Some((_dir, rootfs, scratch)) = busybox_dir() else {
            return;
        };
        let mut spec = ContainerSpec::new(
            &rootfs,
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo ran > /srv/ran; exit 5".into(),
            ],
        );
        spec.scratch = Some(scratch.clone());
        let outcome = petrel_runtime::run(&spec).expect("run");
        assert_eq!(outcome.status, JobStatus::Exited(5));
        assert_eq!(read(&scratch, "ran"), "ran\n");
        assert_eq!(outcome.usage.memory_source, "rusage");
    });
}
