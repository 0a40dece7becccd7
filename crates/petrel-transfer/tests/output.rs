//! Output transfer from a real scratch directory back to the submit directory.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

use common::{chmod, mode, read, tree, Dirs};
use petrel_transfer::{
    restore_spool, transfer_input, transfer_output, transfer_output_on, Catalog, ErrorKind,
    OutputEvent, TransferPlan, STDERR_NAME, STDOUT_NAME,
};

#[test]
fn default_output_set_is_new_and_changed_top_level_files() {
    let d = Dirs::new();
    let exe = d.submit_file("prog", b"#!/bin/sh\n");
    chmod(&exe, 0o755);
    d.submit_file("keep.dat", b"unchanged");
    d.submit_file("grow.dat", b"v1");
    d.submit_file("dir/in", b"i");
    let plan = d.plan(&format!(
        r#"Cmd = "{}"; TransferInput = "keep.dat, grow.dat, dir"; Out = "out.txt"; Err = "logs/err.txt""#,
        exe.display()
    ));
    let input = transfer_input(&plan, d.scratch()).expect("input");
    fs::create_dir(d.iwd().join("logs")).expect("mkdir logs");
    // the job runs
    let s = d.scratch();
    fs::OpenOptions::new()
        .append(true)
        .open(s.join("grow.dat"))
        .and_then(|mut f| f.write_all(b" and v2"))
        .expect("modify an input");
    d.scratch_file("new.txt", b"new");
    d.scratch_file("dir/made_inside", b"not searched");
    d.scratch_file("newdir/f", b"not searched");
    d.scratch_file(STDOUT_NAME, b"hello stdout\n");
    d.scratch_file(STDERR_NAME, b"oops\n");
    d.scratch_file(".job.ad", b"MyType = \"Job\"\n");
    d.scratch_file("prog", b"#!/bin/sh\n# rewritten by the job\n");
    // keep.dat must not be rewritten on the submit side: make its copy differ
    fs::write(d.iwd().join("keep.dat"), "submit side").expect("write");
    let out = transfer_output(&plan, s, &plan.iwd, &input.catalog).expect("output");
    assert_eq!(read(&d.iwd().join("new.txt")), "new");
    assert_eq!(read(&d.iwd().join("grow.dat")), "v1 and v2");
    assert_eq!(read(&d.iwd().join("keep.dat")), "submit side");
    assert_eq!(read(&d.iwd().join("out.txt")), "hello stdout\n");
    assert_eq!(read(&d.iwd().join("logs/err.txt")), "oops\n");
    assert_eq!(read(&d.iwd().join("prog")), "#!/bin/sh\n");
    assert!(!d.iwd().join("newdir").exists());
    assert!(!d.iwd().join("dir/made_inside").exists());
    assert!(!d.iwd().join(".job.ad").exists());
    assert!(!d.iwd().join(STDOUT_NAME).exists());
    assert_eq!(out.files, 4);
    assert_eq!(out.bytes, 3 + 9 + 13 + 5);
    assert!(out.skipped.is_empty());
}

#[test]
fn catalog_survives_as_text() {
    let d = Dirs::new();
    d.submit_file("in", b"i");
    let plan = d.plan(r#"TransferInput = "in""#);
    let input = transfer_input(&plan, d.scratch()).expect("input");
    let kept = Catalog::from_text(&input.catalog.to_text()).expect("parse");
    d.scratch_file("made", b"m");
    let out = transfer_output(&plan, d.scratch(), &plan.iwd, &kept).expect("output");
    assert_eq!(out.files, 1);
    // an empty catalog treats everything as new
    let out = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(out.files, 2);
}

#[test]
fn listed_outputs_directories_and_remaps() {
    let d = Dirs::new();
    let plan = d.plan(
        r#"TransferOutput = "o1, d1, d2/o3, o5"; TransferOutputRemaps = "o1 = renamed.txt; o3 = sub/o3b; d1 = results; d1/special = sub/special""#,
    );
    let input = transfer_input(&plan, d.scratch()).expect("input");
    fs::create_dir(d.iwd().join("sub")).expect("mkdir sub");
    d.scratch_file("o1", b"one");
    d.scratch_file("d1/o4", b"four");
    d.scratch_file("d1/deeper/o6", b"six");
    d.scratch_file("d1/special", b"sp");
    d.scratch_file("d2/o3", b"three");
    let o5 = d.scratch_file("o5", b"#!/bin/sh\n");
    chmod(&o5, 0o751);
    chmod(&d.scratch().join("d1/deeper"), 0o750);
    d.scratch_file("unlisted", b"u");
    let out = transfer_output(&plan, d.scratch(), &plan.iwd, &input.catalog).expect("output");
    assert_eq!(
        tree(d.iwd()),
        [
            "o5",
            "renamed.txt",
            "results/",
            "results/deeper/",
            "results/deeper/o6",
            "results/o4",
            "sub/",
            "sub/o3b",
            "sub/special"
        ]
    );
    assert_eq!(read(&d.iwd().join("sub/o3b")), "three");
    assert_eq!(read(&d.iwd().join("sub/special")), "sp");
    assert_eq!(mode(&d.iwd().join("o5")), 0o751);
    assert_eq!(mode(&d.iwd().join("results/deeper")), 0o750);
    assert_eq!(out.files, 6);
    assert_eq!(out.dirs, 2);
    assert_eq!(out.bytes, 3 + 4 + 3 + 2 + 5 + 10);
}

#[test]
fn remap_to_an_absolute_path_and_relative_paths_kept() {
    let d = Dirs::new();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let plan = d.plan(&format!(
        r#"PreserveRelativePaths = true; TransferOutput = "a/b/c, top"; TransferOutputRemaps = "top = {}/abs.txt""#,
        elsewhere.path().display()
    ));
    d.scratch_file("a/b/c", b"c");
    d.scratch_file("top", b"t");
    transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(tree(d.iwd()), ["a/", "a/b/", "a/b/c"]);
    assert_eq!(read(&elsewhere.path().join("abs.txt")), "t");
}

#[test]
fn missing_listed_output_holds_with_code_12() {
    let d = Dirs::new();
    let plan = d.plan(r#"TransferOutput = "present, not_there_out"; Out = "out""#);
    d.scratch_file("present", b"p");
    d.scratch_file(STDOUT_NAME, b"so");
    let err = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default())
        .expect_err("missing output");
    assert_eq!(err.hold_code(), (12, 2));
    let missing = d.scratch().join("not_there_out");
    assert_eq!(err.path(), Some(missing.as_path()));
    let reason = err.hold_reason("ap", "slot1@ap");
    assert!(
        reason.starts_with("Transfer output files failure at execution point slot1@ap while sending files to access point ap. Details: reading from file "),
        "{reason}"
    );
    assert!(
        reason.ends_with("not_there_out: (errno 2) No such file or directory"),
        "{reason}"
    );
    // the other files still came back, standard output first of all
    assert_eq!(read(&d.iwd().join("present")), "p");
    assert_eq!(read(&d.iwd().join("out")), "so");
}

#[test]
fn unwritable_destination_holds_with_code_12() {
    let d = Dirs::new();
    d.scratch_file("date", b"d");
    let plan =
        d.plan(r#"TransferOutput = "date"; TransferOutputRemaps = "date = /not_there_dir/blah""#);
    let err = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default())
        .expect_err("no such directory");
    assert_eq!(err.hold_code(), (12, 2));
    assert_eq!(err.kind(), &ErrorKind::Write);
    assert_eq!(
        err.details(),
        "writing to file /not_there_dir/blah: (errno 2) No such file or directory"
    );
    assert!(err
        .hold_reason("ap", "slot1@ap")
        .starts_with("Transfer output files failure at access point ap while receiving files from execution point slot1@ap."));
    // a regular file where a directory should be
    d.submit_file("afile", b"x");
    let plan = d.plan(r#"TransferOutput = "date"; TransferOutputRemaps = "date = afile/blah""#);
    let err = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default())
        .expect_err("not a directory");
    assert_eq!(err.hold_code(), (12, 20));
    // a directory where the file should go
    fs::create_dir(d.iwd().join("date")).expect("mkdir");
    let plan = d.plan(r#"TransferOutput = "date""#);
    let err = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default())
        .expect_err("a directory in the way");
    assert_eq!(err.hold_code().0, 12);
    // nothing half-written is left behind
    assert_eq!(tree(d.iwd()), ["afile", "date/"]);
}

#[test]
fn dotdot_in_output_names_and_remaps_is_refused() {
    let d = Dirs::new();
    for extra in [
        r#"TransferOutput = "../escape""#,
        r#"TransferOutput = "a/../../escape""#,
        r#"TransferOutput = "/etc/passwd""#,
        r#"TransferOutputRemaps = "a = ../x""#,
        r#"TransferOutputRemaps = "a = sub/../../x""#,
        r#"TransferOutputRemaps = "a = /tmp/../etc/x""#,
    ] {
        let err = TransferPlan::from_ad(&d.ad(extra)).expect_err(extra);
        assert_eq!(err.hold_code(), (12, 1), "{extra}");
        assert_eq!(err.kind(), &ErrorKind::PathEscape, "{extra}");
    }
    let err = TransferPlan::from_ad(&d.ad(r#"TransferOutputRemaps = "a = osdf://x/y""#))
        .expect_err("URL remap");
    assert_eq!(err.kind(), &ErrorKind::UnsupportedUrl);
    assert_eq!(err.hold_code().0, 12);
    // an absolute name inside the container's view of the scratch directory is fine
    let plan = d.plan(r#"WantContainer = true; TransferOutput = "/srv/results/r.txt""#);
    d.scratch_file("results/r.txt", b"r");
    transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(read(&d.iwd().join("r.txt")), "r");
}

#[test]
fn remap_cycle_holds() {
    let d = Dirs::new();
    d.scratch_file("a", b"a");
    let plan = d.plan(r#"TransferOutput = "a"; TransferOutputRemaps = "a = b; b = a""#);
    let err =
        transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect_err("cycle");
    assert_eq!(err.kind(), &ErrorKind::RemapCycle);
    assert_eq!(err.hold_code(), (12, 1));
}

#[test]
fn when_to_transfer_output() {
    let d = Dirs::new();
    let spool = tempfile::tempdir().expect("spool");
    let base = r#"Out = "out.txt"; TransferOutput = "res, state/ckpt""#;
    d.scratch_file(STDOUT_NAME, b"so");
    d.scratch_file("res", b"r");
    d.scratch_file("state/ckpt", b"c1");
    // ON_EXIT: nothing at eviction
    let plan = d.plan(base);
    let s = transfer_output_on(
        &plan,
        d.scratch(),
        spool.path(),
        &Catalog::default(),
        OutputEvent::Evict,
    )
    .expect("evict");
    assert_eq!(s.files, 0);
    assert!(tree(spool.path()).is_empty());
    // ON_SUCCESS: only standard output and error after a failure
    let plan = d.plan(&format!(r#"{base}; WhenToTransferOutput = "ON_SUCCESS""#));
    let s = transfer_output_on(
        &plan,
        d.scratch(),
        &plan.iwd,
        &Catalog::default(),
        OutputEvent::Exit { success: false },
    )
    .expect("failed exit");
    assert_eq!(s.files, 1);
    assert_eq!(tree(d.iwd()), ["out.txt"]);
    // ON_EXIT_OR_EVICT: scratch names into the spool, no remaps...
    let plan = d.plan(&format!(
        r#"{base}; WhenToTransferOutput = "ON_EXIT_OR_EVICT"; TransferOutputRemaps = "res = elsewhere""#
    ));
    let s = transfer_output_on(
        &plan,
        d.scratch(),
        spool.path(),
        &Catalog::default(),
        OutputEvent::Evict,
    )
    .expect("evict");
    assert_eq!(s.files, 3);
    assert_eq!(
        tree(spool.path()),
        [STDOUT_NAME, "res", "state/", "state/ckpt"]
    );
    // ...which a new scratch directory gets back after its input transfer
    d.submit_file("in", b"input");
    let plan_default = d.plan(r#"TransferInput = "in"; WhenToTransferOutput = "ON_EXIT_OR_EVICT""#);
    let scratch2 = tempfile::tempdir().expect("scratch");
    let input = transfer_input(&plan_default, scratch2.path()).expect("input");
    assert_eq!(input.catalog.len(), 1);
    let r = restore_spool(&plan_default, spool.path(), scratch2.path()).expect("restore");
    assert_eq!(r.files, 3);
    assert_eq!(read(&scratch2.path().join("state/ckpt")), "c1");
    // and a restored file the job did not touch again still counts as output
    let final_dir = tempfile::tempdir().expect("final");
    let s = transfer_output(
        &plan_default,
        scratch2.path(),
        final_dir.path(),
        &input.catalog,
    )
    .expect("final output");
    assert_eq!(s.files, 1);
    assert_eq!(tree(final_dir.path()), ["res"]);
    // a missing spool restores nothing
    let none = restore_spool(&plan, &spool.path().join("nope"), scratch2.path()).expect("no spool");
    assert_eq!(none.files, 0);
}

#[test]
fn large_file_byte_count_back() {
    let d = Dirs::new();
    let plan = d.plan(r#"TransferOutput = "big.out""#);
    let mut f = fs::File::create(d.scratch().join("big.out")).expect("create");
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..40 {
        f.write_all(&chunk).expect("write");
    }
    drop(f);
    let s = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(s.bytes, 40 << 20);
    assert_eq!(
        fs::metadata(d.iwd().join("big.out")).expect("stat").len(),
        40 << 20
    );
}

#[test]
fn owner_is_applied_to_created_files() {
    let d = Dirs::new();
    let (uid, gid) = if rustix::process::geteuid().is_root() {
        (65534, 65534)
    } else {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    };
    d.submit_file("in/f", b"i");
    let mut plan = d.plan(r#"TransferInput = "in"; TransferOutput = "o, od""#);
    plan.owner = Some((uid, gid));
    transfer_input(&plan, d.scratch()).expect("input");
    let m = fs::metadata(d.scratch().join("in/f")).expect("stat");
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    let m = fs::metadata(d.scratch().join("in")).expect("stat");
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    d.scratch_file("o", b"o");
    d.scratch_file("od/x", b"x");
    transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    for p in ["o", "od", "od/x"] {
        let m = fs::metadata(d.iwd().join(p)).expect("stat");
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
    }
}
