//! `petrel`: a high-throughput batch system whose jobs run in containers.
//!
//! This binary is glue: every command parses its flags here and calls a library crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod units;

/// Petrel runs batch jobs in containers, with HTCondor's job semantics.
#[derive(Parser, Debug)]
#[command(name = "petrel", version, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); PETREL_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one command in a container, with petrel's embedded rootless runtime.
    Run(Box<commands::run::Args>),
    /// Manage the image store: pull, import, list, inspect, remove, export, collect garbage.
    Image(commands::image::Args),
    /// Evaluate ClassAd expressions in the context of ads, as HTCondor's classad_eval does.
    #[command(name = "classad-eval")]
    ClassadEval(commands::classad_eval::Args),
    /// Submit jobs described by an HTCondor submit file to the pool (condor_submit;
    /// -dry-run prints the job ads instead).
    Submit(commands::submit::Args),
    /// Show the queue (condor_q): -nobatch, -constraint, -af, -long, -json, -hold, -run,
    /// -better-analyze JOB.
    Q(commands::queue::Args),
    /// Remove jobs (condor_rm): CLUSTER[.PROC]..., -constraint EXPR or -all.
    Rm(commands::act::Args),
    /// Hold jobs (condor_hold): CLUSTER[.PROC]..., -constraint EXPR or -all.
    Hold(commands::act::Args),
    /// Release held jobs (condor_release): CLUSTER[.PROC]..., -constraint EXPR or -all.
    Release(commands::act::Args),
    /// Finished jobs (condor_history): -constraint, -af, -long, -json, -limit.
    History(commands::queue::Args),
    /// Wait for the jobs of an event log, or a job, to finish (condor_wait).
    Wait(commands::wait::Args),
    /// Print a running job's standard output or error (condor_tail): -f, -stderr.
    Tail(commands::wait::TailArgs),
    /// A shell (or a command) inside a running job's container (condor_ssh_to_job).
    Ssh(commands::pool::SshArgs),
    /// The pool's slots, their container capabilities and what runs on them (condor_status).
    Status(commands::pool::StatusArgs),
    /// The pool daemon: run, start, stop, status.
    Pool(commands::pool::Args),
    /// Which container runtimes work here, found by running test jobs in each.
    Probe(commands::probe::Args),
    /// One job's starter (started by the pool daemon).
    #[command(hide = true)]
    Starter(commands::pool::StarterArgs),
    /// `petrel ssh` through the pool daemon (started by the daemon).
    #[command(hide = true)]
    Enter(commands::pool::EnterArgs),
}

/// HTCondor's command names, which run the same code when petrel is invoked under them
/// (a symlink `condor_q -> petrel`).
const CONDOR_NAMES: [(&str, &str); 10] = [
    ("condor_submit", "submit"),
    ("condor_q", "q"),
    ("condor_rm", "rm"),
    ("condor_hold", "hold"),
    ("condor_release", "release"),
    ("condor_history", "history"),
    ("condor_wait", "wait"),
    ("condor_tail", "tail"),
    ("condor_ssh_to_job", "ssh"),
    ("condor_status", "status"),
];

/// The command line, with `condor_q ARGS` read as `petrel q ARGS`.
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("petrel")
        .to_string();
    if let Some((_, sub)) = CONDOR_NAMES.iter().find(|(c, _)| *c == name) {
        args[0] = "petrel".into();
        args.insert(1, (*sub).into());
    }
    args
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse_from(arguments());
    if matches!(cli.command, Command::Starter(_)) {
        init_starter_logging();
    } else {
        init_logging(cli.verbose);
    }
    let result = match cli.command {
        Command::Run(args) => commands::run::run(*args),
        Command::Image(args) => commands::image::run(args),
        Command::ClassadEval(args) => commands::classad_eval::run(args),
        Command::Submit(args) => commands::submit::run(args),
        Command::Q(args) => commands::queue::run_q(args),
        Command::Rm(args) => commands::act::run(petrel_pool::proto::Action::Remove, args),
        Command::Hold(args) => commands::act::run(petrel_pool::proto::Action::Hold, args),
        Command::Release(args) => commands::act::run(petrel_pool::proto::Action::Release, args),
        Command::History(args) => commands::queue::run_history(args),
        Command::Wait(args) => commands::wait::run_wait(args),
        Command::Tail(args) => commands::wait::run_tail(args),
        Command::Ssh(args) => commands::pool::run_ssh(args),
        Command::Status(args) => commands::pool::run_status(args),
        Command::Pool(args) => commands::pool::run(args),
        Command::Probe(args) => commands::probe::run(args),
        Command::Starter(args) => commands::pool::run_starter(args),
        Command::Enter(args) => commands::pool::run_enter(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Errors quote what they were given (a daemon's refusal, a parser's); however
            // long that was, the message stays readable.
            let message = petrel_classad::excerpt(&format!("{err:#}"), ERROR_LIMIT);
            eprintln!("petrel: {message}");
            ExitCode::from(commands::EXIT_PETREL_ERROR)
        }
    }
}

/// The most characters of an error message `petrel` prints.
const ERROR_LIMIT: usize = 4096;

/// Output into a pipe whose reader has gone (`petrel history -long | head -1`) ends the
/// command quietly and successfully, as Unix tools end; Rust ignores SIGPIPE, so the write
/// fails with EPIPE instead. A command that returns the error is caught in `main`; a
/// `println!` panics, and the release build aborts on panics, so the panic hook ends the
/// process first. Any other panic goes to the default hook.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Whether a command failed only because its output pipe was closed.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time();
    // A directive filter only when asked for: building one costs more than the rest of a
    // short `petrel run`, and a plain level needs none.
    match std::env::var("PETREL_LOG") {
        Ok(directives) => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
            .init(),
        Err(_) => builder.with_max_level(level).init(),
    }
}

/// The starter puts the job's own files on fds 1 and 2, so it logs to a copy of the
/// descriptor it was started with (the job's `starter.log`), with timestamps.
fn init_starter_logging() {
    use std::os::fd::AsFd;
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return;
    };
    let file = std::sync::Mutex::new(std::fs::File::from(fd));
    tracing_subscriber::fmt()
        .with_writer(file)
        .with_target(false)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
}
