//! The cached-images advertisement: a ClassAd fragment a slot publishes so the
//! negotiator can prefer machines that already hold a job's image.
//!
//! ```text
//! CachedImages = "docker://127.0.0.1:5000/app:1@sha256:…,sif:/data/x.sif@sha256:…"
//! CachedImageDigests = "sha256:…,sha256:…"
//! CachedImagesCount = 2
//! CachedImagesSizeMB = 153
//! ```
//!
//! Names are listed with their digest so a job pinned by digest matches too. The
//! values are comma-separated string lists, usable with ClassAd `stringListMember()`.

use crate::store::ImageInfo;

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders the ad for `images`.
pub fn render(images: &[ImageInfo]) -> String {
    let mut refs = Vec::new();
    let mut digests = Vec::new();
    for i in images {
        digests.push(i.digest.to_string());
        if i.names.is_empty() {
            refs.push(format!("{}@{}", i.source, i.digest));
        }
        for n in &i.names {
            let base = n.split('@').next().unwrap_or(n);
            if i.source.starts_with("docker://") {
                refs.push(format!("docker://{base}@{}", i.digest));
            } else {
                refs.push(format!("{base}@{}", i.digest));
            }
        }
    }
    let size: u64 = crate::store::gc_size(images);
    format!(
        "CachedImages = {}\nCachedImageDigests = {}\nCachedImagesCount = {}\nCachedImagesSizeMB = {}\n",
        quote(&refs.join(",")),
        quote(&digests.join(",")),
        images.len(),
        size.div_ceil(1 << 20)
    )
}
