//! `petrel run`: one command in a container, with the embedded runtime.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::units::{human_bytes, parse_size};
use petrel_image::{ImageConfig, ImageRef, PreparedImage, Store};
use petrel_runtime::{
    exit_status, Bind, ContainerSpec, IdMapping, Limits, NetMode, Outcome, Overlay, User,
};

const AFTER_HELP: &str = "\
The root filesystem is mounted read-only, nosuid and nodev; --writable adds a throw-away
writable layer and --keep-changes DIR keeps the changes in DIR/upper. A directory given
with --scratch appears at /srv (or --target-dir) and is the working directory, as in
HTCondor's container universe.

The job runs in new user, mount, pid, uts and ipc namespaces (and network with
--net=none), with no capabilities, no_new_privs and a seccomp filter that denies what
Docker's default profile denies. Your uid and gid stay yours inside (--fakeroot: 0).
Petrel's init is pid 1: it forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT
to the command and reaps orphaned processes.

Exit status: the command's own, or 128+N when signal N killed it; 125 when petrel could
not set the container up, 126 when the command cannot be executed, 127 when it is not in
the image, 247 when the kernel killed the job for exceeding --memory.

Examples:
  petrel run ./rootfs -- /bin/echo hello
  petrel run --scratch ./job --memory 512m --cpus 1.5 ./rootfs -- ./analyse input.dat
  petrel run --net=none --fakeroot --writable ./rootfs -- sh -c 'id; touch /etc/x'";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The image: a directory holding a root filesystem, or any reference `petrel image`
    /// takes (docker://name:tag, a name:tag already in the store, an OCI layout, a
    /// `docker save` archive, a .sif or squashfs file), fetched into the store if needed.
    #[arg(value_name = "ROOTFS|IMAGE")]
    image: String,

    /// The command and its arguments (after `--`). With an image, they replace its Cmd and
    /// follow its Entrypoint, as with `docker run`; without either, /bin/sh.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,

    /// Add a writable layer over the image, discarded when the job ends.
    #[arg(long)]
    writable: bool,

    /// Add a writable layer kept in DIR (changes in DIR/upper) for the next run.
    #[arg(long, value_name = "DIR", conflicts_with = "writable")]
    keep_changes: Option<PathBuf>,

    /// Bind-mount a host path into the container: SRC:DST[:ro]. Repeatable.
    #[arg(long = "bind", value_name = "SRC:DST[:ro]")]
    binds: Vec<String>,

    /// The job scratch directory: mounted read-write at the target dir, and the working directory.
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,

    /// Where the scratch directory appears inside the container.
    #[arg(long, value_name = "PATH", default_value = petrel_runtime::DEFAULT_TARGET_DIR)]
    target_dir: String,

    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here). Repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    envs: Vec<String>,

    /// Read environment variables from a file, one KEY=VALUE per line (# comments).
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,

    /// Working directory inside the container (default: the target dir with --scratch, else /).
    #[arg(long, short = 'w', value_name = "DIR")]
    workdir: Option<String>,

    /// Run as this user inside: UID[:GID] or a name from the image's /etc/passwd. Other
    /// ids than your own need root.
    #[arg(long, short = 'u', value_name = "USER")]
    user: Option<String>,

    /// Be root (uid 0) inside the container, with only your own rights outside.
    #[arg(long)]
    fakeroot: bool,

    /// Hostname inside the container (default: the host's).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,

    /// Network: `host` shares the host's, `none` gives only a loopback interface.
    #[arg(long, value_name = "MODE", default_value = "host", value_parser = ["host", "none"])]
    net: String,

    /// Keep a capability for the job (root only), e.g. CAP_NET_RAW. Repeatable.
    #[arg(long, value_name = "CAP")]
    cap_add: Vec<String>,

    /// Hard memory limit, swap off: bytes with an optional k, m, g or t suffix (512m).
    #[arg(long, value_name = "BYTES")]
    memory: Option<String>,

    /// CPU quota in CPUs (1.5 = one and a half CPUs' worth of time).
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,

    /// Relative CPU weight, 1 to 10000 (default 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    cpu_weight: Option<u32>,

    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pids: Option<u64>,

    /// Write exit status, peak memory, CPU and wall time as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,

    /// Do not install the default seccomp filter.
    #[arg(long)]
    no_seccomp: bool,

    /// A name for the container (used for its cgroup and in logs).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let image = open_image(&args.image)?;
    let spec = build_spec(&args, &image)?;
    // The warning comes before the job starts: after it, it would be lost in (or long
    // after) the job's own output.
    let warn = |missed: &[petrel_runtime::NotApplied]| {
        for m in missed {
            eprintln!("petrel: warning: --{} not applied: {}", m.limit, m.reason);
        }
    };
    let outcome = match petrel_runtime::run_warning(&spec, warn) {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("petrel: {err}");
            return Ok(err.exit_status());
        }
    };
    if let Some(path) = &args.stats_json {
        write_stats(path, &outcome)?;
    }
    if outcome.oom_killed {
        let limit = spec
            .limits
            .memory_bytes
            .map(human_bytes)
            .unwrap_or_default();
        let peak = outcome
            .usage
            .peak_memory_bytes
            .map(|p| format!(", peak {}", human_bytes(p)))
            .unwrap_or_default();
        eprintln!(
            "petrel: the job ran out of memory: the kernel killed it for exceeding its memory \
             limit of {limit}{peak}"
        );
        return Ok(exit_status::OUT_OF_MEMORY);
    }
    Ok(outcome.status.shell_status())
}

/// The root filesystem to run and the image config that comes with it.
struct Image {
    rootfs: PathBuf,
    config: ImageConfig,
    /// Keeps a stored image leased (safe from `petrel image gc`) while the job runs.
    _prepared: Option<PreparedImage>,
}

/// A plain directory is used in place, without opening the store (the fast path); any
/// other reference goes through the image store.
fn open_image(reference: &str) -> anyhow::Result<Image> {
    let path = Path::new(reference);
    if path.is_dir() && !path.join("oci-layout").exists() {
        return Ok(Image {
            rootfs: path.to_path_buf(),
            config: ImageConfig::default(),
            _prepared: None,
        });
    }
    if !reference.contains(':') && !path.exists() && reference.contains('/') {
        bail!("root filesystem {reference} does not exist");
    }
    let image_ref = ImageRef::parse(reference)?;
    // The same store `petrel image` uses (PETREL_IMAGE_STORE overrides the default).
    let store = match std::env::var_os("PETREL_IMAGE_STORE") {
        Some(dir) => Store::open(Path::new(&dir)),
        None => Store::open_default(),
    }
    .context("opening the image store")?;
    let prepared = store
        .prepare(&image_ref)
        .with_context(|| format!("preparing image {reference}"))?;
    Ok(Image {
        rootfs: prepared.rootfs.clone(),
        config: prepared.config.clone(),
        _prepared: Some(prepared),
    })
}

/// The command line, as `docker run` builds it: the entrypoint, then the given command or
/// the image's Cmd; /bin/sh when there is neither.
fn command_line(args: &Args, image: &Image) -> anyhow::Result<Vec<String>> {
    let mut argv = image.config.entrypoint.clone().unwrap_or_default();
    if args.command.is_empty() {
        argv.extend(image.config.cmd.clone().unwrap_or_default());
    } else {
        argv.extend(args.command.iter().cloned());
    }
    if argv.is_empty() {
        let shell = image.rootfs.join("bin/sh");
        if std::fs::symlink_metadata(&shell).is_err() {
            bail!(
                "no command given, and the image {} has no /bin/sh to run by default; give the \
                 command after --",
                args.image
            );
        }
        argv.push("/bin/sh".to_string());
    }
    Ok(argv)
}

fn build_spec(args: &Args, image: &Image) -> anyhow::Result<ContainerSpec> {
    let argv = command_line(args, image)?;
    let mut spec = ContainerSpec::new(&image.rootfs, argv);
    spec.overlay = match (&args.keep_changes, args.writable) {
        (Some(dir), _) => Overlay::Keep(dir.clone()),
        (None, true) => Overlay::Discard,
        (None, false) => Overlay::None,
    };
    spec.binds = args
        .binds
        .iter()
        .map(|b| Bind::parse(b).map_err(|e| anyhow::anyhow!("invalid --bind {e}")))
        .collect::<anyhow::Result<_>>()?;
    spec.scratch = args.scratch.clone();
    if !args.target_dir.starts_with('/') {
        bail!(
            "invalid --target-dir '{}': expected an absolute path",
            args.target_dir
        );
    }
    spec.target_dir = args.target_dir.clone();
    // The scratch directory is the working directory (HTCondor's rule); otherwise the
    // image's WorkingDir, as `docker run` does.
    spec.workdir = args.workdir.clone().or_else(|| {
        if args.scratch.is_some() {
            None
        } else {
            image.config.working_dir.clone()
        }
    });
    spec.hostname = args.hostname.clone();
    spec.net = if args.net == "none" {
        NetMode::None
    } else {
        NetMode::Host
    };
    spec.id_mapping = if args.fakeroot {
        IdMapping::FakeRoot
    } else {
        IdMapping::Identity
    };
    spec.cap_add = args.cap_add.clone();
    spec.seccomp = !args.no_seccomp;
    spec.name = args.name.clone();
    spec.limits = Limits {
        memory_bytes: args
            .memory
            .as_deref()
            .map(|m| parse_memory(m).with_context(|| format!("invalid --memory '{m}'")))
            .transpose()?,
        cpus: match args.cpus {
            Some(c) if !(c > 0.0 && c.is_finite()) => {
                bail!("invalid --cpus '{c}': expected a positive number of CPUs")
            }
            other => other,
        },
        cpu_weight: args.cpu_weight,
        pids: args.pids,
    };
    // An image's User is honoured for root only: an unprivileged user's namespace holds
    // no other id, so the job runs as them, as Apptainer and Charliecloud do.
    let user = args
        .user
        .clone()
        .or_else(|| image.config.user.clone().filter(|_| libc_getuid() == 0));
    spec.user = user
        .as_deref()
        .map(|u| parse_user(u, &image.rootfs))
        .transpose()?;
    spec.env = environment(args, &image.config.env, spec.user, spec.id_mapping)?;
    Ok(spec)
}

/// The job's environment: petrel's defaults, the image's Env, then --env-file files, then
/// --env, later entries replacing earlier ones with the same key.
fn environment(
    args: &Args,
    image_env: &[String],
    user: Option<User>,
    mapping: IdMapping,
) -> anyhow::Result<Vec<String>> {
    let root = match (user, mapping) {
        (Some(u), _) => u.uid == 0,
        (None, IdMapping::FakeRoot) => true,
        (None, IdMapping::Identity) => libc_getuid() == 0,
    };
    let mut env = vec![
        format!("PATH={}", petrel_runtime::DEFAULT_PATH),
        format!("HOME={}", if root { "/root" } else { "/" }),
    ];
    if let Ok(term) = std::env::var("TERM") {
        env.push(format!("TERM={term}"));
    }
    for entry in image_env.iter().filter(|e| e.contains('=')) {
        set_env(&mut env, entry.clone());
    }
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading --env-file {}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = env_entry(line).with_context(|| format!("{}:{}", file.display(), n + 1))?;
            set_env(&mut env, entry);
        }
    }
    for e in &args.envs {
        set_env(&mut env, env_entry(e).context("invalid --env")?);
    }
    Ok(env)
}

fn libc_getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// `KEY=VALUE`, or `KEY` alone to copy the variable from petrel's own environment.
fn env_entry(text: &str) -> anyhow::Result<String> {
    let key = text.split('=').next().unwrap_or("");
    let valid = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        bail!("'{text}': expected KEY=VALUE with KEY made of letters, digits and _");
    }
    if text.contains('=') {
        return Ok(text.to_string());
    }
    match std::env::var(key) {
        Ok(value) => Ok(format!("{key}={value}")),
        Err(_) => bail!("'{key}' is not set in petrel's environment, so it cannot be copied"),
    }
}

fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or("").to_string();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(entry);
}

/// `UID[:GID]`, or a user name looked up in the image's `/etc/passwd`.
fn parse_user(text: &str, rootfs: &Path) -> anyhow::Result<User> {
    let (name, group) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let matches = f.first() == Some(&name) || f.get(2) == Some(&name);
        (f.len() >= 4 && matches).then(|| (f[2].parse::<u32>().ok(), f[3].parse::<u32>().ok()))
    });
    let uid = match name.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => match entry {
            Some((Some(uid), _)) => uid,
            _ => bail!(
                "invalid --user '{text}': '{name}' is neither a number nor a user in {}/etc/passwd",
                rootfs.display()
            ),
        },
    };
    let gid = match group {
        Some(g) => g
            .parse::<u32>()
            .with_context(|| format!("invalid --user '{text}': group '{g}' is not a number"))?,
        None => entry.and_then(|(_, gid)| gid).unwrap_or(uid),
    };
    Ok(User { uid, gid })
}

/// A memory limit: a size with an optional binary suffix, at least the 1 MiB a job needs.
fn parse_memory(text: &str) -> anyhow::Result<u64> {
    let bytes = parse_size(text).map_err(|e| anyhow::anyhow!(e))?;
    if bytes < 1 << 20 {
        bail!("invalid --memory {text:?}: below the 1 MiB minimum a job needs to start");
    }
    Ok(bytes)
}

fn write_stats(path: &Path, outcome: &Outcome) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "exit_code": outcome.status.exit_code(),
        "signal": outcome.status.signal(),
        "oom_killed": outcome.oom_killed,
        "peak_memory_bytes": outcome.usage.peak_memory_bytes,
        "peak_memory_source": outcome.usage.memory_source,
        "cpu_user_seconds": outcome.usage.user_cpu_seconds,
        "cpu_system_seconds": outcome.usage.system_cpu_seconds,
        "wall_seconds": outcome.usage.wall_seconds,
        "cgroup": outcome.cgroup,
        "limits_not_applied": outcome.not_applied,
    });
    let text = serde_json::to_string_pretty(&json)?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("writing --stats-json {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert!(parse_memory("10")
            .unwrap_err()
            .to_string()
            .contains("1 MiB minimum"));
        assert!(parse_memory("12x").is_err());
    }

    #[test]
    fn env_entries() {
        assert_eq!(env_entry("A=b=c").unwrap(), "A=b=c");
        assert!(env_entry("1A=x").is_err());
        assert!(env_entry("A-B=x").is_err());
        let mut env = vec!["A=1".to_string(), "B=2".to_string()];
        set_env(&mut env, "A=3".into());
        assert_eq!(env, ["B=2", "A=3"]);
    }

    #[test]
    fn users_from_passwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(
            parse_user("alice", dir.path()).unwrap(),
            User {
                uid: 1000,
                gid: 100
            }
        );
        assert_eq!(
            parse_user("1000", dir.path()).unwrap(),
            User {
                uid: 1000,
                gid: 100
            }
        );
        assert_eq!(
            parse_user("7:8", dir.path()).unwrap(),
            User { uid: 7, gid: 8 }
        );
        assert_eq!(
            parse_user("42", dir.path()).unwrap(),
            User { uid: 42, gid: 42 }
        );
        assert!(parse_user("bob", dir.path())
            .unwrap_err()
            .to_string()
            .contains("etc/passwd"));
    }
}
