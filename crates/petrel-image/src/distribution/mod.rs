//! An OCI distribution (registry) client: manifests, indexes, blobs, auth.

pub mod auth;
mod client;
pub mod manifest;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use auth::Credentials;
pub use client::Client;
pub use manifest::Platform;

use crate::config::Progress;
use crate::error::{Error, Result};
use crate::reference::DockerRef;
use crate::store::{PullOutcome, Store};

/// How registries are reached.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) reached over plain HTTP. Loopback is always allowed.
    pub insecure: Vec<String>,
    /// Mirrors tried before a registry, by registry host.
    pub mirrors: Vec<(String, String)>,
    /// Auth files to read, first match wins (default: [`auth::default_auth_files`]).
    pub auth_files: Vec<PathBuf>,
    /// Credentials that take precedence over the files.
    pub credentials: Option<Credentials>,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
    /// Platform chosen from indexes.
    pub platform: Platform,
    /// Connect and read timeout.
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        let mut opts = RegistryOptions {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            auth_files: auth::default_auth_files(),
            credentials: None,
            max_concurrent_downloads: 4,
            platform: Platform::host(),
            timeout: Duration::from_secs(60),
        };
        if let Some(list) = std::env::var_os("PETREL_INSECURE_REGISTRIES") {
            opts.insecure.extend(
                list.to_string_lossy()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
        }
        for path in registries_conf_paths() {
            if let Ok(text) = std::fs::read_to_string(&path) {
                match parse_registries_conf(&text) {
                    Ok((insecure, mirrors)) => {
                        opts.insecure.extend(insecure);
                        opts.mirrors.extend(mirrors);
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "ignoring registries.conf")
                    }
                }
                break;
            }
        }
        opts
    }
}

fn registries_conf_paths() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("PETREL_REGISTRIES_CONF") {
        out.push(PathBuf::from(p));
    }
    if let Some(h) = std::env::var_os("HOME") {
        out.push(PathBuf::from(h).join(".config/containers/registries.conf"));
    }
    out.push(PathBuf::from("/etc/containers/registries.conf"));
    out
}

/// Insecure registries and mirrors (registry, mirror) read from a registries.conf.
pub type RegistriesConf = (Vec<String>, Vec<(String, String)>);

/// Reads `insecure = true` registries and mirrors from a containers-registries.conf(5)
/// (version 2) file: `[[registry]] location = "…" insecure = true` with
/// `[[registry.mirror]] location = "…"`.
pub fn parse_registries_conf(text: &str) -> Result<RegistriesConf> {
    #[derive(Deserialize)]
    struct Conf {
        #[serde(default)]
        registry: Vec<Reg>,
    }
    #[derive(Deserialize)]
    struct Reg {
        #[serde(default)]
        location: Option<String>,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        insecure: bool,
        #[serde(default)]
        mirror: Vec<Mirror>,
    }
    #[derive(Deserialize)]
    struct Mirror {
        location: String,
        #[serde(default)]
        insecure: bool,
    }
    let conf: Conf = toml::from_str(text).map_err(|e| Error::format("registries.conf", e))?;
    let mut insecure = Vec::new();
    let mut mirrors = Vec::new();
    for r in conf.registry {
        let Some(loc) = r.location.or(r.prefix) else {
            continue;
        };
        let host = loc.split('/').next().unwrap_or(&loc).to_string();
        if r.insecure {
            insecure.push(host.clone());
        }
        for m in r.mirror {
            let mhost = m
                .location
                .split('/')
                .next()
                .unwrap_or(&m.location)
                .to_string();
            if m.insecure {
                insecure.push(mhost.clone());
            }
            mirrors.push((host.clone(), mhost));
        }
    }
    Ok((insecure, mirrors))
}

/// Resolves and installs `reference`, trying configured mirrors first.
pub(crate) fn pull(
    store: &Store,
    reference: &DockerRef,
    progress: &dyn Progress,
) -> Result<PullOutcome> {
    let opts = &store.options().registry;
    let mut last_err = None;
    let mirrors = opts
        .mirrors
        .iter()
        .filter(|(r, _)| *r == reference.registry)
        .map(|(_, m)| m.clone());
    for host in mirrors.chain(std::iter::once(reference.registry.clone())) {
        let mut target = reference.clone();
        target.registry = host.clone();
        let client = Client::new(opts, &target)?;
        match client.resolve(reference, &opts.platform) {
            Ok(resolved) => return store.install(resolved, &client, progress),
            Err(e) if host != reference.registry => {
                progress.note(&format!("mirror {host} failed: {e}"));
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| Error::Unsupported("no registry to pull from".into())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn registries_conf() {
        let (insecure, mirrors) = super::parse_registries_conf(
            r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "reg.lan:5000"
insecure = true
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.lan/dockerhub"
"#,
        )
        .unwrap();
        assert_eq!(insecure, vec!["reg.lan:5000".to_string()]);
        assert_eq!(
            mirrors,
            vec![("docker.io".to_string(), "mirror.lan".to_string())]
        );
    }
}
