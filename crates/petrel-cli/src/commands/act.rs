//! `petrel rm|hold|release` (condor_rm, condor_hold, condor_release).

use anyhow::bail;
use petrel_pool::proto::{Action, Request, Response};
use petrel_pool::JobSelector;

use super::pool_client::{self as pc, ArgWalk};

pub type Args = super::pool_client::CondorArgs;

const USAGE: &str =
    "usage: petrel rm|hold|release CLUSTER[.PROC]... | -constraint EXPR | -all [-reason TEXT]";

pub fn run(action: Action, args: Args) -> anyhow::Result<u8> {
    let mut targets: Vec<JobSelector> = Vec::new();
    let mut constraint = None;
    let mut all = false;
    let mut reason = None;
    let mut w = ArgWalk::new(&args.args, USAGE);
    while let Some(a) = w.next_arg() {
        match pc::flag(a) {
            Some("constraint" | "const") => constraint = Some(w.value("constraint")?.to_string()),
            Some("all" | "a") => all = true,
            Some("reason") => reason = Some(w.value("reason")?.to_string()),
            Some("help" | "h") => {
                println!("{USAGE}");
                return Ok(0);
            }
            Some(_) => return Err(w.unknown(a)),
            None => targets.push(a.parse().map_err(anyhow::Error::msg)?),
        }
    }
    if targets.is_empty() && constraint.is_none() && !all {
        bail!("no jobs named\n{USAGE}");
    }
    let mut client = pc::connect()?;
    let named_constraint = constraint.is_some();
    let response = client.call(&Request::Act {
        action,
        targets,
        constraint,
        all,
        reason,
    })?;
    let Response::Acted { done, skipped } = response else {
        bail!("unexpected answer from the pool: {response:?}");
    };
    let verb = action.verb();
    let mut clusters: Vec<i64> = done.iter().map(|j| j.cluster).collect();
    clusters.dedup();
    if all {
        println!(
            "All jobs {} ({}).",
            if done.is_empty() {
                "were already"
            } else {
                verb
            },
            done.len()
        );
    } else if named_constraint {
        println!("Jobs matching constraint {verb} ({}).", done.len());
    } else {
        for id in &done {
            println!("Job {id} {verb}.");
        }
    }
    for (id, why) in &skipped {
        if id.proc < 0 {
            eprintln!(
                "Couldn't find/{} cluster {}: {why}",
                action_word(action),
                id.cluster
            );
        } else {
            eprintln!("Couldn't find/{} job {id}: {why}", action_word(action));
        }
    }
    Ok(
        if skipped.is_empty() || !done.is_empty() && named_constraint {
            0
        } else {
            1
        },
    )
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Remove => "remove",
        Action::Hold => "hold",
        Action::Release => "release",
    }
}
