//! The local pool end to end: `petrel submit/q/wait/rm/hold/release/history/status/ssh`
//! against a real daemon in a private directory, real containers, and the event log read
//! back with HTCondor's own reader (`htcondor2.JobEventLog`).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pool::Pool;
use common::{As, Ran};

/// Events as HTCondor's reader sees them: `[{"type": "SUBMIT", "cluster": 1, ...}]`.
fn oracle_events(log: &Path) -> Option<Vec<serde_json::Value>> {
    let py = std::env::var_os("PETREL_ORACLE_PY25").map(PathBuf::from);
    if !common::need(
        py.as_ref().is_some_and(|p| p.exists()),
        "PETREL_ORACLE_PY25 (htcondor 25)",
    ) {
        return None;
    }
    let script = r#"
import htcondor2, json, sys
out = []
for e in htcondor2.JobEventLog(sys.argv[1]).events(stop_after=0):
    d = {"type": e.type.name, "cluster": e.cluster, "proc": e.proc, "timestamp": e.timestamp}
    for k in e.keys():
        v = e[k]
        d[k] = v if isinstance(v, (int, float, str, bool)) else str(v)
    out.append(d)
print(json.dumps(out))
"#;
    let out = Command::new(py.unwrap())
        .args(["-c", script])
        .arg(log)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "htcondor2 could not read {}: {}",
        log.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("json"))
}

fn events_of(events: &[serde_json::Value], proc: i64) -> Vec<&serde_json::Value> {
    events.iter().filter(|e| e["proc"] == proc).collect()
}

fn types(events: &[&serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Event 040 as HTCondor writes it for a job with file transfer: input started (with
/// the host it transfers to) and finished after the job was matched, output started at
/// least a second after that (the job sleeps 1 s) and finished before it terminated.
fn check_file_transfer_events(events: &[&serde_json::Value]) {
    let at = |i: usize| events[i]["timestamp"].as_i64().unwrap();
    let steps: Vec<(usize, i64)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["type"] == "FILE_TRANSFER")
        .map(|(i, e)| (i, e["Type"].as_i64().unwrap()))
        .collect();
    let t = types(events);
    assert_eq!(
        steps.iter().map(|s| s.1).collect::<Vec<_>>(),
        [2, 3, 5, 6],
        "input started/finished, output started/finished: {t:?}"
    );
    let execute = t.iter().position(|x| x == "EXECUTE").unwrap();
    let end = events.len() - 1;
    assert!(steps[0].0 > execute, "{t:?}");
    let input_started = events[steps[0].0];
    assert!(
        input_started["Host"]
            .as_str()
            .is_some_and(|h| h.starts_with('<')),
        "{input_started}"
    );
    assert!(at(execute) <= at(steps[0].0), "{events:?}");
    assert!(at(steps[0].0) <= at(steps[1].0), "{events:?}");
    assert!(
        at(steps[2].0) > at(steps[1].0),
        "output transfer started when the job ended, not when its input was in: {events:?}"
    );
    assert!(at(steps[2].0) <= at(steps[3].0) && at(steps[3].0) <= at(end));
    assert!(
        (1..events.len()).all(|i| at(i - 1) <= at(i)),
        "the log's times only go forward: {events:?}"
    );
}

/// `job_ad_information_attrs`: after every event, a 028 carrying the event's fields and
/// the named attributes that have a value at that time.
fn check_job_ad_information(events: &[&serde_json::Value], owner: &str, proc: i64) {
    assert!(
        events.len() >= 2 && events.len() % 2 == 0,
        "{:?}",
        types(events)
    );
    for pair in events.chunks(2) {
        let (event, info) = (pair[0], pair[1]);
        assert_eq!(info["type"], "JOB_AD_INFORMATION", "{:?}", types(events));
        assert_ne!(event["type"], "JOB_AD_INFORMATION");
        assert_eq!(
            info["TriggerEventTypeName"],
            format!("ULOG_{}", event["type"].as_str().unwrap())
        );
        assert_eq!(info["timestamp"], event["timestamp"]);
        assert_eq!(info["Owner"], owner);
        assert_eq!(info["ProcId"], proc);
        assert!(info.get("NoSuchAttribute").is_none(), "{info}");
        if event["type"] == "JOB_TERMINATED" {
            assert_eq!(info["ExitCode"], proc);
            assert_eq!(info["ReturnValue"], proc);
        } else if event["type"] == "SUBMIT" {
            assert!(info.get("ExitCode").is_none(), "{info}");
        }
    }
}

#[test]
fn a_cluster_runs_in_containers_and_htcondor_reads_its_log() {
    for who in common::modes() {
        let Some(pool) = Pool::new(who, "") else {
            return;
        };
        fs::write(pool.path("input.txt"), "payload\n").unwrap();
        common::give_to_user(&pool.path("input.txt"), who);
        let cluster = pool.submit(
            "hello.sub",
            "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/sh\n\
             arguments = \"-c 'echo job $(Process) in $PWD; cat input.txt; id -u; echo made > result.$(Process); sleep 1; exit $(Process)'\"\n\
             transfer_executable = false\ntransfer_input_files = input.txt\n\
             job_ad_information_attrs = Owner, ProcId, ExitCode, NoSuchAttribute\n\
             output = out.$(Process)\nerror = err.$(Process)\nlog = jobs.log\nqueue 4\n",
        );
        pool.wait_log("jobs.log", 60);
        let uid = who.uid();
        for p in 0..4 {
            let out = fs::read_to_string(pool.path(&format!("out.{p}"))).unwrap();
            assert_eq!(out, format!("job {p} in /srv\npayload\n{uid}\n"), "{who:?}");
            assert_eq!(
                fs::read_to_string(pool.path(&format!("result.{p}"))).unwrap(),
                "made\n"
            );
        }
        // Completed jobs leave the queue for the history, with HTCondor's attributes.
        assert!(pool.af(false, "true", &["ProcId"]).is_empty());
        let rows = pool.af(
            true,
            &format!("ClusterId == {cluster}"),
            &[
                "ProcId",
                "JobStatus",
                "ExitCode",
                "ExitBySignal",
                "NumJobStarts",
            ],
        );
        assert_eq!(rows.len(), 4);
        for r in rows {
            let p: i64 = r[0].parse().unwrap();
            assert_eq!(
                r[1..],
                [String::from("4"), p.to_string(), "false".into(), "1".into()]
            );
        }
        let Some(events) = oracle_events(&pool.path("jobs.log")) else {
            continue;
        };
        let owner = who.name();
        for p in 0..4 {
            let all = events_of(&events, p);
            check_job_ad_information(&all, owner, p);
            let mine: Vec<_> = all
                .into_iter()
                .filter(|e| e["type"] != "JOB_AD_INFORMATION")
                .collect();
            let t = types(&mine);
            assert_eq!(t.first().map(String::as_str), Some("SUBMIT"), "{t:?}");
            assert!(t.contains(&"EXECUTE".into()), "{t:?}");
            let end = *mine.last().unwrap();
            assert_eq!(end["type"], "JOB_TERMINATED", "{t:?}");
            assert_eq!(end["TerminatedNormally"], true);
            assert_eq!(end["ReturnValue"], p);
            assert_eq!(end["cluster"], cluster);
            assert!(end["ReceivedBytes"].as_f64().unwrap_or(0.0) >= 8.0, "{end}");
            check_file_transfer_events(&mine);
        }
        // The job ad keeps the times of the steps, as HTCondor's shadow records them.
        let rows = pool.af(
            true,
            &format!("ClusterId == {cluster} && ProcId == 0"),
            &[
                "TransferInStarted",
                "TransferOutFinished",
                "NumInputXferStarts",
            ],
        );
        let step_time = |step: i64| {
            events_of(&events, 0)
                .into_iter()
                .find(|e| e["type"] == "FILE_TRANSFER" && e["Type"] == step)
                .map(|e| e["timestamp"].to_string())
        };
        assert_eq!(Some(rows[0][0].clone()), step_time(2), "{rows:?}");
        assert_eq!(Some(rows[0][1].clone()), step_time(6), "{rows:?}");
        assert_eq!(rows[0][2], "1");
    }
}

#[test]
fn failures_hold_with_htcondor_codes_and_release_retries() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let cluster = pool.submit(
        "bad.sub",
        "universe = container\ncontainer_image = @ROOTFS@\ntransfer_executable = false\nlog = bad.log\n\
         executable = /bin/sh\narguments = \"-c 'head -c 400000000 /dev/zero | tail > /dev/null'\"\nrequest_memory = 100M\nqueue\n\
         arguments =\ncontainer_image = /nonexistent/image\nexecutable = /bin/true\nqueue\n\
         container_image = @ROOTFS@\nexecutable = /bin/no-such-program\nqueue\n\
         executable = /bin/true\ntransfer_input_files = missing.txt\nqueue\n\
         transfer_input_files =\ntransfer_output_files = never-made.txt\nqueue\n",
    );
    pool.until_q(&format!("ClusterId == {cluster} && JobStatus == 5"), 5, 60);
    let rows = pool.af(
        false,
        "true",
        &["ProcId", "HoldReasonCode", "HoldReasonSubCode"],
    );
    let codes: Vec<(String, String)> = rows.iter().map(|r| (r[1].clone(), r[2].clone())).collect();
    assert_eq!(
        codes,
        [
            ("34", "102"),
            ("35", "0"),
            ("6", "2"),
            ("13", "2"),
            ("12", "2")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let reason = |p: i64| pool.af(false, &format!("ProcId == {p}"), &["HoldReason"])[0].join(" ");
    let oom = reason(0);
    assert!(
        oom.contains("memory limit of 128 megabytes") && oom.contains("Peak usage"),
        "{oom}"
    );
    assert!(!oom.contains("137"), "{oom}");
    assert!(reason(1).contains("/nonexistent/image"), "{}", reason(1));
    assert!(reason(2).contains("/bin/no-such-program"), "{}", reason(2));
    assert!(reason(3).contains("missing.txt"), "{}", reason(3));
    assert!(reason(4).contains("never-made.txt"), "{}", reason(4));
    let analysis = pool.cmd(&["q", "-better-analyze", &format!("{cluster}.3")]);
    assert!(
        analysis.stdout.contains("Hold reason") && analysis.stdout.contains("(code 13"),
        "{}",
        analysis.stdout
    );

    // Fixing the cause and releasing runs the job again, to completion.
    fs::write(pool.path("missing.txt"), "now here").unwrap();
    let r = pool.cmd(&["release", &format!("{cluster}.3")]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    pool.until_q(&format!("ClusterId == {cluster} && ProcId == 3"), 0, 60);
    let done = pool.af(
        true,
        &format!("ClusterId == {cluster} && ProcId == 3"),
        &["ExitCode", "NumHolds"],
    );
    assert_eq!(done, vec![vec!["0".to_string(), "1".into()]]);
    // A job that is not in the queue is named.
    let r = pool.cmd(&["release", &format!("{cluster}.77")]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("no such job"), "{}", r.stderr);
    let Some(events) = oracle_events(&pool.path("bad.log")) else {
        return;
    };
    let held: Vec<_> = events.iter().filter(|e| e["type"] == "JOB_HELD").collect();
    assert_eq!(held.len(), 5);
    assert_eq!(
        held.iter().find(|e| e["proc"] == 0).unwrap()["HoldReasonCode"],
        34
    );
    assert_eq!(
        held.iter().find(|e| e["proc"] == 0).unwrap()["HoldReasonSubCode"],
        102
    );
    assert!(events
        .iter()
        .any(|e| e["type"] == "JOB_RELEASED" && e["proc"] == 3));
    // A hold the starter asks for (memory, image, executable) is logged first as the
    // starter's error (021), and worded as HTCondor's shadow words it; a failed file
    // transfer is not the starter's error.
    for p in 0..5 {
        let mine = events_of(&events, p);
        let remote: Vec<usize> = (0..mine.len())
            .filter(|&i| mine[i]["type"] == "REMOTE_ERROR")
            .collect();
        if p >= 3 {
            assert!(remote.is_empty(), "job {p}: {:?}", types(&mine));
            continue;
        }
        assert_eq!(remote.len(), 1, "job {p}: {:?}", types(&mine));
        let (err, held) = (mine[remote[0]], mine[remote[0] + 1]);
        assert_eq!(held["type"], "JOB_HELD", "job {p}: {:?}", types(&mine));
        assert_eq!(err["Daemon"], "starter");
        let slot = err["ExecuteHost"].as_str().unwrap_or_default();
        assert!(slot.starts_with("slot1_"), "{err}");
        assert_eq!(err["HoldReasonCode"], held["HoldReasonCode"]);
        assert_eq!(err["HoldReasonSubCode"], held["HoldReasonSubCode"]);
        let msg = err["ErrorMsg"].as_str().unwrap_or_default();
        assert_eq!(
            held["HoldReason"].as_str(),
            Some(format!("Error from {slot}: {msg}").as_str()),
            "{err}"
        );
    }
}

#[test]
fn remove_hold_release_and_policies_on_running_jobs() {
    let Some(pool) = Pool::as_root("PERIODIC_EXPR_INTERVAL = 1\n") else {
        return;
    };
    let c = pool.submit(
        "sleep.sub",
        "universe = container\ncontainer_image = @ROOTFS@\ntransfer_executable = false\nlog = s.log\n\
         executable = /bin/sh\narguments = \"-c 'echo started; sleep 120'\"\noutput = s.out\nqueue 2\n",
    );
    pool.until_q(&format!("ClusterId == {c} && JobStatus == 2"), 2, 30);
    // `petrel ssh` enters the running container, in its scratch directory.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ssh = loop {
        let r = pool.cmd(&[
            "ssh",
            &format!("{c}.0"),
            "sh",
            "-c",
            "pwd; cat _condor_stdout; ps | grep -c sleep",
        ]);
        if r.code == Some(0) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ssh.code, Some(0), "{}{}", ssh.stdout, ssh.stderr);
    assert!(ssh.stdout.starts_with("/srv\nstarted\n"), "{}", ssh.stdout);
    // The second job may still be starting; its output comes once it has echoed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let tail = loop {
        let r = pool.cmd(&["tail", &format!("{c}.1")]);
        if !r.stdout.is_empty() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(tail.stdout, "started\n", "{}", tail.stderr);

    assert_eq!(pool.cmd(&["hold", &format!("{c}.0")]).code, Some(0));
    assert_eq!(pool.cmd(&["rm", &format!("{c}.1")]).code, Some(0));
    pool.until_q(&format!("ClusterId == {c} && JobStatus == 5"), 1, 30);
    pool.until_q(&format!("ClusterId == {c}"), 1, 30);
    let held = pool.af(false, "true", &["HoldReasonCode"]);
    assert_eq!(held, vec![vec!["1".to_string()]]);
    let removed = pool.af(
        true,
        &format!("ClusterId == {c} && ProcId == 1"),
        &["JobStatus"],
    );
    assert_eq!(removed, vec![vec!["3".to_string()]]);
    assert_eq!(pool.cmd(&["rm", &format!("{c}")]).code, Some(0));
    pool.until_q("true", 0, 30);

    // periodic_hold and on_exit_remove with max_retries, as HTCondor evaluates them.
    let p = pool.submit(
        "policy.sub",
        "universe = container\ncontainer_image = @ROOTFS@\ntransfer_executable = false\nlog = p.log\n\
         executable = /bin/sleep\narguments = 60\nperiodic_hold = (time() - JobCurrentStartDate) > 1\n\
         periodic_hold_reason = \"ran too long\"\nperiodic_hold_subcode = 7\nqueue\n\
         periodic_hold = false\nexecutable = /bin/false\narguments =\nmax_retries = 2\nqueue\n",
    );
    pool.until_q(
        &format!("ClusterId == {p} && ProcId == 0 && JobStatus == 5"),
        1,
        30,
    );
    let h = pool.af(
        false,
        &format!("ClusterId == {p} && ProcId == 0"),
        &["HoldReasonCode", "HoldReasonSubCode", "HoldReason"],
    );
    assert_eq!(h[0][..3], ["3".to_string(), "7".into(), "ran".into()]);
    pool.until_q(&format!("ClusterId == {p} && ProcId == 1"), 0, 60);
    let r = pool.af(
        true,
        &format!("ClusterId == {p} && ProcId == 1"),
        &["NumJobStarts", "ExitCode"],
    );
    assert_eq!(r, vec![vec!["3".to_string(), "1".into()]]);
    let Some(events) = oracle_events(&pool.path("s.log")) else {
        return;
    };
    // (The starter still sends the output back when it is stopped; 040 events say so.)
    let mut t0 = types(&events_of(&events, 0));
    t0.retain(|t| t != "FILE_TRANSFER");
    assert_eq!(
        t0,
        ["SUBMIT", "EXECUTE", "JOB_HELD", "JOB_ABORTED"],
        "held while running, then removed"
    );
    assert!(types(&events_of(&events, 1)).contains(&"JOB_ABORTED".to_string()));
}

#[test]
fn a_killed_daemon_loses_and_duplicates_no_job() {
    let Some(mut pool) = Pool::as_root("") else {
        return;
    };
    let n = 500;
    let c = pool.submit(
        "many.sub",
        &format!(
            "universe = container\ncontainer_image = @ROOTFS@\ntransfer_executable = false\nlog = many.log\n\
             executable = /bin/sh\narguments = \"-c 'sleep 0.0$(Process)'\"\nqueue {n}\n"
        ),
    );
    // Let some finish and some run, then kill -9 the daemon in the middle of it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool.af(true, "true", &["ProcId"]).len() < 40 {
        assert!(Instant::now() < deadline, "jobs do not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = pool.cmd(&["pool", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let pid = v["pid"].as_u64().expect("daemon pid");
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    // A dying daemon still holds its socket: a command sent now would be accepted and
    // then dropped unanswered. Wait until it is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    }) {
        assert!(Instant::now() < deadline, "the killed daemon does not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its leader can be a zombie while another of its threads is still exiting, with the
    // socket still listening: it is gone when its lock is free.
    while !Command::new("flock")
        .arg("-n")
        .arg(pool.dir.join("daemon.lock"))
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            Instant::now() < deadline,
            "the killed daemon keeps its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Any pool command restarts it; it reconnects to or re-runs what was running.
    let restarted = pool.cmd(&["q", "-totals"]);
    if restarted.code != Some(0) {
        let report = pool.diagnose();
        let kept = pool.keep();
        panic!(
            "restarting the killed pool: {}{}\n{report}\nthe pool's files are kept in {}",
            restarted.stdout,
            restarted.stderr,
            kept.display()
        );
    }
    let waited = pool.cmd(&["wait", "-wait", "240", "many.log"]);
    if waited.code != Some(0) {
        let report = pool.diagnose();
        let kept = pool.keep();
        panic!(
            "the jobs did not all finish within 240 s of the restart ({}{})\n{report}\n\
             the pool's files are kept in {}",
            waited.stdout,
            waited.stderr,
            kept.display()
        );
    }
    let history = pool.af(true, &format!("ClusterId == {c}"), &["ProcId", "JobStatus"]);
    let mut procs: Vec<i64> = history.iter().map(|r| r[0].parse().unwrap()).collect();
    procs.sort();
    assert_eq!(
        procs,
        (0..n).collect::<Vec<_>>(),
        "every job finished exactly once"
    );
    assert!(history.iter().all(|r| r[1] == "4"));
    assert!(pool.af(false, "true", &["ProcId"]).is_empty());
    let log = fs::read_to_string(pool.path("many.log")).unwrap();
    for p in 0..n {
        let head = format!("005 ({c:03}.{p:03}.000)");
        assert_eq!(
            log.matches(&head).count(),
            1,
            "job {c}.{p} terminated once in the log"
        );
    }
}

/// Stops root's pool in this directory when dropped, so a failed test leaves no daemon.
struct StopPool(PathBuf);

impl Drop for StopPool {
    fn drop(&mut self) {
        let _ = common::petrel(As::Root)
            .args(["pool", "stop"])
            .env("PETREL_POOL_DIR", &self.0)
            .output();
    }
}

#[test]
fn a_starter_the_killed_daemon_never_recorded_is_stopped_at_restart() {
    // The daemon starts a starter, then records the job as running; killed in between,
    // it leaves a starter for a job the queue says is idle. The restarted daemon must
    // stop it before running the job again, or two starters share one scratch directory
    // (and remove it under each other).
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let c = pool.submit(
        "once.sub",
        "universe = container\ncontainer_image = @ROOTFS@\ntransfer_executable = false\n\
         executable = /bin/true\nlog = once.log\nhold = true\nqueue\n",
    );
    assert_eq!(pool.cmd(&["pool", "stop"]).code, Some(0));
    // Stands in for the unrecorded starter: its command line names this job's spool.
    let spool = pool.dir.join("spool").join(format!("{c}.0"));
    let mut orphan = {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .args(["-c", "sleep 300; :", "starter"])
            .arg(&spool)
            .process_group(0)
            .spawn()
            .unwrap()
    };
    assert_eq!(pool.cmd(&["pool", "start"]).code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = orphan.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = orphan.kill();
            panic!("the unrecorded starter was left running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    // The job itself is untouched, and runs once released.
    assert_eq!(pool.cmd(&["release", &c.to_string()]).code, Some(0));
    pool.wait_log("once.log", 60);
    let done = pool.af(
        true,
        &format!("ClusterId == {c}"),
        &["ExitCode", "NumJobStarts"],
    );
    assert_eq!(done, vec![vec!["0".to_string(), "1".into()]]);
}

#[test]
fn users_of_a_shared_pool_act_only_on_their_own_jobs() {
    if !common::is_root() || common::test_user().is_none() {
        return;
    }
    let Some(pool) = Pool::new(As::User, "") else {
        return;
    };
    // The pool is root's (a system pool) in a directory every user can reach.
    let shared = pool.work.parent().unwrap().join("system-pool");
    fs::create_dir(&shared).unwrap();
    // The embedded runtime only, as in the pool fixture (and its hardening is what
    // `petrel ssh` is checked for below).
    fs::write(
        shared.join("config"),
        "NEGOTIATOR_INTERVAL = 1\nCONTAINER_RUNTIMES = embedded\n",
    )
    .unwrap();
    let as_root = |args: &[&str]| -> Ran {
        common::petrel(As::Root)
            .args(args)
            .env("PETREL_POOL_DIR", &shared)
            .current_dir(&pool.work)
            .output()
            .unwrap()
            .into()
    };
    let as_user = |args: &[&str]| -> Ran {
        common::petrel(As::User)
            .args(args)
            .env("PETREL_POOL_DIR", &shared)
            .current_dir(&pool.work)
            .output()
            .unwrap()
            .into()
    };
    assert_eq!(as_root(&["pool", "start"]).code, Some(0));
    let _stop = StopPool(shared.clone());
    let sub = pool.path("u.sub");
    fs::write(&sub, format!("universe = container\ncontainer_image = {}\nexecutable = /bin/sh\narguments = \"-c '(id -u; id -g) > w.tmp; mv w.tmp who; sleep 30'\"\ntransfer_executable = false\nhold = true\nqueue\n", pool.rootfs.display())).unwrap();
    common::give_to_user(&sub, As::User);
    let r = as_user(&["submit", "u.sub"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    // Root's own job, which the user must neither see nor touch.
    let r = as_root(&["submit", "u.sub"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let mine = as_user(&["q", "-af", "ClusterId", "Owner"]);
    assert_eq!(mine.stdout.lines().count(), 1, "{}", mine.stdout);
    assert!(mine.stdout.contains(common::TEST_USER), "{}", mine.stdout);
    let theirs = as_user(&["rm", "2"]);
    assert_eq!(theirs.code, Some(1));
    assert!(
        theirs.stderr.contains("permission denied"),
        "{}",
        theirs.stderr
    );
    let r = as_user(&["pool", "stop"]);
    assert_ne!(
        r.code,
        Some(0),
        "a user must not stop root's pool: {}",
        r.stdout
    );
    assert_eq!(
        as_root(&["q", "-af", "ClusterId"]).stdout.lines().count(),
        2
    );
    // The user's own job runs as the user.
    assert_eq!(as_user(&["release", "1"]).code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut scratch_owner = None;
    while Instant::now() < deadline && scratch_owner.is_none() {
        scratch_owner = fs::read_dir(shared.join("execute"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| {
                use std::os::unix::fs::MetadataExt;
                fs::read_to_string(e.path().join("who"))
                    .ok()
                    .map(|w| (w, e.metadata().unwrap().uid()))
            });
        std::thread::sleep(Duration::from_millis(100));
    }
    let (uid, gid) = common::test_user().unwrap();
    assert_eq!(scratch_owner, Some((format!("{uid}\n{gid}\n"), uid)));
    // The owner enters their running job, as themselves, in its scratch directory; the
    // command's output, error and exit status come back.
    let ssh = as_user(&[
        "ssh",
        "1",
        "sh",
        "-c",
        "id -u; id -g; pwd; cat who >&2; exit 3",
    ]);
    assert_eq!(
        (ssh.code, ssh.stdout.as_str(), ssh.stderr.as_str()),
        (
            Some(3),
            format!("{uid}\n{gid}\n/srv\n").as_str(),
            format!("{uid}\n{gid}\n").as_str()
        )
    );
    let ssh = as_user(&["ssh", "1", "cat", "/proc/self/status"]);
    assert!(
        ssh.stdout.contains("CapEff:\t0000000000000000") && ssh.stdout.contains("NoNewPrivs:\t1"),
        "{}{}",
        ssh.stdout,
        ssh.stderr
    );
    // Standard input is the owner's too.
    let mut child = common::petrel(As::User)
        .args(["ssh", "1", "sh", "-c", "read line; echo got $line"])
        .env("PETREL_POOL_DIR", &shared)
        .current_dir(&pool.work)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\n");
    // A signal to `petrel ssh` reaches the command.
    let mut child = common::petrel(As::User)
        .args([
            "ssh",
            "1",
            "sh",
            "-c",
            "trap 'echo caught; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
        ])
        .env("PETREL_POOL_DIR", &shared)
        .current_dir(&pool.work)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(
        (child.wait().unwrap().code(), rest.as_str()),
        (Some(7), "caught\n")
    );
    // A client killed outright takes its command with it.
    let mut child = common::petrel(As::User)
        .args(["ssh", "1", "sh", "-c", "echo ready; exec sleep 789"])
        .env("PETREL_POOL_DIR", &shared)
        .current_dir(&pool.work)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    child.stdout.take().unwrap().read_exact(&mut ready).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ps = as_user(&["ssh", "1", "ps", "-o", "args"]);
        if !ps.stdout.contains("sleep 789") {
            break;
        }
        assert!(Instant::now() < deadline, "left running: {}", ps.stdout);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Root's running job is not theirs to enter.
    assert_eq!(as_root(&["release", "2"]).code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    while as_root(&["q", "-af", "JobStatus"]).stdout != "2\n2\n" {
        assert!(Instant::now() < deadline, "root's job does not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let theirs = as_user(&["ssh", "2", "true"]);
    assert_eq!(theirs.code, Some(125), "{}{}", theirs.stdout, theirs.stderr);
    assert!(theirs.stderr.contains("not your job"), "{}", theirs.stderr);
    // Nor does asking the daemon directly, past the client's own check, get the user in.
    let socket = shared.join("pool.sock");
    let reply = std::thread::spawn(move || {
        use petrel_pool::proto::{read_frame, write_frame, Request, Response};
        let mut s = petrel_pool::creds::as_user(uid, gid, || UnixStream::connect(&socket))
            .unwrap()
            .unwrap();
        let enter = Request::Enter {
            job: petrel_pool::JobId::new(2, 0),
            command: vec!["id".into()],
            term: None,
        };
        write_frame(&mut s, &enter).unwrap();
        match read_frame::<Response>(&mut s).unwrap() {
            Some(Response::Error { message }) => message,
            other => format!("{other:?}"),
        }
    })
    .join()
    .unwrap();
    assert!(reply.contains("not your job"), "{reply}");
    assert_eq!(as_root(&["rm", "-all"]).code, Some(0));
    assert_eq!(as_root(&["pool", "stop"]).code, Some(0));
}

#[test]
fn malformed_requests_and_a_missing_scratch_root_do_not_kill_the_daemon() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    assert_eq!(pool.cmd(&["pool", "start"]).code, Some(0));
    let socket = pool.dir.join("pool.sock");
    for bad in [
        b"\x00\x00\x00\x05{{{{{".to_vec(),
        b"\xff\xff\xff\xff".to_vec(),
        b"\x00\x00\x00\x20{\"op\":\"submit\",\"cluster\":\"x\"}   ".to_vec(),
        b"\x00\x00\x00\x10short".to_vec(),
    ] {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.write_all(&bad).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply);
        assert!(text.contains("error"), "no refusal for {bad:?}: {text}");
    }
    // A submit for a cluster nobody reserved is refused, whole.
    let mut s = UnixStream::connect(&socket).unwrap();
    let body = br#"{"op":"submit","cluster":999,"cluster_ad":[],"procs":[[["ProcId","0"]]]}"#;
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("not reserved"));
    // The execute directory disappears: the job goes back to idle with the reason.
    fs::remove_dir_all(pool.dir.join("execute")).unwrap();
    let c = pool.submit("t.sub", "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\ntransfer_executable = false\nlog = t.log\nqueue\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = pool.af(
            false,
            &format!("ClusterId == {c}"),
            &["JobStatus", "LastVacateReason"],
        );
        if r.len() == 1 && r[0][0] == "1" && r[0].join(" ").contains("execute directory") {
            break;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = pool.cmd(&["q", "-totals"]);
    assert!(r.stdout.contains("1 idle"), "{}", r.stdout);
    // The starter's failure is logged as its error (021), then the eviction.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(pool.path("t.log")).is_ok_and(|l| l.contains("\n004 (")) {
        assert!(Instant::now() < deadline, "no eviction in the log");
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(events) = oracle_events(&pool.path("t.log")) else {
        return;
    };
    let t = types(&events_of(&events, 0));
    assert_eq!(
        t[..4],
        ["SUBMIT", "EXECUTE", "REMOTE_ERROR", "JOB_EVICTED"],
        "{t:?}"
    );
    let err = &events[2];
    assert_eq!(err["Daemon"], "starter");
    assert!(
        err["ErrorMsg"]
            .as_str()
            .is_some_and(|m| m.contains("execute directory")),
        "{err}"
    );
    assert!(err.get("HoldReasonCode").is_none(), "{err}");
}

#[test]
fn condor_names_and_analysis() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let c = pool.submit(
        "big.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\ntransfer_executable = false\nrequest_cpus = 4096\nqueue\n",
    );
    let link = pool.work.join("condor_q");
    std::os::unix::fs::symlink(common::petrel_bin(), &link).unwrap();
    let out = Command::new(&link)
        .args(["-af", "ClusterId", "RequestCpus"])
        .env("PETREL_POOL_DIR", &pool.dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{c} 4096\n"));
    let r = pool.cmd(&["q", "-better-analyze", &format!("{c}.0")]);
    assert!(
        r.stdout.contains("can never run") && r.stdout.contains("RequestCpus 4096"),
        "{}",
        r.stdout
    );
    pool.until_slot("HasContainer", "true", 30);
    let s = pool.cmd(&["status", "-af", "Name", "HasContainer", "HasSandboxImage"]);
    assert!(
        s.stdout.starts_with("slot1@") && s.stdout.contains("true true"),
        "{}",
        s.stdout
    );
    let j = pool.cmd(&["q", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).expect("q -json is JSON");
    assert_eq!(v[0]["RequestCpus"], 4096);
    let req = v[0]["Requirements"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        req.contains("HasContainer") && req.contains("HasSandboxImage"),
        "{req}"
    );
}
