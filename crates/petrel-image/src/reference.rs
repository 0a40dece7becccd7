//! Image references: everything a user can write as `container_image`.
//!
//! | written as | meaning |
//! |---|---|
//! | `docker://[registry/]repo[:tag][@sha256:…]` | an image in a registry (Docker Hub by default) |
//! | `oci:DIR[:TAG]`, or a directory holding `oci-layout` | an OCI image layout |
//! | `docker-archive:FILE`, or a tar file | a `docker save` archive |
//! | a `.sif` file (recognised by its magic) | a SIF image (Apptainer/Singularity) |
//! | a squashfs file (magic `hsqs`) | a squashfs root file system |
//! | any other directory | a plain, already unpacked root file system |
//! | `name[:tag]` that is no path | an image already in the store, by name |
//!
//! Paths are recognised when they start with `/`, `./` or `../`, or exist; their kind
//! is decided from the file's content, not its extension.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry Docker Hub names are resolved against.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `docker://…`: an image in an OCI distribution registry.
    Docker(DockerRef),
    /// A bare name of an image already in the store (pulled or imported).
    Stored(String),
    /// A directory used as the root file system as it is.
    Dir(PathBuf),
    /// An OCI image layout directory, optionally with a tag (`org.opencontainers.image.ref.name`).
    OciLayout {
        /// The layout directory.
        path: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick, if several.
        tag: Option<String>,
    },
    /// A `docker save` archive.
    DockerArchive(PathBuf),
    /// A SIF file; its primary squashfs partition is the root file system.
    Sif(PathBuf),
    /// A squashfs file holding a root file system.
    Squashfs(PathBuf),
}

/// A registry image name: `registry/repository` plus a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DockerRef {
    /// Registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag, `latest` when neither tag nor digest was written.
    pub tag: Option<String>,
    /// Manifest digest, when pinned.
    pub digest: Option<Digest>,
}

impl DockerRef {
    /// Parses a Docker-style name (`busybox`, `ghcr.io/o/r:1`, `host:5000/r@sha256:…`),
    /// normalised as Docker does (`docker.io/library/…`).
    ///
    /// This is the one check an image name passes before any program sees it: Docker's
    /// grammar (`distribution/reference`), so a name never starts with `-`, holds no
    /// whitespace or control character, and is at most [`NAME_MAX`] bytes before its tag.
    pub fn parse(input: &str) -> Result<DockerRef> {
        let bad = |reason: &str| Error::Reference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        check_text(input).map_err(|r| bad(&r))?;
        if input.contains(char::is_whitespace) {
            return Err(bad("a name holds no whitespace"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?)),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        if name.len() > NAME_MAX {
            return Err(bad(&format!("name longer than {NAME_MAX} bytes")));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_domain(first) {
                    return Err(bad("invalid registry host"));
                }
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "each part of the repository must be lowercase letters and digits, \
                 joined by '.', '_', '__' or dashes",
            ));
        }
        if let Some(t) = &tag {
            let tag_ok = t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !tag_ok {
                return Err(bad(
                    "invalid tag (up to 128 letters, digits, '_', '.', '-', not starting \
                     with '.' or '-')",
                ));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(DockerRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What the manifest is fetched by: the digest when pinned, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for DockerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl ImageRef {
    /// Parses a reference, looking at the file system for paths (see the module docs).
    pub fn parse(input: &str) -> Result<ImageRef> {
        let bad = |reason: String| Error::Reference {
            input: input.to_string(),
            reason,
        };
        let input = input.trim();
        if input.is_empty() {
            return Err(bad("empty reference".into()));
        }
        check_text(input).map_err(&bad)?;
        if let Some(rest) = input.strip_prefix("docker://") {
            return Ok(ImageRef::Docker(DockerRef::parse(rest)?));
        }
        if let Some(rest) = input.strip_prefix("oci:") {
            check_text(rest).map_err(&bad)?;
            let (path, tag) = split_layout_tag(rest);
            return Ok(ImageRef::OciLayout {
                path: PathBuf::from(path),
                tag,
            });
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            check_text(rest).map_err(&bad)?;
            return Ok(ImageRef::DockerArchive(PathBuf::from(rest)));
        }
        for prefix in ["sif:", "squashfs:", "dir:"] {
            if let Some(rest) = input.strip_prefix(prefix) {
                check_text(rest).map_err(&bad)?;
                let p = PathBuf::from(rest);
                return Ok(match prefix {
                    "sif:" => ImageRef::Sif(p),
                    "squashfs:" => ImageRef::Squashfs(p),
                    _ => ImageRef::Dir(p),
                });
            }
        }
        let path = Path::new(input);
        let path_like =
            input.starts_with('/') || input.starts_with("./") || input.starts_with("../");
        if path_like || path.exists() {
            return Self::from_path(path).map_err(|e| bad(e.to_string()));
        }
        if input.contains("://") {
            return Err(bad(
                "unknown transport (use docker://, oci:, docker-archive:)".into(),
            ));
        }
        DockerRef::parse(input)?;
        Ok(ImageRef::Stored(input.to_string()))
    }

    /// Decides the kind of an existing path from its content.
    pub fn from_path(path: &Path) -> Result<ImageRef> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("image path {}", path.display()), e))?;
        if meta.is_dir() {
            return Ok(if path.join("oci-layout").is_file() {
                ImageRef::OciLayout {
                    path: path.to_path_buf(),
                    tag: None,
                }
            } else {
                ImageRef::Dir(path.to_path_buf())
            });
        }
        let mut head = [0u8; 512];
        let mut f = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
            }
        }
        let head = &head[..n];
        if head.starts_with(b"hsqs") {
            Ok(ImageRef::Squashfs(path.to_path_buf()))
        } else if head.len() >= 42 && &head[32..42] == b"SIF_MAGIC\0" {
            Ok(ImageRef::Sif(path.to_path_buf()))
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Ok(ImageRef::DockerArchive(path.to_path_buf()))
        } else {
            Err(Error::format(
                format!("image file {}", path.display()),
                "not a SIF file, a squashfs image or a tar archive",
            ))
        }
    }

    /// True for references whose content never changes once stored (digests, files
    /// are keyed by content or identity); tags may move.
    pub fn is_path(&self) -> bool {
        !matches!(self, ImageRef::Docker(_) | ImageRef::Stored(_))
    }
}

/// The longest repository name (with its registry) Docker accepts.
pub const NAME_MAX: usize = 255;

/// The longest reference text petrel takes at all (a path, a name with tag and digest).
pub const REFERENCE_MAX: usize = 4096;

/// What every reference, and every path in one, must be: not empty, not too long, not
/// starting with `-` (a program given it would read an option), and free of control
/// characters.
fn check_text(text: &str) -> std::result::Result<(), String> {
    if text.is_empty() {
        return Err("empty reference".into());
    }
    if text.len() > REFERENCE_MAX {
        return Err(format!("longer than {REFERENCE_MAX} bytes"));
    }
    if text.starts_with('-') {
        return Err("a reference cannot start with '-'".into());
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!("control character {c:?}"));
    }
    Ok(())
}

/// A path component of a repository: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let ok = match &b[sep..i] {
            b"." | b"_" | b"__" => true,
            s => s.iter().all(|&x| x == b'-'),
        };
        if !ok {
            return false;
        }
    }
}

/// A registry host: DNS labels (letters, digits, inner dashes) joined by dots, or a
/// bracketed IPv6 address, with an optional numeric port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

fn split_layout_tag(s: &str) -> (&str, Option<String>) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') && i > 0 => (&s[..i], Some(s[i + 1..].to_string())),
        _ => (s, None),
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Docker(r) => write!(f, "docker://{r}"),
            ImageRef::Stored(n) => f.write_str(n),
            ImageRef::Dir(p) => write!(f, "{}", p.display()),
            ImageRef::OciLayout { path, tag: Some(t) } => write!(f, "oci:{}:{t}", path.display()),
            ImageRef::OciLayout { path, tag: None } => write!(f, "oci:{}", path.display()),
            ImageRef::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
            ImageRef::Sif(p) => write!(f, "sif:{}", p.display()),
            ImageRef::Squashfs(p) => write!(f, "squashfs:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_normalisation() {
        let r = DockerRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = DockerRef::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "a/b")
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let d = Digest::of(b"x");
        let r = DockerRef::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), d.to_string());
        assert!(DockerRef::parse("UPPER/case").is_err());
        assert!(DockerRef::parse("a@sha256:zz").is_err());
    }

    #[test]
    fn image_ref_kinds() {
        assert!(matches!(
            ImageRef::parse("docker://alpine:3").unwrap(),
            ImageRef::Docker(_)
        ));
        assert_eq!(
            ImageRef::parse("myimage:1").unwrap(),
            ImageRef::Stored("myimage:1".into())
        );
        assert_eq!(
            ImageRef::parse("oci:/tmp/x:t").unwrap(),
            ImageRef::OciLayout {
                path: "/tmp/x".into(),
                tag: Some("t".into())
            }
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ImageRef::parse(dir.path().to_str().unwrap()).unwrap(),
            ImageRef::Dir(dir.path().into())
        );
        std::fs::write(dir.path().join("oci-layout"), "{}").unwrap();
        assert!(matches!(
            ImageRef::parse(dir.path().to_str().unwrap()).unwrap(),
            ImageRef::OciLayout { .. }
        ));
        let f = dir.path().join("x.sqfs");
        std::fs::write(&f, b"hsqs0000").unwrap();
        assert!(matches!(
            ImageRef::parse(f.to_str().unwrap()).unwrap(),
            ImageRef::Squashfs(_)
        ));
        assert!(ImageRef::parse("/nonexistent/path.sif").is_err());
        assert!(ImageRef::parse("ftp://x").is_err());
    }

    #[test]
    fn option_like_and_malformed_names_are_refused() {
        for bad in [
            "--volume=/:/host",
            "-v",
            "--privileged",
            "-",
            "busybox --volume=/:/host",
            "busybox\n",
            "busy\tbox",
            "docker.io/-x",
            "a/-b",
            "a-/b",
            "a..b",
            "a___b",
            "busybox:-x",
            "busybox:.x",
            "-host.io/x",
            "host-.io/x",
            "ho_st.io/x",
            "host.io:/x",
            "host.io:5x/x",
        ] {
            assert!(DockerRef::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(DockerRef::parse(&"a".repeat(NAME_MAX + 1)).is_err());
        for good in [
            "busybox",
            "busybox:1.36",
            "a-b--c/d__e.f_g:_t",
            "petrel_rootfs:0123abcd",
            "localhost/petrel_rootfs:0123abcd",
            "127.0.0.1:5000/a/b:v1",
            "[::1]:5000/a",
            "Registry.Example.com/x",
        ] {
            assert!(DockerRef::parse(good).is_ok(), "{good:?} was refused");
        }
        for bad in [
            "--bind=/:/host",
            "-x",
            "sif:--bind=/:/host",
            "oci:-x",
            "docker-archive:-x",
            "dir:-x",
            "docker://--privileged",
            "x\u{7}y",
        ] {
            let err = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid image reference"), "{bad:?}: {err}");
        }
        assert!(ImageRef::parse(&format!("/{}", "a".repeat(REFERENCE_MAX))).is_err());
    }
}
