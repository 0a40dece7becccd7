//! Attacks on root's pool through the paths a user names and the image store, made as
//! unprivileged users: an image, executable, input file, `initialdir` or `log` in a
//! root-only directory (directly, through a symlink in the user's own directory,
//! relative to `initialdir`, with `..`); one user's `docker save` archive claiming a
//! registry name another user's job asks for; setuid-root programs and device nodes in
//! an image a job brings into root's store.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pool::{cluster_of, Pool};
use common::{give_to_user, need, As, Ran};

const SECRET: &str = "root-only-marker-5f1c";

/// A root pool whose daemon (and so every starter) uses the image store `store`.
fn root_pool() -> Option<(Pool, PathBuf)> {
    root_pool_with("")
}

fn root_pool_with(config: &str) -> Option<(Pool, PathBuf)> {
    root_pool_env(config, &[])
}

/// A root pool whose daemon also has `env`.
fn root_pool_env(config: &str, env: &[(&str, &str)]) -> Option<(Pool, PathBuf)> {
    let pool = Pool::as_root(config)?;
    if !need(
        common::test_user().is_some() && common::other_user().is_some(),
        "creating the unprivileged test users",
    ) {
        return None;
    }
    let store = pool.work.join("store");
    let r: Ran = common::petrel(As::Root)
        .args(["q"])
        .env("PETREL_POOL_DIR", &pool.dir)
        .env("PETREL_IMAGE_STORE", &store)
        // No PETREL_SQUASHFS: root's starter must extract a user's squashfs file by
        // itself (through the descriptor opened as the user), never mount it.
        .env_remove("PETREL_SQUASHFS")
        .envs(env.iter().copied())
        .current_dir(&pool.work)
        .output()
        .expect("run petrel")
        .into();
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    Some((pool, store))
}

/// A root-only (0700) directory holding a busybox image that would print the secret, a
/// program, a data file.
fn secret_dir(pool: &Pool) -> PathBuf {
    let secret = pool.work.join("secret");
    fs::create_dir(&secret).unwrap();
    let img = secret.join("img");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&pool.rootfs)
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(img.join("SECRET"), SECRET).unwrap();
    fs::write(secret.join("prog"), format!("#!/bin/sh\necho {SECRET}\n")).unwrap();
    fs::set_permissions(secret.join("prog"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(secret.join("data"), SECRET).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    secret
}

/// Waits until every job of `cluster` is held or has left the queue; returns
/// (proc, status, hold reason) for those still queued.
fn settle(pool: &Pool, cluster: i64, n: usize) -> Vec<(i64, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = pool.af(
            false,
            &format!("ClusterId == {cluster}"),
            &["ProcId", "JobStatus"],
        );
        let busy = rows.iter().any(|r| r[1] != "5");
        if !busy || Instant::now() > deadline {
            assert!(
                !busy,
                "jobs of {cluster} never settled:\n{}",
                pool.diagnose()
            );
            let done = n - rows.len();
            let mut out = Vec::new();
            for r in rows {
                let p: i64 = r[0].parse().unwrap();
                let reason = pool.af(
                    false,
                    &format!("ClusterId == {cluster} && ProcId == {p}"),
                    &["HoldReason"],
                )[0]
                .join(" ");
                out.push((p, r[1].clone(), reason));
            }
            assert!(out.len() + done == n);
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Nothing the user can read holds the secret: none of the outputs in `dir`.
fn no_leak_in(dir: &Path) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            assert!(
                !text.contains(SECRET),
                "{} holds the secret: {text}",
                e.path().display()
            );
        }
    }
}

/// What became of one job `who` submitted: refused at submit (`Err` with the error),
/// or held (`Ok` with the hold reason). A job that ran to completion fails the test.
fn attempt(pool: &Pool, who: As, dir: &Path, text: &str) -> Result<String, String> {
    let r = pool.submit_in(who, dir, "attempt.sub", text);
    if r.code != Some(0) {
        return Err(r.stderr);
    }
    let cluster = cluster_of(&r);
    let held = settle(pool, cluster, 1);
    assert_eq!(held.len(), 1, "the job ran:\n{text}\n{}", pool.diagnose());
    let reason = held[0].2.clone();
    pool.cmd(&["rm", &cluster.to_string()]);
    Ok(reason)
}

fn no_secret(outcome: &Result<String, String>, case: &str) {
    let text = match outcome {
        Ok(t) | Err(t) => t,
    };
    assert!(!text.contains(SECRET), "{case}: {text}");
    // Nothing inside the root-only directory is named: it was never seen.
    for inner in ["SECRET", "bin/busybox"] {
        assert!(!text.contains(inner), "{case}: {text}");
    }
}

fn count_dirs(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

#[test]
fn images_in_root_only_directories_are_refused_in_every_spelling() {
    let Some((pool, store)) = root_pool() else {
        return;
    };
    let secret = secret_dir(&pool);
    let alice = pool.home_of(As::User);
    std::os::unix::fs::symlink(secret.join("img"), alice.join("link")).unwrap();
    let job = |extra: &str| {
        format!(
            "universe = container\nexecutable = /bin/sh\ntransfer_executable = false\n\
             arguments = \"-c 'cat /SECRET; ls -la /'\"\noutput = {alice}/out\n\
             error = {alice}/err\n{extra}queue\n",
            alice = alice.display()
        )
    };
    let spellings = [
        secret.join("img").display().to_string(),
        "link".to_string(),
        format!("{}/link", alice.display()),
        format!("{}/../secret/img", alice.display()),
        format!("dir:{}/img", secret.display()),
    ];
    let mut reasons = Vec::new();
    for s in &spellings {
        let outcome = attempt(
            &pool,
            As::User,
            &alice,
            &job(&format!("container_image = {s}\n")),
        );
        no_secret(&outcome, s);
        let reason = outcome.unwrap_or_else(|e| panic!("{s}: refused at submit: {e}"));
        // The owner's own error (a `dir:` image is taken as an input to transfer, and
        // is not found as a file of that name).
        assert!(
            reason.contains("Permission denied") || s.starts_with("dir:"),
            "{s}: {reason}"
        );
        reasons.push(reason);
    }
    // An existing image and a missing one in the root-only directory are held for the
    // same reason: whether it exists stays unknown.
    let missing = attempt(
        &pool,
        As::User,
        &alice,
        &job(&format!("container_image = {}/nothere\n", secret.display())),
    )
    .unwrap();
    // (After "Error from <slot>: ".)
    let tail = |r: &str| {
        r.split_once(": ")
            .map_or(r.to_string(), |(_, t)| t.to_string())
    };
    assert_eq!(
        tail(&reasons[0]).replace("img", "X"),
        tail(&missing).replace("nothere", "X"),
        "the hold reasons tell an existing root-only image from a missing one"
    );
    // Relative to an initialdir the user may name but not enter.
    let outcome = attempt(
        &pool,
        As::User,
        &alice,
        &job(&format!(
            "initialdir = {}\ncontainer_image = img\n",
            secret.display()
        )),
    );
    no_secret(&outcome, "initialdir");
    no_leak_in(&alice);
    // The user's own directory image runs (read through the descriptor opened as them),
    // by its path and through a symlink, and its mount goes with the job.
    let own = alice.join("own");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&pool.rootfs)
        .arg(&own)
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(own.join("MINE"), "alice's image\n").unwrap();
    give_to_user(&own, As::User);
    std::os::unix::fs::symlink("own", alice.join("own-link")).unwrap();
    for image in ["own", "own-link"] {
        let _ = fs::remove_file(alice.join("out"));
        let text = format!(
            "universe = container\nexecutable = /bin/cat\ntransfer_executable = false\n\
             arguments = /MINE\noutput = out\ncontainer_image = {image}\nqueue\n"
        );
        let c = cluster_of(&pool.submit_in(As::User, &alice, "own.sub", &text));
        assert!(settle(&pool, c, 1).is_empty(), "{}", pool.diagnose());
        assert_eq!(
            fs::read_to_string(alice.join("out")).unwrap(),
            "alice's image\n"
        );
    }
    // Nothing of the root-only directory is left mounted or copied into the store.
    assert_eq!(count_dirs(&store.join("mounts")), 0);
    assert_eq!(count_dirs(&store.join("images")), 0);
}

#[test]
fn executables_inputs_initialdir_and_logs_in_root_only_directories_are_refused() {
    let Some((pool, _store)) = root_pool() else {
        return;
    };
    let secret = secret_dir(&pool);
    let alice = pool.home_of(As::User);
    std::os::unix::fs::symlink(secret.join("data"), alice.join("data-link")).unwrap();
    let head = format!(
        "universe = container\ncontainer_image = {}\noutput = {}/out\n",
        pool.rootfs.display(),
        alice.display()
    );
    let cases = [
        format!("executable = {}/prog\n", secret.display()),
        format!("executable = {}/../secret/prog\n", alice.display()),
        format!(
            "executable = /bin/cat\ntransfer_executable = false\narguments = data\n\
             transfer_input_files = {}/data\n",
            secret.display()
        ),
        "executable = /bin/cat\ntransfer_executable = false\narguments = data-link\n\
         transfer_input_files = data-link\n"
            .to_string(),
        format!(
            "executable = /bin/cat\ntransfer_executable = false\narguments = data\n\
             transfer_input_files = {}/../secret/data\n",
            alice.display()
        ),
        format!(
            "executable = /bin/cat\ntransfer_executable = false\narguments = data\n\
             initialdir = {}\ntransfer_input_files = data\n",
            secret.display()
        ),
    ];
    for case in &cases {
        let outcome = attempt(&pool, As::User, &alice, &format!("{head}{case}"));
        no_secret(&outcome, case);
    }
    no_leak_in(&alice);

    // A log the user cannot write is refused at submit, naming the file.
    for log in [
        format!("{}/job.log", secret.display()),
        format!("{}/../secret/job.log", alice.display()),
        "/proc/job.log".to_string(),
    ] {
        let r = pool.submit_in(
            As::User,
            &alice,
            "log.sub",
            &format!(
                "{head}executable = /bin/true\ntransfer_executable = false\nlog = {log}\nqueue\n"
            ),
        );
        assert_ne!(r.code, Some(0), "log = {log} was accepted: {}", r.stdout);
        assert!(
            r.stderr.contains("job.log") && r.stderr.contains("cannot write"),
            "{}",
            r.stderr
        );
    }
    assert!(!secret.join("job.log").exists());
    // An ordinary log is still accepted, and written by the user.
    let r = pool.submit_in(
        As::User,
        &alice,
        "ok.sub",
        &format!(
            "{head}executable = /bin/true\ntransfer_executable = false\nlog = ok.log\nqueue\n"
        ),
    );
    cluster_of(&r);
    let log = alice.join("ok.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fs::read_to_string(&log).is_ok_and(|t| t.contains("Job terminated")) {
        assert!(Instant::now() < deadline, "{}", pool.diagnose());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        fs::metadata(&log).unwrap().uid(),
        As::User.uid(),
        "the log is the user's own"
    );
}

/// A `docker save` archive of the busybox root file system plus `extra` entries, whose
/// `RepoTags` claims `tag`.
fn archive(rootfs: &Path, out: &Path, tag: &str, extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) {
    let mut layer = tar::Builder::new(Vec::new());
    layer.follow_symlinks(false);
    layer.append_dir_all(".", rootfs).unwrap();
    extra(&mut layer);
    let layer = layer.into_inner().unwrap();
    let diff_id = petrel_image::Digest::of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": petrel_image::distribution::Platform::host().architecture,
        "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "cfg.json", "RepoTags": [tag], "Layers": ["l/layer.tar"]}]))
    .unwrap();
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    for (name, data) in [
        ("l/layer.tar", &layer),
        ("cfg.json", &config),
        ("manifest.json", &manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

fn add_device(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(1).unwrap();
    h.set_cksum();
    b.append_data(&mut h, path, &[][..]).unwrap();
}

fn image_cmd(pool: &Pool, store: &Path, args: &[&str]) -> Ran {
    common::petrel(As::Root)
        .arg("image")
        .args(args)
        .env("PETREL_POOL_DIR", &pool.dir)
        .env("PETREL_IMAGE_STORE", store)
        .output()
        .expect("run petrel")
        .into()
}

#[test]
fn one_users_archive_never_answers_another_users_registry_reference() {
    let Some((pool, store)) = root_pool() else {
        return;
    };
    // A registry nobody listens on: B's reference can only be pulled from there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tag = format!("127.0.0.1:{port}/busybox:latest");
    let alice = pool.home_of(As::User);
    let bob = pool.home_of(As::Other);
    archive(&pool.rootfs, &alice.join("a.tar"), &tag, |b| {
        add_file(b, "MARK", b"alice's content\n", 0o644)
    });
    give_to_user(&alice, As::User);
    let job = |image: &str| {
        format!(
            "universe = container\ncontainer_image = {image}\nexecutable = /bin/sh\n\
             transfer_executable = false\narguments = \"-c 'cat /MARK'\"\noutput = out\nqueue\n"
        )
    };
    let a = cluster_of(&pool.submit_in(As::User, &alice, "a.sub", &job("a.tar")));
    assert!(settle(&pool, a, 1).is_empty(), "alice's job did not run");
    assert_eq!(
        fs::read_to_string(alice.join("out")).unwrap(),
        "alice's content\n"
    );
    for reference in [format!("docker://{tag}"), tag.clone()] {
        let _ = fs::remove_file(bob.join("out"));
        let b = cluster_of(&pool.submit_in(As::Other, &bob, "b.sub", &job(&reference)));
        let held = settle(&pool, b, 1);
        let out = fs::read_to_string(bob.join("out")).unwrap_or_default();
        assert!(
            !out.contains("alice"),
            "bob's {reference} ran alice's archive"
        );
        assert_eq!(held.len(), 1, "bob's {reference} job ran: {out}");
        pool.cmd(&["rm", &b.to_string()]);
    }
    // The store binds no name to alice's archive, least of all the registry's.
    let ls = image_cmd(&pool, &store, &["ls"]);
    assert_eq!(ls.code, Some(0), "{}", ls.stderr);
    assert!(!ls.stdout.contains(&tag), "{}", ls.stdout);
    assert!(!ls.stdout.contains("busybox"), "{}", ls.stdout);
}

#[test]
fn setuid_programs_and_devices_from_a_jobs_image_never_reach_the_store() {
    let Some((pool, store)) = root_pool() else {
        return;
    };
    let alice = pool.home_of(As::User);
    let busybox = fs::read(pool.rootfs.join("bin/busybox")).unwrap();
    archive(&pool.rootfs, &alice.join("p.tar"), "priv:1", |b| {
        add_file(b, "bin/rootshell", &busybox, 0o4755);
        add_file(b, "bin/groupshell", &busybox, 0o2755);
        add_device(b, "dev/evilmem", tar::EntryType::Char);
        add_device(b, "dev/evilsda", tar::EntryType::Block);
    });
    give_to_user(&alice, As::User);
    let c = cluster_of(&pool.submit_in(
        As::User,
        &alice,
        "p.sub",
        "universe = container\ncontainer_image = p.tar\nexecutable = /bin/true\n\
         transfer_executable = false\nqueue\n",
    ));
    assert!(settle(&pool, c, 1).is_empty(), "{}", pool.diagnose());
    // Nowhere in the store is there a setuid or setgid file or a device node.
    let mut found = Vec::new();
    let mut stack = vec![store.clone()];
    let mut rootshells = 0;
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
                continue;
            }
            if e.file_name() == "rootshell" {
                rootshells += 1;
            }
            if m.mode() & 0o6000 != 0
                || m.file_type().is_char_device()
                || m.file_type().is_block_device()
            {
                found.push(e.path());
            }
        }
    }
    assert!(rootshells > 0, "the image was not stored");
    assert!(
        found.is_empty(),
        "privileged entries in the store: {found:?}"
    );
    // Another user cannot list the store, its layers or its blobs.
    for sub in ["", "images", "layers", "blobs", "names", "tmp"] {
        let st = Command::new("setpriv")
            .args([
                format!("--reuid={}", As::Other.uid()),
                format!("--regid={}", As::Other.ids().unwrap().1),
                "--clear-groups".into(),
                "--".into(),
                "ls".into(),
            ])
            .arg(store.join(sub))
            .output()
            .unwrap();
        assert!(!st.status.success(), "another user lists store/{sub}");
    }
    // `image inspect` says what was dropped.
    let ls = image_cmd(&pool, &store, &["ls", "--json"]);
    let digest = ls
        .stdout
        .split('"')
        .find(|s| s.starts_with("sha256:"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no image in {}{}", ls.stdout, ls.stderr));
    let inspect = image_cmd(&pool, &store, &["inspect", &digest]);
    assert_eq!(inspect.code, Some(0), "{}", inspect.stderr);
    for want in [
        "setuid bit of bin/rootshell",
        "setgid bit of bin/groupshell",
        "device node dev/evilmem",
        "device node dev/evilsda",
    ] {
        assert!(inspect.stdout.contains(want), "{want}: {}", inspect.stdout);
    }
}

/// Every runtime reaches a user's own image (a directory, through a symlink; a squashfs
/// file) through what was opened as the user, and none reaches a root-only one.
#[test]
fn every_runtime_runs_the_users_own_images_and_none_reaches_root_only_ones() {
    for (runtime, tool) in [
        ("embedded", None),
        ("runc", Some("runc")),
        ("charliecloud", Some("ch-run")),
    ] {
        if let Some(t) = tool {
            if !need(common::which(t).is_some(), t) {
                continue;
            }
        }
        let Some((pool, store)) = root_pool_with(&format!("CONTAINER_RUNTIMES = {runtime}\n"))
        else {
            return;
        };
        if !need(common::which("mksquashfs").is_some(), "mksquashfs") {
            return;
        }
        pool.until_slot("ContainerRuntimes", runtime, 60);
        let secret = secret_dir(&pool);
        let st = Command::new("mksquashfs")
            .arg(secret.join("img"))
            .arg(secret.join("img.sqfs"))
            .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
            .status()
            .unwrap();
        assert!(st.success());
        let alice = pool.home_of(As::User);
        let own = alice.join("own");
        assert!(Command::new("cp")
            .arg("-a")
            .arg(&pool.rootfs)
            .arg(&own)
            .status()
            .unwrap()
            .success());
        fs::write(own.join("MINE"), "alice's image\n").unwrap();
        let st = Command::new("mksquashfs")
            .arg(&own)
            .arg(alice.join("own.sqfs"))
            .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
            .status()
            .unwrap();
        assert!(st.success());
        give_to_user(&alice, As::User);
        std::os::unix::fs::symlink("own", alice.join("own-link")).unwrap();
        let job = |image: &str, file: &str| {
            format!(
                "universe = container\nexecutable = /bin/cat\ntransfer_executable = false\n\
                 arguments = {file}\noutput = {alice}/out\ncontainer_image = {image}\nqueue\n",
                alice = alice.display()
            )
        };
        // A squashfs job only matches a slot whose runtime runs squashfs files.
        let has_sqfs = pool.cmd(&["status", "-af", "HasSquashfs"]).stdout.trim() == "true";
        let mut own_images = vec!["own", "own-link"];
        if has_sqfs {
            own_images.push("own.sqfs");
        }
        for image in own_images {
            let _ = fs::remove_file(alice.join("out"));
            let c = cluster_of(&pool.submit_in(As::User, &alice, "own.sub", &job(image, "/MINE")));
            let held = settle(&pool, c, 1);
            assert!(
                held.is_empty(),
                "{runtime} {image}: {held:?}\n{}",
                pool.diagnose()
            );
            assert_eq!(
                fs::read_to_string(alice.join("out")).unwrap(),
                "alice's image\n",
                "{runtime} {image}"
            );
        }
        let used = pool.af(true, "true", &["ContainerRuntimeUsed"]);
        assert!(
            !used.is_empty() && used.iter().all(|r| r[0] == runtime),
            "{runtime}: {used:?}"
        );
        let mut root_only = vec![secret.join("img").display().to_string()];
        if has_sqfs {
            root_only.push(secret.join("img.sqfs").display().to_string());
        }
        for image in root_only {
            let outcome = attempt(&pool, As::User, &alice, &job(&image, "/SECRET"));
            no_secret(&outcome, &format!("{runtime} {image}"));
        }
        no_leak_in(&alice);
        assert_eq!(count_dirs(&store.join("mounts")), 0, "{runtime}");
    }
}

/// An image far larger unpacked than its archive is refused with the cap stated, and
/// nothing of it stays in root's store.
#[test]
fn an_image_over_the_unpacked_size_cap_is_held_and_leaves_nothing() {
    let Some((pool, store)) = root_pool_env("", &[("PETREL_IMAGE_MAX_UNPACKED_SIZE", "8M")]) else {
        return;
    };
    let alice = pool.home_of(As::User);
    let zeros = vec![0u8; 32 << 20];
    archive(&pool.rootfs, &alice.join("bomb.tar"), "bomb:1", |b| {
        add_file(b, "zeros", &zeros, 0o644)
    });
    give_to_user(&alice, As::User);
    let outcome = attempt(
        &pool,
        As::User,
        &alice,
        "universe = container\ncontainer_image = bomb.tar\nexecutable = /bin/true\n\
         transfer_executable = false\nqueue\n",
    );
    let reason = outcome.unwrap_or_else(|e| panic!("refused at submit: {e}"));
    assert!(
        reason.contains("exceeds the limit of 8388608 bytes"),
        "{reason}"
    );
    assert_eq!(count_dirs(&store.join("images")), 0);
    assert_eq!(count_dirs(&store.join("layers")), 0);
    assert_eq!(count_dirs(&store.join("tmp")), 0);
}

/// A copy of the busybox image holding the secret in `/SECRET`, for another user's
/// private image.
fn secret_image_dir(pool: &Pool) -> PathBuf {
    let src = pool.work.join("bobs-src");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&pool.rootfs)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    fs::write(src.join("SECRET"), SECRET).unwrap();
    src
}

/// An OCI layout whose directory anyone may read but whose blobs only its owner may is
/// not read with root's rights for another user: that user's job is held and gets
/// nothing of it, while the owner's own job runs it.
#[test]
fn a_layout_with_private_blobs_serves_only_its_owner() {
    let Some((pool, _store)) = root_pool() else {
        return;
    };
    let bob = pool.home_of(As::Other);
    let src = secret_image_dir(&pool);
    let scratch = pool.work.join("scratch-store");
    let r = image_cmd(
        &pool,
        &scratch,
        &["import", "--name", "bobs:1", &src.to_string_lossy()],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let layout = bob.join("layout");
    let r = image_cmd(
        &pool,
        &scratch,
        &["export", "bobs:1", &layout.to_string_lossy()],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    give_to_user(&bob, As::Other);
    fs::set_permissions(layout.join("blobs"), fs::Permissions::from_mode(0o700)).unwrap();
    let job = |out: &Path| {
        format!(
            "universe = container\ncontainer_image = {}\nexecutable = /bin/cat\n\
             transfer_executable = false\narguments = /SECRET\noutput = {}\nqueue\n",
            layout.display(),
            out.display()
        )
    };
    let alice = pool.home_of(As::User);
    let outcome = attempt(&pool, As::User, &alice, &job(&alice.join("out")));
    no_secret(&outcome, "another user's layout");
    let reason = outcome.unwrap_or_else(|e| e);
    assert!(reason.contains("cannot read"), "{reason}");
    no_leak_in(&alice);
    // Bob's own job runs his image.
    let c = cluster_of(&pool.submit_in(As::Other, &bob, "own.sub", &job(&bob.join("out"))));
    assert!(settle(&pool, c, 1).is_empty(), "{}", pool.diagnose());
    assert_eq!(fs::read_to_string(bob.join("out")).unwrap(), SECRET);
}

/// Root's store keeps a user's extracted squashfs file under a digest of the file's
/// identity, which any user who can stat the file could compute. Typed as an image name
/// by another user, that digest must lead nowhere.
#[test]
fn another_users_extracted_squashfs_is_not_reached_by_its_digest() {
    let Some((pool, store)) = root_pool() else {
        return;
    };
    if !need(common::which("mksquashfs").is_some(), "mksquashfs") {
        return;
    }
    let bob = pool.home_of(As::Other);
    let src = secret_image_dir(&pool);
    let sqfs = bob.join("private.sqfs");
    assert!(Command::new("mksquashfs")
        .arg(&src)
        .arg(&sqfs)
        .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
        .status()
        .unwrap()
        .success());
    give_to_user(&bob, As::Other);
    fs::set_permissions(&sqfs, fs::Permissions::from_mode(0o600)).unwrap();
    let job = |image: &str, out: &Path| {
        format!(
            "universe = container\ncontainer_image = {image}\nexecutable = /bin/cat\n\
             transfer_executable = false\narguments = /SECRET\noutput = {}\nqueue\n",
            out.display()
        )
    };
    let c = cluster_of(&pool.submit_in(
        As::Other,
        &bob,
        "own.sub",
        &job(&sqfs.to_string_lossy(), &bob.join("out")),
    ));
    assert!(settle(&pool, c, 1).is_empty(), "{}", pool.diagnose());
    assert_eq!(fs::read_to_string(bob.join("out")).unwrap(), SECRET);
    // What an attacker would compute from `stat private.sqfs`; read here from the store.
    let extracted: Vec<String> = fs::read_dir(store.join("images"))
        .unwrap()
        .flatten()
        .filter(|e| {
            fs::read_to_string(e.path().join("meta.json")).is_ok_and(|m| m.contains("\"squashfs\""))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(extracted.len(), 1, "{extracted:?}");
    let alice = pool.home_of(As::User);
    for typed in [
        extracted[0][..16].to_string(),
        format!("sha256:{}", extracted[0]),
    ] {
        // Through submit, a bare name is a file to transfer; set as a raw attribute, it
        // reaches the starter as typed.
        let raw = format!(
            "{}+ContainerImage = \"{typed}\"\nqueue\n",
            job("@ROOTFS@", &alice.join("out")).trim_end_matches("queue\n")
        );
        for text in [job(&typed, &alice.join("out")), raw] {
            let outcome = attempt(&pool, As::User, &alice, &text);
            no_secret(&outcome, &typed);
        }
    }
    no_leak_in(&alice);
}
