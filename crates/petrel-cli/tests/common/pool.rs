//! A private pool for end-to-end tests: its own directory and config, a busybox image,
//! a work directory (the submit dir), and `petrel` run as root or the test user.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{As, Ran};

/// A private pool: its directory, a busybox image and a work directory (the submit dir).
pub struct Pool {
    /// `None` once kept for a post-mortem (see [`Pool::keep`]).
    tmp: Option<tempfile::TempDir>,
    pub work: PathBuf,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub who: As,
}

impl Pool {
    pub fn new(who: As, config: &str) -> Option<Pool> {
        let tmp = super::open_tempdir();
        let rootfs = super::busybox_rootfs(tmp.path())?;
        let work = tmp.path().join("work");
        fs::create_dir(&work).unwrap();
        let dir = work.join("pool");
        fs::create_dir(&dir).unwrap();
        // Only the embedded runtime unless the test asks for others: probing Docker and
        // the rest for every test pool would only load the machine.
        let runtimes = if config.contains("CONTAINER_RUNTIMES") {
            ""
        } else {
            "CONTAINER_RUNTIMES = embedded\n"
        };
        fs::write(
            dir.join("config"),
            format!("NEGOTIATOR_INTERVAL = 1\n{runtimes}{config}"),
        )
        .unwrap();
        super::give_to_user(&work, who);
        Some(Pool {
            tmp: Some(tmp),
            work,
            dir,
            rootfs,
            who,
        })
    }

    /// A root pool; `None` (the test does nothing) when not running as root.
    pub fn as_root(config: &str) -> Option<Pool> {
        if !super::is_root() {
            return None;
        }
        Pool::new(As::Root, config)
    }

    pub fn cmd(&self, args: &[&str]) -> Ran {
        self.cmd_as(self.who, args)
    }

    pub fn cmd_as(&self, who: As, args: &[&str]) -> Ran {
        self.run_in(who, &self.work, args)
    }

    /// Writes a submit file (with `@ROOTFS@` replaced) and submits it; returns the cluster.
    pub fn submit(&self, name: &str, text: &str) -> i64 {
        cluster_of(&self.submit_in(self.who, &self.work, name, text))
    }

    /// A directory `name` of `who`'s own in the work directory (which root owns in a root
    /// pool), for their submit files, logs and outputs; others can read it.
    pub fn dir_of(&self, who: As, name: &str) -> PathBuf {
        let dir = self.work.join(name);
        fs::create_dir_all(&dir).unwrap();
        super::give_to_user(&dir, who);
        dir
    }

    /// `who`'s directory named after them ([`Pool::dir_of`]).
    pub fn home_of(&self, who: As) -> PathBuf {
        self.dir_of(who, who.name())
    }

    /// `petrel ARGS` as `who`, in `dir`, against this pool.
    pub fn run_in(&self, who: As, dir: &Path, args: &[&str]) -> Ran {
        super::petrel(who)
            .args(args)
            .env("PETREL_POOL_DIR", &self.dir)
            .current_dir(dir)
            .output()
            .expect("run petrel")
            .into()
    }

    /// Writes submit file `name` in `dir` (`@ROOTFS@` replaced), owned by `who`, and
    /// submits it as `who`; returns what `petrel submit` did.
    pub fn submit_in(&self, who: As, dir: &Path, name: &str, text: &str) -> Ran {
        let path = dir.join(name);
        fs::write(
            &path,
            text.replace("@ROOTFS@", &self.rootfs.to_string_lossy()),
        )
        .unwrap();
        super::give_to_user(&path, who);
        self.run_in(who, dir, &["submit", name])
    }

    pub fn wait_log(&self, log: &str, secs: u64) {
        let r = self.cmd(&["wait", "-wait", &secs.to_string(), log]);
        assert_eq!(r.code, Some(0), "wait: {}{}", r.stdout, r.stderr);
    }

    /// `-af` rows of the queue or the history.
    pub fn af(&self, history: bool, constraint: &str, attrs: &[&str]) -> Vec<Vec<String>> {
        let mut args = vec![
            if history { "history" } else { "q" },
            "-constraint",
            constraint,
            "-af",
        ];
        args.extend_from_slice(attrs);
        let r = self.cmd(&args);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
        r.stdout
            .lines()
            .map(|l| l.split(' ').map(str::to_string).collect())
            .collect()
    }

    /// Polls the queue until `constraint` matches `n` jobs.
    pub fn until_q(&self, constraint: &str, n: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let rows = self.af(false, constraint, &["ClusterId"]);
            if rows.len() == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} jobs with {constraint}; have {}",
                rows.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `petrel status -af ATTR` until it prints `want` (the slot advertises a
    /// runtime once its probe has passed, a moment after the pool starts).
    pub fn until_slot(&self, attr: &str, want: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        while Instant::now() < deadline {
            let r = self.cmd(&["status", "-af", attr]);
            last = r.stdout.lines().next().unwrap_or("").trim().to_string();
            if last == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("slot attribute {attr} is '{last}', not '{want}', after {secs}s");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// Leaves the pool's files on disk after the test (the daemon is still stopped), for
    /// a failure to be looked at; returns where they are.
    pub fn keep(&mut self) -> PathBuf {
        self.tmp.take().map(|t| t.keep()).unwrap_or_default()
    }

    /// What a stuck pool looks like: the queue, the starters of running jobs (alive or
    /// not, their result and the end of their log), and the end of the daemon's log.
    pub fn diagnose(&self) -> String {
        let mut out = String::new();
        let totals = self.cmd(&["q", "-totals"]);
        out.push_str(&format!(
            "petrel q -totals:\n{}{}\n",
            totals.stdout, totals.stderr
        ));
        let attrs = [
            "ClusterId",
            "ProcId",
            "JobStatus",
            "NumJobStarts",
            "EnteredCurrentStatus",
            "PetrelStarterPid",
            "PetrelSpool",
            "PetrelNotBefore",
            "LastVacateReason",
        ];
        // Jobs that ran or run: an idle job that never started only waits its turn.
        let rows = self.af(false, "JobStatus != 1 || NumJobStarts > 0", &attrs);
        out.push_str(&format!(
            "petrel q -af {} (jobs that ran):\n",
            attrs.join(" ")
        ));
        for r in rows.iter().take(40) {
            out.push_str(&format!("  {}\n", r.join(" ")));
        }
        if rows.len() > 40 {
            out.push_str(&format!("  ... and {} more\n", rows.len() - 40));
        }
        for r in rows.iter().filter(|r| r[2] == "2").take(5) {
            let (pid, spool) = (&r[5], PathBuf::from(&r[6]));
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            let log = fs::read_to_string(spool.join("starter.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!(
                "job {}.{}: starter {pid} alive: {alive}, result.json: {}, starter.log ends:\n{}\n",
                r[0],
                r[1],
                spool.join("result.json").exists(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        let log = fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        out.push_str(&format!(
            "daemon.log ends:\n{}\n",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
        out
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.cmd(&["pool", "stop"]);
    }
}

/// The cluster a successful `petrel submit` reported (the test fails otherwise).
pub fn cluster_of(r: &Ran) -> i64 {
    assert_eq!(r.code, Some(0), "submit failed: {}{}", r.stdout, r.stderr);
    r.stdout
        .lines()
        .find(|l| l.contains("submitted to cluster"))
        .and_then(|l| l.trim_end_matches('.').rsplit(' ').next())
        .and_then(|c| c.parse().ok())
        .expect("the cluster number in submit's summary")
}
