//! `petrel pool` (the daemon), `petrel status` (condor_status), `petrel ssh`
//! (condor_ssh_to_job) and the hidden `petrel starter`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use petrel_classad::ClassAd;
use petrel_pool::proto::{Request, Response};
use petrel_pool::{default_pool_dir, JobId, JobSelector, PoolPaths};

use super::pool_client::{self as pc, af_value, ArgWalk};

const POOL_HELP: &str = "\
The pool is HTCondor's schedd, negotiator and startd in one process, for this machine.
Every pool command starts it on first use; `petrel pool stop` stops it (running jobs go
back to idle and are logged as evicted), and a restart carries on with the queue.

Where it lives: PETREL_POOL_DIR, else $XDG_STATE_HOME/petrel/pool (a user's own pool), or
/var/lib/petrel/pool for root (the system pool, open to every local user, each acting
only on their own jobs). Settings: NAME = value lines in <dir>/config, or PETREL_<NAME>
in the daemon's environment: NUM_CPUS, MEMORY (MiB), DISK (KiB), NEGOTIATOR_INTERVAL,
PERIODIC_EXPR_INTERVAL (seconds), QUEUE_SUPER_USERS, EXECUTE, SLOT_ATTR_<Name>.";

#[derive(clap::Args, Debug)]
#[command(after_help = POOL_HELP)]
pub struct Args {
    #[command(subcommand)]
    command: Option<PoolCommand>,
}

#[derive(clap::Subcommand, Debug)]
enum PoolCommand {
    /// Run the daemon in the foreground (what clients start in the background).
    Run,
    /// Start the daemon in the background, if it is not running.
    Start,
    /// Stop the daemon: running jobs are vacated back to idle.
    Stop,
    /// Whether the daemon runs, its pid, and its directory.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let dir = default_pool_dir();
    match args.command.unwrap_or(PoolCommand::Run) {
        PoolCommand::Run => {
            petrel_pool::daemon::run(PoolPaths::new(&dir))?;
            Ok(0)
        }
        PoolCommand::Start => {
            let mut c = pc::connect()?;
            c.call(&Request::Hello)?;
            println!("pool running in {}", dir.display());
            Ok(0)
        }
        PoolCommand::Stop => {
            let mut c = match pc::connect_running() {
                Ok(c) => c,
                // A pool this user may not trust is not theirs to stop: say why.
                Err(e) if pc::is_refusal(&e) => return Err(e),
                Err(_) => {
                    println!("pool in {} is not running", dir.display());
                    return Ok(0);
                }
            };
            c.call(&Request::Stop)?;
            // The socket disappears when the daemon has finished.
            let socket = PoolPaths::new(&dir).socket();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while socket.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            println!("pool in {} stopped", dir.display());
            Ok(0)
        }
        PoolCommand::Status { json } => {
            let (running, pid) =
                match pc::connect_running().and_then(|mut c| Ok(c.call(&Request::Hello)?)) {
                    Ok(Response::Hello { pid, .. }) => (true, Some(pid)),
                    Err(e) if pc::is_refusal(&e) => return Err(e),
                    _ => (false, None),
                };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"running": running, "pid": pid, "dir": dir.display().to_string()})
                );
            } else if running {
                println!(
                    "pool running in {} (pid {})",
                    dir.display(),
                    pid.unwrap_or(0)
                );
            } else {
                println!("pool in {} is not running", dir.display());
            }
            Ok(if running { 0 } else { 1 })
        }
    }
}

pub type StatusArgs = super::pool_client::CondorArgs;

const STATUS_USAGE: &str = "usage: petrel status [-long] [-json] [-af ATTR...]";

pub fn run_status(args: StatusArgs) -> anyhow::Result<u8> {
    let (mut long, mut json, mut af) = (false, false, Vec::new());
    let mut w = ArgWalk::new(&args.args, STATUS_USAGE);
    while let Some(a) = w.next_arg() {
        match pc::flag(a) {
            Some("long" | "l") => long = true,
            Some("json") => json = true,
            Some("af" | "autoformat") => af = w.values(),
            Some("help" | "h") => {
                println!("{STATUS_USAGE}");
                return Ok(0);
            }
            _ => return Err(w.unknown(a)),
        }
    }
    let mut client = pc::connect()?;
    let Response::Status { slots } = client.call(&Request::Status)? else {
        bail!("unexpected answer from the pool");
    };
    let ads: Vec<ClassAd> = slots
        .iter()
        .filter_map(|t| ClassAd::parse(t).ok())
        .collect();
    if json {
        let items: Vec<String> = ads.iter().map(|a| a.to_json()).collect();
        println!("[\n{}\n]", items.join(",\n"));
    } else if long {
        for ad in &ads {
            println!("{}", ad.to_old_syntax());
        }
    } else if !af.is_empty() {
        for ad in &ads {
            let row: Vec<String> = af.iter().map(|a| af_value(ad, a)).collect();
            println!("{}", row.join(" "));
        }
    } else {
        println!(
            "{:<24} {:<8} {:<7} {:<10} {:<8} {:>5} {:>8} {:>12} JOB",
            "Name", "OpSys", "Arch", "State", "Activity", "Cpus", "Mem", "Disk(KiB)"
        );
        for ad in &ads {
            let dynamic = ad.eval_bool("DynamicSlot") == Some(true);
            println!(
                "{:<24} {:<8} {:<7} {:<10} {:<8} {:>5} {:>8} {:>12} {}",
                af_value(ad, "Name"),
                af_value(ad, "OpSys"),
                af_value(ad, "Arch"),
                if dynamic { "Claimed" } else { "Unclaimed" },
                if dynamic { "Busy" } else { "Idle" },
                ad.eval_int("Cpus").unwrap_or(0),
                ad.eval_int("Memory").unwrap_or(0),
                ad.eval_int("Disk").unwrap_or(0),
                if dynamic {
                    af_value(ad, "JobId")
                } else {
                    String::new()
                }
            );
        }
        if let Some(p) = ads.first() {
            println!();
            let runtimes = match p.eval_string("ContainerRuntimes") {
                None => "(being probed)".to_string(),
                Some(r) if r.is_empty() => "none".to_string(),
                Some(r) => r,
            };
            println!("Container runtimes: {runtimes}");
            // Installed but failing its probe, or blamed by a job: say why, one line each.
            for (name, _) in p.iter() {
                if let Some(stem) = name.strip_suffix("OfflineReason") {
                    let why = p.eval_string(name).unwrap_or_default();
                    println!("  {stem} unavailable: {why}");
                }
            }
            let caps: Vec<&str> = [
                "HasContainer",
                "HasDockerURL",
                "HasSIF",
                "HasSandboxImage",
                "HasSquashfs",
                "HasOCILayout",
                "HasPidNamespaces",
            ]
            .into_iter()
            .filter(|c| p.eval_bool(c) == Some(true))
            .collect();
            println!("Capabilities: {}", caps.join(", "));
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct SshArgs {
    /// The running job: CLUSTER.PROC (or CLUSTER, meaning proc 0).
    job: String,
    /// A command to run instead of an interactive shell.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `petrel ssh JOB`: a shell inside the running job's container, in its namespaces,
/// with its environment's PATH, in its scratch directory. In a pool that is not this
/// user's (a root pool, for a job's owner), the daemon enters the job for them.
pub fn run_ssh(args: SshArgs) -> anyhow::Result<u8> {
    let job = match args.job.parse().map_err(anyhow::Error::msg)? {
        JobSelector::Job(j) => j,
        JobSelector::Cluster(c) => JobId::new(c, 0),
    };
    let mut client = pc::connect()?;
    let Response::JobInfo {
        status,
        container_pid,
        target_dir,
        runtime,
        container_name,
        job_user,
        ..
    } = client.call(&Request::JobInfo { job })?
    else {
        bail!("unexpected answer from the pool");
    };
    let Some(pid) = container_pid.filter(|_| status == 2) else {
        bail!("job {job} is not running (status {status}); only a running job can be entered");
    };
    let term = std::env::var("TERM").ok();
    if !pool_is_mine(&client) {
        return client
            .enter(job, args.command, term)
            .with_context(|| format!("entering job {job}"));
    }
    let running = Running {
        job: job.to_string(),
        pid,
        target_dir,
        runtime,
        container_name,
        user: job_user,
    };
    enter_running(&running, args.command, term, false)
}

/// Whether the pool's daemon runs as this user, so whatever it started this user can
/// enter the same way.
fn pool_is_mine(client: &petrel_pool::Client) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(client.paths.socket())
        // SAFETY: getuid has no preconditions.
        .is_ok_and(|m| m.uid() == unsafe { libc::getuid() })
}

/// A running job, as `petrel ssh` enters it.
struct Running {
    job: String,
    /// The container's init (or, for a job on the host, the job's process).
    pid: i32,
    target_dir: String,
    runtime: Option<String>,
    container_name: Option<String>,
    /// The ids the job runs as.
    user: Option<(u32, u32)>,
}

/// Runs `argv` (a shell when empty) in the running job, through the runtime that runs
/// it. In the embedded runtime the command runs with the caller's mapped ids unless
/// `as_job_user` (the daemon's helper, which is root, runs it as the job's owner); the
/// drivers always run it as the job's owner.
fn enter_running(
    job: &Running,
    argv: Vec<String>,
    term: Option<String>,
    as_job_user: bool,
) -> anyhow::Result<u8> {
    let argv = if argv.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        argv
    };
    let runtime = job.runtime.as_deref().filter(|r| *r != "embedded");
    if let (Some(rt), Some(name)) = (runtime, &job.container_name) {
        let (uid, gid) = job.user.unwrap_or((0, 0));
        let running = petrel_drivers::RunningJob {
            name: name.clone(),
            pid: u32::try_from(job.pid).ok(),
            user: petrel_drivers::User { uid, gid },
            workdir: job.target_dir.clone(),
        };
        // A job the container policy runs without a container: a shell beside it.
        let status = if rt == petrel_pool::starter::HOST_RUNTIME {
            petrel_drivers::bare::exec_running(&running, &argv)
        } else {
            let driver = petrel_drivers::driver(rt).with_context(|| {
                format!("job {} runs in '{rt}', which petrel does not know", job.job)
            })?;
            let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
            driver.exec_running(&running, &argv, tty)
        }
        .with_context(|| format!("entering job {} ({rt})", job.job))?;
        return Ok(status.shell_status() as u8);
    }
    let user = job
        .user
        .filter(|_| as_job_user)
        .map(|(uid, gid)| petrel_runtime::User { uid, gid });
    let spec = petrel_pool::enter::exec_spec(&job.target_dir, argv, term, user);
    let status = petrel_runtime::exec_in(job.pid, &spec)
        .with_context(|| format!("entering job {}", job.job))?;
    Ok(status.shell_status())
}

#[derive(clap::Args, Debug)]
pub struct EnterArgs {
    /// The host pid of the container's init (of the job's process, on the host).
    #[arg(long)]
    pid: i32,
    /// The job owner's uid and gid: the command runs with them.
    #[arg(long)]
    uid: u32,
    #[arg(long)]
    gid: u32,
    /// The job's scratch directory inside the container.
    #[arg(long)]
    dir: String,
    /// The job, for messages.
    #[arg(long)]
    job: String,
    /// The runtime that runs the job, and its name for the container.
    #[arg(long)]
    runtime: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    term: Option<String>,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `petrel ssh` for a job the caller cannot enter: the pool daemon runs this with the
/// caller's terminal. Not for people.
pub fn run_enter(args: EnterArgs) -> anyhow::Result<u8> {
    let running = Running {
        job: args.job,
        pid: args.pid,
        target_dir: args.dir,
        runtime: args.runtime,
        container_name: args.name,
        user: Some((args.uid, args.gid)),
    };
    match enter_running(&running, args.command, args.term, true) {
        Ok(status) => Ok(status),
        Err(e) => {
            eprintln!("petrel: {e:#}");
            Ok(petrel_pool::enter::ENTER_FAILED)
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct StarterArgs {
    /// The job's spool directory, made by the pool daemon.
    spool: PathBuf,
}

/// The starter: run by the daemon, one per running job; not for people.
pub fn run_starter(args: StarterArgs) -> anyhow::Result<u8> {
    petrel_pool::starter::run(&args.spool)?;
    Ok(0)
}
