//! A job is untrusted: what it leaves in its scratch directory must not make output
//! transfer read or write anything outside it.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{chmod, mode, read, tree, Dirs};
use petrel_transfer::{transfer_output, Catalog, ErrorKind, SkipReason, STDOUT_NAME};

/// A directory outside both the submit and scratch directories, with a secret in it.
fn outside() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    fs::write(t.path().join("secret"), "TOP SECRET").expect("write");
    t
}

fn reasons(stats: &petrel_transfer::TransferStats) -> Vec<(String, SkipReason)> {
    stats
        .skipped
        .iter()
        .map(|s| {
            let name = s.path.file_name().map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_default(), s.reason)
        })
        .collect()
}

#[test]
fn named_output_linking_outside_holds_and_reads_nothing() {
    let d = Dirs::new();
    let out = outside();
    symlink(out.path().join("secret"), d.scratch().join("out.txt")).expect("symlink");
    let plan = d.plan(r#"TransferOutput = "out.txt""#);
    let err =
        transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect_err("escape");
    assert_eq!(err.kind(), &ErrorKind::SymlinkEscape);
    assert_eq!(err.hold_code(), (12, 1));
    assert_eq!(err.path(), Some(d.scratch().join("out.txt").as_path()));
    assert!(tree(d.iwd()).is_empty(), "{:?}", tree(d.iwd()));
    assert_eq!(read(&out.path().join("secret")), "TOP SECRET");
    // a relative link climbing out is the same
    fs::remove_file(d.scratch().join("out.txt")).expect("rm");
    let depth = d.scratch().components().count();
    let climb = "../".repeat(depth) + &out.path().join("secret").display().to_string()[1..];
    symlink(&climb, d.scratch().join("out.txt")).expect("symlink");
    assert!(
        fs::metadata(d.scratch().join("out.txt")).is_ok(),
        "the link works for the job"
    );
    let err =
        transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect_err("escape");
    assert_eq!(err.kind(), &ErrorKind::SymlinkEscape);
    assert!(tree(d.iwd()).is_empty());
}

#[test]
fn directory_links_outside_are_not_entered() {
    let d = Dirs::new();
    let out = outside();
    symlink(out.path(), d.scratch().join("d")).expect("symlink");
    for list in ["d", "d/secret"] {
        let plan = d.plan(&format!(r#"TransferOutput = "{list}""#));
        let err =
            transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect_err(list);
        assert_eq!(err.kind(), &ErrorKind::SymlinkEscape, "{list}");
        assert!(tree(d.iwd()).is_empty(), "{list}: {:?}", tree(d.iwd()));
    }
    // the default set skips it
    let plan = d.plan("");
    let s = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(reasons(&s), [("d".to_string(), SkipReason::SymlinkOutside)]);
    assert!(tree(d.iwd()).is_empty());
}

#[test]
fn default_set_skips_links_outside_and_sends_links_inside() {
    let d = Dirs::new();
    let out = outside();
    d.scratch_file("real.txt", b"real");
    symlink(out.path().join("secret"), d.scratch().join("stolen")).expect("symlink");
    symlink("real.txt", d.scratch().join("alias")).expect("symlink");
    symlink("nowhere", d.scratch().join("dangling")).expect("symlink");
    symlink("/etc", d.scratch().join("etc")).expect("symlink");
    let plan = d.plan("");
    let s = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(tree(d.iwd()), ["alias", "real.txt"]);
    assert_eq!(read(&d.iwd().join("alias")), "real");
    assert!(!fs::symlink_metadata(d.iwd().join("alias"))
        .expect("stat")
        .file_type()
        .is_symlink());
    assert_eq!(
        reasons(&s),
        [
            ("dangling".to_string(), SkipReason::BrokenSymlink),
            ("etc".to_string(), SkipReason::SymlinkOutside),
            ("stolen".to_string(), SkipReason::SymlinkOutside),
        ]
    );
}

#[test]
fn links_inside_a_transferred_directory() {
    let d = Dirs::new();
    let out = outside();
    d.scratch_file("top", b"top");
    d.scratch_file("d1/plain", b"plain");
    symlink(out.path().join("secret"), d.scratch().join("d1/evil")).expect("symlink");
    symlink(
        "../../../../../../../../../../../etc/passwd",
        d.scratch().join("d1/climb"),
    )
    .expect("symlink");
    symlink(".", d.scratch().join("d1/loop")).expect("symlink");
    symlink("../top", d.scratch().join("d1/ok")).expect("symlink");
    let plan = d.plan(r#"TransferOutput = "d1""#);
    let s = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(tree(d.iwd()), ["d1/", "d1/ok", "d1/plain"]);
    assert_eq!(read(&d.iwd().join("d1/ok")), "top");
    assert_eq!(
        reasons(&s),
        [
            ("climb".to_string(), SkipReason::SymlinkOutside),
            ("evil".to_string(), SkipReason::SymlinkOutside),
            ("loop".to_string(), SkipReason::SymlinkToDirectory),
        ]
    );
}

#[test]
fn a_parent_directory_swapped_for_a_link() {
    let d = Dirs::new();
    let out = outside();
    symlink(out.path(), d.scratch().join("sub")).expect("symlink");
    let plan = d.plan(r#"TransferOutput = "sub/secret"; PreserveRelativePaths = true"#);
    let err = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default())
        .expect_err("escape through a parent");
    assert_eq!(err.kind(), &ErrorKind::SymlinkEscape);
    assert!(!d.iwd().join("sub/secret").exists());
}

#[test]
fn standard_output_replaced_by_a_link_is_skipped() {
    let d = Dirs::new();
    let out = outside();
    symlink(out.path().join("secret"), d.scratch().join(STDOUT_NAME)).expect("symlink");
    let plan = d.plan(r#"Out = "job.out"; TransferOutput = """#);
    let s = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert!(!d.iwd().join("job.out").exists());
    assert_eq!(
        reasons(&s),
        [(STDOUT_NAME.to_string(), SkipReason::SymlinkOutside)]
    );
}

#[test]
fn container_paths_in_links_mean_the_scratch_directory() {
    let d = Dirs::new();
    d.scratch_file("data/result", b"r");
    symlink("/srv/data/result", d.scratch().join("latest")).expect("symlink");
    let plan = d.plan(r#"WantContainer = true; TransferOutput = "latest""#);
    transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(read(&d.iwd().join("latest")), "r");
    // without a container the same link leads outside
    let plan = d.plan(r#"TransferOutput = "latest""#);
    let err =
        transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect_err("escape");
    assert_eq!(err.kind(), &ErrorKind::SymlinkEscape);
}

#[test]
fn a_link_at_the_destination_is_replaced_not_written_through() {
    let d = Dirs::new();
    let out = outside();
    symlink(out.path().join("secret"), d.iwd().join("o")).expect("symlink");
    d.scratch_file("o", b"job output");
    let plan = d.plan(r#"TransferOutput = "o""#);
    transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(read(&out.path().join("secret")), "TOP SECRET");
    assert!(!fs::symlink_metadata(d.iwd().join("o"))
        .expect("stat")
        .file_type()
        .is_symlink());
    assert_eq!(read(&d.iwd().join("o")), "job output");
}

#[test]
fn setuid_bits_made_by_the_job_are_dropped() {
    let d = Dirs::new();
    let f = d.scratch_file("tool", b"#!/bin/sh\n");
    chmod(&f, 0o6755);
    let dir = d.scratch().join("sticky");
    fs::create_dir(&dir).expect("mkdir");
    chmod(&dir, 0o1777);
    let plan = d.plan(r#"TransferOutput = "tool, sticky""#);
    transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert_eq!(mode(&d.iwd().join("tool")), 0o755);
    assert_eq!(mode(&d.iwd().join("sticky")), 0o777);
}

#[test]
fn fifos_and_devices_are_never_opened() {
    let d = Dirs::new();
    let mk = |name: &str, ft: rustix::fs::FileType, dev: u64| {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.scratch().join(name),
            ft,
            rustix::fs::Mode::from_raw_mode(0o666),
            dev,
        )
    };
    mk("pipe", rustix::fs::FileType::Fifo, 0).expect("mkfifo");
    // a character device like /dev/zero (1, 5): only root may make one
    let have_dev = mk(
        "zero",
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::makedev(1, 5),
    )
    .is_ok();
    let started = Instant::now();
    let plan = d.plan("");
    let s = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    let listed = if have_dev { "pipe, zero" } else { "pipe" };
    let plan = d.plan(&format!(r#"TransferOutput = "{listed}""#));
    let s2 = transfer_output(&plan, d.scratch(), &plan.iwd, &Catalog::default()).expect("output");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a FIFO was opened"
    );
    let expected = if have_dev { 2 } else { 1 };
    assert_eq!(s.skipped.len(), expected);
    assert_eq!(s2.skipped.len(), expected);
    assert!(s.skipped.iter().all(|k| k.reason == SkipReason::Special));
    assert!(tree(d.iwd()).is_empty());
}

#[test]
fn a_catalogued_name_swapped_for_a_link_is_checked_again() {
    let d = Dirs::new();
    let out = outside();
    d.submit_file("input.dat", b"in");
    let plan = d.plan(r#"TransferInput = "input.dat""#);
    let input = petrel_transfer::transfer_input(&plan, d.scratch()).expect("input");
    fs::remove_file(d.scratch().join("input.dat")).expect("rm");
    symlink(out.path().join("secret"), d.scratch().join("input.dat")).expect("symlink");
    let s = transfer_output(&plan, d.scratch(), &plan.iwd, &input.catalog).expect("output");
    assert_eq!(read(&d.iwd().join("input.dat")), "in");
    assert_eq!(
        reasons(&s),
        [("input.dat".to_string(), SkipReason::SymlinkOutside)]
    );
    assert!(Path::new(&out.path().join("secret")).exists());
}
