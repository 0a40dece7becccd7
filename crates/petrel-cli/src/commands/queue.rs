//! `petrel q` (condor_q) and `petrel history` (condor_history).

use std::fmt::Write as _;

use anyhow::bail;
use petrel_classad::ClassAd;
use petrel_pool::proto::{Request, Response};
use petrel_pool::{JobId, JobSelector};

use super::pool_client::{self as pc, af_value, ArgWalk};

pub type Args = super::pool_client::CondorArgs;

const Q_USAGE: &str = "usage: petrel q [CLUSTER[.PROC]...] [-nobatch] [-constraint EXPR] [-af ATTR...] [-long] [-json] [-hold] [-run] [-better-analyze JOB] [-totals]";
const H_USAGE: &str = "usage: petrel history [CLUSTER[.PROC]...] [-constraint EXPR] [-af ATTR...] [-long] [-json] [-limit N]";

#[derive(Default)]
struct View {
    ids: Vec<JobSelector>,
    constraint: Option<String>,
    af: Vec<String>,
    long: bool,
    json: bool,
    nobatch: bool,
    hold: bool,
    run: bool,
    totals: bool,
    analyze: Option<JobId>,
    limit: Option<usize>,
}

fn parse(args: &[String], usage: &'static str) -> anyhow::Result<View> {
    let mut v = View::default();
    let mut w = ArgWalk::new(args, usage);
    while let Some(a) = w.next_arg() {
        match pc::flag(a) {
            Some("nobatch" | "nob") => v.nobatch = true,
            Some("batch") => v.nobatch = false,
            Some("constraint" | "const") => v.constraint = Some(w.value("constraint")?.to_string()),
            Some("af" | "autoformat" | "af:h") => {
                v.af = w.values().into_iter().map(str::to_string).collect();
                if v.af.is_empty() {
                    bail!("-af needs at least one attribute\n{usage}");
                }
            }
            Some("long" | "l") => v.long = true,
            Some("json") => v.json = true,
            Some("hold" | "held") => {
                v.hold = true;
                v.nobatch = true;
            }
            Some("run" | "running") => {
                v.run = true;
                v.nobatch = true;
            }
            Some("totals" | "tot") => v.totals = true,
            Some("allusers" | "all") => {}
            Some("better-analyze" | "better-analyse" | "analyze" | "analyse") => {
                let id = w.value("better-analyze")?;
                match id.parse::<JobSelector>().map_err(anyhow::Error::msg)? {
                    JobSelector::Job(j) => v.analyze = Some(j),
                    JobSelector::Cluster(c) => v.analyze = Some(JobId::new(c, 0)),
                }
            }
            Some("limit" | "match") => {
                let n = w.value("limit")?;
                v.limit = Some(
                    n.parse()
                        .map_err(|_| anyhow::anyhow!("-limit {n}: expected a number"))?,
                );
            }
            Some("help" | "h") => {
                println!("{usage}");
                std::process::exit(0);
            }
            Some(_) => return Err(w.unknown(a)),
            None => v.ids.push(a.parse().map_err(anyhow::Error::msg)?),
        }
    }
    Ok(v)
}

pub fn run_q(args: Args) -> anyhow::Result<u8> {
    let v = parse(&args.args, Q_USAGE)?;
    let mut client = pc::connect()?;
    if let Some(job) = v.analyze {
        match client.call(&Request::Analyze { job })? {
            Response::Text { text } => {
                print!("{text}");
                return Ok(0);
            }
            other => bail!("unexpected answer from the pool: {other:?}"),
        }
    }
    let mut constraint = pc::ids_constraint(&v.ids, v.constraint.clone());
    if v.hold {
        constraint = Some(and(constraint, "JobStatus == 5"));
    }
    if v.run {
        constraint = Some(and(constraint, "JobStatus == 2"));
    }
    let attrs = projection(&v, &QUEUE_ATTRS);
    let ads = pc::query(&mut client, constraint, attrs, false, v.limit)?;
    print!("{}", render(&v, &ads, false));
    Ok(0)
}

pub fn run_history(args: Args) -> anyhow::Result<u8> {
    let v = parse(&args.args, H_USAGE)?;
    let mut client = pc::connect()?;
    let constraint = pc::ids_constraint(&v.ids, v.constraint.clone());
    let attrs = projection(&v, &QUEUE_ATTRS);
    let ads = pc::query(&mut client, constraint, attrs, true, v.limit)?;
    print!("{}", render(&v, &ads, true));
    Ok(0)
}

fn and(c: Option<String>, more: &str) -> String {
    match c {
        Some(c) => format!("({c}) && {more}"),
        None => more.to_string(),
    }
}

const QUEUE_ATTRS: [&str; 22] = [
    "ClusterId",
    "ProcId",
    "Owner",
    "QDate",
    "JobStatus",
    "JobPrio",
    "ImageSize",
    "Cmd",
    "Args",
    "Arguments",
    "RemoteWallClockTime",
    "JobCurrentStartDate",
    "EnteredCurrentStatus",
    "HoldReason",
    "RemoteHost",
    "JobBatchName",
    "CompletionDate",
    "MemoryUsage",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "ContainerImage",
];

/// Only what the view prints, so `petrel q` on 100,000 jobs moves little data.
fn projection(v: &View, default: &[&str]) -> Vec<String> {
    if v.long || v.json {
        return Vec::new();
    }
    if !v.af.is_empty() {
        return v.af.clone();
    }
    default.iter().map(|s| s.to_string()).collect()
}

fn render(v: &View, ads: &[ClassAd], history: bool) -> String {
    let mut out = String::new();
    if v.json {
        let items: Vec<String> = ads.iter().map(|a| a.to_json()).collect();
        let _ = writeln!(out, "[\n{}\n]", items.join(",\n"));
        return out;
    }
    if v.long {
        for ad in ads {
            let _ = writeln!(out, "{}", ad.to_old_syntax());
        }
        return out;
    }
    if !v.af.is_empty() {
        for ad in ads {
            let row: Vec<String> = v.af.iter().map(|a| af_value(ad, a)).collect();
            let _ = writeln!(out, "{}", row.join(" "));
        }
        return out;
    }
    if history {
        let _ = writeln!(
            out,
            " ID     OWNER          SUBMITTED   RUN_TIME     ST COMPLETED   CMD"
        );
        for ad in ads {
            let _ = writeln!(
                out,
                " {:<6} {:<14} {} {:>12} {}  {} {}",
                id_of(ad),
                af_value(ad, "Owner"),
                date(ad.eval_int("QDate")),
                run_time(ad.eval_attr("RemoteWallClockTime").as_f64().unwrap_or(0.0) as i64),
                status_letter(ad),
                date(ad.eval_int("CompletionDate")),
                command(ad)
            );
        }
        return out;
    }
    let now = petrel_pool::core::now();
    if v.nobatch || v.totals {
        if !v.totals {
            if v.hold {
                let _ = writeln!(out, " ID      OWNER          HELD_SINCE  HOLD_REASON");
            } else if v.run {
                let _ = writeln!(
                    out,
                    " ID      OWNER            SUBMITTED     RUN_TIME HOST(S)"
                );
            } else {
                let _ = writeln!(
                    out,
                    " ID      OWNER            SUBMITTED     RUN_TIME ST PRI SIZE CMD"
                );
            }
            for ad in ads {
                let line = if v.hold {
                    format!(
                        "{:>5} {:<14} {} {}",
                        id_of(ad),
                        af_value(ad, "Owner"),
                        date(ad.eval_int("EnteredCurrentStatus")),
                        af_value(ad, "HoldReason")
                    )
                } else if v.run {
                    format!(
                        "{:>5} {:<14} {} {:>12} {}",
                        id_of(ad),
                        af_value(ad, "Owner"),
                        date(ad.eval_int("QDate")),
                        run_time(current_run_time(ad, now)),
                        af_value(ad, "RemoteHost")
                    )
                } else {
                    format!(
                        "{:>5} {:<14} {} {:>12} {}  {:<3} {:<4.1} {}",
                        id_of(ad),
                        af_value(ad, "Owner"),
                        date(ad.eval_int("QDate")),
                        run_time(current_run_time(ad, now)),
                        status_letter(ad),
                        ad.eval_int("JobPrio").unwrap_or(0),
                        ad.eval_attr("ImageSize").as_f64().unwrap_or(0.0) / 1024.0,
                        command(ad)
                    )
                };
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out);
        }
    } else {
        batch_view(&mut out, ads);
    }
    totals(&mut out, ads);
    out
}

/// The default `condor_q` view: one line per batch (a cluster, or a `batch_name`).
fn batch_view(out: &mut String, ads: &[ClassAd]) {
    struct Batch {
        owner: String,
        name: String,
        submitted: Option<i64>,
        counts: [usize; 8],
        ids: Vec<(i64, i64)>,
    }
    let mut batches: Vec<Batch> = Vec::new();
    for ad in ads {
        let owner = af_value(ad, "Owner");
        let name = match ad.eval_attr("JobBatchName").as_str() {
            Some(n) => n.to_string(),
            None => format!("ID: {}", ad.eval_int("ClusterId").unwrap_or(0)),
        };
        let status = ad.eval_int("JobStatus").unwrap_or(1).clamp(0, 7) as usize;
        let id = (
            ad.eval_int("ClusterId").unwrap_or(0),
            ad.eval_int("ProcId").unwrap_or(0),
        );
        match batches
            .iter_mut()
            .find(|b| b.owner == owner && b.name == name)
        {
            Some(b) => {
                b.counts[status] += 1;
                b.ids.push(id);
            }
            None => {
                let mut counts = [0; 8];
                counts[status] += 1;
                batches.push(Batch {
                    owner,
                    name,
                    submitted: ad.eval_int("QDate"),
                    counts,
                    ids: vec![id],
                })
            }
        }
    }
    let _ = writeln!(
        out,
        "OWNER      BATCH_NAME      SUBMITTED   DONE   RUN    IDLE   HOLD  TOTAL JOB_IDS"
    );
    for b in &batches {
        let dash = |n: usize| {
            if n == 0 {
                "_".to_string()
            } else {
                n.to_string()
            }
        };
        let total: usize = b.counts.iter().sum();
        let (first, last) = (
            b.ids.first().copied().unwrap_or_default(),
            b.ids.last().copied().unwrap_or_default(),
        );
        let ids = if first == last {
            format!("{}.{}", first.0, first.1)
        } else {
            format!(
                "{}.{}-{}",
                first.0,
                first.1,
                if first.0 == last.0 {
                    last.1.to_string()
                } else {
                    format!("{}.{}", last.0, last.1)
                }
            )
        };
        let _ = writeln!(
            out,
            "{:<10} {:<15} {} {:>6} {:>6} {:>6} {:>6} {:>6} {}",
            b.owner,
            b.name,
            date(b.submitted),
            dash(b.counts[4]),
            dash(b.counts[2] + b.counts[6]),
            dash(b.counts[1]),
            dash(b.counts[5]),
            total,
            ids
        );
    }
    let _ = writeln!(out);
}

fn totals(out: &mut String, ads: &[ClassAd]) {
    let mut c = [0usize; 8];
    for ad in ads {
        c[ad.eval_int("JobStatus").unwrap_or(1).clamp(0, 7) as usize] += 1;
    }
    let _ = writeln!(
        out,
        "Total for query: {} jobs; {} completed, {} removed, {} idle, {} running, {} held, {} suspended",
        ads.len(),
        c[4],
        c[3],
        c[1],
        c[2] + c[6],
        c[5],
        c[7]
    );
}

fn id_of(ad: &ClassAd) -> String {
    format!(
        "{}.{}",
        ad.eval_int("ClusterId").unwrap_or(0),
        ad.eval_int("ProcId").unwrap_or(0)
    )
}

fn status_letter(ad: &ClassAd) -> char {
    ad.eval_int("JobStatus")
        .and_then(petrel_pool::JobStatus::from_code)
        .map_or('?', |s| s.letter())
}

fn command(ad: &ClassAd) -> String {
    let cmd = af_value(ad, "Cmd");
    let args = match ad.eval_attr("Arguments").as_str() {
        Some(v2) => petrel_submit::args_env::split_v2(v2)
            .map(|a| a.join(" "))
            .unwrap_or_else(|_| v2.to_string()),
        None => ad
            .eval_attr("Args")
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    if args.is_empty() {
        cmd
    } else {
        format!("{cmd} {args}")
    }
}

fn current_run_time(ad: &ClassAd, now: i64) -> i64 {
    let past = ad.eval_attr("RemoteWallClockTime").as_f64().unwrap_or(0.0) as i64;
    let current = match (ad.eval_int("JobStatus"), ad.eval_int("JobCurrentStartDate")) {
        (Some(2), Some(start)) => (now - start).max(0),
        _ => 0,
    };
    past + current
}

/// `D+HH:MM:SS`.
fn run_time(secs: i64) -> String {
    let s = secs.max(0);
    format!(
        "{}+{:02}:{:02}:{:02}",
        s / 86400,
        s % 86400 / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// `MM/DD HH:MM` in UTC (HTCondor prints local time; the pool daemon and tests run in UTC
/// more often than not, and a wrong zone is worse than an explicit one).
fn date(t: Option<i64>) -> String {
    let Some(t) = t else {
        return "   ???     ".into();
    };
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (_, m, d) = civil_from_days(days);
    format!("{m:02}/{d:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(run_time(90061), "1+01:01:01");
        assert_eq!(date(Some(0)), "01/01 00:00");
        assert_eq!(date(Some(1_795_000_000)), "11/18 11:06");
        let v = parse(
            &[
                "-nobatch".into(),
                "-af".into(),
                "A".into(),
                "B".into(),
                "-const".into(),
                "x".into(),
                "3.1".into(),
            ],
            Q_USAGE,
        )
        .unwrap();
        assert!(v.nobatch);
        assert_eq!(v.af, ["A", "B"]);
        assert_eq!(v.constraint.as_deref(), Some("x"));
        assert_eq!(v.ids, vec![JobSelector::Job(JobId::new(3, 1))]);
        assert!(parse(&["-bogus".into()], Q_USAGE).is_err());
    }
}
