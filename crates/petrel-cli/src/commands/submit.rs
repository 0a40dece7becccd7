//! `petrel submit`: HTCondor's `condor_submit`.
//!
//! Flags are taken HTCondor style (single dash; two dashes work too):
//! `-dry-run [OUT] FILE` prints what would be queued in condor_submit's dry-run format
//! (`Attr=value` lines, the cluster ad before proc 0, a blank line before each proc) to OUT
//! (`-` or omitted: standard output); `-dump [OUT] FILE` prints each fully expanded job ad
//! in the long form (`Attr = value`, a blank line between ads); `-queue ARGS` supplies the
//! queue statement; `-append CMD` / `-a CMD` adds a command before the queue statement;
//! `-batch-name NAME`; `-max-procs N` caps the number of jobs (default 10 million).
//! Without `-dry-run` or `-dump` the jobs go to the pool, which is started if needed.

use std::io::Write;

use anyhow::{bail, Context};
use petrel_submit::{Submission, SubmitOptions};

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Submit file and HTCondor-style flags (-dry-run, -dump, -queue, -append, -batch-name, -max-procs).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FLAG|FILE"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Submit,
    DryRun,
    Dump,
}

#[derive(Debug)]
struct Parsed {
    mode: Mode,
    out: Option<String>,
    file: Option<String>,
    opts: SubmitOptions,
    help: bool,
}

const USAGE: &str = "usage: petrel submit [-dry-run [OUT]] [-dump [OUT]] [-queue ARGS] [-append CMD] [-batch-name NAME] [-max-procs N] FILE";

fn flag_name(a: &str) -> Option<&str> {
    let f = a.strip_prefix("--").or_else(|| a.strip_prefix('-'))?;
    if f.is_empty() {
        None
    } else {
        Some(f)
    }
}

fn parse(args: &[String]) -> anyhow::Result<Parsed> {
    let mut p = Parsed {
        mode: Mode::Submit,
        out: None,
        file: None,
        opts: SubmitOptions::default(),
        help: false,
    };
    let mut positional = Vec::new();
    let mut out_pending = false;
    let mut i = 0;
    let value = |i: &mut usize, name: &str| -> anyhow::Result<String> {
        *i += 1;
        args.get(*i)
            .cloned()
            .with_context(|| format!("-{name} requires an argument\n{USAGE}"))
    };
    while i < args.len() {
        let a = &args[i];
        match flag_name(a) {
            Some(f) => match f {
                "dry-run" | "dry" => {
                    p.mode = Mode::DryRun;
                    out_pending = true;
                }
                "dump" => {
                    p.mode = Mode::Dump;
                    out_pending = true;
                }
                "queue" | "q" => {
                    let mut q = Vec::new();
                    // up to the next flag or an existing file (the submit file)
                    while i + 1 < args.len()
                        && flag_name(&args[i + 1]).is_none()
                        && !std::path::Path::new(&args[i + 1]).is_file()
                    {
                        i += 1;
                        q.push(args[i].clone());
                    }
                    if q.is_empty() {
                        bail!("-queue requires an argument\n{USAGE}");
                    }
                    p.opts.queue_override = Some(q.join(" "));
                }
                "append" | "a" => p.opts.append.push(value(&mut i, f)?),
                "batch-name" | "batch_name" => p.opts.batch_name = Some(value(&mut i, f)?),
                "max-procs" => {
                    let v = value(&mut i, f)?;
                    p.opts.max_procs = v
                        .parse()
                        .with_context(|| format!("-max-procs {v}: expected a positive integer"))?;
                }
                "help" | "h" => p.help = true,
                _ => bail!("unknown option {a}\n{USAGE}"),
            },
            None if a == "-" && out_pending => {
                p.out = Some("-".into());
                out_pending = false;
            }
            None => {
                if out_pending {
                    positional.push((a.clone(), true));
                    out_pending = false;
                } else {
                    positional.push((a.clone(), false));
                }
            }
        }
        i += 1;
    }
    // -dry-run OUT FILE: OUT is the output only when a submit file follows it
    match positional.as_slice() {
        [] => {}
        [(f, _)] => p.file = Some(f.clone()),
        [(o, true), (f, _)] => {
            p.out = Some(o.clone());
            p.file = Some(f.clone());
        }
        _ => bail!(
            "more than one submit file given: {}\n{USAGE}",
            positional
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
    Ok(p)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let p = parse(&args.args)?;
    if p.help {
        println!("{USAGE}");
        return Ok(0);
    }
    let Some(file) = p.file.as_deref() else {
        bail!("no submit file given (reading a submit description from standard input is not supported)\n{USAGE}");
    };
    if p.mode == Mode::Submit {
        return submit_to_pool(file, p.opts);
    }
    let sub = Submission::from_file(file, &p.opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in sub.warnings() {
        eprintln!("WARNING: {w}");
    }
    // validate every proc first so that nothing is printed on error
    for ad in sub.procs() {
        ad.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let to_stdout = matches!(p.out.as_deref(), None | Some("-"));
    let mut w: Box<dyn Write> = if to_stdout {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        let out = p.out.as_deref().unwrap_or("-");
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(out).with_context(|| format!("cannot create {out}"))?,
        ))
    };
    let count = sub.proc_count();
    if p.mode == Mode::DryRun && !to_stdout {
        println!("Dry-Run job(s).");
    }
    match p.mode {
        Mode::Dump => write_dump(&sub, &mut w)?,
        _ => write_dry_run(&sub, &mut w, to_stdout)?,
    }
    w.flush()?;
    if p.mode == Mode::DryRun && !to_stdout {
        println!("{count} job(s) dry-run to cluster {}.", sub.cluster_id());
    }
    Ok(0)
}

/// Queues the jobs: a cluster id from the pool (the file may use `$(Cluster)`), every proc
/// expanded here with the submitter's files and environment, then one request that queues
/// all of them or none.
fn submit_to_pool(file: &str, mut opts: SubmitOptions) -> anyhow::Result<u8> {
    use petrel_pool::proto::{Request, Response, SubmitRef};
    let mut client = super::pool_client::connect()?;
    let Response::Cluster { id } = client.call(&Request::NewCluster)? else {
        bail!("unexpected answer from the pool");
    };
    opts.cluster_id = id;
    let sub = Submission::from_file(file, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in sub.warnings() {
        eprintln!("WARNING: {w}");
    }
    let result = sub.expand().map_err(|e| anyhow::anyhow!("{e}"))?;
    check_logs(&result)?;
    let request = SubmitRef::new(id, &result.cluster_ad, &result.procs);
    match client.call(&request)? {
        Response::Submitted { cluster, count } => {
            println!("Submitting job(s){}.", if count > 1 { "..." } else { "" });
            println!("{count} job(s) submitted to cluster {cluster}.");
            Ok(0)
        }
        other => bail!("unexpected answer from the pool: {other:?}"),
    }
}

/// Refuses the submit when a job's `log` cannot be written by the submitter (this
/// process runs as them): the daemon writes it with their rights only, so a log it
/// could not open would otherwise be lost silently, noted only in its own log. An
/// existing file is opened for appending; a missing one needs a writable directory, and
/// is not created here.
fn check_logs(result: &petrel_submit::SubmitResult) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for ad in result.full_ads() {
        let Some(log) = ad.get_string("UserLog").filter(|l| !l.is_empty()) else {
            continue;
        };
        let mut path = std::path::PathBuf::from(&log);
        if path.is_relative() {
            if let Some(iwd) = ad.get_string("Iwd") {
                path = std::path::Path::new(&iwd).join(path);
            }
        }
        if !seen.insert(path.clone()) {
            continue;
        }
        let writable = match std::fs::symlink_metadata(&path) {
            // Opened as the daemon will open it: a FIFO or device is refused, not waited on.
            Ok(_) => petrel_userlog::UserLog::open(&path)
                .map(drop)
                .map_err(|e| match e {
                    petrel_userlog::UserLogError::Io { source, .. } => source,
                    other => std::io::Error::other(other.to_string()),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                rustix::fs::access(
                    dir,
                    rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
                )
                .map_err(std::io::Error::from)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = writable {
            bail!(
                "cannot write the job's log file '{}' (log = {log}): {e}; nothing was submitted",
                path.display()
            );
        }
    }
    Ok(())
}

/// `-dump`: each fully expanded ad in the long form, a blank line between ads.
fn write_dump(sub: &Submission, w: &mut dyn Write) -> anyhow::Result<()> {
    for (i, ad) in sub.procs().enumerate() {
        let ad = ad.map_err(|e| anyhow::anyhow!("{e}"))?;
        if i > 0 {
            writeln!(w)?;
        }
        write!(w, "{ad}")?;
    }
    Ok(())
}

/// `-dry-run`: what condor_submit's simulated schedd prints: before each proc a blank
/// line; before proc 0 the cluster ad (`ClusterId=` first); then `ProcId=`, `JobStatus=`
/// and the proc's attributes that differ from the cluster ad, all as `Attr=value`.
/// With `banner`, the "Dry-Run job(s)." and "N job(s) dry-run to cluster C." lines too.
fn write_dry_run(sub: &Submission, w: &mut dyn Write, banner: bool) -> anyhow::Result<()> {
    if banner {
        writeln!(w, "Dry-Run job(s).")?;
    }
    let mut cluster: Option<petrel_submit::JobAd> = None;
    for ad in sub.procs() {
        let ad = ad.map_err(|e| anyhow::anyhow!("{e}"))?;
        writeln!(w)?;
        let base = match &cluster {
            Some(c) => c,
            None => {
                let mut c = ad.clone();
                c.remove("ProcId");
                writeln!(w, "ClusterId={}", sub.cluster_id())?;
                for (k, v) in c
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("ClusterId"))
                {
                    writeln!(w, "{k}={v}")?;
                }
                cluster.insert(c)
            }
        };
        writeln!(w, "ProcId={}", ad.get("ProcId").unwrap_or("0"))?;
        writeln!(w, "JobStatus={}", ad.get("JobStatus").unwrap_or("1"))?;
        for (k, v) in ad.delta_from(base).iter() {
            if !k.eq_ignore_ascii_case("ProcId") && !k.eq_ignore_ascii_case("JobStatus") {
                writeln!(w, "{k}={v}")?;
            }
        }
    }
    if banner {
        writeln!(w)?;
        writeln!(
            w,
            "{} job(s) dry-run to cluster {}.",
            sub.proc_count(),
            sub.cluster_id()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags() {
        let p = parse(&s(&["-dry-run", "job.sub"])).unwrap();
        assert_eq!(
            (p.mode, p.out, p.file.as_deref()),
            (Mode::DryRun, None, Some("job.sub"))
        );
        let p = parse(&s(&["--dry-run", "out.txt", "job.sub", "-batch-name", "b"])).unwrap();
        assert_eq!(
            (p.out.as_deref(), p.file.as_deref()),
            (Some("out.txt"), Some("job.sub"))
        );
        assert_eq!(p.opts.batch_name.as_deref(), Some("b"));
        let p = parse(&s(&["-dump", "-", "job.sub", "-queue", "3", "-a", "x = 1"])).unwrap();
        assert_eq!((p.mode, p.out.as_deref()), (Mode::Dump, Some("-")));
        assert_eq!(p.opts.queue_override.as_deref(), Some("3"));
        assert_eq!(p.opts.append, ["x = 1"]);
        assert!(parse(&s(&["-bogus", "job.sub"])).is_err());
    }

    fn sample() -> Submission {
        let text = "executable = /bin/echo\narguments = x $(Process)\nqueue 2\n";
        let opts = SubmitOptions {
            qdate: Some(5),
            owner: Some("u".into()),
            ..Default::default()
        };
        Submission::from_text(text, "t.sub", std::env::temp_dir(), &opts).expect("valid")
    }

    #[test]
    fn dry_run_format() {
        let mut out = Vec::new();
        write_dry_run(&sample(), &mut out, true).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.starts_with("Dry-Run job(s).\n\nClusterId=1\nMyType=\"Job\"\n"),
            "{text}"
        );
        assert!(text.contains("\nProcId=0\nJobStatus=1\n"), "{text}");
        assert!(
            text.contains("\n\nProcId=1\nJobStatus=1\nArgs=\"x 1\"\n"),
            "{text}"
        );
        assert_eq!(text.matches("ClusterId=").count(), 1);
        assert!(
            text.ends_with("\n2 job(s) dry-run to cluster 1.\n"),
            "{text}"
        );
    }

    #[test]
    fn dump_format() {
        let mut out = Vec::new();
        write_dump(&sample(), &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        let ads: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(ads.len(), 2);
        assert!(
            ads[0].contains("Args = \"x 0\"\n") && ads[1].contains("ProcId = 1\n"),
            "{text}"
        );
        assert!(ads[1].contains("Cmd = \"/bin/echo\""));
    }
}
