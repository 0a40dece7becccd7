//! The durable queue: SQLite in WAL mode, one transaction per state change.
//!
//! Ads are stored as ClassAd text (one `Name = expr` per line), so any attribute can be
//! queried and the store needs no migration when attributes come and go. A cluster's
//! shared attributes are stored once (`clusters`), each proc only what differs (`jobs`),
//! as HTCondor's schedd does: 100,000 procs of one submit cost one cluster ad and 100,000
//! small rows. Finished jobs move to `history` with their full ad.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::PoolError;
use crate::job::JobId;

/// The current schema; a newer one is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

/// Rows per `INSERT` of a submit's procs.
const BATCH: usize = 64;

/// `INSERT INTO jobs ...` of `rows` procs of one cluster: `?1` is the cluster, then each
/// row's proc and ad.
fn insert_jobs_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO jobs(cluster, proc, ad) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(?1, ?{}, ?{})", 2 * i + 2, 2 * i + 3));
    }
    sql
}

pub struct Store {
    conn: Connection,
}

/// Makes `path` a file only its owner may read, as a new empty file when there is none;
/// an existing empty file (a pool whose queue was truncated) is refused. SQLite gives
/// the `-wal` and `-shm` files the database's mode, and those of an older pool are
/// narrowed here too: they hold every job's environment and arguments.
fn prepare_file(path: &Path) -> Result<(), PoolError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let private = || std::fs::Permissions::from_mode(0o600);
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| PoolError::io(format!("creating {}", path.display()), e))?;
            // A new file has no schema yet: SQLite writes it below.
            return Ok(());
        }
        Err(e) => return Err(PoolError::io(format!("reading {}", path.display()), e)),
        Ok(meta) if !meta.is_file() => {
            return Err(PoolError::Config(format!(
                "the queue database {} is not a regular file; it was left as it is",
                path.display()
            )))
        }
        Ok(meta) if meta.len() == 0 && !wal_of(path).exists() => {
            return Err(PoolError::Config(format!(
                "the queue database {} is empty (0 bytes): its jobs and history are gone. \
                 It was left as it is: restore it from a backup, or remove it to start an \
                 empty pool",
                path.display()
            )))
        }
        Ok(_) => {}
    }
    for p in [path.to_path_buf(), wal_of(path), shm_of(path)] {
        match std::fs::set_permissions(&p, private()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(PoolError::io(format!("making {} private", p.display()), e))
            }
            _ => {}
        }
    }
    Ok(())
}

fn wal_of(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    p.into()
}

fn shm_of(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-shm");
    p.into()
}

/// What a restart reads back.
pub struct Loaded {
    /// `(cluster, owner uid, cluster ad text)`.
    pub clusters: Vec<(i64, u32, String)>,
    /// `(job, proc ad text)`, in id order.
    pub jobs: Vec<(JobId, String)>,
    pub next_cluster: i64,
}

impl Store {
    /// Opens the queue at `path`, creating it (readable by the daemon's user alone) when
    /// there is none. A file that is there but is not a queue is refused and left as it
    /// is: an empty pool in its place would silently lose every job and the history.
    pub fn open(path: &Path) -> Result<Store, PoolError> {
        prepare_file(path)?;
        Store::open_prepared(path).map_err(|e| match e {
            PoolError::Database(e) => PoolError::Config(format!(
                "the queue database {} cannot be read ({e}); it was left as it is: \
                 restore it from a backup, or move it away to start an empty pool",
                path.display()
            )),
            other => other,
        })
    }

    fn open_prepared(path: &Path) -> Result<Store, PoolError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode survives any process crash (kill -9 included); only a power
        // cut can lose the last commits, never corrupt the store.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS clusters(
                 cluster INTEGER PRIMARY KEY, owner_uid INTEGER NOT NULL, ad TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS jobs(
                 cluster INTEGER NOT NULL, proc INTEGER NOT NULL, ad TEXT NOT NULL,
                 PRIMARY KEY(cluster, proc)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS history(
                 cluster INTEGER NOT NULL, proc INTEGER NOT NULL, owner_uid INTEGER NOT NULL,
                 completed INTEGER NOT NULL, ad TEXT NOT NULL,
                 PRIMARY KEY(cluster, proc)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS history_completed ON history(completed);",
        )?;
        let version: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema', ?1), ('next_cluster', 1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(PoolError::Config(format!(
                "{} was written by a newer petrel (schema {v}, this one knows {SCHEMA_VERSION})",
                path.display()
            )))
            }
            Some(_) => {}
        }
        Ok(Store { conn })
    }

    /// Reads the whole queue back.
    pub fn load(&self) -> Result<Loaded, PoolError> {
        let next_cluster: i64 = self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'next_cluster'",
            [],
            |r| r.get(0),
        )?;
        let mut stmt = self
            .conn
            .prepare("SELECT cluster, owner_uid, ad FROM clusters ORDER BY cluster")?;
        let clusters = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self
            .conn
            .prepare("SELECT cluster, proc, ad FROM jobs ORDER BY cluster, proc")?;
        let jobs = stmt
            .query_map([], |r| Ok((JobId::new(r.get(0)?, r.get(1)?), r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Loaded {
            clusters,
            jobs,
            next_cluster,
        })
    }

    /// Hands out a new cluster id (durably: an id is never given twice).
    pub fn new_cluster_id(&mut self) -> Result<i64, PoolError> {
        let tx = self.conn.transaction()?;
        let id: i64 = tx.query_row(
            "UPDATE meta SET value = value + 1 WHERE key = 'next_cluster' RETURNING value - 1",
            [],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Stores a whole submit in one transaction: either every proc is queued or none is.
    pub fn insert_cluster<'a>(
        &mut self,
        cluster: i64,
        owner_uid: u32,
        cluster_ad: &str,
        procs: impl IntoIterator<Item = (i64, &'a str)>,
    ) -> Result<(), PoolError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO clusters(cluster, owner_uid, ad) VALUES (?1, ?2, ?3)",
            params![cluster, owner_uid, cluster_ad],
        )?;
        {
            // Many rows per statement: a statement's own cost, paid per row, was most of
            // the insert.
            let run = |stmt: &mut rusqlite::Statement, rows: &[(i64, &str)]| {
                stmt.raw_bind_parameter(1, cluster)?;
                for (i, (proc, ad)) in rows.iter().enumerate() {
                    stmt.raw_bind_parameter(2 * i + 2, proc)?;
                    stmt.raw_bind_parameter(2 * i + 3, ad)?;
                }
                stmt.raw_execute()
            };
            let mut many = tx.prepare_cached(&insert_jobs_sql(BATCH))?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut procs = procs.into_iter();
            loop {
                batch.clear();
                batch.extend(procs.by_ref().take(BATCH));
                if batch.len() < BATCH {
                    break;
                }
                run(&mut many, &batch)?;
            }
            if !batch.is_empty() {
                run(&mut tx.prepare(&insert_jobs_sql(batch.len()))?, &batch)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces a queued job's proc ad.
    pub fn update_job(&mut self, id: JobId, ad: &str) -> Result<(), PoolError> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE jobs SET ad = ?3 WHERE cluster = ?1 AND proc = ?2")?;
        stmt.execute(params![id.cluster, id.proc, ad])?;
        Ok(())
    }

    /// Replaces several proc ads in one transaction (a `petrel hold -all`).
    pub fn update_jobs<'a>(
        &mut self,
        updates: impl IntoIterator<Item = (JobId, &'a str)>,
    ) -> Result<(), PoolError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE jobs SET ad = ?3 WHERE cluster = ?1 AND proc = ?2")?;
            for (id, ad) in updates {
                stmt.execute(params![id.cluster, id.proc, ad])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Moves finished jobs to the history (full ads), dropping clusters left empty.
    pub fn retire_jobs<'a>(
        &mut self,
        done: impl IntoIterator<Item = (JobId, u32, i64, &'a str)>,
        empty_clusters: &[i64],
    ) -> Result<(), PoolError> {
        let tx = self.conn.transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM jobs WHERE cluster = ?1 AND proc = ?2")?;
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO history(cluster, proc, owner_uid, completed, ad)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (id, uid, completed, ad) in done {
                del.execute(params![id.cluster, id.proc])?;
                ins.execute(params![id.cluster, id.proc, uid, completed, ad])?;
            }
            let mut drop_cluster = tx.prepare_cached("DELETE FROM clusters WHERE cluster = ?1")?;
            for c in empty_clusters {
                drop_cluster.execute([c])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// History ads, newest first, passing `keep` (owner uid, ad text), at most `limit`.
    pub fn history(
        &self,
        limit: usize,
        mut keep: impl FnMut(u32, &str) -> bool,
    ) -> Result<Vec<String>, PoolError> {
        let mut stmt = self.conn.prepare(
            "SELECT owner_uid, ad FROM history ORDER BY completed DESC, cluster DESC, proc DESC",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let uid: u32 = row.get(0)?;
            let ad: String = row.get(1)?;
            if keep(uid, &ad) {
                out.push(ad);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_update_retire_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        {
            let mut s = Store::open(&path).unwrap();
            let c = s.new_cluster_id().unwrap();
            assert_eq!(c, 1);
            assert_eq!(s.new_cluster_id().unwrap(), 2);
            s.insert_cluster(
                c,
                1000,
                "Cmd = \"/bin/true\"",
                [(0, "ProcId = 0"), (1, "ProcId = 1")],
            )
            .unwrap();
            s.update_job(JobId::new(1, 1), "ProcId = 1\nJobStatus = 5")
                .unwrap();
            s.retire_jobs(
                [(JobId::new(1, 0), 1000, 42, "ProcId = 0\nJobStatus = 4")],
                &[],
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let l = s.load().unwrap();
        assert_eq!(l.next_cluster, 3);
        assert_eq!(l.clusters.len(), 1);
        assert_eq!(
            l.jobs,
            vec![(JobId::new(1, 1), "ProcId = 1\nJobStatus = 5".to_string())]
        );
        let h = s.history(10, |uid, _| uid == 1000).unwrap();
        assert_eq!(h, vec!["ProcId = 0\nJobStatus = 4".to_string()]);
        assert!(s.history(10, |uid, _| uid == 0).unwrap().is_empty());
    }

    #[test]
    fn a_failed_submit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("q.db")).unwrap();
        // The same proc twice violates the primary key half-way through.
        let r = s.insert_cluster(1, 0, "", [(0, "a = 1"), (0, "a = 2")]);
        assert!(r.is_err());
        let l = s.load().unwrap();
        assert!(l.clusters.is_empty() && l.jobs.is_empty());
        // The same in a later batch of many rows.
        let texts: Vec<String> = (0..3 * BATCH).map(|p| format!("ProcId = {p}")).collect();
        let mut procs: Vec<(i64, &str)> = (0..).zip(texts.iter().map(String::as_str)).collect();
        procs[2 * BATCH + 5].0 = 7;
        assert!(s.insert_cluster(1, 0, "", procs.iter().copied()).is_err());
        let l = s.load().unwrap();
        assert!(l.clusters.is_empty() && l.jobs.is_empty());
    }

    #[test]
    fn a_large_submit_is_stored_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("q.db")).unwrap();
        for (cluster, n) in [(1, 1), (2, BATCH), (3, 2 * BATCH + 3)] {
            let texts: Vec<String> = (0..n).map(|p| format!("ProcId = {p}")).collect();
            s.insert_cluster(cluster, 0, "", (0..).zip(texts.iter().map(String::as_str)))
                .unwrap();
        }
        let jobs = s.load().unwrap().jobs;
        assert_eq!(jobs.len(), 1 + BATCH + 2 * BATCH + 3);
        let last = &jobs[jobs.len() - 1];
        assert_eq!(last.0, JobId::new(3, 2 * BATCH as i64 + 2));
        assert_eq!(last.1, format!("ProcId = {}", 2 * BATCH + 2));
    }

    #[test]
    fn the_queue_and_its_journal_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        {
            let mut s = Store::open(&path).unwrap();
            s.new_cluster_id().unwrap();
            for p in [path.clone(), wal_of(&path), shm_of(&path)] {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
        // An older pool's world-readable files are narrowed when it opens.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _s = Store::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn an_empty_or_corrupt_queue_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        std::fs::write(&path, b"").unwrap();
        let e = Store::open(&path).err().unwrap().to_string();
        assert!(e.contains("empty (0 bytes)") && e.contains("q.db"), "{e}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);

        let junk = vec![0x5a_u8; 8192];
        std::fs::write(&path, &junk).unwrap();
        let e = Store::open(&path).err().unwrap().to_string();
        assert!(
            e.contains("cannot be read") && e.contains("left as it is"),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), junk);

        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let e = Store::open(&path).err().unwrap().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
