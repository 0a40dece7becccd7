//! Input transfer into a real scratch directory.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;

use common::{chmod, mode, read, tree, Dirs};
use petrel_transfer::{transfer_input, ErrorKind, InputRole, TransferPlan};

#[test]
fn files_and_directories_with_and_without_trailing_slash() {
    let d = Dirs::new();
    d.submit_file("a.txt", b"aaa");
    d.submit_file("data/x", b"x");
    d.submit_file("data/sub/y", b"yy");
    d.submit_file("cfg/c1", b"c");
    d.submit_file("cfg/n/c2", b"cc");
    let abs = d.submit_file("elsewhere/abs.txt", b"abs");
    let plan = d.plan(&format!(
        r#"TransferInput = "a.txt, data, cfg/ ,{}, elsewhere/abs.txt""#,
        abs.display()
    ));
    let r = transfer_input(&plan, d.scratch()).expect("transfer");
    assert_eq!(
        tree(d.scratch()),
        [
            "a.txt",
            "abs.txt",
            "c1",
            "data/",
            "data/sub/",
            "data/sub/y",
            "data/x",
            "n/",
            "n/c2"
        ]
    );
    assert_eq!(read(&d.scratch().join("data/sub/y")), "yy");
    // abs.txt is named twice and sent twice (HTCondor sends each list entry)
    assert_eq!(r.stats.files, 7);
    assert_eq!(r.stats.bytes, 3 + 1 + 2 + 1 + 2 + 3 + 3);
    // `data` and `data/sub`, and `n` inside `cfg/`
    assert_eq!(r.stats.dirs, 3);
    assert!(r.stats.skipped.is_empty());
    // the catalog holds the top of the scratch directory
    assert_eq!(r.catalog.len(), 5);
}

#[test]
fn permission_bits_are_kept_but_never_setuid() {
    let d = Dirs::new();
    let exe = d.submit_file("bin/run.sh", b"#!/bin/sh\necho hi\n");
    chmod(&exe, 0o750);
    let plain = d.submit_file("private.dat", b"p");
    chmod(&plain, 0o640);
    let suid = d.submit_file("suid", b"s");
    chmod(&suid, 0o4755);
    let tool = d.submit_file("tools/t", b"t");
    chmod(&tool, 0o555);
    chmod(&d.iwd().join("tools"), 0o750);
    let plan = d.plan(&format!(
        r#"Cmd = "{}"; TransferInput = "private.dat,suid,tools""#,
        exe.display()
    ));
    let exe_item = plan
        .inputs
        .iter()
        .find(|i| i.role == InputRole::Executable)
        .expect("executable is an input");
    assert_eq!(exe_item.dest.to_str(), Some("run.sh"));
    transfer_input(&plan, d.scratch()).expect("transfer");
    let s = d.scratch();
    assert_eq!(mode(&s.join("run.sh")), 0o750);
    assert_eq!(mode(&s.join("private.dat")), 0o640);
    assert_eq!(mode(&s.join("suid")), 0o755);
    assert_eq!(mode(&s.join("tools")), 0o750);
    assert_eq!(mode(&s.join("tools/t")), 0o555);
    // and the executable runs from the scratch directory
    let out = std::process::Command::new(s.join("run.sh"))
        .output()
        .expect("run the transferred executable");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
}

#[test]
fn an_executable_without_execute_bits_gets_them() {
    let d = Dirs::new();
    let exe = d.submit_file("prog", b"#!/bin/sh\n");
    chmod(&exe, 0o640);
    let plan = d.plan(&format!(r#"Cmd = "{}""#, exe.display()));
    transfer_input(&plan, d.scratch()).expect("transfer");
    // execute wherever it could be read
    assert_eq!(mode(&d.scratch().join("prog")), 0o750);
}

#[test]
fn transfer_executable_false_and_stdin() {
    let d = Dirs::new();
    d.submit_file("input.dat", b"stdin data");
    let plan = d.plan(r#"Cmd = "/bin/cat"; TransferExecutable = false; In = "input.dat""#);
    assert!(plan.inputs.iter().all(|i| i.role != InputRole::Executable));
    let exe = plan.executable.as_ref().expect("executable");
    assert_eq!(exe.in_scratch, None);
    let stdin = plan.stdin.as_ref().expect("stdin");
    assert_eq!(
        stdin.in_scratch.as_deref(),
        Some(std::path::Path::new("input.dat"))
    );
    let r = transfer_input(&plan, d.scratch()).expect("transfer");
    assert_eq!(r.stats.files, 1);
    assert_eq!(read(&d.scratch().join("input.dat")), "stdin data");

    // streamed or untransferred standard input stays where it is
    let plan = d.plan(
        r#"Cmd = "/bin/cat"; TransferExecutable = false; In = "input.dat"; TransferIn = false"#,
    );
    assert_eq!(plan.stdin.as_ref().and_then(|s| s.in_scratch.clone()), None);
    assert!(plan.inputs.is_empty());
}

#[test]
fn preserve_relative_paths() {
    let d = Dirs::new();
    d.submit_file("dirA/file1", b"A");
    d.submit_file("dirB/file1", b"B");
    d.submit_file("dirC/deep/f", b"C");
    let plan = d.plan(
        r#"PreserveRelativePaths = true; TransferInput = "dirA/file1, dirB/file1, dirC/deep""#,
    );
    transfer_input(&plan, d.scratch()).expect("transfer");
    assert_eq!(
        tree(d.scratch()),
        [
            "dirA/",
            "dirA/file1",
            "dirB/",
            "dirB/file1",
            "dirC/",
            "dirC/deep/",
            "dirC/deep/f"
        ]
    );
    assert_eq!(read(&d.scratch().join("dirB/file1")), "B");
    // a name climbing out cannot be kept relative
    let err =
        TransferPlan::from_ad(&d.ad(r#"PreserveRelativePaths = true; TransferInput = "../x""#))
            .expect_err("`..` with preserve_relative_paths");
    assert_eq!(err.hold_code(), (13, 1));
    assert_eq!(err.kind(), &ErrorKind::PathEscape);
    // without it, `..` on the submit side is fine: only the base name is used
    let plan = d.plan(r#"TransferInput = "../x""#);
    assert_eq!(plan.inputs[0].dest.to_str(), Some("x"));
}

#[test]
fn missing_input_holds_with_code_13_naming_the_file() {
    let d = Dirs::new();
    d.submit_file("present", b"p");
    let plan = d.plan(r#"TransferInput = "present, not_there_in""#);
    let err = transfer_input(&plan, d.scratch()).expect_err("missing input");
    let missing = d.iwd().join("not_there_in");
    assert_eq!(err.hold_code(), (13, 2));
    assert_eq!(err.path(), Some(missing.as_path()));
    assert_eq!(
        err.details(),
        format!(
            "reading from file {}: (errno 2) No such file or directory",
            missing.display()
        )
    );
    let reason = err.hold_reason("ap.example", "slot1@ap.example");
    assert!(
        reason.starts_with("Transfer input files failure at access point ap.example while sending files to execution point slot1@ap.example. Details: reading from file "),
        "{reason}"
    );
    // a missing executable too
    let plan = d.plan(r#"Cmd = "/nonexistent/prog""#);
    let err = transfer_input(&plan, d.scratch()).expect_err("missing executable");
    assert_eq!(err.hold_code(), (13, 2));
    assert!(err.details().contains("/nonexistent/prog"));
}

#[test]
fn symlinks_on_the_submit_side() {
    let d = Dirs::new();
    d.submit_file("real/f", b"content");
    d.submit_file("tree/plain", b"p");
    symlink(d.iwd().join("real/f"), d.iwd().join("tree/link")).expect("symlink");
    symlink(d.iwd().join("real"), d.iwd().join("dirlink")).expect("symlink");
    // a link to a file is sent as the file
    let plan = d.plan(r#"TransferInput = "tree""#);
    transfer_input(&plan, d.scratch()).expect("transfer");
    assert!(!fs::symlink_metadata(d.scratch().join("tree/link"))
        .expect("stat")
        .file_type()
        .is_symlink());
    assert_eq!(read(&d.scratch().join("tree/link")), "content");
    // a link to a directory: its contents with a trailing slash, an error without
    let other = tempfile::tempdir().expect("tempdir");
    let plan = d.plan(r#"TransferInput = "dirlink/""#);
    transfer_input(&plan, other.path()).expect("contents of a linked directory");
    assert_eq!(read(&other.path().join("f")), "content");
    let plan = d.plan(r#"TransferInput = "dirlink""#);
    let err = transfer_input(&plan, other.path()).expect_err("link to a directory");
    assert_eq!(err.kind(), &ErrorKind::SymlinkToDirectory);
    assert_eq!(err.hold_code(), (13, 21));
}

#[test]
fn large_file_byte_count() {
    let d = Dirs::new();
    let big = d.iwd().join("big.bin");
    let mut f = fs::File::create(&big).expect("create");
    let chunk = vec![0x5au8; 1 << 20];
    for _ in 0..48 {
        f.write_all(&chunk).expect("write");
    }
    f.write_all(b"tail").expect("write");
    drop(f);
    let plan = d.plan(r#"TransferInput = "big.bin""#);
    let r = transfer_input(&plan, d.scratch()).expect("transfer");
    let size = 48 * (1 << 20) + 4;
    assert_eq!(r.stats.bytes, size);
    assert_eq!(
        fs::metadata(d.scratch().join("big.bin"))
            .expect("stat")
            .len(),
        size
    );
}

#[test]
fn urls_and_bad_attributes() {
    let d = Dirs::new();
    let err = TransferPlan::from_ad(&d.ad(r#"TransferInput = "https://example.invalid/x""#))
        .expect_err("no plugins");
    assert_eq!(err.kind(), &ErrorKind::UnsupportedUrl);
    assert_eq!(err.hold_code().0, 13);
    d.submit_file("local", b"l");
    let plan = d.plan(&format!(
        r#"TransferInput = "file://{}/local""#,
        d.iwd().display()
    ));
    transfer_input(&plan, d.scratch()).expect("file:// is a local path");
    assert_eq!(read(&d.scratch().join("local")), "l");
    let err = TransferPlan::from_ad(&d.ad(r#"ShouldTransferFiles = "SOMETIMES""#))
        .expect_err("bad value");
    assert_eq!(err.hold_code(), (13, 22));
    let err =
        TransferPlan::from_ad(&petrel_classad::ClassAd::parse(r#"[ Iwd = "rel" ]"#).expect("ad"))
            .expect_err("relative Iwd");
    assert!(matches!(err.kind(), ErrorKind::BadAttribute { attribute } if attribute == "Iwd"));
}

#[test]
fn should_transfer_files_no_transfers_nothing() {
    let d = Dirs::new();
    d.submit_file("in", b"i");
    let plan = d.plan(
        r#"ShouldTransferFiles = "NO"; TransferInput = "in"; Out = "out.txt"; Cmd = "/bin/true""#,
    );
    assert!(!plan.uses_scratch());
    assert!(plan.inputs.is_empty());
    assert_eq!(
        plan.stdout.as_ref().map(|s| s.mode),
        Some(petrel_transfer::StdMode::Direct)
    );
    let r = transfer_input(&plan, d.scratch()).expect("nothing to do");
    assert_eq!(r.stats.files, 0);
    assert!(tree(d.scratch()).is_empty());
    // IF_NEEDED transfers on one machine (documented decision)
    let plan = d.plan(r#"ShouldTransferFiles = "IF_NEEDED"; TransferInput = "in""#);
    assert!(plan.uses_scratch());
    assert_eq!(
        transfer_input(&plan, d.scratch())
            .expect("transfer")
            .stats
            .files,
        1
    );
}

#[test]
fn ads_from_petrel_submit() {
    let d = Dirs::new();
    let exe = d.submit_file("job.sh", b"#!/bin/sh\n");
    chmod(&exe, 0o755);
    d.submit_file("in1", b"1");
    d.submit_file("d/a", b"a");
    let ad = d.submit_ad(
        "executable = job.sh\ninput = in1\noutput = out.txt\nerror = logs/err.txt\nstream_error = true\n\
         should_transfer_files = YES\ntransfer_input_files = d/\n\
         transfer_output_files = r1, sub/r2\ntransfer_output_remaps = \"r1 = res/one; r2 = /tmp/two\"\nqueue\n",
    );
    let plan = TransferPlan::from_ad(&ad).expect("plan");
    assert_eq!(plan.iwd, d.iwd());
    let roles: Vec<_> = plan
        .inputs
        .iter()
        .map(|i| (i.role, i.dest.display().to_string()))
        .collect();
    assert_eq!(
        roles,
        [
            (InputRole::Listed, String::new()),
            (InputRole::Executable, "job.sh".into()),
            (InputRole::Stdin, "in1".into())
        ]
    );
    let out = plan.stdout.as_ref().expect("stdout");
    assert_eq!(out.mode, petrel_transfer::StdMode::Transfer);
    assert_eq!(out.path_in(&plan.iwd), d.iwd().join("out.txt"));
    assert_eq!(
        plan.stderr.as_ref().map(|s| s.mode),
        Some(petrel_transfer::StdMode::Direct)
    );
    let petrel_transfer::OutputSet::Listed(items) = &plan.outputs else {
        panic!("listed outputs expected: {:?}", plan.outputs)
    };
    let names: Vec<_> = items.iter().map(|i| i.name.display().to_string()).collect();
    assert_eq!(names, ["r1", "r2"]);
    assert_eq!(plan.remaps.apply("r2"), Ok(Some("/tmp/two".into())));
    let r = transfer_input(&plan, d.scratch()).expect("transfer");
    assert_eq!(tree(d.scratch()), ["a", "in1", "job.sh"]);
    assert_eq!(r.stats.files, 3);
}
