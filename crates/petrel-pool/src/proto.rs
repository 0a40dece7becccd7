//! The daemon's API: JSON messages over a Unix socket, each framed by a 4-byte big-endian
//! length. The peer's uid comes from the kernel (`SO_PEERCRED`), never from a message.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use petrel_submit::JobAd;
use serde::{Deserialize, Serialize};

use crate::error::PoolError;
use crate::job::{JobId, JobSelector};
use crate::proc_ads::ProcAds;

/// The largest message accepted: enough for a million-proc submit, small enough that a
/// hostile length cannot make the daemon allocate without bound.
pub const MAX_FRAME: usize = 512 << 20;

/// `(attribute, ClassAd expression text)`, as `petrel-submit` produces them.
pub type AdText = Vec<(String, String)>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello,
    /// Reserve a cluster id (the submit file's `$(Cluster)` needs it before expansion).
    NewCluster,
    Submit {
        cluster: i64,
        cluster_ad: AdText,
        procs: ProcAds,
    },
    Query {
        constraint: Option<String>,
        /// Attributes to return; empty means the whole ad.
        attrs: Vec<String>,
        history: bool,
        limit: Option<usize>,
    },
    Act {
        action: Action,
        targets: Vec<JobSelector>,
        constraint: Option<String>,
        all: bool,
        reason: Option<String>,
    },
    Analyze {
        job: JobId,
    },
    Status,
    JobInfo {
        job: JobId,
    },
    /// Run `command` in a running job's container (`petrel ssh`) for a caller that
    /// cannot enter it itself; see [`crate::enter`].
    Enter {
        job: JobId,
        command: Vec<String>,
        term: Option<String>,
    },
    /// During an `Enter`: a signal for the command.
    Signal {
        signal: i32,
    },
    Stop,
}

/// [`Request::Submit`] of ads the client holds, written as they are, without copies.
#[derive(Serialize)]
pub struct SubmitRef<'a> {
    op: &'static str,
    cluster: i64,
    cluster_ad: Pairs<'a>,
    #[serde(serialize_with = "all_pairs")]
    procs: &'a [JobAd],
}

impl<'a> SubmitRef<'a> {
    pub fn new(cluster: i64, cluster_ad: &'a JobAd, procs: &'a [JobAd]) -> SubmitRef<'a> {
        SubmitRef {
            op: "submit",
            cluster,
            cluster_ad: Pairs(cluster_ad),
            procs,
        }
    }
}

/// An ad as [`AdText`] is written.
struct Pairs<'a>(&'a JobAd);

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

fn all_pairs<S: serde::Serializer>(ads: &&[JobAd], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ads.iter().map(Pairs))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Remove,
    Hold,
    Release,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Remove => "removed",
            Action::Hold => "held",
            Action::Release => "released",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Hello {
        version: String,
        pid: u32,
        uid: u32,
    },
    Cluster {
        id: i64,
    },
    Submitted {
        cluster: i64,
        count: usize,
    },
    /// Ads in old ClassAd syntax (`Name = expr` lines).
    Ads {
        ads: Vec<String>,
    },
    Acted {
        done: Vec<JobId>,
        /// Jobs named but not acted on, with why.
        skipped: Vec<(JobId, String)>,
    },
    Text {
        text: String,
    },
    Status {
        slots: Vec<String>,
    },
    JobInfo {
        status: i64,
        scratch: Option<String>,
        stdout: Option<String>,
        stderr: Option<String>,
        container_pid: Option<i32>,
        target_dir: String,
        /// The runtime that runs the job and the container's name (`petrel ssh` enters
        /// other runtimes' containers through their drivers).
        #[serde(default)]
        runtime: Option<String>,
        #[serde(default)]
        container_name: Option<String>,
        /// The ids the job runs as.
        #[serde(default)]
        job_user: Option<(u32, u32)>,
    },
    /// `Enter` is allowed: send stdin, stdout and stderr (`SCM_RIGHTS`).
    SendTerminal,
    /// The entered command ended, with this status (as a shell reports it).
    Exited {
        status: u8,
    },
    Ok,
    Error {
        message: String,
    },
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), PoolError> {
    let body = serde_json::to_vec(msg).map_err(|e| PoolError::Protocol(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(PoolError::Refused(format!(
            "message of {} bytes is larger than the {} MiB limit",
            body.len(),
            MAX_FRAME >> 20
        )));
    }
    let len = (body.len() as u32).to_be_bytes();
    w.write_all(&len)
        .and_then(|_| w.write_all(&body))
        .and_then(|_| w.flush())
        .map_err(|e| PoolError::io("writing to the pool socket", e))
}

/// A message read from a frame.
pub trait Frame: Sized {
    fn decode(body: &[u8]) -> serde_json::Result<Self>;
}

impl Frame for Request {
    fn decode(body: &[u8]) -> serde_json::Result<Request> {
        // The derived decoding of a tagged enum first copies the whole message into a
        // generic tree, which for a submit is every proc: read a submit directly, and
        // anything else (a malformed submit too, for its error) the derived way.
        if let Ok(s) = serde_json::from_slice::<SubmitFrame>(body) {
            return Ok(Request::Submit {
                cluster: s.cluster,
                cluster_ad: s.cluster_ad,
                procs: s.procs,
            });
        }
        serde_json::from_slice(body)
    }
}

impl Frame for Response {
    fn decode(body: &[u8]) -> serde_json::Result<Response> {
        serde_json::from_slice(body)
    }
}

/// [`Request::Submit`] as it is written.
#[derive(Deserialize)]
struct SubmitFrame {
    /// Checked by decoding it: only "submit" is one.
    #[serde(rename = "op")]
    _op: SubmitOp,
    cluster: i64,
    cluster_ad: AdText,
    procs: ProcAds,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum SubmitOp {
    Submit,
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<T: Frame>(r: &mut impl Read) -> Result<Option<T>, PoolError> {
    read_frame_max(r, MAX_FRAME)
}

/// [`read_frame`] of a message no longer than `max` bytes.
pub fn read_frame_max<T: Frame>(r: &mut impl Read, max: usize) -> Result<Option<T>, PoolError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(PoolError::io("reading from the pool socket", e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(too_long(len, max));
    }
    let mut body = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut body)
        .map_err(|e| PoolError::io("reading from the pool socket", e))?;
    if body.len() != len {
        return Err(PoolError::Protocol(
            "connection closed in the middle of a message".into(),
        ));
    }
    T::decode(&body)
        .map(Some)
        .map_err(|e| PoolError::Protocol(format!("malformed request: {e}")))
}

fn too_long(len: usize, max: usize) -> PoolError {
    PoolError::Protocol(format!(
        "message length {len} exceeds the limit of {max} bytes"
    ))
}

/// Ends the daemon's answer to a connection it closes for being idle; the client knows
/// from it that its request was not read, and may send it again on a new connection.
const IDLE_CLOSED: &str = "the idle connection is closed";

/// Whether an error message is the daemon's word that it closed an idle connection.
pub fn is_idle_close(message: &str) -> bool {
    message.ends_with(IDLE_CLOSED)
}

/// How the daemon reads a client's messages: bounded in size and in time.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// The longest wait for a message to begin.
    pub idle: Duration,
    /// The longest a message may take to arrive once begun.
    pub message: Duration,
    /// The largest message.
    pub max: usize,
}

/// Reads one message from a client that may be hostile: it must begin within
/// `limits.idle` and arrive whole within `limits.message`, and `reserve` is asked for
/// its length before any of its body is kept (the caller's per-user budget; the guard
/// it returns is held while the message is decoded). The body grows only as bytes
/// arrive, so a length that is never sent costs nothing. `Ok(None)` at a clean end of
/// stream.
pub fn read_request<G>(
    r: &mut BufReader<UnixStream>,
    limits: &ReadLimits,
    reserve: impl FnOnce(usize) -> Result<G, PoolError>,
) -> Result<Option<Request>, PoolError> {
    let mut len = [0u8; 4];
    set_timeout(r, limits.idle)?;
    let first = loop {
        match r.read(&mut len) {
            Ok(0) => return Ok(None),
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => {
                return Err(PoolError::Protocol(format!(
                    "no request for {} s; {IDLE_CLOSED}",
                    limits.idle.as_secs()
                )))
            }
            Err(e) => return Err(PoolError::io("reading from the pool socket", e)),
        }
    };
    let deadline = Instant::now() + limits.message;
    let mut filled = first;
    while filled < len.len() {
        filled += read_some(r, &mut len[filled..], deadline, limits)?;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limits.max {
        return Err(too_long(len, limits.max));
    }
    let _reserved = reserve(len)?;
    let mut body = Vec::new();
    let mut chunk = vec![0u8; len.min(64 << 10)];
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        let n = read_some(r, &mut chunk[..want], deadline, limits)?;
        body.extend_from_slice(&chunk[..n]);
    }
    drop(chunk);
    Request::decode(&body)
        .map(Some)
        .map_err(|e| PoolError::Protocol(format!("malformed request: {e}")))
}

/// Reads some bytes of a message before `deadline`; at least one.
fn read_some(
    r: &mut BufReader<UnixStream>,
    buf: &mut [u8],
    deadline: Instant,
    limits: &ReadLimits,
) -> Result<usize, PoolError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let slow = || {
            PoolError::Protocol(format!(
                "a message took longer than {} s to arrive; the connection is closed",
                limits.message.as_secs()
            ))
        };
        if left.is_zero() {
            return Err(slow());
        }
        set_timeout(r, left)?;
        match r.read(buf) {
            Ok(0) => {
                return Err(PoolError::Protocol(
                    "connection closed in the middle of a message".into(),
                ))
            }
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => return Err(slow()),
            Err(e) => return Err(PoolError::io("reading from the pool socket", e)),
        }
    }
}

fn set_timeout(r: &BufReader<UnixStream>, t: Duration) -> Result<(), PoolError> {
    // A zero timeout would mean none at all.
    r.get_ref()
        .set_read_timeout(Some(t.max(Duration::from_millis(1))))
        .map_err(|e| PoolError::io("setting the socket's timeout", e))
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_garbage() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Request::Analyze {
                job: JobId::new(3, 4),
            },
        )
        .unwrap();
        let r: Request = read_frame(&mut buf.as_slice()).unwrap().unwrap();
        assert!(matches!(r, Request::Analyze { job } if job == JobId::new(3, 4)));

        let mut huge = (u32::MAX).to_be_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(read_frame::<Request>(&mut huge.as_slice()).is_err());

        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{{{{{");
        let e = read_frame::<Request>(&mut junk.as_slice()).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");

        let mut short = 50u32.to_be_bytes().to_vec();
        short.extend_from_slice(b"{}");
        assert!(read_frame::<Request>(&mut short.as_slice()).is_err());
        assert!(read_frame::<Request>(&mut [].as_slice()).unwrap().is_none());
    }

    #[test]
    fn submits_decode_like_any_request() {
        let decode = |json: &str| Request::decode(json.as_bytes());
        let written = serde_json::to_vec(&Request::Submit {
            cluster: 4,
            cluster_ad: vec![("Cmd".into(), "\"/bin/true\"".into())],
            procs: {
                let mut p = ProcAds::new();
                p.push([("ProcId", "0")]);
                p
            },
        })
        .unwrap();
        for json in [
            std::str::from_utf8(&written).unwrap(),
            r#"{"cluster":4,"procs":[[["ProcId","0"]]],"extra":1,"op":"submit","cluster_ad":[["Cmd","\"/bin/true\""]]}"#,
        ] {
            match decode(json).unwrap() {
                Request::Submit {
                    cluster,
                    cluster_ad,
                    procs,
                } => {
                    assert_eq!(cluster, 4);
                    assert_eq!(cluster_ad, [("Cmd".into(), "\"/bin/true\"".into())]);
                    let procs: Vec<Vec<_>> = procs.iter().map(|p| p.iter().collect()).collect();
                    assert_eq!(procs, [[("ProcId", "0")]]);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            decode(r#"{"op":"new_cluster"}"#),
            Ok(Request::NewCluster)
        ));
        // What a client writes from its own ads is the same message.
        let mut cluster_ad = JobAd::new();
        cluster_ad.insert("Cmd", "\"/bin/true\"");
        let mut proc = JobAd::new();
        proc.insert("ProcId", "0");
        let borrowed = serde_json::to_vec(&SubmitRef::new(4, &cluster_ad, &[proc])).unwrap();
        assert_eq!(
            String::from_utf8(borrowed).unwrap(),
            String::from_utf8(written).unwrap()
        );
        assert!(decode(r#"{"op":"submit","cluster":"x","cluster_ad":[],"procs":[]}"#).is_err());
        assert!(decode(r#"{"op":"query","cluster":1,"cluster_ad":[],"procs":[]}"#).is_err());
    }

    fn limits(max: usize) -> ReadLimits {
        ReadLimits {
            idle: Duration::from_millis(300),
            message: Duration::from_millis(500),
            max,
        }
    }

    #[test]
    fn a_client_message_is_bounded_in_size_time_and_budget() {
        let pair = || {
            let (a, b) = UnixStream::pair().unwrap();
            (a, BufReader::new(b))
        };
        let free = |_: usize| Ok(());
        // A whole message in time is read.
        let (mut a, mut r) = pair();
        write_frame(&mut a, &Request::Status).unwrap();
        let got = read_request(&mut r, &limits(1 << 20), free).unwrap();
        assert!(matches!(got, Some(Request::Status)));
        drop(a);
        assert!(read_request(&mut r, &limits(1 << 20), free)
            .unwrap()
            .is_none());

        // An idle connection is closed.
        let (_a, mut r) = pair();
        let e = read_request(&mut r, &limits(1 << 20), free).unwrap_err();
        assert!(e.to_string().contains("no request for"), "{e}");
        assert!(is_idle_close(&e.to_string()), "{e}");

        // A message that does not finish in time is dropped.
        let (mut a, mut r) = pair();
        a.write_all(&(1000u32).to_be_bytes()).unwrap();
        a.write_all(b"{\"op\":").unwrap();
        let t = Instant::now();
        let e = read_request(&mut r, &limits(1 << 20), free).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));

        // Too long a message, and one over the caller's budget, before any body is read.
        let (mut a, mut r) = pair();
        a.write_all(&(2000u32).to_be_bytes()).unwrap();
        let e = read_request(&mut r, &limits(1000), free).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
        let (mut a, mut r) = pair();
        a.write_all(&(500u32).to_be_bytes()).unwrap();
        let e = read_request(&mut r, &limits(1000), |n| {
            Err::<(), _>(PoolError::Refused(format!("no room for {n}")))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "no room for 500");
    }
}
