//! The conformance suite: the same jobs on every driver that can run here (embedded, runc,
//! Charliecloud, Docker), checked for the same results. Each case is one function; the
//! `conformance!` macro makes one test per driver from it, so a failure names both.

mod common;

use std::time::Duration;

use common::{Fixture, JOB_TIMEOUT};
use petrel_drivers::{
    Blame, ErrorKind, ExitInfo, Handle, JobSpec, JobStatus, Limits, NetMode, Stdio, User,
};

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn embedded() {
                    super::run("embedded", super::cases::$case);
                }
                #[test]
                fn runc() {
                    super::run("runc", super::cases::$case);
                }
                #[test]
                fn charliecloud() {
                    super::run("charliecloud", super::cases::$case);
                }
                #[test]
                fn docker() {
                    super::run("docker", super::cases::$case);
                }
            }
        )*
    };
}

conformance!(
    exit_code,
    signal_reaches_the_job,
    signal_kills_the_job,
    destroy_kills_the_job,
    scratch_and_cwd,
    target_dir,
    environment,
    uid_and_gid,
    memory_limit_and_oom,
    exec_in_the_running_job,
    stdio_files,
    command_not_found_blames_the_job,
    missing_image_blames_the_job,
    cpu_usage,
    network_none,
    a_stale_container_of_the_same_name_is_replaced,
);

fn run(driver: &str, case: fn(&Fixture)) {
    if let Some(fx) = Fixture::new(driver) {
        case(&fx);
    }
}

fn start(fx: &Fixture, spec: &JobSpec) -> Box<dyn Handle> {
    fx.runtime()
        .start(spec)
        .unwrap_or_else(|e| panic!("{}: start: {e}", fx.runtime().name()))
}

fn finish(fx: &Fixture, handle: &dyn Handle) -> ExitInfo {
    handle
        .wait_timeout(Some(JOB_TIMEOUT))
        .unwrap_or_else(|e| panic!("{}: wait: {e}", fx.runtime().name()))
        .unwrap_or_else(|| panic!("{}: the job did not end in time", fx.runtime().name()))
}

fn run_job(fx: &Fixture, spec: &JobSpec) -> ExitInfo {
    let handle = start(fx, spec);
    finish(fx, handle.as_ref())
}

mod cases {
    use super::*;

    pub fn exit_code(fx: &Fixture) {
        let exit = run_job(fx, &fx.spec("exit", "exit 3"));
        assert_eq!(exit.status, JobStatus::Exited(3), "{}", fx.runtime().name());
        assert!(!exit.oom_killed);
        assert!(exit.wall_seconds > 0.0 && exit.wall_seconds < 20.0);
        let exit = run_job(fx, &fx.spec("exit0", "true"));
        assert_eq!(exit.status, JobStatus::Exited(0));
    }

    pub fn signal_reaches_the_job(fx: &Fixture) {
        let spec = fx.spec(
            "trap",
            "trap 'echo got TERM > trapped; exit 42' TERM; touch ready; \
             while :; do sleep 0.05; done",
        );
        let handle = start(fx, &spec);
        fx.await_file(handle.as_ref(), "ready");
        handle.signal(15).expect("signal");
        let exit = finish(fx, handle.as_ref());
        assert_eq!(
            exit.status,
            JobStatus::Exited(42),
            "{}",
            fx.runtime().name()
        );
        assert_eq!(fx.scratch_file("trapped"), "got TERM\n");
    }

    pub fn signal_kills_the_job(fx: &Fixture) {
        // No handler: the default action kills the job, though it would be pid 1 in its
        // namespace without an init in front of it.
        let oci = fx.runtime().name() == "runc";
        if oci
            && !common::need(
                petrel_drivers::host::static_init().is_some(),
                "tini-static (apt-get install tini)",
            )
        {
            return;
        }
        let mut spec = fx.spec("term", "");
        spec.argv = vec!["/bin/sleep".into(), "30".into()];
        let handle = start(fx, &spec);
        std::thread::sleep(Duration::from_millis(300));
        handle.signal(15).expect("signal");
        let exit = finish(fx, handle.as_ref());
        assert_eq!(
            exit.status,
            JobStatus::Signaled(15),
            "{}",
            fx.runtime().name()
        );
    }

    pub fn destroy_kills_the_job(fx: &Fixture) {
        let spec = fx.spec(
            "destroy",
            "trap '' TERM; touch ready; while :; do sleep 0.05; done",
        );
        let handle = start(fx, &spec);
        fx.await_file(handle.as_ref(), "ready");
        handle.destroy().expect("destroy");
        let exit = finish(fx, handle.as_ref());
        assert_eq!(
            exit.status,
            JobStatus::Signaled(9),
            "{}",
            fx.runtime().name()
        );
        // A second destroy is harmless, and wait keeps its answer.
        handle.destroy().expect("destroy again");
        assert_eq!(finish(fx, handle.as_ref()).status, JobStatus::Signaled(9));
    }

    pub fn scratch_and_cwd(fx: &Fixture) {
        std::fs::write(fx.scratch.join("input"), "from the host\n").unwrap();
        let spec = fx.spec(
            "scratch",
            "pwd > where; cat input > copied; echo made > /srv/made",
        );
        let exit = run_job(fx, &spec);
        assert_eq!(exit.status, JobStatus::Exited(0), "{}", fx.runtime().name());
        assert_eq!(fx.scratch_file("where"), "/srv\n");
        assert_eq!(fx.scratch_file("copied"), "from the host\n");
        assert_eq!(fx.scratch_file("made"), "made\n");
    }

    pub fn target_dir(fx: &Fixture) {
        let mut spec = fx.spec(
            "target",
            "pwd > where; [ -d /srv ] && ls /srv | wc -l > srv-entries",
        );
        spec.target_dir = "/work".into();
        let exit = run_job(fx, &spec);
        assert_eq!(exit.status, JobStatus::Exited(0), "{}", fx.runtime().name());
        assert_eq!(fx.scratch_file("where"), "/work\n");
        // /srv is the image's own, empty directory now.
        assert_eq!(fx.scratch_file("srv-entries").trim(), "0");
    }

    pub fn environment(fx: &Fixture) {
        let mut spec = fx.spec(
            "env",
            "printf '%s|%s|%s|%s\\n' \"$FOO\" \"${EMPTY-unset}\" \"${CARGO_PKG_NAME-unset}\" \"$PATH\" > env.out",
        );
        spec.env = vec![
            "PATH=/bin:/usr/bin".into(),
            "FOO=bar baz 'q' \"dq\" $x".into(),
            "EMPTY=".into(),
        ];
        let exit = run_job(fx, &spec);
        assert_eq!(exit.status, JobStatus::Exited(0), "{}", fx.runtime().name());
        assert_eq!(
            fx.scratch_file("env.out"),
            "bar baz 'q' \"dq\" $x||unset|/bin:/usr/bin\n",
            "{}: the job gets exactly its environment, nothing of petrel's",
            fx.runtime().name()
        );
    }

    pub fn uid_and_gid(fx: &Fixture) {
        let mut spec = fx.spec("uid", "id -u > uid; id -g > gid; touch /srv/owned");
        spec.user = Some(User {
            uid: 1234,
            gid: 2345,
        });
        let exit = run_job(fx, &spec);
        assert_eq!(exit.status, JobStatus::Exited(0), "{}", fx.runtime().name());
        assert_eq!(fx.scratch_file("uid"), "1234\n");
        assert_eq!(fx.scratch_file("gid"), "2345\n");
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(fx.scratch.join("owned")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (1234, 2345),
            "the host sees the job's ids"
        );
    }

    pub fn memory_limit_and_oom(fx: &Fixture) {
        let mut spec = fx.spec("oom", "x=0123456789abcdef; while :; do x=$x$x; done");
        spec.limits = Limits {
            memory_bytes: Some(32 << 20),
            ..Limits::default()
        };
        let exit = run_job(fx, &spec);
        assert!(exit.oom_killed, "{}: {exit:?}", fx.runtime().name());
        assert_eq!(
            exit.status,
            JobStatus::Signaled(9),
            "{}",
            fx.runtime().name()
        );
        assert_eq!(exit.memory_limit_bytes, Some(32 << 20));
        let peak = exit.peak_memory_bytes.expect("peak memory");
        assert!(
            peak > 8 << 20 && peak <= 33 << 20,
            "{}: peak {peak}",
            fx.runtime().name()
        );
    }

    pub fn exec_in_the_running_job(fx: &Fixture) {
        let mut spec = fx.spec(
            "exec",
            "touch ready; while [ ! -e stop ]; do sleep 0.05; done; exit 7",
        );
        spec.env.push("FOO=from-spec".into());
        spec.user = Some(User {
            uid: 1234,
            gid: 1234,
        });
        let handle = start(fx, &spec);
        fx.await_file(handle.as_ref(), "ready");
        let status = handle
            .exec(
                &[
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo \"$FOO $(pwd) $(id -u)\" > exec.out; exit 5".into(),
                ],
                false,
            )
            .unwrap_or_else(|e| panic!("{}: exec: {e}", fx.runtime().name()));
        assert_eq!(status, JobStatus::Exited(5), "{}", fx.runtime().name());
        assert_eq!(fx.scratch_file("exec.out"), "from-spec /srv 1234\n");
        let stats = handle.stats().expect("stats");
        assert!(
            stats.memory_bytes.or(stats.peak_memory_bytes).is_some(),
            "{}: stats {stats:?}",
            fx.runtime().name()
        );
        std::fs::write(fx.scratch.join("stop"), "").unwrap();
        assert_eq!(finish(fx, handle.as_ref()).status, JobStatus::Exited(7));
    }

    pub fn stdio_files(fx: &Fixture) {
        let input = fx.dir.path().join("in.txt");
        std::fs::write(&input, "line one\nline two\n").unwrap();
        let mut spec = fx.spec("stdio", "echo out; echo err >&2; wc -l; exit 4");
        spec.stdin = Stdio::File(input);
        spec.stdout = Stdio::File(fx.dir.path().join("out.txt"));
        spec.stderr = Stdio::File(fx.dir.path().join("err.txt"));
        let exit = run_job(fx, &spec);
        assert_eq!(exit.status, JobStatus::Exited(4), "{}", fx.runtime().name());
        let read = |f: &str| std::fs::read_to_string(fx.dir.path().join(f)).unwrap();
        assert_eq!(
            read("out.txt").replace(' ', ""),
            "out\n2\n",
            "{}",
            fx.runtime().name()
        );
        assert_eq!(read("err.txt"), "err\n", "{}", fx.runtime().name());
    }

    pub fn command_not_found_blames_the_job(fx: &Fixture) {
        let mut spec = fx.spec("nocmd", "");
        spec.argv = vec!["/bin/no-such-command".into()];
        let err = match fx.runtime().start(&spec) {
            Err(e) => e,
            Ok(handle) => match handle.wait_timeout(Some(JOB_TIMEOUT)) {
                Err(e) => e,
                Ok(other) => panic!("{}: a missing command gave {other:?}", fx.runtime().name()),
            },
        };
        assert_eq!(
            (err.blame, err.kind),
            (Blame::Job, ErrorKind::Command),
            "{}: {err}",
            fx.runtime().name()
        );
        assert!(err.message.contains("no-such-command"), "{err}");
    }

    pub fn missing_image_blames_the_job(fx: &Fixture) {
        let mut spec = fx.spec("noimage", "true");
        spec.image = petrel_drivers::JobImage::Rootfs(fx.dir.path().join("no-such-rootfs"));
        let err = match fx.runtime().start(&spec) {
            Err(e) => e,
            Ok(handle) => match handle.wait_timeout(Some(JOB_TIMEOUT)) {
                Err(e) => e,
                Ok(other) => panic!("{}: a missing image gave {other:?}", fx.runtime().name()),
            },
        };
        assert_eq!(
            (err.blame, err.kind),
            (Blame::Job, ErrorKind::Image),
            "{}: {err}",
            fx.runtime().name()
        );
    }

    pub fn cpu_usage(fx: &Fixture) {
        let spec = fx.spec("cpu", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done");
        let exit = run_job(fx, &spec);
        assert_eq!(exit.status, JobStatus::Exited(0));
        let cpu =
            exit.user_cpu_seconds.expect("user CPU") + exit.system_cpu_seconds.expect("system CPU");
        assert!(
            cpu > 0.05 && cpu <= exit.wall_seconds * 2.0 + 0.1,
            "{}: cpu {cpu} wall {}",
            fx.runtime().name(),
            exit.wall_seconds
        );
    }

    pub fn a_stale_container_of_the_same_name_is_replaced(fx: &Fixture) {
        // As if petrel had crashed with the job running: its handle is never dropped.
        let spec = fx.spec("stale", "touch ready; sleep 5");
        let stale = start(fx, &spec);
        fx.await_file(stale.as_ref(), "ready");
        std::mem::forget(stale);
        let mut again = fx.spec("stale", "echo again > again");
        again.name = spec.name.clone();
        let exit = run_job(fx, &again);
        assert_eq!(exit.status, JobStatus::Exited(0), "{}", fx.runtime().name());
        assert_eq!(fx.scratch_file("again"), "again\n");
    }

    pub fn network_none(fx: &Fixture) {
        let mut spec = fx.spec(
            "net",
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > ifaces",
        );
        spec.network = NetMode::None;
        if !fx.runtime().capabilities().network_isolation {
            let err = fx.runtime().start(&spec).err().expect("refused");
            assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
            return;
        }
        let exit = run_job(fx, &spec);
        assert_eq!(exit.status, JobStatus::Exited(0), "{}", fx.runtime().name());
        assert_eq!(fx.scratch_file("ifaces"), "lo\n", "{}", fx.runtime().name());
    }
}
