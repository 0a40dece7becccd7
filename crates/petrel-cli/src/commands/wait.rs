//! `petrel wait` (condor_wait) and `petrel tail` (condor_tail).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use petrel_pool::proto::{Request, Response};
use petrel_pool::{JobId, JobSelector};
use petrel_userlog::{Follower, JobFilter, JobTracker};

use super::pool_client::{self as pc, ArgWalk};

pub type Args = super::pool_client::CondorArgs;

const WAIT_USAGE: &str = "usage: petrel wait [-wait SECONDS] [-status] LOG [CLUSTER[.PROC]]\n       petrel wait [-wait SECONDS] CLUSTER[.PROC]";

/// Exit status of `condor_wait` when the time ran out.
const TIME_EXPIRED: u8 = 1;

pub fn run_wait(args: Args) -> anyhow::Result<u8> {
    let mut timeout: Option<Duration> = None;
    let mut status = false;
    let mut positional = Vec::new();
    let mut w = ArgWalk::new(&args.args, WAIT_USAGE);
    while let Some(a) = w.next_arg() {
        match pc::flag(a) {
            Some("wait") => {
                let v = w.value("wait")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("-wait {v}: expected seconds"))?;
                timeout = Some(Duration::from_secs_f64(secs.max(0.0)));
            }
            Some("status") => status = true,
            Some("echo" | "debug") => {}
            Some("help" | "h") => {
                println!("{WAIT_USAGE}");
                return Ok(0);
            }
            Some(_) => return Err(w.unknown(a)),
            None => positional.push(a),
        }
    }
    let timeout = timeout.unwrap_or(Duration::from_secs(u64::MAX / 4));
    match positional.as_slice() {
        [first, rest @ ..]
            if Path::new(first).exists()
                || first.contains('/')
                || !first.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            let filter = match rest {
                [] => JobFilter::all(),
                [job] => job_filter(job)?,
                _ => bail!("too many arguments\n{WAIT_USAGE}"),
            };
            wait_log(Path::new(first), filter, timeout, status)
        }
        [job] => wait_queue(job.parse().map_err(anyhow::Error::msg)?, timeout),
        _ => bail!("name a log file or a job\n{WAIT_USAGE}"),
    }
}

fn job_filter(text: &str) -> anyhow::Result<JobFilter> {
    let mut parts = text.split('.');
    let mut num = |what: &str| -> anyhow::Result<Option<i64>> {
        parts
            .next()
            .map(|p| {
                p.parse::<i64>()
                    .with_context(|| format!("'{text}': the {what} is not a number"))
            })
            .transpose()
    };
    Ok(JobFilter {
        cluster: num("cluster")?,
        proc: num("proc")?,
        subproc: num("subproc")?,
    })
}

fn wait_log(path: &Path, filter: JobFilter, timeout: Duration, status: bool) -> anyhow::Result<u8> {
    let mut follower = Follower::new(path).with_poll_interval(Duration::from_millis(20));
    let mut tracker = JobTracker::with_filter(filter);
    let deadline = Instant::now() + timeout;
    if status {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match follower.next_entry(left.min(Duration::from_millis(200)))? {
                Some(e) => {
                    println!("{} {} {}", e.id, e.code, event_name(e.code));
                    tracker.observe(&e);
                }
                None if Instant::now() >= deadline => break,
                None => {}
            }
            if tracker.all_done() {
                println!("All jobs done.");
                return Ok(0);
            }
        }
    } else if follower.wait_all_done(&mut tracker, timeout)? {
        println!("All jobs done.");
        return Ok(0);
    }
    println!("Time expired.");
    Ok(TIME_EXPIRED)
}

fn event_name(code: u32) -> &'static str {
    match code {
        0 => "submitted",
        1 => "executing",
        4 => "evicted",
        5 => "terminated",
        6 => "image size updated",
        9 => "aborted",
        12 => "held",
        13 => "released",
        21 => "remote error",
        22 => "disconnected",
        23 => "reconnected",
        28 => "job ad information",
        40 => "file transfer",
        _ => "event",
    }
}

/// Waits until the job (or every job of the cluster) has left the queue.
fn wait_queue(sel: JobSelector, timeout: Duration) -> anyhow::Result<u8> {
    let mut client = pc::connect()?;
    let constraint = pc::ids_constraint(&[sel], None);
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        let left = pc::query(
            &mut client,
            constraint.clone(),
            vec!["JobStatus".into()],
            false,
            None,
        )?;
        let active = left
            .iter()
            .filter(|a| !matches!(a.eval_int("JobStatus"), Some(3 | 4)))
            .count();
        if active == 0 {
            println!("All jobs done.");
            return Ok(0);
        }
        if Instant::now() >= deadline {
            println!("Time expired.");
            return Ok(TIME_EXPIRED);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

pub type TailArgs = super::pool_client::CondorArgs;

const TAIL_USAGE: &str = "usage: petrel tail CLUSTER.PROC [-f|-follow] [-stderr] [-maxbytes N]";

pub fn run_tail(args: TailArgs) -> anyhow::Result<u8> {
    let mut follow = false;
    let mut stderr = false;
    let mut max: u64 = 1024;
    let mut job: Option<JobId> = None;
    let mut w = ArgWalk::new(&args.args, TAIL_USAGE);
    while let Some(a) = w.next_arg() {
        match pc::flag(a) {
            Some("f" | "follow") => follow = true,
            Some("stderr") => stderr = true,
            Some("stdout") => stderr = false,
            Some("maxbytes") => {
                let v = w.value("maxbytes")?;
                max = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("-maxbytes {v}: expected a number"))?;
            }
            Some("help" | "h") => {
                println!("{TAIL_USAGE}");
                return Ok(0);
            }
            Some(_) => return Err(w.unknown(a)),
            None => match a.parse().map_err(anyhow::Error::msg)? {
                JobSelector::Job(j) => job = Some(j),
                JobSelector::Cluster(c) => job = Some(JobId::new(c, 0)),
            },
        }
    }
    let Some(job) = job else {
        bail!("name a job\n{TAIL_USAGE}")
    };
    let mut client = pc::connect()?;
    let info = |client: &mut petrel_pool::Client| -> anyhow::Result<(i64, Option<String>, Option<String>)> {
        match client.call(&Request::JobInfo { job })? {
            Response::JobInfo { status, stdout, stderr, .. } => Ok((status, stdout, stderr)),
            other => bail!("unexpected answer from the pool: {other:?}"),
        }
    };
    let (status, out, err) = info(&mut client)?;
    let path = if stderr { err } else { out };
    let Some(path) = path.filter(|_| status == 2) else {
        bail!("job {job} is not running, so it has no output to tail");
    };
    // The daemon marks a job running when it starts the starter; the file appears once
    // the starter has set the job up.
    let mut file = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if info(&mut client).map(|(s, _, _)| s != 2).unwrap_or(true) {
                    bail!("job {job} stopped running before it had any output");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e).with_context(|| format!("opening {path}")),
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut stdout = std::io::stdout().lock();
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    stdout.write_all(&buf)?;
    stdout.flush()?;
    if !follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        buf.clear();
        file.read_to_end(&mut buf)?;
        stdout.write_all(&buf)?;
        stdout.flush()?;
        if buf.is_empty() && info(&mut client).map(|(s, _, _)| s != 2).unwrap_or(true) {
            break;
        }
    }
    Ok(0)
}
