//! Every error names the file and line, the offending text and what was expected, and
//! nothing is produced. Hostile input is refused quickly and without large allocations.

use std::time::{Duration, Instant};

use petrel_submit::{ErrorKind, Submission, SubmitError, SubmitOptions};

fn submit_in(
    dir: &std::path::Path,
    text: &str,
    opts: &SubmitOptions,
) -> Result<Vec<petrel_submit::JobAd>, SubmitError> {
    let path = dir.join("job.sub");
    std::fs::write(&path, text).expect("write submit file");
    let sub = Submission::from_file(&path, opts)?;
    sub.procs().collect()
}

fn fails(text: &str) -> SubmitError {
    let dir = tempfile::tempdir().expect("tempdir");
    match submit_in(dir.path(), text, &SubmitOptions::default()) {
        Ok(ads) => panic!("expected an error, got {} ads for:\n{text}", ads.len()),
        Err(e) => e,
    }
}

fn assert_msg(e: &SubmitError, line: u32, parts: &[&str]) {
    let msg = e.to_string();
    assert!(msg.contains("job.sub:"), "no file name in: {msg}");
    assert_eq!(e.location.line, line, "wrong line in: {msg}");
    for p in parts {
        assert!(msg.contains(p), "'{p}' missing from: {msg}");
    }
}

#[test]
fn unknown_universe() {
    let e = fails("executable = /bin/true\nuniverse = vanila\nqueue\n");
    assert!(matches!(e.kind, ErrorKind::UnknownUniverse(_)));
    assert_msg(&e, 2, &["vanila", "expected vanilla, container"]);
}

#[test]
fn unbalanced_quotes() {
    let e = fails("executable = /bin/true\narguments = \"a 'b c\"\nqueue\n");
    assert!(
        matches!(e.kind, ErrorKind::UnbalancedQuotes { quote: '\'', .. }),
        "{e}"
    );
    assert_msg(&e, 2, &["a 'b c", "closing '"]);
    let e = fails("executable = /bin/true\n\nrequirements = (Memory > 1\nqueue\n");
    assert_msg(&e, 3, &["Memory > 1", "unclosed parenthesis"]);
    let e = fails("executable = /bin/true\n+Foo = \"abc\nqueue\n");
    assert_msg(&e, 2, &["\"abc", "closing \""]);
    let e = fails("executable = /bin/true\narguments = a \"b c\" d\nqueue\n");
    assert_msg(&e, 2, &["a \"b c\" d", "double quote"]);
}

#[test]
fn macro_recursion_loop() {
    let e = fails("A = $(B)\nB = x$(A)\nexecutable = /bin/true\narguments = $(A)\nqueue\n");
    assert!(matches!(e.kind, ErrorKind::MacroLoop(..)), "{e}");
    assert_msg(&e, 4, &["refers to itself", "a -> b -> a"]);
    let e = fails("executable = /bin/true\nX = $(X)\nqueue $(X)\n");
    assert!(matches!(e.kind, ErrorKind::MacroLoop(..)), "{e}");
}

#[test]
fn macro_blowup_is_bounded() {
    let mut text =
        String::from("m0 = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    for i in 1..30 {
        text.push_str(&format!("m{i} = $(m{p})$(m{p})$(m{p})$(m{p})\n", p = i - 1));
    }
    text.push_str("executable = /bin/true\narguments = $(m29)\nqueue\n");
    let t = Instant::now();
    let e = fails(&text);
    assert!(
        matches!(
            e.kind,
            ErrorKind::MacroTooLarge(..) | ErrorKind::MacroDepth(..)
        ),
        "{e}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn missing_queue_file() {
    let e = fails("executable = /bin/true\narguments = $(x)\nqueue x from no-such-items.txt\n");
    assert!(matches!(e.kind, ErrorKind::File { .. }), "{e}");
    assert_msg(&e, 3, &["queue item file", "no-such-items.txt"]);
}

#[test]
fn bad_memory_unit() {
    let e = fails("executable = /bin/true\nrequest_memory = 3 XB\nqueue\n");
    assert!(matches!(e.kind, ErrorKind::BadUnit { .. }), "{e}");
    assert_msg(
        &e,
        2,
        &["request_memory = 3 XB", "unknown unit 'XB'", "K, KB, M, MB"],
    );
}

#[test]
fn too_many_procs() {
    let t = Instant::now();
    let e = fails("executable = /bin/true\nqueue 1000000000\n");
    assert!(
        matches!(
            e.kind,
            ErrorKind::TooManyProcs {
                count: 1_000_000_000,
                cap: 10_000_000
            }
        ),
        "{e}"
    );
    assert_msg(&e, 2, &["1000000000 jobs", "limit of 10000000"]);
    let e = fails("executable = /bin/true\nqueue 99999999999999999999999\n");
    assert!(matches!(e.kind, ErrorKind::TooManyProcs { .. }), "{e}");
    // the cap counts items times count, and all queue statements together
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SubmitOptions {
        max_procs: 10,
        ..Default::default()
    };
    let e = submit_in(
        dir.path(),
        "executable = /bin/true\nqueue 4 x in (a b c)\n",
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::TooManyProcs { count: 12, cap: 10 }),
        "{e}"
    );
    let e = submit_in(
        dir.path(),
        "executable = /bin/true\nqueue 6\nqueue 6\n",
        &opts,
    )
    .unwrap_err();
    assert_eq!(e.location.line, 3);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn include_cycles_and_depth() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.inc"), "include : b.inc\n").expect("write");
    std::fs::write(dir.path().join("b.inc"), "x = 1\ninclude : a.inc\n").expect("write");
    let e = submit_in(
        dir.path(),
        "executable = /bin/true\ninclude : a.inc\nqueue\n",
        &SubmitOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::IncludeCycle(_)), "{e}");
    assert!(e.to_string().contains("b.inc:2"), "{e}");
    // a chain deeper than the limit
    for i in 0..40 {
        std::fs::write(
            dir.path().join(format!("d{i}.inc")),
            format!("include : d{}.inc\n", i + 1),
        )
        .expect("write");
    }
    std::fs::write(dir.path().join("d40.inc"), "y = 1\n").expect("write");
    let e = submit_in(
        dir.path(),
        "executable = /bin/true\ninclude : d0.inc\nqueue\n",
        &SubmitOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::IncludeDepth(16)), "{e}");
    let e = submit_in(
        dir.path(),
        "include : missing.inc\n",
        &SubmitOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing.inc"), "{e}");
}

#[test]
fn conditionals_must_balance() {
    let e = fails("executable = /bin/true\nif defined X\nqueue\n");
    assert_msg(&e, 2, &["'if' without a matching 'endif'"]);
    let e = fails("executable = /bin/true\nendif\nqueue\n");
    assert_msg(&e, 2, &["'endif' without 'if'"]);
    let e = fails("executable = /bin/true\nif foo bar baz\nendif\nqueue\n");
    assert_msg(&e, 2, &["cannot evaluate 'if foo bar baz'"]);
    let e = fails("executable = /bin/true\nerror : stop here $(x:now)\nqueue\n");
    assert_msg(&e, 2, &["stop here now"]);
}

#[test]
fn other_errors_name_the_command() {
    let e = fails("universe = docker\nexecutable = /bin/true\nqueue\n");
    assert_msg(&e, 1, &["docker_image"]);
    let e = fails("universe = container\nexecutable = /bin/true\nqueue\n");
    assert_msg(&e, 1, &["container_image"]);
    let e = fails("executable = /bin/true\nnotification = sometimes\nqueue\n");
    assert_msg(
        &e,
        2,
        &[
            "notification = sometimes",
            "never, always, complete or error",
        ],
    );
    let e = fails("executable = /bin/true\nqueue x y z\n");
    assert_msg(&e, 2, &["queue x y z", "job count"]);
    let e = fails("executable = /bin/true\nqueue x in (a, b\n");
    assert_msg(&e, 2, &["queue x in (a, b", "')' to close the item list"]);
    let e = fails("executable = /bin/true\narguments = $CHOICE(5, a, b)\nqueue\n");
    assert_msg(&e, 2, &["$CHOICE", "outside the list"]);
    let e = fails("this line has no equals sign\n");
    assert_msg(&e, 1, &["this line has no equals sign", "key = value"]);
    let e = fails("executable = /bin/true\n");
    assert!(matches!(e.kind, ErrorKind::NoQueue));
    let e = fails("arguments = x\nqueue\n");
    assert_msg(&e, 2, &["executable"]);
}

#[test]
fn error_in_a_later_proc_produces_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "executable = /bin/true\nL = a,b\narguments = $CHOICE(Process, L)\nqueue 3\n";
    let path = dir.path().join("job.sub");
    std::fs::write(&path, text).expect("write");
    let sub = Submission::from_file(&path, &SubmitOptions::default()).expect("parses");
    let e = sub.expand().unwrap_err();
    assert_eq!(e.location.line, 3);
}

#[test]
fn command_timeout_is_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SubmitOptions {
        command_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let t = Instant::now();
    let e = submit_in(
        dir.path(),
        "executable = /bin/true\nqueue x from sleep 37 |\n",
        &opts,
    )
    .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Command { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // What the shell started is killed with it, not left running.
    let stray = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 37$"])
        .output()
        .expect("pgrep");
    assert!(
        stray.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&stray.stdout)
    );
    let e = submit_in(
        dir.path(),
        "executable = /bin/true\nqueue x from false |\n",
        &opts,
    )
    .unwrap_err();
    assert!(e.to_string().contains("exited"), "{e}");
}
