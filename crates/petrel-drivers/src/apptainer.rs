//! Apptainer (and SingularityCE/Singularity, its predecessors under another name):
//! `exec --contain --ipc --pid` with the scratch directory bound at the target directory,
//! which is also `--pwd`; `--nv` when the job wants GPUs. The job's environment is the only
//! one it gets (`--cleanenv` and an `--env-file`). Apptainer runs as the job's user and has
//! no cgroup of its own here, so petrel adds one (see [`crate::hostjob`]).

use std::path::PathBuf;

use crate::error::{DriverError, ErrorKind};
use crate::hostjob::{self, Launch};
use crate::job_spec::{JobImage, JobSpec, NetMode, User};
use crate::process::{self, run_captured, SHORT};
use crate::runtime::{Capabilities, Handle, ImageKind, Runtime};

/// Which program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApptainerFlavor {
    Apptainer,
    Singularity,
}

impl ApptainerFlavor {
    pub fn name(self) -> &'static str {
        match self {
            ApptainerFlavor::Apptainer => "apptainer",
            ApptainerFlavor::Singularity => "singularity",
        }
    }
}

/// The Apptainer or Singularity driver.
#[derive(Debug, Clone)]
pub struct Apptainer {
    flavor: ApptainerFlavor,
    program: String,
    state_dir: PathBuf,
}

impl Apptainer {
    pub fn new(flavor: ApptainerFlavor) -> Apptainer {
        Apptainer {
            flavor,
            program: flavor.name().to_string(),
            state_dir: crate::host::state_dir(flavor.name()),
        }
    }

    /// Uses this program (a name in `PATH` or a path).
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
        process::require_program(self.flavor.name(), &self.program)
    }

    /// The arguments for `spec`, reading the environment from `env_file`. Values ride in
    /// their options' own arguments (`--bind=…`) and `--` ends the options before the
    /// image (an absolute path), so the job's argv after it is only ever the command.
    pub fn args(
        &self,
        spec: &JobSpec,
        env_file: &std::path::Path,
    ) -> Result<Vec<String>, DriverError> {
        spec.validate()?;
        let image = match &spec.image {
            JobImage::Rootfs(p) | JobImage::Sif(p) | JobImage::Squashfs(p) => p,
            other => {
                return Err(DriverError::job(
                    ErrorKind::Spec,
                    format!(
                        "{} takes a SIF, squashfs or sandbox directory, not a {}",
                        self.flavor.name(),
                        other.describe()
                    ),
                ))
            }
        };
        let mut a: Vec<String> = ["exec", "--contain", "--ipc", "--pid", "--cleanenv"]
            .map(String::from)
            .to_vec();
        a.push(format!("--env-file={}", env_file.display()));
        for bind in spec.all_binds() {
            let mode = if bind.read_only { ":ro" } else { "" };
            a.push(format!(
                "--bind={}:{}{mode}",
                bind.source.display(),
                bind.target
            ));
        }
        a.push(format!("--pwd={}", spec.workdir()));
        if spec.network == NetMode::None {
            a.extend(["--net".to_string(), "--network=none".to_string()]);
        }
        if let Some(host) = &spec.hostname {
            a.extend(["--uts".to_string(), format!("--hostname={host}")]);
        }
        if spec.gpus {
            a.push("--nv".to_string());
        }
        a.push("--".to_string());
        a.push(image.display().to_string());
        a.extend(spec.argv.iter().cloned());
        Ok(a)
    }
}

/// Apptainer's own error lines.
fn diagnostic(line: &str) -> bool {
    line.starts_with("FATAL:") || line.starts_with("ERROR:")
}

impl Runtime for Apptainer {
    fn name(&self) -> &'static str {
        self.flavor.name()
    }

    fn image_kinds(&self) -> &'static [ImageKind] {
        &[ImageKind::Sif, ImageKind::SandboxDir, ImageKind::DockerUrl]
    }

    fn accepts(&self, image: &JobImage) -> bool {
        matches!(
            image,
            JobImage::Rootfs(_) | JobImage::Sif(_) | JobImage::Squashfs(_)
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            signals: true,
            exec: true,
            limits: User::current().uid == 0,
            pid_namespace: true,
            network_isolation: true,
        }
    }

    fn version(&self) -> Result<String, DriverError> {
        let program = self.program_path()?;
        let out = run_captured(
            std::process::Command::new(&program).arg("--version"),
            None,
            SHORT,
        )?;
        let line = out.stdout.lines().next().unwrap_or("").trim().to_string();
        // "apptainer version 1.2.5", "singularity-ce version 3.11.0"
        match line.split_once(" version ") {
            Some((_, v)) if out.success() => Ok(v.trim().to_string()),
            _ => Err(DriverError::slot(
                ErrorKind::Runtime,
                format!("`{} --version` said '{}'", program.display(), out.message()),
            )),
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
        let files = crate::host::job_dir(&self.state_dir.join("jobs"), &spec.name)?;
        let env_file = files.path().join("env");
        // Apptainer reads the file as shell assignments.
        hostjob::write_env_file(&env_file, &spec.env, true)?;
        let run_as = hostjob::run_as(spec);
        if let Some(user) = run_as {
            crate::host::give_to(user, &[files.path(), &env_file])?;
        }
        let launch = Launch {
            runtime: self.flavor.name(),
            program,
            args: self.args(spec, &env_file)?,
            env: vec![(
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            )],
            run_as,
            diagnostic: Some(diagnostic),
            host_cwd: None,
            failure_status: 255,
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

    fn sample() -> JobSpec {
        let mut spec = JobSpec::new(
            "petrel_7_0_slot1",
            JobImage::Sif("/images/bb.sif".into()),
            vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        );
        spec.scratch = Some("/scratch/7.0".into());
        spec.binds.push(Bind {
            source: "/cvmfs".into(),
            target: "/cvmfs".into(),
            read_only: true,
        });
        spec
    }

    #[test]
    fn args_for_a_sample_job() {
        let args = Apptainer::new(ApptainerFlavor::Apptainer)
            .args(&sample(), Path::new("/s/env"))
            .unwrap();
        assert_eq!(
            args,
            [
                "exec",
                "--contain",
                "--ipc",
                "--pid",
                "--cleanenv",
                "--env-file=/s/env",
                "--bind=/scratch/7.0:/srv",
                "--bind=/cvmfs:/cvmfs:ro",
                "--pwd=/srv",
                "--",
                "/images/bb.sif",
                "/bin/sh",
                "-c",
                "exit 3"
            ]
        );
    }

    #[test]
    fn args_with_gpus_no_network_and_a_hostname() {
        let mut spec = sample();
        spec.gpus = true;
        spec.network = NetMode::None;
        spec.hostname = Some("node1".into());
        spec.image = JobImage::Rootfs("/sandbox".into());
        let args = Apptainer::new(ApptainerFlavor::Singularity)
            .args(&spec, Path::new("/e"))
            .unwrap();
        let tail: Vec<&str> = args.iter().map(String::as_str).skip(9).collect();
        assert_eq!(
            tail,
            [
                "--net",
                "--network=none",
                "--uts",
                "--hostname=node1",
                "--nv",
                "--",
                "/sandbox",
                "/bin/sh",
                "-c",
                "exit 3"
            ]
        );
        spec.image = JobImage::Engine(crate::EngineRef::parse("busybox").unwrap());
        assert_eq!(
            Apptainer::new(ApptainerFlavor::Apptainer)
                .args(&spec, Path::new("/e"))
                .unwrap_err()
                .kind,
            ErrorKind::Spec
        );
    }

    #[test]
    fn diagnostics() {
        assert!(diagnostic(
            "FATAL:   \"nope\": executable file not found in $PATH"
        ));
        assert!(!diagnostic("job output"));
    }

    /// Hostile text from the job lands only as data: after `--` and the image, or inside
    /// one option's own argument; an image path that could read as an option, a mount
    /// target that would split into more mounts, a non-shell variable name are refused.
    #[test]
    fn hostile_job_text_is_only_data() {
        let apptainer = Apptainer::new(ApptainerFlavor::Apptainer);
        let mut spec = sample();
        spec.argv = vec![
            "--bind=/:/host".into(),
            "--fakeroot".into(),
            "-B".into(),
            "/:/h".into(),
        ];
        let args = apptainer.args(&spec, Path::new("/e")).unwrap();
        let end = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[end + 1], "/images/bb.sif");
        assert_eq!(args[end + 2..], spec.argv[..]);
        assert!(args[..end].iter().all(|a| !a.contains("/:/")), "{args:?}");

        for image in [
            JobImage::Sif("--bind=/:/host".into()),
            JobImage::Rootfs("-B".into()),
            JobImage::Squashfs("relative.sqfs".into()),
        ] {
            let mut spec = sample();
            spec.image = image;
            let err = apptainer.args(&spec, Path::new("/e")).unwrap_err();
            assert!(err.message.contains("absolute"), "{}", err.message);
        }
        let mut spec = sample();
        spec.target_dir = "/srv,/:/host".into();
        assert!(apptainer.args(&spec, Path::new("/e")).is_err());
        spec.target_dir = "/srv".into();
        spec.hostname = Some("--writable".into());
        assert!(apptainer.args(&spec, Path::new("/e")).is_err());
    }
}
