//! # petrel-image: the image store
//!
//! Turns every image reference a petrel job can name — `docker://…` (tag or digest),
//! an OCI layout, a `docker save` archive, a SIF file, a squashfs file, a plain
//! directory, or a name already in the store — into a root file system directory and
//! an [`ImageConfig`], fast, verified and cached.
//!
//! ## Overview
//! * [`ImageRef`] parses what users write ([`mod@reference`]).
//! * [`Store`] is a directory shared by processes without a daemon
//!   ([`store`] explains the layout, locking and crash safety):
//!   [`Store::prepare`] gives a [`PreparedImage`] (root file system, config, and a
//!   lease that keeps GC away while it lives); [`Store::pull`], [`Store::import`],
//!   [`Store::list`], [`Store::inspect`], [`Store::remove`], [`Store::gc`] and
//!   [`Store::cache_ad`] back the `petrel image` commands.
//! * [`distribution`] is an OCI distribution client: anonymous, bearer-token and
//!   basic auth, credentials from Docker/Podman auth files, indexes resolved to the
//!   host platform, resumable downloads.
//! * [`unpack`] applies hostile layer tarballs safely: nothing is ever written outside
//!   the layer directory, and each refusal names the layer and the entry.
//! * [`formats`] reads OCI layouts, `docker save` archives, SIF and squashfs, and
//!   exports images.
//! * [`cache_ad`] renders the cached-image ClassAd attributes for slot ads.
//!
//! ```no_run
//! use petrel_image::{ImageRef, Store};
//! let store = Store::open_default()?;
//! let image = store.prepare(&ImageRef::parse("docker://busybox:latest")?)?;
//! println!("rootfs {} env {:?}", image.rootfs.display(), image.config.env);
//! # Ok::<(), petrel_image::Error>(())
//! ```
//!
//! The library never prints: progress goes through the [`Progress`] trait, errors are
//! [`Error`] values.

#![warn(missing_docs)]

pub mod cache_ad;
mod config;
pub mod digest;
pub mod distribution;
mod error;
pub mod formats;
pub mod reference;
pub mod store;
pub mod unpack;

pub use config::{ImageConfig, NoProgress, Progress};
pub use digest::Digest;
pub use error::{Error, Result};
pub use formats::export::{export, ExportFormat};
pub use reference::{DockerRef, ImageRef};
pub use store::{GcOptions, GcReport, ImageInfo, PreparedImage, PullOutcome, Store, StoreOptions};
