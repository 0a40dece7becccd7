//! Turning a job ad into a container and running it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use petrel_classad::ClassAd;
use petrel_image::{ImageConfig, ImageRef, PreparedImage, Store};
use petrel_runtime::{exit_status, ContainerSpec, JobStatus, Limits, RuntimeError, User};
use petrel_transfer::{StdMode, TransferPlan};

use super::task::{self, ContainerInfo, Ending, StarterTask, Usage};
use super::{elapsed_secs, in_scratch, unix_now};
use crate::holdcodes::{self, Hold};

const ENOENT: i64 = 2;
const EACCES: i64 = 13;

fn hold(code: i64, sub: i64, reason: String) -> Ending {
    Ending::Hold(Hold::new(code, sub, reason))
}

/// The image: a directory used in place, or anything else through the image store.
struct Image {
    rootfs: PathBuf,
    config: ImageConfig,
    /// Keeps a stored image leased (safe from `petrel image gc`) while the job runs.
    _prepared: Option<PreparedImage>,
}

fn image_name(ad: &ClassAd) -> Option<String> {
    ["ContainerImage", "DockerImage"]
        .iter()
        .find_map(|a| ad.eval_attr(a).as_str().map(str::to_string))
        .filter(|s| !s.trim().is_empty())
}

/// The job's image and where it is. condor_submit lists a local image (a directory, a
/// `.sif`) in `TransferInput` and keeps only its base name in `ContainerImage`, for the
/// starter to run it from the scratch directory; on the submit machine itself petrel
/// uses it in place instead, and takes it out of the input list.
pub fn image_location(ad: &ClassAd, plan: &mut TransferPlan) -> Option<(String, PathBuf)> {
    let name = image_name(ad)?;
    let listed = plan.inputs.iter().position(|i| {
        i.role == petrel_transfer::InputRole::Listed
            && !name.contains('/')
            && i.dest == Path::new(&name)
    });
    let location = match listed {
        Some(pos) => plan.inputs.remove(pos).source,
        None => PathBuf::from(&name),
    };
    Some((name, location))
}

fn open_image(name: &str, location: &str, iwd: &Path) -> Result<Image, Ending> {
    let invalid = |why: String| hold(holdcodes::INVALID_DOCKER_IMAGE, 0, why);
    let local = if location.contains("://") || location.starts_with('/') {
        None
    } else {
        Some(iwd.join(location))
    };
    let path = match &local {
        Some(p) if p.exists() => p.clone(),
        _ => PathBuf::from(location),
    };
    if path.is_dir() && !path.join("oci-layout").exists() {
        return Ok(Image {
            rootfs: path,
            config: ImageConfig::default(),
            _prepared: None,
        });
    }
    let reference = if path.exists() {
        path.to_string_lossy().into_owned()
    } else {
        location.to_string()
    };
    let image_ref = ImageRef::parse(&reference)
        .map_err(|e| invalid(format!("invalid image name '{name}': {e}")))?;
    let store = match std::env::var_os("PETREL_IMAGE_STORE") {
        Some(dir) => Store::open(Path::new(&dir)),
        None => Store::open_default(),
    }
    .map_err(|e| Ending::Requeue {
        reason: format!("cannot open the image store: {e}"),
    })?;
    let prepared = store
        .prepare(&image_ref)
        .map_err(|e| invalid(format!("cannot get container image '{name}': {e}")))?;
    Ok(Image {
        rootfs: prepared.rootfs.clone(),
        config: prepared.config.clone(),
        _prepared: Some(prepared),
    })
}

/// `Arguments` (new syntax) or `Args` (old).
fn arguments(ad: &ClassAd) -> Result<Vec<String>, String> {
    if let Some(v2) = ad.eval_attr("Arguments").as_str() {
        return petrel_submit::args_env::split_v2(v2).map_err(|e| format!("Arguments: {e}"));
    }
    Ok(ad
        .eval_attr("Args")
        .as_str()
        .map(|a| a.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default())
}

/// `Environment` (new syntax) or `Env` (old).
fn environment(ad: &ClassAd) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    if let Some(v2) = ad.eval_attr("Environment").as_str() {
        for entry in
            petrel_submit::args_env::split_v2(v2).map_err(|e| format!("Environment: {e}"))?
        {
            if let Some((k, v)) = entry.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
    } else if let Some(v1) = ad.eval_attr("Env").as_str() {
        for entry in v1.split(';') {
            if let Some((k, v)) = entry.trim().split_once('=') {
                out.push((k.trim().to_string(), v.to_string()));
            }
        }
    }
    Ok(out)
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    env.retain(|e| !e.starts_with(&prefix));
    env.push(format!("{key}={value}"));
}

/// Opens the job's standard streams (as the owner) and puts them on fds 0, 1 and 2, which
/// the container inherits.
fn redirect_stdio(task: &StarterTask, plan: &TransferPlan) -> Result<(), Ending> {
    let open_err = |code: i64, what: &str, p: &Path, e: std::io::Error| {
        hold(
            code,
            i64::from(e.raw_os_error().unwrap_or(0)),
            format!("Failed to open {what} file '{}': {e}", p.display()),
        )
    };
    let stdin_path = plan.stdin.as_ref().map(|s| match &s.in_scratch {
        Some(name) => task.scratch.join(name),
        None => s.path.clone(),
    });
    let out_path = |f: &Option<petrel_transfer::StdFile>, name: &str| -> PathBuf {
        match f {
            None => PathBuf::from("/dev/null"),
            Some(f) if f.mode == StdMode::Transfer => in_scratch(task, name),
            Some(f) => f.path_in(&plan.iwd),
        }
    };
    let stdout_path = out_path(&plan.stdout, super::STDOUT_NAME);
    let stderr_path = out_path(&plan.stderr, super::STDERR_NAME);
    let opened = crate::creds::as_user(task.uid, task.gid, || {
        let stdin = match &stdin_path {
            Some(p) => File::open(p)
                .map_err(|e| open_err(holdcodes::UNABLE_TO_OPEN_INPUT, "input", p, e))?,
            None => File::open("/dev/null").map_err(|e| {
                open_err(
                    holdcodes::UNABLE_TO_OPEN_INPUT,
                    "input",
                    Path::new("/dev/null"),
                    e,
                )
            })?,
        };
        let open_out = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| open_err(holdcodes::UNABLE_TO_OPEN_OUTPUT, "output", p, e))
        };
        let stdout = open_out(&stdout_path)?;
        let stderr = if stderr_path == stdout_path {
            stdout
                .try_clone()
                .map_err(|e| open_err(holdcodes::UNABLE_TO_OPEN_OUTPUT, "error", &stderr_path, e))?
        } else {
            open_out(&stderr_path)?
        };
        Ok::<_, Ending>((stdin, stdout, stderr))
    })
    .map_err(|e| Ending::Requeue {
        reason: format!("cannot act as the job's owner: {e}"),
    })??;
    let (stdin, stdout, stderr) = opened;
    rustix::stdio::dup2_stdin(&stdin)
        .and_then(|_| rustix::stdio::dup2_stdout(&stdout))
        .and_then(|_| rustix::stdio::dup2_stderr(&stderr))
        .map_err(|e| Ending::Requeue {
            reason: format!("cannot redirect the job's standard streams: {e}"),
        })
}

/// Runs the job's container; `Err` carries an ending that stops the job before it ran.
pub fn run_container(
    spool: &Path,
    task: &StarterTask,
    ad: &ClassAd,
    plan: &TransferPlan,
    image: Option<(String, PathBuf)>,
    usage: &mut Usage,
) -> Result<Ending, Ending> {
    let iwd = plan.iwd.clone();
    let Some((name, location)) = image else {
        return Err(hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            "petrel runs jobs in containers: set container_image (universe = container) or \
             docker_image (universe = docker)"
                .into(),
        ));
    };
    let image = open_image(&name, &location.to_string_lossy(), &iwd)?;
    let target_dir = ad
        .eval_attr("ContainerTargetDir")
        .as_str()
        .filter(|s| s.starts_with('/'))
        .unwrap_or(petrel_runtime::DEFAULT_TARGET_DIR)
        .to_string();
    let cmd = ad
        .eval_attr("Cmd")
        .as_str()
        .map(str::to_string)
        .unwrap_or_default();
    let mut argv = Vec::new();
    match plan.executable.as_ref().and_then(|e| e.in_scratch.as_ref()) {
        Some(n) => argv.push(format!(
            "{}/{}",
            target_dir.trim_end_matches('/'),
            n.display()
        )),
        None if !cmd.is_empty() => argv.push(cmd.clone()),
        None => {
            argv.extend(image.config.entrypoint.clone().unwrap_or_default());
            argv.extend(image.config.cmd.clone().unwrap_or_default());
        }
    }
    if argv.is_empty() {
        return Err(hold(
            holdcodes::FAILED_TO_CREATE_PROCESS,
            ENOENT,
            format!(
                "no executable: the job has none and the image '{name}' has no Entrypoint or Cmd"
            ),
        ));
    }
    argv.extend(arguments(ad).map_err(|e| hold(holdcodes::FAILED_TO_CREATE_PROCESS, 0, e))?);

    let mut spec = ContainerSpec::new(&image.rootfs, argv.clone());
    for e in &image.config.env {
        if let Some((k, v)) = e.split_once('=') {
            set_env(&mut spec.env, k, v);
        }
    }
    let cpus = task.cpus.to_string();
    for (k, v) in [
        ("_CONDOR_SCRATCH_DIR", target_dir.as_str()),
        ("_CONDOR_JOB_IWD", target_dir.as_str()),
        ("_CONDOR_SLOT", task.slot.as_str()),
        ("_CONDOR_JOB_AD", &format!("{target_dir}/.job.ad")),
        ("_CONDOR_MACHINE_AD", &format!("{target_dir}/.machine.ad")),
        ("TMPDIR", target_dir.as_str()),
        ("OMP_NUM_THREADS", cpus.as_str()),
        ("HOME", target_dir.as_str()),
    ] {
        set_env(&mut spec.env, k, v);
    }
    for (k, v) in environment(ad).map_err(|e| hold(holdcodes::FAILED_TO_CREATE_PROCESS, 0, e))? {
        set_env(&mut spec.env, &k, &v);
    }
    // The job's own ad inside its scratch directory, as HTCondor's starter leaves it.
    let _ = crate::creds::as_user(task.uid, task.gid, || {
        let _ = std::fs::write(in_scratch(task, ".job.ad"), ad.to_old_syntax());
        let _ = std::fs::write(
            in_scratch(task, ".machine.ad"),
            format!(
                "Cpus = {}\nMemory = {}\nDisk = {}\nName = \"{}@{}\"\n",
                task.cpus, task.memory_mib, task.disk_kib, task.slot, task.hostname
            ),
        );
    });
    spec.scratch = Some(task.scratch.clone());
    spec.target_dir = target_dir.clone();
    spec.workdir = Some(target_dir.clone());
    if rustix::process::geteuid().is_root() && task.uid != 0 {
        spec.user = Some(User {
            uid: task.uid,
            gid: task.gid,
        });
    }
    spec.limits = Limits {
        memory_bytes: (task.memory_mib > 0).then_some(task.memory_mib << 20),
        cpus: Some(f64::from(task.cpus.max(1))),
        ..Limits::default()
    };
    spec.name = Some(format!(
        "petrel_{}_{}_{}",
        task.job.cluster, task.job.proc, task.slot
    ));
    redirect_stdio(task, plan)?;
    let started = Instant::now();
    usage.started = Some(unix_now());
    let container = match petrel_runtime::start(&spec) {
        Ok(c) => c,
        Err(e) => return Err(runtime_failure(&e, &argv[0], &name)),
    };
    let info = ContainerInfo {
        pid: container.pid(),
        name: container.name().to_string(),
        target_dir: target_dir.clone(),
        uid: task.uid,
        gid: task.gid,
    };
    if let Err(e) = task::write_json(&spool.join(task::CONTAINER_FILE), &info) {
        tracing::warn!("{e}; `petrel ssh` will not find this job");
    }
    let forwarder = forward_signals(container.pid());
    let outcome = container.wait();
    if let Some(handle) = forwarder {
        handle.close();
    }
    usage.wall_secs = elapsed_secs(started);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return Err(runtime_failure(&e, &argv[0], &name)),
    };
    usage.user_cpu_secs = outcome.usage.user_cpu_seconds;
    usage.sys_cpu_secs = outcome.usage.system_cpu_seconds;
    usage.peak_memory_kib = outcome.usage.peak_memory_bytes.unwrap_or(0) / 1024;
    usage.not_applied = outcome
        .not_applied
        .iter()
        .map(|n| format!("{}: {}", n.limit, n.reason))
        .collect();
    if outcome.oom_killed {
        return Ok(Ending::Hold(Hold::out_of_memory(
            task.memory_mib,
            usage.peak_memory_kib.div_ceil(1024).max(task.memory_mib),
        )));
    }
    Ok(match outcome.status {
        JobStatus::Exited(code) => Ending::Exited { code },
        JobStatus::Signaled(sig) => Ending::Signaled { signal: sig },
    })
}

/// Whose fault a runtime error is: the image's and command's are the job's, the rest the
/// slot's.
fn runtime_failure(e: &RuntimeError, command: &str, image: &str) -> Ending {
    use petrel_runtime::SetupFailure;
    match e {
        RuntimeError::InContainer { failure, message } => match failure {
            SetupFailure::CommandNotFound => hold(
                holdcodes::FAILED_TO_CREATE_PROCESS,
                ENOENT,
                format!("Failed to execute '{command}' in container image '{image}': {message}"),
            ),
            SetupFailure::NotExecutable => hold(
                holdcodes::FAILED_TO_CREATE_PROCESS,
                EACCES,
                format!("Failed to execute '{command}' in container image '{image}': {message}"),
            ),
            SetupFailure::Workdir | SetupFailure::User => hold(
                holdcodes::FAILED_TO_CREATE_PROCESS,
                0,
                format!("Failed to start the job in container image '{image}': {message}"),
            ),
            SetupFailure::Step => Ending::Requeue {
                reason: format!("the container runtime failed to set up the job: {message}"),
            },
        },
        RuntimeError::RootfsMissing(_) | RuntimeError::RootfsNotDirectory(_) => hold(
            holdcodes::INVALID_DOCKER_IMAGE,
            0,
            format!("container image '{image}': {e}"),
        ),
        other => Ending::Requeue {
            reason: format!(
                "the container runtime failed: {other} (exit {})",
                exit_status::SETUP_FAILED
            ),
        },
    }
}

/// Passes SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT sent to the starter (by
/// `petrel rm`/`hold` through the daemon) to the container's init, which hands them to
/// the job.
fn forward_signals(init_pid: i32) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT])
            .map_err(|e| tracing::warn!("cannot catch signals: {e}"))
            .ok()?;
    let handle = signals.handle();
    let pid = rustix::process::Pid::from_raw(init_pid)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
                    let _ = rustix::process::kill_process(pid, s);
                }
            }
        })
        .ok()?;
    Some(handle)
}
