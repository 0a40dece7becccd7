//! `petrel probe`: which container runtimes work on this machine, found by running test
//! jobs in each (see `petrel_drivers::probe`). One line per runtime: available with its
//! version, or unavailable with the reason. Exit status 0 either way: an unavailable
//! runtime is a finding, not an error.

use std::time::Duration;

use petrel_drivers::{
    parse_preference, Drivers, Health, ImageKind, Probe, ProbeContext, DEFAULT_PREFERENCE,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Probe only this runtime (repeatable): embedded, runc, crun, charliecloud (ch-run),
    /// apptainer, singularity, podman, docker.
    #[arg(long = "runtime", value_name = "NAME")]
    pub runtimes: Vec<String>,

    /// Print the results as JSON (the probes, and the slot attributes they give).
    #[arg(long)]
    pub json: bool,

    /// Also print the slot attributes the results give (`HasContainer = true`, ...).
    #[arg(long)]
    pub ad: bool,

    /// Seconds each test job may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let names: Vec<&str> = if args.runtimes.is_empty() {
        DEFAULT_PREFERENCE.to_vec()
    } else {
        parse_preference(&args.runtimes.join(",")).map_err(anyhow::Error::msg)?
    };
    let drivers = Drivers::new(&names).map_err(anyhow::Error::msg)?;
    let mut ctx = ProbeContext::new();
    ctx.timeout = Duration::from_secs(args.timeout.max(1));
    let probes = drivers.probe(&ctx);
    let attributes = drivers.slot_attributes();
    if args.json {
        let attrs: serde_json::Map<String, serde_json::Value> =
            petrel_drivers::attrs::slot_values(&probes)
                .into_iter()
                .map(|(name, value)| (name, classad_json(&value)))
                .collect();
        let out = serde_json::json!({ "probes": probes, "attributes": attrs });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let width = probes.iter().map(|p| p.runtime.len()).max().unwrap_or(8);
    for probe in &probes {
        println!("{:width$}  {}", probe.runtime, describe(probe));
    }
    if args.ad {
        println!();
        for (name, value) in attributes {
            println!("{name} = {value}");
        }
    }
    Ok(0)
}

/// The rest of a runtime's line.
fn describe(probe: &Probe) -> String {
    match probe.health {
        Health::Healthy => {
            let kinds: Vec<&str> = probe
                .image_kinds
                .iter()
                .map(|k| ImageKind::label(*k))
                .collect();
            format!(
                "available    {} (images: {}; probed in {:.1}s)",
                probe.version.as_deref().unwrap_or("unknown version"),
                kinds.join(", "),
                probe.seconds
            )
        }
        Health::Unhealthy => format!(
            "unavailable  {}",
            probe.reason.as_deref().unwrap_or("its probe failed")
        ),
        Health::Undetected => format!(
            "unavailable  {}",
            probe.reason.as_deref().unwrap_or("not installed")
        ),
    }
}

/// A ClassAd literal as a JSON value (booleans and strings are all the probe gives).
fn classad_json(value: &petrel_classad::Value) -> serde_json::Value {
    match value {
        petrel_classad::Value::Bool(b) => serde_json::Value::Bool(*b),
        petrel_classad::Value::Int(i) => serde_json::Value::from(*i),
        petrel_classad::Value::String(s) => serde_json::Value::String(s.to_string()),
        other => {
            serde_json::Value::String(petrel_classad::Expr::from_value(other.clone()).to_string())
        }
    }
}
