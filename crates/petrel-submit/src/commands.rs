//! The submit commands: one documented entry per command, like ripgrep's flag table.
//!
//! [`SIMPLE`] lists the commands that map one value to one attribute; they are applied
//! in table order by [`crate::to_ads`]. [`SPECIAL`] documents the commands with their own
//! logic (universe, executable, arguments, environment, resources, transfer, container
//! images, requirements...), implemented in `to_ads.rs`. Every command may also be spelled
//! with its attribute name (`JobBatchName = x` is `batch_name = x`), as in HTCondor.

/// How a simple command's value becomes an attribute value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A ClassAd expression, used as written.
    Expr,
    /// A string, quoted by ClassAd rules.
    Str,
    /// A string; surrounding double quotes in the submit file are removed first.
    StrStripQuotes,
    /// A comma/space separated list, re-joined with commas, as a string.
    StrList,
    /// A path made absolute against the job's initial directory.
    Path,
    /// A boolean (`true`/`false`/`yes`/`no`/`1`/`0`).
    Bool,
    /// An integer.
    Int,
    /// A non-negative integer.
    UInt,
}

/// One submit command.
#[derive(Clone, Copy, Debug)]
pub struct Cmd {
    /// The submit keyword (case-insensitive).
    pub name: &'static str,
    /// The job attribute it sets.
    pub attr: &'static str,
    /// How the value is converted.
    pub kind: Kind,
    /// One line of documentation.
    pub doc: &'static str,
}

const fn c(name: &'static str, attr: &'static str, kind: Kind, doc: &'static str) -> Cmd {
    Cmd {
        name,
        attr,
        kind,
        doc,
    }
}

use Kind::*;

/// Commands that set one attribute from one value, in the order they are applied.
pub const SIMPLE: &[Cmd] = &[
    c(
        "next_job_start_delay",
        "NextJobStartDelay",
        Expr,
        "seconds to wait before starting the next job of the cluster",
    ),
    c(
        "keep_claim_idle",
        "KeepClaimIdle",
        Expr,
        "seconds to keep the slot claimed after the job exits",
    ),
    c(
        "job_ad_information_attrs",
        "JobAdInformationAttrs",
        Str,
        "attributes to copy into the user log's job-ad-information events",
    ),
    c(
        "ulog_execute_attrs",
        "UserLogExecuteEventAttrs",
        Str,
        "attributes of the slot to record in the execute event",
    ),
    c(
        "max_idle",
        "JobMaterializeMaxIdle",
        Expr,
        "late materialization: at most this many idle jobs (alias materialize_max_idle)",
    ),
    c(
        "docker_network_type",
        "DockerNetworkType",
        Str,
        "docker network: host, none, nat or a named network",
    ),
    c(
        "docker_pull_policy",
        "DockerPullPolicy",
        Str,
        "docker image pull policy (always)",
    ),
    c(
        "docker_override_entrypoint",
        "DockerOverrideEntrypoint",
        Bool,
        "run the executable instead of the image's entrypoint",
    ),
    c(
        "container_runtime",
        "ContainerRuntime",
        StrStripQuotes,
        "petrel: the container runtime to run the job with (embedded, runc, crun, charliecloud, apptainer, singularity, podman, docker)",
    ),
    c(
        "container_target_dir",
        "ContainerTargetDir",
        StrStripQuotes,
        "where the job scratch directory is mounted inside the container",
    ),
    c(
        "transfer_container",
        "TransferContainer",
        Bool,
        "transfer the container image with the job (default true)",
    ),
    c(
        "transfer_plugins",
        "TransferPlugins",
        Str,
        "file-transfer plugins supplied by the job: 'method=path;...'",
    ),
    c(
        "want_io_proxy",
        "WantIOProxy",
        Bool,
        "start the Chirp I/O proxy for the job",
    ),
    c(
        "starter_debug",
        "JobStarterDebug",
        StrStripQuotes,
        "debug level of the starter for this job",
    ),
    c(
        "starter_log",
        "JobStarterLog",
        StrStripQuotes,
        "where the starter writes its log for this job",
    ),
    c(
        "job_machine_attrs",
        "JobMachineAttrs",
        Str,
        "slot attributes to record in the job ad at match time",
    ),
    c(
        "job_machine_attrs_history_length",
        "JobMachineAttrsHistoryLength",
        Int,
        "how many matches' job_machine_attrs to keep",
    ),
    c(
        "notify_user",
        "NotifyUser",
        Str,
        "e-mail address for notifications",
    ),
    c(
        "email_attributes",
        "EmailAttributes",
        StrList,
        "attributes to include in notification e-mails",
    ),
    c(
        "remote_initialdir",
        "RemoteIwd",
        Str,
        "initial directory on the execute side",
    ),
    c(
        "output_destination",
        "OutputDestination",
        Str,
        "URL where all output files go",
    ),
    c(
        "want_graceful_removal",
        "WantGracefulRemoval",
        Expr,
        "give the job its max vacate time when removed",
    ),
    c(
        "job_max_vacate_time",
        "JobMaxVacateTime",
        Expr,
        "seconds the job gets to exit after a soft kill",
    ),
    c(
        "encrypt_execute_directory",
        "EncryptExecuteDirectory",
        Bool,
        "encrypt the job's scratch directory",
    ),
    c(
        "encrypt_input_files",
        "EncryptInputFiles",
        Str,
        "input files to transfer encrypted",
    ),
    c(
        "encrypt_output_files",
        "EncryptOutputFiles",
        Str,
        "output files to transfer encrypted",
    ),
    c(
        "dont_encrypt_input_files",
        "DontEncryptInputFiles",
        Str,
        "input files never to encrypt",
    ),
    c(
        "dont_encrypt_output_files",
        "DontEncryptOutputFiles",
        Str,
        "output files never to encrypt",
    ),
    c(
        "load_profile",
        "LoadProfile",
        Bool,
        "Windows: load the user profile",
    ),
    c(
        "file_remaps",
        "FileRemaps",
        Expr,
        "file name remapping for the job",
    ),
    c(
        "buffer_files",
        "BufferFiles",
        Expr,
        "buffering of remote I/O files",
    ),
    c("buffer_size", "BufferSize", Expr, "remote I/O buffer size"),
    c(
        "buffer_block_size",
        "BufferBlockSize",
        Expr,
        "remote I/O block size",
    ),
    c(
        "fetch_files",
        "FetchFiles",
        Str,
        "files fetched by remote I/O",
    ),
    c(
        "compress_files",
        "CompressFiles",
        Str,
        "files compressed by remote I/O",
    ),
    c(
        "append_files",
        "AppendFiles",
        Str,
        "files appended by remote I/O",
    ),
    c(
        "local_files",
        "LocalFiles",
        Str,
        "files accessed locally by remote I/O",
    ),
    c(
        "log",
        "UserLog",
        Path,
        "the user event log (made absolute against initialdir)",
    ),
    c(
        "dagman_log",
        "DAGManNodesLog",
        Path,
        "DAGMan's node event log",
    ),
    c(
        "log_xml",
        "UserLogUseXML",
        Bool,
        "write the user log in XML",
    ),
    c(
        "noop_job",
        "IsNoopJob",
        Expr,
        "the job does not run; it exits at once",
    ),
    c(
        "noop_job_exit_signal",
        "NoopJobExitSignal",
        Expr,
        "exit signal of a noop job",
    ),
    c(
        "noop_job_exit_code",
        "NoopJobExitCode",
        Expr,
        "exit code of a noop job",
    ),
    c(
        "dag_node_name",
        "DAGNodeName",
        Str,
        "the DAG node this job belongs to",
    ),
    c(
        "match_list_length",
        "LastMatchListLength",
        Int,
        "how many recent matches to remember",
    ),
    c(
        "dagman_job_id",
        "DAGManJobId",
        UInt,
        "the cluster id of the DAGMan job",
    ),
    c(
        "submit_event_notes",
        "SubmitEventNotes",
        Str,
        "text for the submit event in the user log",
    ),
    c(
        "submit_event_user_notes",
        "SubmitEventUserNotes",
        Str,
        "user text for the submit event",
    ),
    c(
        "stack_size",
        "StackSize",
        Expr,
        "stack size limit for the job",
    ),
    c("jar_files", "JarFiles", Str, "java universe: jar files"),
    c(
        "parallel_script_shadow",
        "ParallelScriptShadow",
        Str,
        "parallel universe: shadow-side script",
    ),
    c(
        "parallel_script_starter",
        "ParallelScriptStarter",
        Str,
        "parallel universe: starter-side script",
    ),
    c("cron_minute", "CronMinute", Str, "crondor: minutes"),
    c("cron_hour", "CronHour", Str, "crondor: hours"),
    c(
        "cron_day_of_month",
        "CronDayOfMonth",
        Str,
        "crondor: days of the month",
    ),
    c("cron_month", "CronMonth", Str, "crondor: months"),
    c(
        "cron_day_of_week",
        "CronDayOfWeek",
        Str,
        "crondor: days of the week",
    ),
    c(
        "description",
        "JobDescription",
        Str,
        "free text shown by petrel q",
    ),
    c(
        "batch_name",
        "JobBatchName",
        StrStripQuotes,
        "the batch name shown by petrel q (HTCondor's keyword; JobBatchName also works)",
    ),
    c(
        "batch_id",
        "JobBatchId",
        StrStripQuotes,
        "an identifier grouping jobs into a batch",
    ),
    c(
        "max_job_retirement_time",
        "MaxJobRetirementTime",
        Expr,
        "seconds the job may run on after its slot is claimed by another",
    ),
    c(
        "job_lease_duration",
        "JobLeaseDuration",
        Expr,
        "seconds a job survives a lost submit-side connection",
    ),
    c("core_size", "CoreSize", Int, "core dump size limit"),
    c(
        "priority",
        "JobPrio",
        Int,
        "priority among the user's own jobs (alias prio)",
    ),
    c(
        "run_as_owner",
        "RunAsOwner",
        Bool,
        "run as the submitting user",
    ),
    c(
        "max_transfer_input_mb",
        "MaxTransferInputMB",
        Expr,
        "hold the job if its input is larger",
    ),
    c(
        "max_transfer_output_mb",
        "MaxTransferOutputMB",
        Expr,
        "hold the job if its output is larger",
    ),
    c(
        "manifest",
        "ManifestDesired",
        Bool,
        "write a manifest of the job's files",
    ),
    c(
        "manifest_dir",
        "ManifestDir",
        Str,
        "where to write the manifest",
    ),
    c(
        "checkpoint_exit_code",
        "SuccessCheckpointExitCode",
        Int,
        "exit code that means 'checkpointed, restart me'",
    ),
    c(
        "checkpoint_destination",
        "CheckpointDestination",
        Str,
        "URL where checkpoints are stored",
    ),
    c(
        "aws_region",
        "AWSRegion",
        Str,
        "region for presigned S3 URLs",
    ),
    c(
        "aws_access_key_id_file",
        "EC2AccessKeyId",
        Str,
        "file with the AWS access key id",
    ),
    c(
        "aws_secret_access_key_file",
        "EC2SecretAccessKey",
        Str,
        "file with the AWS secret key",
    ),
    c(
        "s3_access_key_id_file",
        "EC2AccessKeyId",
        Str,
        "file with the S3 access key id",
    ),
    c(
        "s3_secret_access_key_file",
        "EC2SecretAccessKey",
        Str,
        "file with the S3 secret key",
    ),
    c(
        "gs_access_key_id_file",
        "EC2AccessKeyId",
        Str,
        "file with the Google Storage access key id",
    ),
    c(
        "gs_secret_access_key_file",
        "EC2SecretAccessKey",
        Str,
        "file with the Google Storage secret key",
    ),
    c(
        "erase_output_and_error_on_restart",
        "EraseOutputAndErrorOnRestart",
        Bool,
        "truncate stdout/stderr when the job restarts",
    ),
    c(
        "transfer_checkpoint_files",
        "TransferCheckpoint",
        Str,
        "files that make up a checkpoint",
    ),
    c(
        "preserve_relative_paths",
        "PreserveRelativePaths",
        Bool,
        "keep relative directories of transferred files",
    ),
    c(
        "cuda_version",
        "CUDAVersion",
        Str,
        "the CUDA version the job needs",
    ),
    c(
        "skip_if_dataflow",
        "SkipIfDataflow",
        Bool,
        "skip the job if its outputs are newer than its inputs",
    ),
    c(
        "allowed_job_duration",
        "AllowedJobDuration",
        Expr,
        "hold the job if it runs longer (seconds)",
    ),
    c(
        "allowed_execute_duration",
        "AllowedExecuteDuration",
        Expr,
        "hold the job if it executes longer (seconds)",
    ),
    c(
        "jobset",
        "JobSetName",
        StrStripQuotes,
        "the job set this job belongs to",
    ),
];

/// Alternative keywords for simple commands: `(alias, canonical name)`.
pub const ALIASES: &[(&str, &str)] = &[("materialize_max_idle", "max_idle"), ("prio", "priority")];

/// Commands with their own logic (see `to_ads.rs`), for documentation and `-help`.
pub const SPECIAL: &[(&str, &str)] = &[
    ("universe", "vanilla (JobUniverse 5), container (5 with WantContainer), docker (5 with WantDocker), local (12), scheduler (7), parallel (11), java (10), vm (13), grid (9)"),
    ("executable", "Cmd: the program to run (in container/docker universe, a path inside the image)"),
    ("transfer_executable", "TransferExecutable: whether to send the executable with the job"),
    ("arguments", "Args (old syntax) or Arguments (new syntax, the value in double quotes)"),
    ("environment", "Env (old syntax, ';'-separated) or Environment (new syntax, in double quotes); env is an alias"),
    ("getenv", "copy the submitter's environment (true, or a list of variable names)"),
    ("input / output / error", "In / Out / Err: the job's stdin, stdout, stderr (default /dev/null)"),
    ("stream_input / stream_output / stream_error", "StreamIn / StreamOut / StreamErr"),
    ("initialdir", "Iwd: the job's initial directory on the submit side (absolute)"),
    ("request_cpus", "RequestCpus (default 1)"),
    ("request_memory", "RequestMemory in MiB; units K/KB, M/MB, G/GB, T/TB; a bare number is MiB"),
    ("request_disk", "RequestDisk in KiB; units K/KB, M/MB, G/GB, T/TB; a bare number is KiB"),
    ("request_gpus", "RequestGPUs; any other request_<name> sets Request<name>"),
    ("requirements", "Requirements: the user's expression and the clauses condor_submit adds"),
    ("rank", "Rank (alias preferences)"),
    ("transfer_input_files", "TransferInput"),
    ("transfer_output_files", "TransferOutput"),
    ("transfer_output_remaps", "TransferOutputRemaps"),
    ("should_transfer_files", "ShouldTransferFiles: YES, NO or IF_NEEDED"),
    ("when_to_transfer_output", "WhenToTransferOutput: ON_EXIT, ON_EXIT_OR_EVICT or ON_SUCCESS"),
    ("container_image", "ContainerImage, with WantDockerImage (docker://), WantSIF (*.sif) or WantSandboxImage (a directory or anything else)"),
    ("docker_image", "DockerImage (docker universe, or container universe with WantDockerImage)"),
    ("container_policy", "ContainerPolicy: required, preferred, optional or never run in a container (petrel, after GlideinWMS); default required with an image, optional without"),
    ("on_exit_remove / on_exit_hold", "OnExitRemove / OnExitHold (+ on_exit_hold_reason, on_exit_hold_subcode)"),
    ("periodic_hold / periodic_release / periodic_remove", "PeriodicHold / PeriodicRelease / PeriodicRemove (+ periodic_hold_reason, periodic_hold_subcode)"),
    ("max_retries / success_exit_code / retry_until", "JobMaxRetries, JobSuccessExitCode and the OnExitRemove they imply"),
    ("hold", "submit on hold: JobStatus 5 with HoldReason and HoldReasonCode 15"),
    ("notification", "JobNotification: never (0), always (1), complete (2), error (3)"),
    ("leave_in_queue", "LeaveJobInQueue"),
    ("accounting_group / accounting_group_user", "AcctGroup, AcctGroupUser and AccountingGroup"),
    ("concurrency_limits", "ConcurrencyLimits, lower-cased and comma-joined"),
    ("kill_sig", "KillSig"),
    ("nice_user", "run in the nice-user accounting group (AcctGroup nice-user, MaxJobRetirementTime 0)"),
    ("cuda_version", "CUDAVersion as major*1000+minor, and the CUDAMaxSupportedVersion requirement"),
    ("require_gpus / gpus_minimum_capability / gpus_maximum_capability / gpus_minimum_memory / gpus_minimum_runtime", "RequireGPUs (and GPUs* attributes) for jobs that request GPUs"),
    ("machine_count", "parallel universe: MinHosts and MaxHosts"),
    ("checkpoint_exit_code", "SuccessCheckpointExitCode, WantFTOnCheckpoint and the HasSelfCheckpointTransfers requirement"),
    ("+Attr / MY.Attr", "any attribute, as a ClassAd expression, applied after every command"),
];

/// The index in [`SIMPLE`] of the command `name` (keyword, alias or attribute name).
pub fn index_of(name: &str) -> Option<usize> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut m = HashMap::new();
        for (i, c) in SIMPLE.iter().enumerate() {
            m.entry(c.name.to_string()).or_insert(i);
            m.entry(c.attr.to_ascii_lowercase()).or_insert(i);
        }
        for (alias, canonical) in ALIASES {
            if let Some(&i) = m.get(*canonical) {
                m.insert(alias.to_string(), i);
            }
        }
        m
    });
    index.get(&name.to_ascii_lowercase()).copied()
}

/// Finds a simple command by keyword or attribute name (case-insensitive).
pub fn lookup(name: &str) -> Option<&'static Cmd> {
    let canonical = ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(name))
        .map_or(name, |(_, c)| c);
    SIMPLE
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(canonical) || c.attr.eq_ignore_ascii_case(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for c in SIMPLE {
            assert!(!c.doc.is_empty(), "{} has no doc", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
        }
        assert_eq!(lookup("PRIO").map(|c| c.attr), Some("JobPrio"));
        assert_eq!(lookup("JobBatchName").map(|c| c.name), Some("batch_name"));
        assert!(lookup("executable").is_none());
    }
}
