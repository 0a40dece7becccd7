//! Blocking HTTP client for one repository of one registry.

use std::io::{self, Read};
use std::sync::Mutex;

use super::auth::{self, Challenge, Credentials, TokenResponse};
use super::manifest::{self, ManifestKind, Platform};
use super::RegistryOptions;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::DockerRef;
use crate::store::{BlobSource, Resolved, MAX_METADATA_BYTES};

/// A connection to `registry/repository`, remembering the auth it negotiated.
pub struct Client {
    agent: ureq::Agent,
    registry: String,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.base)
    }
}

/// True for hosts that name the loopback interface.
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

impl Client {
    /// A client for `r`'s registry and repository.
    pub fn new(opts: &RegistryOptions, r: &DockerRef) -> Result<Client> {
        let plain = is_loopback(&r.registry) || opts.insecure.contains(&r.registry);
        let host = if r.registry == crate::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            r.registry.as_str()
        };
        let base = format!("{}://{host}/v2", if plain { "http" } else { "https" });
        let credentials = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => auth::lookup(&opts.auth_files, &r.registry, &r.repository)?,
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(opts.timeout)
            .timeout_read(opts.timeout)
            .user_agent(concat!("petrel/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent,
            registry: r.registry.clone(),
            base,
            repository: r.repository.clone(),
            credentials,
            authorization: Mutex::new(None),
        })
    }

    fn reg_err(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            reason: reason.into(),
        }
    }

    /// GET `path` (under `/v2/<repo>/`), answering auth challenges once.
    fn get(&self, path: &str, accept: Option<&str>, offset: u64) -> Result<ureq::Response> {
        let url = format!("{}/{}/{path}", self.base, self.repository);
        let mut tried_auth = false;
        loop {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if offset > 0 {
                req = req.set("Range", &format!("bytes={offset}-"));
            }
            if let Some(h) = self.authorization.lock().ok().and_then(|a| a.clone()) {
                req = req.set("Authorization", &h);
            }
            match req.call() {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) if !tried_auth => {
                    tried_auth = true;
                    let challenge = resp
                        .header("www-authenticate")
                        .and_then(auth::parse_challenge);
                    let header = self.authenticate(challenge)?;
                    if let Ok(mut a) = self.authorization.lock() {
                        *a = Some(header);
                    }
                }
                Err(ureq::Error::Status(401, _)) => {
                    return Err(Error::Auth {
                        registry: self.registry.clone(),
                        reason: format!("{url}: credentials refused (HTTP 401)"),
                    })
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let mut body = String::new();
                    let _ = resp.into_reader().take(512).read_to_string(&mut body);
                    return Err(self.reg_err(format!("{url}: HTTP {code}: {}", body.trim())));
                }
                Err(e) => return Err(self.reg_err(format!("{url}: {e}"))),
            }
        }
    }

    /// Answers a challenge: basic credentials, or a bearer token from the realm.
    fn authenticate(&self, challenge: Option<Challenge>) -> Result<String> {
        let auth_err = |reason: String| Error::Auth {
            registry: self.registry.clone(),
            reason,
        };
        match challenge {
            Some(Challenge::Basic) => match &self.credentials {
                Some(c) => Ok(c.basic_header()),
                None => Err(auth_err(
                    "basic auth required and no credentials found".into(),
                )),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut req = self.agent.get(&realm).query("scope", &scope);
                if let Some(s) = &service {
                    req = req.query("service", s);
                }
                if let Some(c) = &self.credentials {
                    req = req.set("Authorization", &c.basic_header());
                }
                let resp = req
                    .call()
                    .map_err(|e| auth_err(format!("token request to {realm}: {e}")))?;
                let mut body = Vec::new();
                resp.into_reader()
                    .take(MAX_METADATA_BYTES)
                    .read_to_end(&mut body)
                    .map_err(|e| auth_err(format!("token response: {e}")))?;
                let t: TokenResponse = serde_json::from_slice(&body)
                    .map_err(|e| auth_err(format!("token response: {e}")))?;
                let token = t
                    .token
                    .or(t.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| auth_err("token response has no token".into()))?;
                Ok(format!("Bearer {token}"))
            }
            None => Err(auth_err(
                "HTTP 401 without a usable WWW-Authenticate challenge".into(),
            )),
        }
    }

    /// Fetches a manifest or index by tag or digest (at most [`MAX_METADATA_BYTES`]).
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, Option<String>)> {
        let resp = self.get(&format!("manifests/{reference}"), Some(manifest::ACCEPT), 0)?;
        if let Some(len) = resp
            .header("content-length")
            .and_then(|l| l.parse::<u64>().ok())
        {
            if len > MAX_METADATA_BYTES {
                return Err(Error::TooLarge {
                    what: format!("manifest {}/{reference}", self.repository),
                    limit: MAX_METADATA_BYTES,
                });
            }
        }
        let ct = resp.header("content-type").map(str::to_string);
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_METADATA_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.reg_err(format!("reading manifest {reference}: {e}")))?;
        if body.len() as u64 > MAX_METADATA_BYTES {
            return Err(Error::TooLarge {
                what: format!("manifest {}/{reference}", self.repository),
                limit: MAX_METADATA_BYTES,
            });
        }
        Ok((body, ct))
    }

    /// Resolves `r` to one image manifest for `platform`, verifying digests.
    pub(crate) fn resolve(&self, r: &DockerRef, platform: &Platform) -> Result<Resolved> {
        let reference = r.reference();
        let (body, ct) = self.manifest(&reference)?;
        let digest = Digest::of(&body);
        if let Some(want) = &r.digest {
            want.verify(&digest, || format!("manifest {r}"))?;
        }
        let (body, digest) = match manifest::classify(ct.as_deref(), &body)? {
            ManifestKind::Image => (body, digest),
            ManifestKind::Index => {
                let chosen = manifest::select(&body, platform, &r.to_string())?;
                let (b, _) = self.manifest(chosen.as_str())?;
                chosen.verify(&Digest::of(&b), || format!("manifest {chosen} of {r}"))?;
                if manifest::classify(None, &b)? != ManifestKind::Image {
                    return Err(Error::format(format!("manifest {chosen}"), "nested index"));
                }
                (b, chosen)
            }
        };
        Ok(Resolved {
            manifest_bytes: body,
            digest,
            source: format!("docker://{r}"),
            names: vec![r.to_string()],
        })
    }
}

impl BlobSource for Client {
    fn open_blob(&self, digest: &Digest, size: Option<u64>) -> Result<Box<dyn Read + Send + '_>> {
        let resp = self.get(&format!("blobs/{digest}"), None, 0)?;
        Ok(Box::new(BlobReader {
            client: self,
            digest: digest.clone(),
            size,
            offset: 0,
            inner: Some(resp.into_reader()),
            retries: 0,
        }))
    }
}

/// Streams a blob, reconnecting with `Range: bytes=N-` when the connection drops.
struct BlobReader<'a> {
    client: &'a Client,
    digest: Digest,
    size: Option<u64>,
    offset: u64,
    inner: Option<Box<dyn Read + Send + Sync + 'static>>,
    retries: u32,
}

const MAX_RETRIES: u32 = 5;

impl BlobReader<'_> {
    fn reconnect(&mut self, why: &str) -> io::Result<()> {
        self.retries += 1;
        if self.retries > MAX_RETRIES {
            return Err(io::Error::other(format!(
                "blob {}: connection lost {} times ({why})",
                self.digest, MAX_RETRIES
            )));
        }
        tracing::info!(blob = %self.digest, offset = self.offset, why, "resuming download");
        let resp = self
            .client
            .get(&format!("blobs/{}", self.digest), None, self.offset)
            .map_err(io::Error::other)?;
        // A server that ignores Range answers 200 with the whole blob: skip what we have.
        let whole = resp.status() == 200;
        let mut reader = resp.into_reader();
        if whole && self.offset > 0 {
            io::copy(&mut (&mut reader).take(self.offset), &mut io::sink())?;
        }
        self.inner = Some(reader);
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(inner) = self.inner.as_mut() else {
                self.reconnect("no connection")?;
                continue;
            };
            match inner.read(buf) {
                Ok(0) if self.size.is_some_and(|s| self.offset < s) => {
                    self.inner = None;
                    self.reconnect("early end of body")?;
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.inner = None;
                    self.reconnect(&e.to_string())?;
                }
            }
        }
    }
}
