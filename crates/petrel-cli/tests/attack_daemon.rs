//! Attacks on root's pool daemon by unprivileged users: forged identity attributes,
//! reading the queue's files, starving the daemon of connections and memory, planting a
//! pool for another user, and a queue database lost to truncation. Each asserts that the
//! attack fails and that nothing leaks.
//!
//! A hostile client need not use `petrel`: raw frames are written to the socket by a
//! small Perl client (Perl's base modules only) run as the test user.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pool::{cluster_of, Pool};
use common::{As, Ran};

/// A client that speaks the pool's framing (4-byte big-endian length, then JSON):
/// - `send SOCKET FILE N`: writes FILE's bytes, prints the bodies of N answers;
/// - `hold SOCKET N SECS`: opens N connections, prints `connected K`, and after 3 s and
///   again SECS later prints how many the daemon has closed, with what it said;
/// - `stall SOCKET LEN BYTES SECS`: starts a message of LEN bytes, sends BYTES of it and
///   waits up to SECS for the daemon to answer or close, printing what it said;
/// - `listen SOCKET SECS`: serves SOCKET (prints `up`), and prints how many bytes the
///   first client sent within SECS.
const RAW_CLIENT: &str = r#"
use strict; use warnings; use IO::Socket::UNIX; use IO::Select; use Socket;
$SIG{PIPE} = 'IGNORE'; $| = 1;
my ($mode, $path) = (shift, shift);
sub conn { IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path) }
sub frame { my $s = shift; my $n = sysread($s, my $len, 4); return undef unless $n && $n == 4;
  my $l = unpack('N', $len); my $b = ''; while (length($b) < $l) {
    my $r = sysread($s, $b, $l - length($b), length($b)); return undef unless $r; } return $b; }
if ($mode eq 'send') {
  my ($file, $n) = @ARGV; open(my $f, '<:raw', $file) or die "$file: $!"; local $/; my $d = <$f>;
  my $s = conn() or die "connect: $!"; syswrite($s, $d);
  for (1..$n) { my $b = frame($s); print defined $b ? "$b\n" : "closed\n"; }
} elsif ($mode eq 'hold') {
  my ($n, $secs) = @ARGV; my @c = grep { defined } map { conn() } 1..$n;
  print "connected ", scalar(@c), "\n";
  my %closed; my $report = sub { my $sel = IO::Select->new(@c);
    for my $s ($sel->can_read(0)) { next if $closed{$s}; my $b = frame($s);
      $closed{$s} = defined $b ? $b : 'eof'; } my %why;
    $why{$_}++ for values %closed; print "closed ", scalar(keys %closed), " ",
    join(' | ', map { "$why{$_}x $_" } sort keys %why), "\n"; };
  sleep 3; $report->(); sleep $secs; $report->();
} elsif ($mode eq 'stall') {
  my ($len, $bytes, $secs) = @ARGV; my $s = conn() or die "connect: $!";
  syswrite($s, pack('N', $len)); my $chunk = 'x' x 65536; my $sent = 0;
  while ($sent < $bytes) { my $w = syswrite($s, $chunk, 65536); last unless $w; $sent += $w; }
  print "sent $sent\n";
  my $sel = IO::Select->new($s); my $t = time;
  if ($sel->can_read($secs)) { my $b = frame($s); print defined $b ? "said $b\n" : "closed\n"; }
  else { print "still open\n"; }
  print "after ", time - $t, "\n";
} elsif ($mode eq 'listen') {
  my ($secs) = @ARGV; alarm($secs + 20);
  my $l = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => 5)
    or die "listen: $!";
  print "up\n"; my $c = $l->accept or die "accept: $!"; my $got = 0;
  my $sel = IO::Select->new($c); my $end = time + $secs;
  while (time < $end) { last unless $sel->can_read($end - time);
    my $n = sysread($c, my $b, 65536); last unless $n; $got += $n; }
  print "got $got\n";
}
"#;

fn perl() -> Option<PathBuf> {
    let found = common::which("perl");
    common::need(found.is_some(), "perl, for the raw socket client").then_some(())?;
    found
}

/// Runs the raw client as `who`; the script lives in the pool's work directory.
fn raw(pool: &Pool, who: As, args: &[&str]) -> Command {
    let script = pool.work.join("raw.pl");
    if !script.exists() {
        fs::write(&script, RAW_CLIENT).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert!(who.ids().is_some(), "an unprivileged user");
    let mut c = common::run_as(who, "perl");
    c.arg(&script).args(args).stdin(Stdio::null());
    c
}

/// A message as the pool frames it, in a file the raw client can read.
fn frames(pool: &Pool, name: &str, messages: &[serde_json::Value]) -> PathBuf {
    let mut bytes = Vec::new();
    for m in messages {
        let body = serde_json::to_vec(m).unwrap();
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
    }
    let path = pool.work.join(name);
    fs::write(&path, bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn users_ready() -> bool {
    common::is_root()
        && common::need(common::test_user().is_some(), "the unprivileged test user")
        && common::need(common::other_user().is_some(), "the second test user")
}

/// Root's pool with `config`, started, when the test users (and, for the raw client,
/// perl) are there; `None` skips the test.
fn started(config: &str, raw_client: bool) -> Option<Pool> {
    if !users_ready() || (raw_client && perl().is_none()) {
        return None;
    }
    let pool = Pool::as_root(config)?;
    let r = pool.cmd(&["pool", "start"]);
    assert_eq!(r.code, Some(0), "pool start: {}{}", r.stdout, r.stderr);
    Some(pool)
}

#[test]
fn forged_identity_attributes_are_refused_or_overwritten() {
    let Some(pool) = started("", false) else {
        return;
    };
    let home = pool.home_of(As::User);
    let (uid, gid) = As::User.ids().unwrap();
    let base = "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
                transfer_executable = false\nhold = true\n";
    // Names only the daemon writes, at the cluster level and per proc (a value that
    // differs between procs is sent in each proc's ad), in other spellings too.
    for (attr, value) in [
        ("PetrelOwnerGid", "0"),
        ("petrelownergid", "0"),
        ("PetrelSpool", "\"/etc\""),
        ("PetrelStarterPid", "1"),
        ("RemoteHost", "\"slot1@elsewhere\""),
        ("NumHolds", "0"),
    ] {
        for (level, queue) in [("cluster", "queue 2"), ("proc", "queue 2")] {
            let v = if level == "proc" {
                format!("{value} + $(Process) * 0")
            } else {
                value.to_string()
            };
            let text = format!("{base}+{attr} = {v}\n{queue}\n");
            let r = pool.submit_in(As::User, &home, "forged.sub", &text);
            assert_ne!(r.code, Some(0), "{attr} at {level} level was queued");
            assert!(
                r.stderr.contains(attr) && r.stderr.contains("set by the pool"),
                "{attr} ({level}): {}",
                r.stderr
            );
        }
    }
    // Per proc, the daemon's identity names are refused too.
    for (attr, value) in [
        ("Owner", "\"root$(Process)\""),
        ("User", "\"root@x$(Process)\""),
        ("ClusterId", "$(Process)"),
        ("QDate", "$(Process)"),
    ] {
        let text = format!("{base}+{attr} = {value}\nqueue 2\n");
        let r = pool.submit_in(As::User, &home, "forged.sub", &text);
        assert_ne!(r.code, Some(0), "per-proc {attr} was queued");
        assert!(r.stderr.contains("set by the pool"), "{attr}: {}", r.stderr);
    }
    let all = pool.af(false, "true", &["ClusterId"]);
    assert!(all.is_empty(), "refused submits left jobs: {all:?}");

    // In the cluster ad, the daemon's own value replaces the client's: the job runs as
    // the submitter, with their group, and every listing shows them as its owner.
    let text = format!(
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/sh\n\
         arguments = \"-c 'id -u; id -g; id -G'\"\ntransfer_executable = false\n\
         output = id.out\nlog = id.log\n+Owner = \"root\"\n+User = \"root@{}\"\n\
         +QDate = 1\n+ClusterId = 1\n+NumJobStarts = 99\nqueue\n",
        "localhost"
    );
    let c = cluster_of(&pool.submit_in(As::User, &home, "owner.sub", &text));
    let r = pool.run_in(As::User, &home, &["wait", "-wait", "60", "id.log"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let out = fs::read_to_string(home.join("id.out")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], uid.to_string(), "{out}");
    assert_eq!(lines[1], gid.to_string(), "{out}");
    assert!(!out.split_whitespace().any(|g| g == "0"), "{out}");
    // The job leaves the queue for the history a moment after its log says it ended.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows = pool.af(
            true,
            &format!("ClusterId == {c}"),
            &["Owner", "User", "ClusterId", "QDate", "PetrelOwnerGid"],
        );
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], As::User.name());
    assert!(rows[0][1].starts_with(&format!("{}@", As::User.name())));
    assert_eq!(rows[0][2], c.to_string());
    assert!(rows[0][3].parse::<i64>().unwrap() > 1);
    assert_eq!(rows[0][4], gid.to_string());
    let forged = pool.af(true, "Owner == \"root\"", &["ClusterId"]);
    assert!(
        forged.is_empty(),
        "a job shows root as its owner: {forged:?}"
    );
}

#[test]
fn raw_frames_cannot_forge_what_the_daemon_owns() {
    let Some(pool) = started("", true) else {
        return;
    };
    let socket = pool.dir.join("pool.sock").to_string_lossy().into_owned();
    let submit = |cluster: i64, cluster_ad: serde_json::Value, proc: serde_json::Value| {
        frames(
            &pool,
            "submit.bin",
            &[
                serde_json::json!({"op": "new_cluster"}),
                serde_json::json!({
                    "op": "submit", "cluster": cluster, "cluster_ad": cluster_ad,
                    "procs": [proc],
                }),
            ],
        )
    };
    let send = |file: &Path| -> String {
        let out = raw(
            &pool,
            As::User,
            &["send", &socket, &file.to_string_lossy(), "2"],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The cluster the daemon reserves is the next one: ask once to learn it.
    let probe = frames(
        &pool,
        "new.bin",
        &[serde_json::json!({"op": "new_cluster"})],
    );
    let out = raw(
        &pool,
        As::User,
        &["send", &socket, &probe.to_string_lossy(), "1"],
    )
    .output()
    .unwrap();
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let mut next = first["id"].as_i64().expect("a cluster id") + 1;
    let cmd = serde_json::json!(["Cmd", "\"/bin/true\""]);
    for name in [
        "PetrelOwnerGid",
        "Owner",
        "User",
        "ClusterId",
        "PetrelSpool",
    ] {
        // Per proc: refused, whatever the spelling.
        for spelled in [name.to_string(), name.to_ascii_uppercase()] {
            let file = submit(
                next,
                serde_json::json!([cmd, ["JobStatus", "5"]]),
                serde_json::json!([["ProcId", "0"], [spelled, "0"]]),
            );
            let said = send(&file);
            next += 1;
            assert!(
                said.contains("set by the pool") && said.contains(&spelled),
                "{spelled}: {said}"
            );
        }
    }
    // In the cluster ad, the daemon's own names are refused...
    for name in [
        "PetrelOwnerGid",
        "petrelOwnerGID",
        "PetrelStarterPid",
        "NumHolds",
    ] {
        let file = submit(
            next,
            serde_json::json!([cmd, ["JobStatus", "5"], [name, "0"]]),
            serde_json::json!([["ProcId", "0"]]),
        );
        let said = send(&file);
        next += 1;
        assert!(
            said.contains("set by the pool") && said.contains(name),
            "{name}: {said}"
        );
    }
    // ...and the owner and ids are the peer's, whatever the frame says.
    let file = submit(
        next,
        serde_json::json!([
            cmd,
            ["JobStatus", "5"],
            ["Owner", "\"root\""],
            ["User", "\"root@h\""],
            ["ClusterId", "1"],
            ["QDate", "1"]
        ]),
        serde_json::json!([["ProcId", "0"]]),
    );
    let said = send(&file);
    assert!(said.contains("submitted"), "{said}");
    let rows = pool.af(false, "true", &["ClusterId", "Owner", "PetrelOwnerGid"]);
    let gid = As::User.ids().unwrap().1.to_string();
    assert_eq!(
        rows,
        vec![vec![next.to_string(), As::User.name().to_string(), gid]]
    );
}

#[test]
fn the_queue_log_and_job_files_are_not_readable_by_other_users() {
    if !users_ready() {
        return;
    }
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    // An older pool's world-readable files are narrowed when the daemon starts.
    fs::write(pool.dir.join("daemon.log"), "").unwrap();
    fs::set_permissions(
        pool.dir.join("daemon.log"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(pool.cmd(&["pool", "start"]).code, Some(0));
    let home = pool.home_of(As::User);
    let c = cluster_of(&pool.submit_in(
        As::User,
        &home,
        "secret.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/sh\n\
         arguments = \"-c 'echo $SECRET > mine; ls -ld . > scratch.txt'\"\n\
         environment = \"SECRET=hunter2-token\"\ntransfer_executable = false\n\
         transfer_output_files = scratch.txt\nlog = s.log\nqueue\n",
    ));
    let r = pool.run_in(As::User, &home, &["wait", "-wait", "60", "s.log"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    // The owner reached their own scratch directory, which was theirs alone.
    let scratch = fs::read_to_string(home.join("scratch.txt")).unwrap();
    assert!(scratch.starts_with("drwx------"), "{scratch}");
    // A second job, held, keeps the secret in the queue while the files are looked at.
    pool.submit_in(
        As::User,
        &home,
        "held.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
         environment = \"SECRET=hunter2-token\"\ntransfer_executable = false\nhold = true\nqueue\n",
    );
    // Every path another user could reach (each directory above it searchable by
    // others) must not be readable by them; directories only searchable where a user
    // must pass through (the pool directory to the socket, `execute` to their scratch).
    let mut bad = Vec::new();
    let mut walk = vec![(pool.dir.clone(), true)];
    while let Some((p, reachable)) = walk.pop() {
        let meta = fs::symlink_metadata(&p).unwrap();
        let mode = meta.mode() & 0o7777;
        let name = p
            .strip_prefix(&pool.dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // The config is the administrator's; the probe's image must be readable by
        // the unprivileged user the probes run as, and holds nothing of any job.
        if name == "config" || name.starts_with("probe") || name == "pool.sock" {
            continue;
        }
        if meta.is_dir() {
            let allowed = match name.as_str() {
                "" | "execute" => 0o711,
                _ => 0o700,
            };
            if mode & !allowed & 0o777 != 0 {
                bad.push(format!("{name}/ {mode:o}"));
            }
            for e in fs::read_dir(&p).unwrap() {
                walk.push((e.unwrap().path(), reachable && mode & 0o001 != 0));
            }
        } else if reachable && mode & 0o077 != 0 {
            bad.push(format!("{name} {mode:o}"));
        }
    }
    assert!(bad.is_empty(), "pool files others may read: {bad:?}");
    // What the other user can get at: nothing of the job, by name or by listing.
    for who in [As::Other, As::User] {
        for file in ["queue.db", "queue.db-wal", "daemon.log"] {
            let path = pool.dir.join(file);
            let r: Ran = Command::new("setpriv")
                .args([
                    format!("--reuid={}", who.uid()),
                    format!("--regid={}", who.ids().unwrap().1),
                    "--clear-groups".into(),
                    "--".into(),
                    "cat".into(),
                ])
                .arg(&path)
                .output()
                .unwrap()
                .into();
            assert_ne!(r.code, Some(0), "{who:?} read {file}");
            assert!(
                !r.stdout.contains("hunter2"),
                "{who:?} read the secret in {file}"
            );
        }
    }
    let listing: Ran = Command::new("setpriv")
        .args([
            format!("--reuid={}", As::Other.uid()),
            format!("--regid={}", As::Other.ids().unwrap().1),
            "--clear-groups".into(),
            "--".into(),
            "ls".into(),
        ])
        .arg(pool.dir.join("execute"))
        .output()
        .unwrap()
        .into();
    assert_ne!(listing.code, Some(0), "{}", listing.stdout);
    let theirs = pool.run_in(As::Other, &pool.work, &["q", "-long"]);
    assert!(!theirs.stdout.contains("hunter2"), "{}", theirs.stdout);
    let _ = c;
}

/// The daemon's resident memory in KiB.
fn rss_kib(pid: u64) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn daemon_pid(pool: &Pool) -> u64 {
    let status = pool.cmd(&["pool", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    v["pid"].as_u64().expect("daemon pid")
}

#[test]
fn idle_connections_of_one_user_do_not_lock_out_the_others() {
    let Some(pool) = started(
        "MAX_CONNECTIONS_PER_USER = 50\nCLIENT_IDLE_TIMEOUT = 8\n",
        true,
    ) else {
        return;
    };
    let socket = pool.dir.join("pool.sock").to_string_lossy().into_owned();
    let mut child = raw(&pool, As::User, &["hold", &socket, "300", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let connected = lines.next().unwrap().unwrap();
    assert_eq!(connected, "connected 300");
    // While the user holds every connection they may, the others are served.
    let home = pool.home_of(As::Other);
    for who in [As::Other, As::Root] {
        let t = Instant::now();
        let r = pool.run_in(who, &home, &["q", "-totals"]);
        assert_eq!(r.code, Some(0), "{who:?}: {}{}", r.stdout, r.stderr);
        assert!(t.elapsed() < Duration::from_secs(10));
    }
    // Past the cap, the user's connections were refused at once, saying why.
    let early = lines.next().unwrap().unwrap();
    assert!(
        early.starts_with("closed 250 ") && early.contains("MAX_CONNECTIONS_PER_USER"),
        "{early}"
    );
    // The idle ones are closed after the timeout.
    let late = lines.next().unwrap().unwrap();
    assert!(
        late.starts_with("closed 300 ") && late.contains("50x {\"reply\":\"error\""),
        "{late}"
    );
    assert!(late.contains("no request for 8 s"), "{late}");
    assert!(child.wait().unwrap().success());
    let r = pool.run_in(As::User, &home, &["q", "-totals"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

#[test]
fn unfinished_huge_messages_cost_the_daemon_little_and_are_dropped() {
    let Some(pool) = started(
        "MAX_CLIENT_MEMORY_PER_USER = 16\nCLIENT_MESSAGE_TIMEOUT = 3\n",
        true,
    ) else {
        return;
    };
    let pid = daemon_pid(&pool);
    let before = rss_kib(pid);
    let socket = pool.dir.join("pool.sock").to_string_lossy().into_owned();
    // Four messages of 256 MiB, 32 MiB of each sent: each is refused before its body
    // is read, for being past the user's budget.
    let big: Vec<_> = (0..4)
        .map(|_| {
            raw(
                &pool,
                As::User,
                &["stall", &socket, "268435456", "33554432", "10"],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in big {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("MAX_CLIENT_MEMORY_PER_USER"), "{text}");
    }
    // One within the budget, never finished: read as it arrives, dropped after the
    // timeout.
    let mut child = raw(
        &pool,
        As::User,
        &["stall", &socket, "12582912", "8388608", "20"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let sent = lines.next().unwrap().unwrap();
    assert_eq!(sent, "sent 8388608");
    let during = rss_kib(pid);
    let said = lines.next().unwrap().unwrap();
    assert!(said.contains("took longer than 3 s"), "{said}");
    let after: u64 = lines
        .next()
        .unwrap()
        .unwrap()
        .trim_start_matches("after ")
        .parse()
        .unwrap();
    assert!(after <= 6, "dropped after {after} s");
    assert!(child.wait().unwrap().success());
    assert!(
        during < before + 48 * 1024,
        "the daemon grew from {before} KiB to {during} KiB"
    );
    // And it still serves.
    let r = pool.cmd(&["q", "-totals"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

#[test]
fn a_user_may_not_queue_more_than_max_jobs_per_owner() {
    let Some(pool) = started("MAX_JOBS_PER_OWNER = 5\n", false) else {
        return;
    };
    let home = pool.home_of(As::User);
    let held = |n: usize| {
        format!(
            "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
             transfer_executable = false\nhold = true\nqueue {n}\n"
        )
    };
    let r = pool.submit_in(As::User, &home, "six.sub", &held(6));
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("MAX_JOBS_PER_OWNER") && r.stderr.contains("Nothing was queued"),
        "{}",
        r.stderr
    );
    cluster_of(&pool.submit_in(As::User, &home, "five.sub", &held(5)));
    let r = pool.submit_in(As::User, &home, "one.sub", &held(1));
    assert!(r.stderr.contains("has 5 jobs"), "{}", r.stderr);
    assert_eq!(pool.af(false, "true", &["ProcId"]).len(), 5);
    // Another user has their own share.
    let other = pool.home_of(As::Other);
    cluster_of(&pool.submit_in(As::Other, &other, "two.sub", &held(2)));
}

#[test]
fn a_pool_planted_in_tmp_for_another_user_is_refused() {
    if !users_ready() {
        return;
    }
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let victim = As::User.uid();
    let planted = PathBuf::from(format!("/tmp/petrel-{victim}"));
    let _ = fs::remove_dir_all(&planted);
    // The attacker makes the victim's fallback directory first and serves a pool there.
    let pool_dir = planted.join("petrel/pool");
    let attacker = |args: &[&str]| -> Ran {
        common::petrel(As::Other)
            .args(args)
            .env("PETREL_POOL_DIR", &pool_dir)
            .env("PETREL_CONTAINER_RUNTIMES", "embedded")
            .current_dir("/")
            .output()
            .unwrap()
            .into()
    };
    let mkdir = Command::new("setpriv")
        .args([
            format!("--reuid={}", As::Other.uid()),
            format!("--regid={}", As::Other.ids().unwrap().1),
            "--clear-groups".into(),
            "--".into(),
            "mkdir".into(),
            "-p".into(),
            "-m".into(),
            "0777".into(),
        ])
        .arg(&pool_dir)
        .status()
        .unwrap();
    assert!(mkdir.success());
    let r = attacker(&["pool", "start"]);
    // The attacker's own daemon refuses a pool directory others can write...
    assert_ne!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("writable by other users"), "{}", r.stderr);
    // ...so they make it theirs alone, and it runs.
    fs::set_permissions(&pool_dir, fs::Permissions::from_mode(0o755)).unwrap();
    for d in [&planted, &planted.join("petrel")] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let r = attacker(&["pool", "start"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);

    let home = pool.home_of(As::User);
    let sub = home.join("victim.sub");
    fs::write(
        &sub,
        format!(
            "universe = container\ncontainer_image = {}\nexecutable = /bin/true\n\
             environment = \"TOKEN=victim-secret\"\ntransfer_executable = false\nqueue\n",
            pool.rootfs.display()
        ),
    )
    .unwrap();
    common::give_to_user(&sub, As::User);
    for args in [
        &["submit", "victim.sub"][..],
        &["q"][..],
        &["pool", "start"][..],
        &["pool", "status"][..],
        &["pool", "stop"][..],
    ] {
        let r: Ran = common::petrel(As::User)
            .args(args)
            .env_remove("HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("PETREL_POOL_DIR")
            .current_dir(&home)
            .output()
            .unwrap()
            .into();
        assert_ne!(r.code, Some(0), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("refusing the pool")
                && r.stderr
                    .contains(&format!("owned by uid {}", As::Other.uid())),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Nothing reached the attacker's daemon.
    let theirs = attacker(&["q", "-long"]);
    assert_eq!(theirs.code, Some(0), "{}", theirs.stderr);
    assert!(
        !theirs.stdout.contains("victim-secret"),
        "{}",
        theirs.stdout
    );
    let jobs = attacker(&["q", "-af", "ClusterId"]);
    assert!(jobs.stdout.trim().is_empty(), "{}", jobs.stdout);
    let _ = attacker(&["pool", "stop"]);
    fs::remove_dir_all(&planted).unwrap();

    // Without the plant, the victim's own fallback is made theirs alone and works.
    let r: Ran = common::petrel(As::User)
        .args(["q", "-totals"])
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("PETREL_POOL_DIR")
        .env("PETREL_CONTAINER_RUNTIMES", "embedded")
        .current_dir(&home)
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let meta = fs::metadata(&planted).unwrap();
    assert_eq!(meta.uid(), victim);
    assert_eq!(meta.mode() & 0o077, 0, "{:o}", meta.mode());
    let _: Ran = common::petrel(As::User)
        .args(["pool", "stop"])
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("PETREL_POOL_DIR")
        .current_dir(&home)
        .output()
        .unwrap()
        .into();
    let _ = fs::remove_dir_all(&planted);
}

#[test]
fn a_socket_served_by_another_user_is_refused_after_connecting() {
    if !users_ready() {
        return;
    }
    if perl().is_none() {
        return;
    }
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    // A directory and socket of root's, as trusted as can be, but the process behind the
    // socket is the other user's: only the peer's credentials tell.
    let dir = pool.work.join("served");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let socket = dir.join("pool.sock");
    let mut server = raw(
        &pool,
        As::Other,
        &["listen", &socket.to_string_lossy(), "5"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "up");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let chown = Command::new("chown")
        .arg("0:0")
        .arg(&socket)
        .status()
        .unwrap();
    assert!(chown.success());
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).unwrap();
    let home = pool.home_of(As::User);
    let r: Ran = common::petrel(As::User)
        .args(["q"])
        .env("PETREL_POOL_DIR", &dir)
        .current_dir(&home)
        .output()
        .unwrap()
        .into();
    assert_ne!(r.code, Some(0), "{}", r.stdout);
    assert!(
        r.stderr
            .contains(&format!("runs as uid {}", As::Other.uid())),
        "{}",
        r.stderr
    );
    // The client sent it nothing.
    assert_eq!(lines.next().unwrap().unwrap(), "got 0");
    assert!(server.wait().unwrap().success());
}

#[test]
fn an_empty_or_corrupt_queue_database_is_refused_and_kept() {
    let Some(pool) = Pool::as_root("") else {
        return;
    };
    let c = pool.submit(
        "h.sub",
        "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
         transfer_executable = false\nhold = true\nqueue\n",
    );
    assert!(c > 0);
    assert_eq!(pool.cmd(&["pool", "stop"]).code, Some(0));
    let db = pool.dir.join("queue.db");
    for (content, why) in [
        (Vec::new(), "empty (0 bytes)"),
        (vec![0x42u8; 16384], "cannot be read"),
    ] {
        for side in ["-wal", "-shm"] {
            let _ = fs::remove_file(pool.dir.join(format!("queue.db{side}")));
        }
        fs::write(&db, &content).unwrap();
        // In the foreground the daemon says why; started by a client, the client does.
        let r = pool.cmd(&["pool", "run"]);
        assert_ne!(r.code, Some(0));
        assert!(
            r.stderr.contains(why) && r.stderr.contains("queue.db"),
            "{}",
            r.stderr
        );
        let r = pool.cmd(&["q"]);
        assert_ne!(r.code, Some(0));
        assert!(r.stderr.contains(why), "{}", r.stderr);
        assert_eq!(fs::read(&db).unwrap(), content, "the database was changed");
    }
}

/// A string that the old (`condor_q -long`) syntax cannot carry, a newline, in one
/// user's job must not stop root's pool: after a restart both users' jobs are queued,
/// root's `q` reads every ad, and the string is still what the user wrote.
#[test]
fn a_string_with_a_newline_does_not_stop_the_pool_after_a_restart() {
    let Some(pool) = started("", false) else {
        return;
    };
    let held = "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
                transfer_executable = false\nhold = true\n";
    let home = pool.home_of(As::User);
    let mine = cluster_of(&pool.submit_in(
        As::User,
        &home,
        "newline.sub",
        &format!("{held}+Note = \"one\\nNote = 2\\\\\"\nqueue\n"),
    ));
    let other = pool.home_of(As::Other);
    let theirs =
        cluster_of(&pool.submit_in(As::Other, &other, "plain.sub", &format!("{held}queue\n")));
    let r = pool.cmd(&["pool", "stop"]);
    assert_eq!(r.code, Some(0), "pool stop: {}{}", r.stdout, r.stderr);
    let r = pool.cmd(&["pool", "start"]);
    assert_eq!(r.code, Some(0), "pool start: {}{}", r.stdout, r.stderr);
    let mut clusters: Vec<i64> = (pool.af(false, "true", &["ClusterId"]).iter())
        .map(|row| row[0].parse().unwrap())
        .collect();
    clusters.sort_unstable();
    assert_eq!(clusters, vec![mine, theirs], "{}", pool.diagnose());
    let r = pool.run_in(As::User, &home, &["q", "-json", &mine.to_string()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let ads: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(ads[0]["Note"], "one\nNote = 2\\", "{}", r.stdout);
}

/// A user who names a FIFO as their event log, or holds their log's lock for good,
/// cannot stall the daemon for the other users: the FIFO is refused at submit, the
/// locked log costs one bounded wait, and another user's commands and log go on.
#[test]
fn a_users_fifo_or_locked_log_does_not_stall_the_pool() {
    let Some(pool) = started("", false) else {
        return;
    };
    let held = "universe = container\ncontainer_image = @ROOTFS@\nexecutable = /bin/true\n\
                transfer_executable = false\nhold = true\n";
    let home = pool.home_of(As::User);
    let st = common::run_as(As::User, "mkfifo")
        .arg(home.join("fifo.log"))
        .status()
        .unwrap();
    assert!(st.success());
    let r = pool.submit_in(
        As::User,
        &home,
        "fifo.sub",
        &format!("{held}log = fifo.log\nqueue\n"),
    );
    assert_ne!(r.code, Some(0), "a FIFO log was accepted: {}", r.stdout);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);

    let mine = cluster_of(&pool.submit_in(
        As::User,
        &home,
        "locked.sub",
        &format!("{held}log = locked.log\nqueue 20\n"),
    ));
    // --no-fork: the lock's holder is the process killed at the end.
    let mut holder = common::run_as(As::User, "flock")
        .arg("--no-fork")
        .arg(home.join("locked.log"))
        .args(["sleep", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the holder has it: a try-lock by someone else fails.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Command::new("flock")
        .args(["-n"])
        .arg(home.join("locked.log"))
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let r = pool.run_in(As::User, &home, &["rm", &mine.to_string()]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let other = pool.home_of(As::Other);
    let theirs = cluster_of(&pool.submit_in(
        As::Other,
        &other,
        "plain.sub",
        &format!("{held}log = plain.log\nqueue\n"),
    ));
    let r = pool.run_in(As::Other, &other, &["rm", &theirs.to_string()]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    // The lock is held for 600 s: anything that waited for it would take that long.
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the other user waited {:?} for a lock held by the first",
        started.elapsed()
    );
    let log = fs::read_to_string(other.join("plain.log")).unwrap();
    assert!(log.contains("Job was aborted"), "{log}");
    let _ = holder.kill();
    let _ = holder.wait();
}
