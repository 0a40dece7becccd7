//! Content digests (`sha256:<hex>`) and hashing readers and writers.

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A verified-shape content digest. Only `sha256` is accepted: it is what every
/// registry and image tool writes, and one algorithm keeps the store's paths simple.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:` followed by 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Digest> {
        let bad = |reason: &str| Error::format(format!("digest {s:?}"), reason);
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("only sha256 digests are supported"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("expected 64 lowercase hex digits"));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Sha256::digest(bytes).as_slice())
    }

    fn from_hash(hash: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The hex part, used as a file name in the store.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as `docker images` shows.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// Checks that `actual` equals `self`, naming `what` in the error.
    pub(crate) fn verify(&self, actual: &Digest, what: impl FnOnce() -> String) -> Result<()> {
        if self == actual {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                what: what(),
                expected: self.0.clone(),
                actual: actual.0.clone(),
            })
        }
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Digest> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

/// Converts an `oci_spec` digest into ours.
pub(crate) fn from_oci(d: &oci_spec::image::Digest) -> Result<Digest> {
    Digest::parse(d.as_ref())
}

/// A running sha256 with a byte count.
#[derive(Default, Clone)]
pub(crate) struct Hasher {
    sha: Sha256,
    count: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, buf: &[u8]) {
        self.sha.update(buf);
        self.count += buf.len() as u64;
    }
    pub(crate) fn count(&self) -> u64 {
        self.count
    }
    pub(crate) fn finish(self) -> Digest {
        Digest::from_hash(self.sha.finalize().as_slice())
    }
}

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::default(),
        }
    }
    pub(crate) fn finish(self) -> (Digest, u64) {
        let n = self.hasher.count();
        (self.hasher.finish(), n)
    }
    /// Reads and hashes everything left (tar readers stop before the padding).
    pub(crate) fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A reader that copies what passes through it to a writer (the blob file) and hashes it.
pub(crate) struct TeeReader<R, W, F> {
    inner: R,
    out: W,
    hasher: Hasher,
    on_bytes: F,
}

impl<R: Read, W: Write, F: FnMut(u64)> TeeReader<R, W, F> {
    pub(crate) fn new(inner: R, out: W, on_bytes: F) -> Self {
        TeeReader {
            inner,
            out,
            hasher: Hasher::default(),
            on_bytes,
        }
    }
    pub(crate) fn finish(self) -> (Digest, u64, W) {
        let n = self.hasher.count();
        (self.hasher.finish(), n, self.out)
    }
}

impl<R: Read, W: Write, F: FnMut(u64)> Read for TeeReader<R, W, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}

/// A reader that fails once more than `limit` bytes came through (decompression bombs).
pub(crate) struct LimitReader<R> {
    inner: R,
    left: u64,
}

impl<R> LimitReader<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        LimitReader { inner, left: limit }
    }
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(LimitExceeded));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The marker error inside the `io::Error` a [`LimitReader`] returns.
#[derive(Debug)]
pub(crate) struct LimitExceeded;

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("size limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

/// True when `e` came from a [`LimitReader`].
pub(crate) fn is_limit(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:e3b0c44298fc1c149afbf4c8996fb924").is_err());
        assert!(Digest::parse(&d.as_str().to_uppercase()).is_err());
    }

    #[test]
    fn limit_reader_stops() {
        let mut r = LimitReader::new(&[0u8; 100][..], 10);
        let err = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        assert!(is_limit(&err));
    }
}
