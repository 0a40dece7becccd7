//! `petrel image …`: pull, import, list, inspect, remove, export and garbage-collect
//! images in the local store (a thin layer over `petrel_image::Store`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::units::{human_bytes, parse_size};
use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use petrel_image::distribution::{Credentials, Platform};
use petrel_image::{
    Digest, DockerRef, ExportFormat, GcOptions, ImageInfo, ImageRef, Progress, Store, StoreOptions,
};

/// Manage the image store: pull, import, list, inspect, remove, export, collect garbage.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
Image references:
  docker://[REGISTRY/]REPO[:TAG][@sha256:…]   an image in a registry (Docker Hub by default)
  oci:DIR[:TAG], or a directory with oci-layout    an OCI image layout
  docker-archive:FILE, or a tar file                a `docker save` archive
  FILE.sif / a squashfs file                        SIF (Apptainer) or squashfs images
  NAME[:TAG] or a digest prefix                     an image already in the store

The store lives in $XDG_DATA_HOME/petrel/images (~/.local/share/petrel/images), or
/var/lib/petrel/images for root; --store or PETREL_IMAGE_STORE changes it.
Registry credentials come from $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json
and ~/.docker/config.json; plain HTTP is used for loopback registries and those marked
insecure (registries.conf, PETREL_INSECURE_REGISTRIES or --insecure).")]
pub struct Args {
    /// Image store directory.
    #[arg(long, global = true, env = "PETREL_IMAGE_STORE", value_name = "DIR")]
    store: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Download an image from a registry (layers already stored are not fetched again).
    Pull(PullArgs),
    /// List stored images: names, digest, size, last use.
    Ls(LsArgs),
    /// Show an image's config (Env, Entrypoint, Cmd, WorkingDir, User, Labels) as JSON,
    /// and what storing it left out (`dropped`: setuid/setgid bits, file capabilities,
    /// device nodes).
    Inspect {
        /// Image reference (a stored name, digest prefix, or any reference to fetch).
        reference: String,
    },
    /// Remove names; an image goes when its last name does (unless a job uses it).
    Rm {
        /// Image references.
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Remove least-recently-used images until the store fits, never ones in use.
    Gc(GcArgs),
    /// Import an OCI layout, a `docker save` archive, a SIF or squashfs file, or a directory.
    Import {
        /// File or directory to import.
        path: String,
        /// Name to give the image (e.g. `mytools:1`). Imported images are named under
        /// `local/` (as are an archive's own tags): a `docker://` reference never means
        /// them, only content pulled from that registry.
        #[arg(long)]
        name: Option<String>,
        /// No progress output.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write an image out as an OCI layout, a root file system tar, or a squashfs file.
    Export {
        /// Image reference.
        reference: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "oci")]
        format: Format,
        /// Output directory (oci) or file.
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct PullArgs {
    /// `docker://REPO[:TAG]`, `REPO[:TAG]` or `REPO@sha256:…`.
    reference: String,
    /// No progress output (also the default when stderr is not a terminal).
    #[arg(short, long)]
    quiet: bool,
    /// Platform to pick from multi-arch images (`os/arch[/variant]`); default: this host.
    #[arg(long)]
    platform: Option<String>,
    /// Allow plain HTTP to this registry (`host[:port]`); repeatable.
    #[arg(long, value_name = "REGISTRY")]
    insecure: Vec<String>,
    /// Credentials `USER:PASSWORD` (else the auth files are read).
    #[arg(long, env = "PETREL_REGISTRY_CREDS", hide_env_values = true)]
    creds: Option<String>,
    /// Layers downloaded at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

#[derive(clap::Args, Debug)]
struct LsArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Print the cached images as ClassAd attributes, for slot ads.
    #[arg(long, conflicts_with = "json")]
    cache_ad: bool,
    /// Print digests only.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct GcArgs {
    /// Size budget for the whole store (`500M`, `20G`, `1.5GiB`, bytes).
    #[arg(long, value_parser = parse_size)]
    max_size: Option<u64>,
    /// Remove images not used for this long (`30d`, `12h`, `90m`, `2w`).
    #[arg(long, value_parser = parse_duration)]
    older_than: Option<Duration>,
    /// Only show what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    /// OCI image layout directory.
    Oci,
    /// Tar archive of the root file system.
    RootfsTar,
    /// Squashfs file (needs mksquashfs).
    Squashfs,
}

/// Runs `petrel image`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    match run_inner(args) {
        // `petrel image ls | head` is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(0)
        }
        other => other,
    }
}

fn run_inner(args: Args) -> anyhow::Result<u8> {
    let root = match &args.store {
        Some(s) => s.clone(),
        None => Store::default_root()?,
    };
    let mut opts = StoreOptions::default();
    if let Command::Pull(p) = &args.command {
        if let Some(pl) = &p.platform {
            opts.registry.platform = Platform::parse(pl)?;
        }
        opts.registry.insecure.extend(p.insecure.iter().cloned());
        if let Some(c) = &p.creds {
            let (u, pw) = c.split_once(':').context("--creds must be USER:PASSWORD")?;
            opts.registry.credentials = Some(Credentials {
                username: u.into(),
                password: pw.into(),
            });
        }
        opts.registry.max_concurrent_downloads = p.jobs.max(1);
    }
    let store = Store::open_with(&root, opts)
        .with_context(|| format!("opening image store {}", root.display()))?;
    let mut stdout = std::io::stdout().lock();
    match args.command {
        Command::Pull(p) => {
            let text = p
                .reference
                .strip_prefix("docker://")
                .unwrap_or(&p.reference);
            let r = DockerRef::parse(text)?;
            let bars = Bars::new(p.quiet);
            let start = Instant::now();
            let out = store.pull(&r, &bars)?;
            bars.finish();
            if !p.quiet {
                eprintln!(
                    "{} {r}: {} ({} fetched, {} layer(s) unpacked, {:.2}s)",
                    if out.cached { "up to date" } else { "pulled" },
                    out.info.digest,
                    human_bytes(out.fetched_bytes),
                    out.layers_unpacked,
                    start.elapsed().as_secs_f64()
                );
            }
            writeln!(stdout, "{}", out.info.digest)?;
        }
        Command::Import { path, name, quiet } => {
            let image = ImageRef::parse(&path)?;
            let bars = Bars::new(quiet);
            let out = store.import(&image, name.as_deref(), &bars)?;
            bars.finish();
            if !quiet {
                eprintln!("imported {image}: {}", out.info.digest);
            }
            writeln!(stdout, "{}", out.info.digest)?;
        }
        Command::Ls(a) => {
            let images = store.list()?;
            if a.cache_ad {
                write!(stdout, "{}", store.cache_ad()?)?;
            } else if a.json {
                serde_json::to_writer_pretty(&mut stdout, &images)?;
                writeln!(stdout)?;
            } else if a.quiet {
                for i in &images {
                    writeln!(stdout, "{}", i.digest)?;
                }
            } else {
                print_table(&mut stdout, &images)?;
            }
        }
        Command::Inspect { reference } => {
            let image = ImageRef::parse(&reference)?;
            let info = match store.inspect(&image) {
                Ok(i) => i,
                Err(petrel_image::Error::NotFound(_)) if !matches!(image, ImageRef::Stored(_)) => {
                    let prepared = store.prepare(&image)?;
                    match &prepared.digest {
                        Some(d) => store.inspect(&ImageRef::Stored(d.to_string()))?,
                        None => {
                            let doc = serde_json::json!({"source": prepared.source, "rootfs": prepared.rootfs, "config": prepared.config});
                            serde_json::to_writer_pretty(&mut stdout, &doc)?;
                            writeln!(stdout)?;
                            return Ok(0);
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            };
            serde_json::to_writer_pretty(&mut stdout, &info)?;
            writeln!(stdout)?;
        }
        Command::Rm { references } => {
            let mut failed = false;
            for r in references {
                match ImageRef::parse(&r)
                    .map_err(anyhow::Error::from)
                    .and_then(|i| Ok(store.remove(&i)?))
                {
                    Ok(d) => writeln!(stdout, "{d}")?,
                    Err(e) => {
                        eprintln!("petrel: {r}: {e:#}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
        Command::Gc(g) => {
            if g.max_size.is_none() && g.older_than.is_none() {
                bail!("say what to collect: --max-size SIZE and/or --older-than DURATION");
            }
            let report = store.gc(&GcOptions {
                max_size: g.max_size,
                older_than: g.older_than,
                dry_run: g.dry_run,
            })?;
            if g.json {
                serde_json::to_writer_pretty(&mut stdout, &report)?;
                writeln!(stdout)?;
            } else {
                let verb = if g.dry_run { "would remove" } else { "removed" };
                for d in &report.removed {
                    writeln!(stdout, "{verb} {d}")?;
                }
                for d in &report.in_use {
                    writeln!(stdout, "kept {d} (in use)")?;
                }
                writeln!(
                    stdout,
                    "store size {} -> {}",
                    human_bytes(report.size_before),
                    human_bytes(report.size_after)
                )?;
            }
        }
        Command::Export {
            reference,
            format,
            out,
        } => {
            let image = ImageRef::parse(&reference)?;
            let f = match format {
                Format::Oci => ExportFormat::Oci,
                Format::RootfsTar => ExportFormat::RootfsTar,
                Format::Squashfs => ExportFormat::Squashfs,
            };
            petrel_image::export(&store, &image, f, &out)?;
        }
    }
    Ok(0)
}

fn print_table(out: &mut impl Write, images: &[ImageInfo]) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = images
        .iter()
        .flat_map(|i| {
            let names = if i.names.is_empty() {
                vec![i.source.clone()]
            } else {
                i.names.clone()
            };
            names.into_iter().map(move |n| {
                [
                    n,
                    i.digest.short().to_string(),
                    human_bytes(i.size),
                    ago(i.last_used),
                ]
            })
        })
        .collect();
    let head = ["NAME", "DIGEST", "SIZE", "LAST USED"];
    let w: Vec<usize> = (0..3)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([head[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let head = head.map(String::from);
    for r in std::iter::once(&head).chain(rows.iter()) {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2]
        )?;
    }
    Ok(())
}

fn ago(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let d = now.saturating_sub(secs);
    match d {
        0..=59 => format!("{d} seconds ago"),
        60..=3599 => format!("{} minutes ago", d / 60),
        3600..=86399 => format!("{} hours ago", d / 3600),
        _ => format!("{} days ago", d / 86400),
    }
}

/// Parses `30d`, `12h`, `90m`, `45s`, `2w`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use s, m, h, d, w)"
            ))
        }
    };
    Ok(Duration::from_secs(n * secs))
}

/// Progress bars on a terminal (one per layer and a total), nothing otherwise.
struct Bars {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
    layers: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        if quiet || !std::io::stderr().is_terminal() {
            return Bars {
                multi: None,
                total: None,
                layers: Mutex::new(HashMap::new()),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        total.set_prefix("total");
        Bars {
            multi: Some(multi),
            total: Some(total),
            layers: Mutex::new(HashMap::new()),
        }
    }

    fn finish(&self) {
        if let Ok(mut l) = self.layers.lock() {
            for (_, b) in l.drain() {
                b.finish_and_clear();
            }
        }
        if let Some(t) = &self.total {
            t.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn layer_started(&self, digest: &Digest, size: Option<u64>) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(ProgressBar::new(size.unwrap_or(0)));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(digest.short().to_string());
        if let Some(t) = &self.total {
            t.inc_length(size.unwrap_or(0));
        }
        if let Ok(mut l) = self.layers.lock() {
            l.insert(digest.clone(), bar);
        }
    }

    fn layer_bytes(&self, digest: &Digest, n: u64) {
        if self.multi.is_none() {
            return;
        }
        if let Ok(l) = self.layers.lock() {
            if let Some(b) = l.get(digest) {
                b.inc(n);
            }
        }
        if let Some(t) = &self.total {
            t.inc(n);
        }
    }

    fn layer_finished(&self, digest: &Digest, cached: bool) {
        if let Ok(mut l) = self.layers.lock() {
            if let Some(b) = l.remove(digest) {
                b.finish_with_message(if cached { "cached" } else { "done" });
            }
        }
    }

    fn note(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => tracing::info!("{msg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("3y").is_err());
    }
}
