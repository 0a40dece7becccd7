//! Manifest media types and choosing the host's platform from an index.

use oci_spec::image::ImageIndex;

use crate::digest::{from_oci, Digest};
use crate::error::{Error, Result};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header for manifest requests.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// A single-platform image manifest (OCI or Docker v2 schema 2).
    Image,
    /// An index / manifest list.
    Index,
}

/// Classifies a manifest by its `Content-Type` (if any) or its `mediaType` field,
/// else by shape (`manifests` vs `layers`).
pub fn classify(content_type: Option<&str>, body: &[u8]) -> Result<ManifestKind> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion", default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(body).map_err(|e| Error::format("manifest", e))?;
    if probe.schema_version == Some(1) {
        return Err(Error::format(
            "manifest",
            "Docker schema 1 manifests are not supported",
        ));
    }
    let mt = probe
        .media_type
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()));
    match mt.as_deref() {
        Some(OCI_INDEX) | Some(DOCKER_LIST) => Ok(ManifestKind::Index),
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => Ok(ManifestKind::Image),
        _ if probe.manifests.is_some() => Ok(ManifestKind::Index),
        _ => Ok(ManifestKind::Image),
    }
}

/// A target platform: `os/architecture[/variant]`, in OCI spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, … when it matters.
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(Error::format(
                format!("platform {s:?}"),
                "expected os/arch[/variant]",
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the manifest for `want` from an index: same os and architecture, and the
/// same variant when both name one (`arm64` and `arm64/v8` are the same).
pub fn select(index_bytes: &[u8], want: &Platform, reference: &str) -> Result<Digest> {
    let index = ImageIndex::from_reader(index_bytes)
        .map_err(|e| Error::format(format!("index of {reference}"), e))?;
    let mut available = Vec::new();
    let mut fallback = None;
    for m in index.manifests() {
        let Some(p) = m.platform() else { continue };
        let os = p.os().to_string();
        let arch = p.architecture().to_string();
        let variant = p.variant().clone();
        available.push(match &variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
        if os != want.os || arch != want.architecture {
            continue;
        }
        let norm = |v: &Option<String>| v.clone().filter(|v| !(arch == "arm64" && v == "v8"));
        match (norm(&want.variant), norm(&variant)) {
            (Some(a), Some(b)) if a == b => return from_oci(m.digest()),
            (None, None) => return from_oci(m.digest()),
            (Some(_), Some(_)) => {}
            _ => {
                fallback.get_or_insert(from_oci(m.digest())?);
            }
        }
    }
    if let Some(d) = fallback {
        return Ok(d);
    }
    Err(Error::NoPlatform {
        reference: reference.to_string(),
        wanted: want.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Vec<u8> {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        )
        .into_bytes()
    }

    #[test]
    fn selects_platform() {
        let i = index();
        assert!(select(&i, &Platform::parse("linux/amd64").unwrap(), "x")
            .unwrap()
            .hex()
            .starts_with('a'));
        assert!(select(&i, &Platform::parse("linux/arm64").unwrap(), "x")
            .unwrap()
            .hex()
            .starts_with('b'));
        assert!(select(&i, &Platform::parse("linux/arm/v7").unwrap(), "x")
            .unwrap()
            .hex()
            .starts_with('c'));
        let err = select(&i, &Platform::parse("linux/s390x").unwrap(), "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/amd64, linux/arm64/v8, linux/arm/v7"),
            "{err}"
        );
        assert_eq!(classify(None, &i).unwrap(), ManifestKind::Index);
    }
}
