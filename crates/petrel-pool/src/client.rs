//! Talking to a pool daemon, starting it on first use.

use std::fs;
use std::io::{BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::PoolPaths;
use crate::error::PoolError;
use serde::Serialize;

use crate::proto::{read_frame, write_frame, Response};

pub struct Client {
    pub(crate) reader: BufReader<UnixStream>,
    pub(crate) writer: BufWriter<UnixStream>,
    pub paths: PoolPaths,
}

impl Client {
    /// Connects to the pool in `dir`, starting its daemon with `program pool run` when it
    /// is not running and this user may start it.
    pub fn connect_or_start(dir: &Path, program: &Path) -> Result<Client, PoolError> {
        let paths = PoolPaths::new(dir);
        match Client::connect(&paths) {
            Ok(c) => return Ok(c),
            Err(e @ PoolError::Refused(_)) => return Err(e),
            Err(e) if !crate::daemon::may_start(dir) => {
                return Err(PoolError::NotRunning(format!(
                    "the pool at {} is not running, and it is not yours to start ({e})",
                    dir.display()
                )))
            }
            Err(_) => {}
        }
        let mut daemon = start_daemon(&paths, program)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut exited = false;
        loop {
            match Client::connect(&paths) {
                Ok(c) => return Ok(c),
                // A daemon that could not start says why in its log; one that found
                // another already running leaves the connecting to that one.
                Err(_) if !exited && daemon.try_wait().is_ok_and(|s| s.is_some()) => {
                    exited = true;
                    let why = log_tail(&paths.log());
                    if !why.contains("already running") {
                        return Err(PoolError::NotRunning(format!(
                            "the pool daemon for {} could not start: {why}",
                            dir.display()
                        )));
                    }
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(PoolError::NotRunning(format!(
                        "started the pool daemon for {}, but it does not answer ({e}); see {}",
                        dir.display(),
                        paths.log().display()
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Connects to a running daemon, if the pool is one this user may trust (see
    /// [`crate::trust`]); an untrusted pool is `PoolError::Refused`.
    pub fn connect(paths: &PoolPaths) -> Result<Client, PoolError> {
        crate::trust::check_pool_dir(&paths.dir)?;
        let socket = paths.socket();
        let stream = UnixStream::connect(&socket)
            .map_err(|e| PoolError::io(format!("connecting to {}", socket.display()), e))?;
        crate::trust::check_daemon(&stream, &socket)?;
        let reader = BufReader::new(
            stream
                .try_clone()
                .map_err(|e| PoolError::io("cloning the socket", e))?,
        );
        Ok(Client {
            reader,
            writer: BufWriter::new(stream),
            paths: paths.clone(),
        })
    }

    /// One request ([`crate::proto::Request`] or [`crate::proto::SubmitRef`]), one
    /// response; a daemon-side refusal becomes `PoolError::Refused`.
    ///
    /// A connection the daemon closed for being idle (`CLIENT_IDLE_TIMEOUT`) is made
    /// again and the request sent again: the daemon had read none of it.
    pub fn call(&mut self, request: &impl Serialize) -> Result<Response, PoolError> {
        match self.call_once(request) {
            Err(Unsent(PoolError::Io { .. })) | Err(Sent(PoolError::Refused(_), true)) => {
                *self = Client::connect(&self.paths)?;
                self.call_once(request).map_err(Outcome::error)
            }
            r => r.map_err(Outcome::error),
        }
    }

    fn call_once(&mut self, request: &impl Serialize) -> Result<Response, Outcome> {
        write_frame(&mut self.writer, request).map_err(Unsent)?;
        match read_frame::<Response>(&mut self.reader) {
            Ok(Some(Response::Error { message })) => {
                let idle = crate::proto::is_idle_close(&message);
                Err(Sent(PoolError::Refused(message), idle))
            }
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Sent(
                PoolError::Protocol("the pool daemon closed the connection".into()),
                false,
            )),
            Err(e) => Err(Sent(e, false)),
        }
    }
}

/// How a request failed: before any of it reached the daemon, or after (and then
/// whether the daemon had closed the connection for idleness before reading it).
enum Outcome {
    Unsent(PoolError),
    Sent(PoolError, bool),
}
use Outcome::{Sent, Unsent};

impl Outcome {
    fn error(self) -> PoolError {
        match self {
            Unsent(e) | Sent(e, _) => e,
        }
    }
}

/// The last line of the daemon's log: why it stopped, when it did.
fn log_tail(log: &Path) -> String {
    let text = fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(4096)..]).into_owned();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("it exited without a word; see its log")
        .trim()
        .to_string()
}

fn start_daemon(paths: &PoolPaths, program: &Path) -> Result<std::process::Child, PoolError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mode = if rustix::process::getuid().is_root() {
        0o711
    } else {
        0o700
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(&paths.dir)
        .map_err(|e| PoolError::io(format!("creating {}", paths.dir.display()), e))?;
    // Again now that it exists: another user may have made it first.
    crate::trust::check_pool_dir(&paths.dir)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(paths.log())
        .map_err(|e| PoolError::io(format!("opening {}", paths.log().display()), e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| PoolError::io("duplicating the log file", e))?;
    Command::new(program)
        .arg("pool")
        .arg("run")
        .env("PETREL_POOL_DIR", absolute(&paths.dir))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| PoolError::io(format!("starting {} pool run", program.display()), e))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Request;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_connection_closed_for_idleness_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PoolPaths::new(dir.path());
        let listener = UnixListener::bind(paths.socket()).unwrap();
        let server = std::thread::spawn(move || {
            // The first connection idles out: the daemon says so and closes it.
            let (first, _) = listener.accept().unwrap();
            let mut w = BufWriter::new(first);
            let message = "protocol: no request for 1 s; the idle connection is closed";
            write_frame(
                &mut w,
                &Response::Error {
                    message: message.into(),
                },
            )
            .unwrap();
            drop(w);
            let (second, _) = listener.accept().unwrap();
            let mut r = BufReader::new(second.try_clone().unwrap());
            let got: Request = read_frame(&mut r).unwrap().unwrap();
            assert!(matches!(got, Request::Status));
            write_frame(&mut BufWriter::new(second), &Response::Ok).unwrap();
        });
        let mut client = Client::connect(&paths).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(matches!(client.call(&Request::Status), Ok(Response::Ok)));
        server.join().unwrap();
    }
}
