//! Charliecloud's `ch-run`: an unprivileged runtime with user and mount namespaces only
//! (no pid or network namespace, no cgroups). It runs as the job's user and execs the
//! job, so the runtime's process is the job; petrel adds the cgroup (see
//! [`crate::hostjob`]). The environment is passed as a file (`--unset-env='*'`, then
//! `--set-env=FILE`), so nothing of petrel's own leaks in; `ch-run` itself needs `$USER`.

use std::path::PathBuf;

use crate::error::{DriverError, ErrorKind};
use crate::hostjob::{self, Launch};
use crate::job_spec::{JobImage, JobSpec, NetMode, User};
use crate::process::{self, run_captured, SHORT};
use crate::runtime::{Capabilities, Handle, ImageKind, Runtime};

/// The Charliecloud driver.
#[derive(Debug, Clone)]
pub struct Charliecloud {
    program: String,
    state_dir: PathBuf,
}

impl Default for Charliecloud {
    fn default() -> Self {
        Charliecloud::new()
    }
}

impl Charliecloud {
    pub fn new() -> Charliecloud {
        Charliecloud {
            program: "ch-run".to_string(),
            state_dir: crate::host::state_dir("charliecloud"),
        }
    }

    /// Uses this `ch-run` (a name in `PATH` or a path).
    pub fn with_program(mut self, program: impl Into<String>) -> Self {
        self.program = program.into();
        self
    }

    /// Keeps per-job files (environment file, gate) under `dir`.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    fn program_path(&self) -> Result<PathBuf, DriverError> {
        process::require_program("charliecloud", &self.program)
    }

    /// The arguments of `ch-run` for `spec`, reading the environment from `env_file`.
    pub fn args(
        &self,
        spec: &JobSpec,
        env_file: &std::path::Path,
    ) -> Result<Vec<String>, DriverError> {
        args_as(spec, env_file, User::current())
    }
}

/// The arguments of `ch-run` for `spec` when petrel runs as `caller`.
fn args_as(
    spec: &JobSpec,
    env_file: &std::path::Path,
    caller: User,
) -> Result<Vec<String>, DriverError> {
    // The image is an absolute path and every value rides in its option's argument;
    // the job's argv follows the image and `--`.
    spec.validate()?;
    let image = match &spec.image {
        JobImage::Rootfs(p) | JobImage::Squashfs(p) => p,
        other => {
            return Err(DriverError::job(
                ErrorKind::Spec,
                format!(
                    "ch-run takes a root file system or a squashfs file, not a {}",
                    other.describe()
                ),
            ))
        }
    };
    if spec.network == NetMode::None {
        return Err(DriverError::job(
            ErrorKind::Unsupported,
            "ch-run cannot isolate the network (it makes no network namespace)",
        ));
    }
    let mut a = vec![
        "--unset-env=*".to_string(),
        format!("--set-env={}", env_file.display()),
    ];
    for bind in spec.all_binds() {
        if bind.read_only {
            return Err(DriverError::job(
                ErrorKind::Unsupported,
                format!("ch-run cannot bind {} read-only", bind.source.display()),
            ));
        }
        a.push(format!("--bind={}:{}", bind.source.display(), bind.target));
    }
    a.push(format!("--cd={}", spec.workdir()));
    if let (Some(user), false) = (spec.user, caller.uid == 0) {
        // Unprivileged: ch-run maps the caller to these ids inside. (Root instead runs
        // ch-run as the job's user: see `hostjob::run_as`.)
        a.push(format!("--uid={}", user.uid));
        a.push(format!("--gid={}", user.gid));
    }
    a.push(image.display().to_string());
    a.push("--".to_string());
    a.extend(spec.argv.iter().cloned());
    Ok(a)
}

/// `$USER` for ch-run: the name of `uid` in the host's passwd file, else the number.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// The ids ch-run runs as for `spec`.
fn runs_as(spec: &JobSpec) -> User {
    hostjob::run_as(spec).unwrap_or_else(User::current)
}

/// `Some(uid)` when `user` cannot open `/dev/fuse` for reading and writing, judged by its
/// owner, group and mode (supplementary groups are not considered; root always can).
fn fuse_unusable(user: User) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    if user.uid == 0 {
        return None;
    }
    let Ok(meta) = std::fs::metadata("/dev/fuse") else {
        return Some(user.uid);
    };
    let rw = |shift: u32| (meta.mode() >> shift) & 0o6 == 0o6;
    let usable = rw(0) || (meta.uid() == user.uid && rw(6)) || (meta.gid() == user.gid && rw(3));
    (!usable).then_some(user.uid)
}

/// ch-run's own error lines: `ch-run[PID]: error: ...`.
fn diagnostic(line: &str) -> bool {
    line.starts_with("ch-run[") && line.contains("]: error: ")
}

impl Runtime for Charliecloud {
    fn name(&self) -> &'static str {
        "charliecloud"
    }

    fn image_kinds(&self) -> &'static [ImageKind] {
        &[ImageKind::SandboxDir, ImageKind::Squashfs]
    }

    fn accepts(&self, image: &JobImage) -> bool {
        matches!(image, JobImage::Rootfs(_) | JobImage::Squashfs(_))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            signals: true,
            exec: true,
            // Through the cgroup petrel makes, which needs root on cgroup v1.
            limits: User::current().uid == 0,
            pid_namespace: false,
            network_isolation: false,
        }
    }

    fn version(&self) -> Result<String, DriverError> {
        let program = self.program_path()?;
        let out = run_captured(
            std::process::Command::new(&program)
                .arg("--version")
                .env("USER", user_name(User::current().uid)),
            None,
            SHORT,
        )?;
        // ch-run prints its version on stderr.
        let version = format!("{}{}", out.stdout, out.stderr).trim().to_string();
        if out.success() && !version.is_empty() && !version.contains(' ') {
            Ok(version)
        } else {
            Err(DriverError::slot(
                ErrorKind::Runtime,
                format!("`{} --version` said '{}'", program.display(), out.message()),
            ))
        }
    }

    fn exec_running(
        &self,
        job: &crate::RunningJob,
        argv: &[String],
        _tty: bool,
    ) -> Result<crate::JobStatus, DriverError> {
        hostjob::exec_running(job, argv)
    }

    fn start(&self, spec: &JobSpec) -> Result<Box<dyn Handle>, DriverError> {
        spec.validate()?;
        let program = self.program_path()?;
        spec.image.check_present()?;
        if let (JobImage::Squashfs(_), Some(uid)) = (&spec.image, fuse_unusable(runs_as(spec))) {
            // ch-run would retry the FUSE mount for seconds before giving up.
            return Err(DriverError::slot(
                ErrorKind::Unsupported,
                format!("ch-run mounts squashfs images with FUSE, and /dev/fuse is not usable by uid {uid}"),
            ));
        }
        let files = crate::host::job_dir(&self.state_dir.join("jobs"), &spec.name)?;
        let env_file = files.path().join("env");
        hostjob::write_env_file(&env_file, &spec.env, false)?;
        let run_as = hostjob::run_as(spec);
        if let Some(user) = run_as {
            // The job's user reads its environment file.
            crate::host::give_to(user, &[files.path(), &env_file])?;
        }
        let launch = Launch {
            runtime: "charliecloud",
            program,
            args: self.args(spec, &env_file)?,
            env: vec![
                (
                    "USER".into(),
                    user_name(run_as.map_or(User::current().uid, |u| u.uid)),
                ),
                (
                    "PATH".into(),
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ),
            ],
            run_as,
            diagnostic: Some(diagnostic),
            host_cwd: None,
            failure_status: 1,
            files,
        };
        Ok(Box::new(hostjob::start(
            spec,
            launch,
            &self.state_dir.join("gates"),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job_spec::Bind;
    use std::path::Path;

    #[test]
    fn args_for_a_sample_job() {
        let mut spec = JobSpec::new(
            "petrel_7_0_slot1",
            JobImage::Squashfs("/images/bb.sqfs".into()),
            vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        );
        spec.scratch = Some("/scratch/7.0".into());
        spec.binds.push(Bind {
            source: "/data".into(),
            target: "/in".into(),
            read_only: false,
        });
        let args = Charliecloud::new()
            .args(&spec, Path::new("/s/env"))
            .unwrap();
        let mut expected = vec![
            "--unset-env=*",
            "--set-env=/s/env",
            "--bind=/scratch/7.0:/srv",
            "--bind=/data:/in",
            "--cd=/srv",
        ];
        expected.extend(["/images/bb.sqfs", "--", "/bin/sh", "-c", "exit 3"]);
        assert_eq!(args, expected);
        spec.user = Some(User {
            uid: 1000,
            gid: 100,
        });
        let root = User { uid: 0, gid: 0 };
        assert_eq!(args_as(&spec, Path::new("/s/env"), root).unwrap(), expected);
        let unprivileged = User {
            uid: 1000,
            gid: 1000,
        };
        let args = args_as(&spec, Path::new("/s/env"), unprivileged).unwrap();
        assert_eq!(args[5..7], ["--uid=1000", "--gid=100"]);
    }

    #[test]
    fn refuses_what_ch_run_cannot_do() {
        let mut spec = JobSpec::new("j", JobImage::Rootfs("/r".into()), vec!["true".into()]);
        spec.network = NetMode::None;
        let err = Charliecloud::new()
            .args(&spec, Path::new("/e"))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unsupported);
        spec.network = NetMode::Host;
        spec.binds.push(Bind {
            source: "/d".into(),
            target: "/d".into(),
            read_only: true,
        });
        assert!(Charliecloud::new()
            .args(&spec, Path::new("/e"))
            .unwrap_err()
            .message
            .contains("read-only"));
        spec.binds.clear();
        spec.image = JobImage::Sif("/x.sif".into());
        assert_eq!(
            Charliecloud::new()
                .args(&spec, Path::new("/e"))
                .unwrap_err()
                .kind,
            ErrorKind::Spec
        );
    }

    #[test]
    fn diagnostics_and_names() {
        assert!(diagnostic(
            "ch-run[12]: error: can't execve(2): nope: No such file"
        ));
        assert!(!diagnostic("ch-run[12]: warning: something"));
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }

    #[test]
    fn hostile_job_text_is_only_data() {
        let mut spec = JobSpec::new(
            "j",
            JobImage::Rootfs("/images/bb".into()),
            vec![
                "--bind=/:/host".into(),
                "--uid=0".into(),
                "-b".into(),
                "/:/h".into(),
            ],
        );
        spec.env.push("X=--bind=/:/host".into());
        let args = Charliecloud::new().args(&spec, Path::new("/e")).unwrap();
        let end = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[end - 1], "/images/bb");
        assert_eq!(args[end + 1..], spec.argv[..]);
        assert!(args[..end]
            .iter()
            .all(|a| !a.contains("/:/") && a != "--uid=0"));
        spec.image = JobImage::Rootfs("--bind=/:/host".into());
        assert!(Charliecloud::new().args(&spec, Path::new("/e")).is_err());
        spec.image = JobImage::Rootfs("/images/bb".into());
        spec.target_dir = "/srv:/host".into();
        assert!(Charliecloud::new().args(&spec, Path::new("/e")).is_err());
    }
}
