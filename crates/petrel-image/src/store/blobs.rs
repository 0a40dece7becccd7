//! Content-addressed blobs: `blobs/sha256/<hex>`, written only after their digest
//! was checked (staged in `tmp/`, then renamed in).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};

/// Largest manifest, index or config accepted: anything bigger is refused before
/// it is parsed.
pub const MAX_METADATA_BYTES: u64 = 4 << 20;

pub(crate) fn blob_path(root: &Path, d: &Digest) -> PathBuf {
    root.join("blobs").join("sha256").join(d.hex())
}

/// Reads at most `cap` bytes from `r` and checks their digest against `expected`.
pub(crate) fn read_verified(
    mut r: impl Read,
    expected: &Digest,
    cap: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut limited = HashingReader::new((&mut r).take(cap + 1));
    limited
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(format!("read {what}"), e))?;
    if buf.len() as u64 > cap {
        return Err(Error::TooLarge {
            what: what.to_string(),
            limit: cap,
        });
    }
    let (actual, _) = limited.finish();
    expected.verify(&actual, || what.to_string())?;
    Ok(buf)
}

/// Stores small verified bytes as a blob (manifests, configs).
pub(crate) fn put_bytes(root: &Path, tmp: &Path, d: &Digest, bytes: &[u8]) -> Result<()> {
    let path = blob_path(root, d);
    if path.exists() {
        return Ok(());
    }
    expected_matches(d, bytes)?;
    let t = tmp.join(format!("blob-{}-{}", std::process::id(), d.hex()));
    std::fs::write(&t, bytes).ctx("write", &t)?;
    std::fs::rename(&t, &path).ctx("store blob", &path)
}

fn expected_matches(d: &Digest, bytes: &[u8]) -> Result<()> {
    d.verify(&Digest::of(bytes), || format!("blob {d}"))
}
