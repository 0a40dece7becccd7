//! # petrel-drivers: one job spec, many container runtimes
//!
//! Petrel runs a container job with its own runtime ([`petrel_runtime`]) or with one the
//! site already has. This crate is the boundary between the pool and those runtimes,
//! modelled on Nomad's task drivers.
//!
//! ## Overview
//! * [`JobSpec`] says what to run, in no runtime's terms: the image ([`JobImage`]), argv,
//!   environment, scratch directory at the target directory (`/srv`, also the working
//!   directory), binds, user, [`Limits`], network, name (`petrel_<cluster>_<proc>_<slot>`,
//!   see [`container_name`]) and stdio.
//! * [`Runtime`] is a driver: [`embedded::Embedded`], [`oci::OciRuntime`] (runc, crun; an
//!   OCI bundle whose `config.json` is built with `oci-spec`), [`engine::EngineRuntime`]
//!   (Docker, Podman; their CLIs), [`apptainer::Apptainer`] (Apptainer, Singularity) and
//!   [`charliecloud::Charliecloud`] (`ch-run`). [`Runtime::start`] returns a [`Handle`] to
//!   wait on ([`ExitInfo`]: status, OOM kill, memory limit and peak, CPU, wall time),
//!   signal, exec into (`petrel ssh`), measure and destroy.
//! * A [`DriverError`] says whom to [`Blame`]: the job (bad image, command not in the
//!   image: hold it) or the slot (the runtime broke: requeue the job, re-probe).
//! * [`probe`] runs real test jobs from a busybox image petrel builds itself, so a slot
//!   advertises only runtimes that work; [`attrs`] turns the results into slot attributes
//!   with HTCondor's names (`HasContainer`, `HasDockerURL`, `HasSIF`, `HasSandboxImage`,
//!   `HasDocker`, `DockerVersion`, `HasSingularity`, ...) plus petrel's (`HasSquashfs`,
//!   `HasOCILayout`, `ContainerRuntimes`).
//! * [`Drivers`] holds a slot's runtimes in preference order with their last probes, and
//!   chooses the runtime for a job ([`Drivers::choose`]); [`prepare_image`] turns the
//!   user's image reference into the form the chosen runtime takes.
//!
//! ```no_run
//! use petrel_drivers::{Drivers, ImageKind, JobImage, JobSpec, ProbeContext, Stdio};
//!
//! let drivers = Drivers::all();
//! let probes = drivers.probe(&ProbeContext::new());
//! for p in &probes {
//!     println!("{}: {}", p.runtime, p.reason.as_deref().unwrap_or("available"));
//! }
//! let runtime = drivers.choose(ImageKind::DockerUrl, None)?;
//! let mut spec = JobSpec::new(
//!     petrel_drivers::container_name(12, 0, "slot1"),
//!     JobImage::Rootfs("/var/lib/petrel/images/rootfs/abc".into()),
//!     vec!["/bin/sh".into(), "-c".into(), "echo hello".into()],
//! );
//! spec.scratch = Some("/var/lib/petrel/execute/dir_12_0".into());
//! spec.stdout = Stdio::File("/var/lib/petrel/execute/dir_12_0/_condor_stdout".into());
//! let handle = runtime.start(&spec)?;
//! let exit = handle.wait()?;
//! println!("{} (peak memory {:?})", exit.status, exit.peak_memory_bytes);
//! # Ok::<(), petrel_drivers::DriverError>(())
//! ```
//!
//! The library never prints; it logs with `tracing`.

pub mod apptainer;
pub mod attrs;
pub mod bare;
mod cgroupfs;
pub mod charliecloud;
pub mod embedded;
pub mod engine;
mod error;
mod handle;
pub mod host;
mod hostjob;
pub mod job_spec;
pub mod oci;
pub mod probe;
mod process;
mod registry;
pub mod runtime;

pub use attrs::{slot_ad, slot_attributes};
pub use error::{one_line, Blame, DriverError, ErrorKind};
pub use job_spec::{
    container_name, Bind, EngineRef, JobImage, JobSpec, Limits, NetMode, Stdio, User,
    DEFAULT_TARGET_DIR,
};
pub use probe::{probe_all, Check, Health, Probe, ProbeContext, PROBE_EXIT_STATUS};
pub use registry::{
    canonical_name, choose, driver, parse_preference, prepare_image, Drivers, PreparedJobImage,
    DEFAULT_PREFERENCE,
};
pub use runtime::{
    Capabilities, ExitInfo, Handle, ImageKind, JobStatus, RunningJob, Runtime, Stats,
};
