//! A private pool for end-to-end tests: its own directory and config, a busybox image,
//! a work directory (the submit dir), and `petrel` run as root or the test user.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{As, Ran};

/// A private pool: its directory, a busybox image and a work directory (the submit dir).
pub struct Pool {
    _tmp: tempfile::TempDir,
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
            _tmp: tmp,
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
        super::petrel(who)
            .args(args)
            .env("PETREL_POOL_DIR", &self.dir)
            .current_dir(&self.work)
            .output()
            .expect("run petrel")
            .into()
    }

    /// Writes a submit file (with `@ROOTFS@` replaced) and submits it; returns the cluster.
    pub fn submit(&self, name: &str, text: &str) -> i64 {
        let path = self.work.join(name);
        fs::write(
            &path,
            text.replace("@ROOTFS@", &self.rootfs.to_string_lossy()),
        )
        .unwrap();
        super::give_to_user(&path, self.who);
        let r = self.cmd(&["submit", name]);
        assert_eq!(r.code, Some(0), "submit failed: {}{}", r.stdout, r.stderr);
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains("submitted to cluster"))
            .expect("summary");
        line.trim_end_matches('.')
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
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
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.cmd(&["pool", "stop"]);
    }
}
