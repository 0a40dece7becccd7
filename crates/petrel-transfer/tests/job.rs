//! A whole job the way a starter runs one: submit file, input transfer, a real process in
//! the scratch directory, output transfer, and the disk usage along the way.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};

use common::{chmod, read, tree, Dirs};
use petrel_transfer::{
    disk_usage, transfer_input, transfer_output, StdMode, TransferPlan, STDERR_NAME, STDOUT_NAME,
};

#[test]
fn submit_transfer_run_transfer_back() {
    let d = Dirs::new();
    let script = d.submit_file(
        "count.sh",
        b"#!/bin/sh\nwc -l < lines.txt > count.txt\ncat params/p1\nmkdir -p results\necho deep > results/r.txt\ntr a-z A-Z\necho warn >&2\n",
    );
    chmod(&script, 0o755);
    d.submit_file("lines.txt", b"a\nb\nc\n");
    d.submit_file("conf/params/p1", b"p=1\n");
    d.submit_file("words", b"hello\n");
    std::fs::create_dir(d.iwd().join("logs")).expect("mkdir");
    let ad = d.submit_ad(
        "executable = count.sh\ninput = words\noutput = logs/job.out\nerror = logs/job.err\n\
         should_transfer_files = YES\nwhen_to_transfer_output = ON_EXIT\n\
         transfer_input_files = lines.txt, conf/\n\
         transfer_output_files = count.txt, results\n\
         transfer_output_remaps = \"count.txt = logs/count.txt\"\nqueue\n",
    );
    let plan = TransferPlan::from_ad(&ad).expect("plan");
    let input = transfer_input(&plan, d.scratch()).expect("input");
    assert_eq!(
        tree(d.scratch()),
        ["count.sh", "lines.txt", "params/", "params/p1", "words"]
    );
    let script_len = std::fs::metadata(&script).expect("stat").len();
    assert_eq!(input.stats.bytes, script_len + 6 + 4 + 6);
    assert!(disk_usage(d.scratch()) >= 1);

    // the starter's part: run the executable in the scratch directory
    let exe = plan
        .executable
        .as_ref()
        .and_then(|e| e.in_scratch.clone())
        .expect("exe");
    let stdin = plan
        .stdin
        .as_ref()
        .and_then(|s| s.in_scratch.clone())
        .expect("stdin");
    assert_eq!(
        plan.stdout.as_ref().map(|s| s.mode),
        Some(StdMode::Transfer)
    );
    let status = Command::new(d.scratch().join(&exe))
        .current_dir(d.scratch())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::from(
            File::open(d.scratch().join(stdin)).expect("stdin"),
        ))
        .stdout(Stdio::from(
            File::create(d.scratch().join(STDOUT_NAME)).expect("stdout"),
        ))
        .stderr(Stdio::from(
            File::create(d.scratch().join(STDERR_NAME)).expect("stderr"),
        ))
        .status()
        .expect("run the job");
    assert!(status.success());

    let out = transfer_output(&plan, d.scratch(), &plan.iwd, &input.catalog).expect("output");
    assert_eq!(read(&d.iwd().join("logs/count.txt")).trim(), "3");
    assert_eq!(read(&d.iwd().join("results/r.txt")), "deep\n");
    assert_eq!(read(&d.iwd().join("logs/job.out")), "p=1\nHELLO\n");
    assert_eq!(read(&d.iwd().join("logs/job.err")), "warn\n");
    assert_eq!(out.files, 4);
    assert_eq!(out.dirs, 1);
    assert!(!d.iwd().join("count.txt").exists());
}
