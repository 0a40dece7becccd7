//! The daemon's socket protocol: length-prefixed JSON frames from any local user.

use petrel_pool::proto::{read_frame, write_frame, Request, Response};

/// Frames read from one input, as one connection sends several.
const FRAMES: usize = 8;

/// A byte stream on the pool socket: each frame is read as the daemon reads requests
/// (and as a client reads responses); every request decoded is written back and must
/// read back the same, and its expression texts go through the ClassAd parser as the
/// daemon's submit and query do.
pub fn pool_frame(data: &[u8]) {
    let mut r = data;
    for _ in 0..FRAMES {
        match read_frame::<Request>(&mut r) {
            Ok(Some(req)) => check_request(&req),
            Ok(None) | Err(_) => break,
        }
    }
    let mut r = data;
    for _ in 0..FRAMES {
        match read_frame::<Response>(&mut r) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

fn check_request(req: &Request) {
    let mut buf = Vec::new();
    write_frame(&mut buf, req).expect("a request read from a frame can be written");
    let back: Request = read_frame(&mut buf.as_slice())
        .unwrap_or_else(|e| panic!("request {req:?} does not read back: {e}"))
        .expect("a whole frame");
    let mut again = Vec::new();
    write_frame(&mut again, &back).expect("a request read back can be written");
    assert_eq!(buf, again, "request does not round-trip");

    match req {
        Request::Submit {
            cluster_ad, procs, ..
        } => {
            for (_, v) in cluster_ad {
                let _ = petrel_classad::parse_expr(v);
            }
            for proc in procs.iter() {
                for (_, v) in proc.iter() {
                    let _ = petrel_classad::parse_expr(v);
                }
            }
        }
        Request::Query {
            constraint: Some(c),
            ..
        }
        | Request::Act {
            constraint: Some(c),
            ..
        } => {
            let _ = petrel_classad::parse_expr(c);
        }
        _ => {}
    }
}
