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
    /// Submit jobs described by an HTCondor submit file (-dry-run prints the job ads).
    Submit(commands::submit::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => commands::run::run(*args),
        Command::Image(args) => commands::image::run(args),
        Command::ClassadEval(args) => commands::classad_eval::run(args),
        Command::Submit(args) => commands::submit::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("petrel: {err:#}");
            ExitCode::from(commands::EXIT_PETREL_ERROR)
        }
    }
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
