//! Registry authentication: credentials from the usual files, the
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` token dance, and basic auth.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The auth files consulted, first match wins: `$REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json` (Podman), `$DOCKER_CONFIG/config.json`,
/// `~/.docker/config.json`.
pub fn default_auth_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p).join("containers/auth.json"));
    }
    if let Some(p) = std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p).join("config.json"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(h).join(".docker/config.json"));
    }
    out
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::HashMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The host a key of an `auths` map names (`https://index.docker.io/v1/` → `index.docker.io`).
fn key_host(key: &str) -> &str {
    let k = key.split_once("://").map_or(key, |(_, rest)| rest);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(a: &str, b: &str) -> bool {
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    a == b || (hub(a) && hub(b))
}

/// Looks up credentials for `registry` (and, Podman-style, `registry/repository`
/// prefixes) in `files`.
pub fn lookup(files: &[PathBuf], registry: &str, repository: &str) -> Result<Option<Credentials>> {
    for f in files {
        if let Some(c) = lookup_file(f, registry, repository)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn lookup_file(path: &Path, registry: &str, repository: &str) -> Result<Option<Credentials>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read auth file {}", path.display()), e)),
    };
    let file: AuthFile = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(format!("auth file {}", path.display()), e))?;
    // Most specific key first: registry/ns/repo, then registry/ns, then registry.
    let full = format!("{registry}/{repository}");
    let mut best: Option<(usize, &AuthEntry)> = None;
    for (key, entry) in &file.auths {
        let k = key
            .split_once("://")
            .map_or(key.as_str(), |(_, r)| r)
            .trim_end_matches('/');
        let score = if k.contains('/') && !k.ends_with("/v1") && !k.ends_with("/v2") {
            if full == k || full.starts_with(&format!("{k}/")) {
                k.len()
            } else {
                continue;
            }
        } else if same_registry(key_host(key), registry) {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, entry));
        }
    }
    let Some((_, entry)) = best else {
        return Ok(None);
    };
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    let Some(auth) = &entry.auth else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| {
            Error::format(
                format!("auth entry for {registry} in {}", path.display()),
                e,
            )
        })?;
    let text = String::from_utf8(raw).map_err(|e| {
        Error::format(
            format!("auth entry for {registry} in {}", path.display()),
            e,
        )
    })?;
    let (u, p) = text.split_once(':').ok_or_else(|| {
        Error::format(
            format!("auth entry for {registry}"),
            "expected user:password",
        )
    })?;
    Ok(Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            "scope" => scope = Some(value.to_string()),
            _ => {}
        }
        rest = next.trim_start_matches([',', ' ']);
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn auth_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth.json");
        let enc = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &f,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{enc}"}},"127.0.0.1:5000/team":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .unwrap();
        let files = vec![dir.path().join("missing.json"), f];
        let c = lookup(&files, "docker.io", "library/x").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
        let c = lookup(&files, "127.0.0.1:5000", "team/app")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "bob");
        assert!(lookup(&files, "127.0.0.1:5000", "other/app")
            .unwrap()
            .is_none());
    }
}
