//! Fast path for large clusters: most procs differ from the previous one only in a few
//! commands (`arguments = $(Process)`, `output = $(x).out`). A [`Plan`] is made once per
//! queue statement from the macros' references: commands whose values cannot change
//! between procs are computed once (in a template ad), and only the commands that depend
//! on `$(Process)`, `$(Step)`, `$(Item)`, loop variables or `$RANDOM_*` are recomputed.
//! When a varying command influences other attributes (the universe, the executable,
//! resources, file transfer, Requirements...), every proc is built in full.

use std::collections::HashMap;

use crate::ad::JobAd;
use crate::commands::{self, Cmd};
use crate::macros::{is_live_name, Expander, LiveVars, MacroSet};
use crate::to_ads::{self, Builder, Settings, R};

/// How the procs of one queue statement are built.
#[derive(Clone, Debug)]
pub enum Plan {
    /// Every proc is built from scratch.
    Full,
    /// Procs are the template with these commands recomputed.
    Partial(Vec<Part>),
}

/// A command recomputed for every proc.
#[derive(Clone, Debug)]
pub enum Part {
    /// `arguments`.
    Arguments,
    /// `environment` / `env`.
    Environment,
    /// `input`, `output`, `error` and their stream/transfer flags.
    StdFiles,
    /// A simple command of the table.
    Simple(&'static Cmd),
    /// `+Attr` / `MY.Attr` attributes (all of them, they are applied last).
    Forced,
}

/// Attributes other parts of the build read back from the ad: a varying `+Attr` naming
/// one of these forces a full build.
const READ_BACK: &[&str] = &[
    "DockerImage",
    "WantDockerImage",
    "WantSIF",
    "ContainerImage",
    "TransferContainer",
    "EncryptExecuteDirectory",
    "ShouldTransferFiles",
    "TransferPlugins",
    "EncryptInputFiles",
    "EncryptOutputFiles",
    "DontEncryptInputFiles",
    "DontEncryptOutputFiles",
    "TransferCheckpoint",
    "PreserveRelativePaths",
    "WhenToTransferOutput",
    "TransferInput",
    "JobUniverse",
    "CUDAVersion",
    "SuccessCheckpointExitCode",
    "In",
    "TransferIn",
    "Iwd",
    "Cmd",
    "Requirements",
    "JobStatus",
];

/// Makes the plan for a queue statement with these macros and loop variables.
pub fn plan(macros: &MacroSet, loop_vars: &[String]) -> Plan {
    let loop_vars: Vec<String> = loop_vars.iter().map(|v| v.to_ascii_lowercase()).collect();
    let mut memo: HashMap<String, bool> = HashMap::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut forced = false;
    for (key, raw) in macros.iter() {
        let lkey = key.to_ascii_lowercase();
        if !varies_text(raw, macros, &loop_vars, &mut memo, &mut Vec::new()) {
            continue;
        }
        let part = if let Some(attr) = key.strip_prefix("MY.") {
            if attr.len() >= 7 && attr[..7].eq_ignore_ascii_case("request")
                || attr.len() >= 7 && attr[..7].eq_ignore_ascii_case("require")
                || READ_BACK.iter().any(|a| a.eq_ignore_ascii_case(attr))
            {
                return Plan::Full;
            }
            forced = true;
            continue;
        } else {
            match lkey.as_str() {
                "arguments" | "args" => Part::Arguments,
                "environment" | "env" => Part::Environment,
                // standard input counts towards DiskUsage: a varying one needs a full build
                "input" | "in" | "stream_input" | "streamin" | "transfer_input" | "transferin" => {
                    return Plan::Full
                }
                "output" | "error" | "out" | "err" | "stream_output" | "stream_error"
                | "streamout" | "streamerr" | "transfer_output" | "transfer_error"
                | "transferout" | "transfererr" => Part::StdFiles,
                _ => match commands::lookup(&lkey) {
                    Some(cmd) if !READ_BACK.iter().any(|a| a.eq_ignore_ascii_case(cmd.attr)) => {
                        if matches!(
                            cmd.attr,
                            "EncryptExecuteDirectory"
                                | "TransferPlugins"
                                | "TransferCheckpoint"
                                | "PreserveRelativePaths"
                                | "DockerNetworkType"
                                | "TransferContainer"
                        ) {
                            return Plan::Full;
                        }
                        Part::Simple(cmd)
                    }
                    Some(_) => return Plan::Full,
                    None if is_known_special(&lkey) => return Plan::Full,
                    // a helper macro: it matters only through the commands that use it
                    None => continue,
                },
            }
        };
        if !parts.iter().any(|p| same_part(p, &part)) {
            parts.push(part);
        }
    }
    // forced attributes are applied last in a full build, so they are re-applied after
    // any recomputed command (one of them may name the same attribute)
    let any_forced = macros.iter().any(|(k, _)| k.starts_with("MY."));
    if forced || (any_forced && !parts.is_empty()) {
        parts.push(Part::Forced);
    }
    Plan::Partial(parts)
}

fn same_part(a: &Part, b: &Part) -> bool {
    match (a, b) {
        (Part::Simple(x), Part::Simple(y)) => x.attr == y.attr,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// Keys read by the special (non-table) parts of the build; a varying one forces a full build.
fn is_known_special(k: &str) -> bool {
    const KEYS: &[&str] = &[
        "universe",
        "jobuniverse",
        "container_image",
        "containerimage",
        "docker_image",
        "dockerimage",
        "container_policy",
        "containerpolicy",
        "initialdir",
        "iwd",
        "executable",
        "cmd",
        "transfer_executable",
        "transferexecutable",
        "getenv",
        "get_env",
        "hold",
        "notification",
        "jobnotification",
        "rank",
        "preferences",
        "leave_in_queue",
        "leavejobinqueue",
        "on_exit_remove",
        "onexitremove",
        "on_exit_hold",
        "onexithold",
        "max_retries",
        "jobmaxretries",
        "success_exit_code",
        "jobsuccessexitcode",
        "retry_until",
        "kill_sig",
        "killsig",
        "remove_kill_sig",
        "removekillsig",
        "hold_kill_sig",
        "holdkillsig",
        "concurrency_limits",
        "concurrencylimits",
        "concurrency_limits_expr",
        "accounting_group",
        "acctgroup",
        "accounting_group_user",
        "acctgroupuser",
        "transfer_input_files",
        "transferinput",
        "transfer_output_files",
        "transferoutput",
        "transfer_output_remaps",
        "transferoutputremaps",
        "should_transfer_files",
        "shouldtransferfiles",
        "when_to_transfer_output",
        "whentotransferoutput",
        "requirements",
        "nice_user",
        "gpus_minimum_capability",
        "gpus_maximum_capability",
        "gpus_minimum_memory",
        "gpus_minimum_runtime",
        "niceuser",
        "periodic_hold",
        "periodichold",
        "periodic_hold_reason",
        "periodicholdreason",
        "periodic_hold_subcode",
        "periodicholdsubcode",
        "periodic_release",
        "periodicrelease",
        "periodic_remove",
        "periodicremove",
        "periodic_vacate",
        "periodicvacate",
        "on_exit_hold_reason",
        "onexitholdreason",
        "on_exit_hold_subcode",
        "onexitholdsubcode",
    ];
    KEYS.contains(&k) || k.starts_with("request") || k.starts_with("require")
}

/// Whether expanding `text` can give a different result from one proc to the next.
fn varies_text(
    text: &str,
    macros: &MacroSet,
    loop_vars: &[String],
    memo: &mut HashMap<String, bool>,
    visiting: &mut Vec<String>,
) -> bool {
    if !text.contains('$') {
        return false;
    }
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let fstart = i + 1;
        let mut j = fstart;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j >= b.len() || b[j] != b'(' {
            i = j.max(i + 1);
            continue;
        }
        let func = text[fstart..j].to_ascii_uppercase();
        if func.starts_with("RANDOM") {
            return true;
        }
        // the argument text up to the matching parenthesis
        let mut depth = 0;
        let mut k = j;
        while k < b.len() {
            match b[k] {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        let arg = &text[j + 1..k.min(b.len())];
        if func != "ENV" {
            for word in arg.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
                if word.is_empty() {
                    continue;
                }
                let lw = word.to_ascii_lowercase();
                if is_live_name(&lw) && lw != "cluster" && lw != "clusterid"
                    || loop_vars.contains(&lw)
                {
                    return true;
                }
                if let Some(v) = memo.get(&lw) {
                    if *v {
                        return true;
                    }
                    continue;
                }
                if visiting.contains(&lw) {
                    return true; // a loop: let the full build report it
                }
                if let Some(raw) = macros.get(&lw) {
                    visiting.push(lw.clone());
                    let v = varies_text(raw, macros, loop_vars, memo, visiting);
                    visiting.pop();
                    memo.insert(lw, v);
                    if v {
                        return true;
                    }
                }
            }
        }
        // also look inside the argument for nested references
        if varies_text(arg, macros, loop_vars, memo, visiting) {
            return true;
        }
        i = k + 1;
    }
    false
}

/// The first proc of a queue statement, which later procs are rebuilt from, with what
/// each rebuild would otherwise look up in it again.
#[derive(Clone, Debug)]
pub struct Template {
    ad: JobAd,
    iwd: std::path::PathBuf,
    /// Where `ProcId` is in `ad`.
    proc_id: Option<usize>,
}

impl Template {
    /// The template made from a proc's fully built ad.
    pub fn new(ad: JobAd, s: &Settings) -> Template {
        let iwd = ad
            .get_string("Iwd")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| s.submit_dir.clone());
        let proc_id = ad.position("ProcId");
        Template { ad, iwd, proc_id }
    }

    /// `ad`, a proc built from this template, made the template again to build the next
    /// proc in (see [`rebuild`]).
    pub fn reset(&self, mut ad: JobAd) -> JobAd {
        ad.reset_to(&self.ad);
        ad
    }
}

/// Builds a proc from the template by recomputing the varying parts, in `scratch` if
/// given (an ad from [`Template::reset`]), else in a copy of the template.
pub fn rebuild(
    template: &Template,
    scratch: Option<JobAd>,
    parts: &[Part],
    macros: &MacroSet,
    defaults: &MacroSet,
    live: &LiveVars,
    s: &Settings,
) -> R<JobAd> {
    let mut b = Builder::from_template(template, scratch, macros, defaults, live, s);
    match template.proc_id {
        Some(i) => b.ad.set_at(i, live.process.to_string()),
        None => b.ad.insert_int("ProcId", live.process),
    }
    for p in parts {
        match p {
            Part::Arguments => to_ads::set_arguments(&mut b)?,
            Part::Environment => {
                b.ad.remove("Env");
                b.ad.remove("EnvDelim");
                to_ads::set_environment(&mut b)?;
            }
            Part::StdFiles => to_ads::set_std_files(&mut b)?,
            Part::Simple(cmd) => to_ads::apply_simple(&mut b, cmd)?,
            Part::Forced => to_ads::set_forced(&mut b)?,
        }
    }
    Ok(b.ad)
}

/// A `Builder` over a template (used by [`rebuild`]).
impl<'a> Builder<'a> {
    fn from_template(
        template: &Template,
        scratch: Option<JobAd>,
        macros: &'a MacroSet,
        defaults: &'a MacroSet,
        live: &'a LiveVars,
        s: &'a Settings,
    ) -> Self {
        Builder {
            ex: Expander {
                macros,
                live,
                defaults,
            },
            macros,
            s,
            ad: scratch.unwrap_or_else(|| template.ad.clone()),
            universe: 5,
            topping: to_ads::Topping::None,
            iwd: template.iwd.clone(),
        }
    }
}
