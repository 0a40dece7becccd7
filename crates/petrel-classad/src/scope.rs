//! Scopes: which ad an attribute reference looks in, `MY.`, `TARGET.`,
//! `parent`, `root`, and the match context that joins a job and a slot.
//!
//! During one evaluation the evaluator keeps an arena of scopes. Each entry
//! is an ad (borrowed from the caller, or a nested ad shared with the
//! expression tree) plus a link to its lexical parent. When two ads are being
//! matched, each top-level ad's parent is a *match context* that resolves
//! `my`/`ad` to itself and `target`/`other` to the other ad, and above that
//! the *match root* that holds `LEFT` and `RIGHT` -- the same chain
//! HTCondor's `MatchClassAd` builds.

use std::sync::Arc;

use crate::ast::name_hash;
use crate::classad::ClassAd;

/// Which attribute-resolution rules to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semantics {
    /// The ClassAd library's own rules (what HTCondor's Python `classad2`
    /// module does): `MY` and `TARGET` resolve only inside a match context,
    /// and an unscoped name is looked up only in its own ad and its parents.
    #[default]
    Strict,
    /// The rules HTCondor's daemons and tools use by default
    /// (`STRICT_CLASSAD_EVALUATION = false`): `MY` always means the current
    /// ad, `CurrentTime` means `time()`, and during matching an unscoped
    /// name that is not in its own ad is looked up in the other ad.
    Compat,
}

/// An ad in the scope arena.
#[derive(Debug, Clone)]
pub(crate) enum AdRef<'a> {
    Borrowed(&'a ClassAd),
    Shared(Arc<ClassAd>),
}

impl AdRef<'_> {
    pub(crate) fn get(&self) -> &ClassAd {
        match self {
            AdRef::Borrowed(a) => a,
            AdRef::Shared(a) => a,
        }
    }

    pub(crate) fn to_arc(&self) -> Arc<ClassAd> {
        match self {
            AdRef::Borrowed(a) => Arc::new((*a).clone()),
            AdRef::Shared(a) => a.clone(),
        }
    }
}

/// Which side of a match an ad is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// One entry of the scope arena.
#[derive(Debug, Clone)]
pub(crate) enum Scope<'a> {
    /// A real ad, with its lexical parent scope (if any) and, in compat
    /// matching, the ad unscoped names fall back to.
    Ad {
        ad: AdRef<'a>,
        parent: Option<u32>,
        alternate: Option<u32>,
    },
    /// `[other = .RIGHT; target = .RIGHT; my = .LEFT; ad = .LEFT]` and its mirror.
    MatchCtx(Side),
    /// `[LEFT = ...; RIGHT = ...]`
    MatchRoot,
}

pub(crate) const H_TOPLEVEL: u64 = name_hash(b"toplevel");
pub(crate) const H_ROOT: u64 = name_hash(b"root");
pub(crate) const H_SELF: u64 = name_hash(b"self");
pub(crate) const H_PARENT: u64 = name_hash(b"parent");
pub(crate) const H_MY: u64 = name_hash(b"my");
pub(crate) const H_CURRENTTIME: u64 = name_hash(b"currenttime");
pub(crate) const H_AD: u64 = name_hash(b"ad");
pub(crate) const H_TARGET: u64 = name_hash(b"target");
pub(crate) const H_OTHER: u64 = name_hash(b"other");
pub(crate) const H_LEFT: u64 = name_hash(b"left");
pub(crate) const H_RIGHT: u64 = name_hash(b"right");

/// `name` (with case-insensitive hash `hash`) equals `lower` ignoring case.
#[inline]
pub(crate) fn is_name(name: &str, hash: u64, lower: &str, lower_hash: u64) -> bool {
    // `lower` is all lower-case letters, so `c | 0x20` folds exactly.
    hash == lower_hash
        && name.len() == lower.len()
        && name.bytes().zip(lower.bytes()).all(|(a, b)| a | 0x20 == b)
}

/// Names that stop the upward search (handled by the first ad searched).
#[inline]
pub(crate) fn special_name(name: &str, hash: u64, sem: Semantics) -> Option<Special> {
    if !matches!(
        hash,
        H_TOPLEVEL | H_ROOT | H_SELF | H_PARENT | H_MY | H_CURRENTTIME
    ) {
        return None;
    }
    if is_name(name, hash, "toplevel", H_TOPLEVEL) || is_name(name, hash, "root", H_ROOT) {
        Some(Special::Root)
    } else if is_name(name, hash, "self", H_SELF) {
        Some(Special::Current)
    } else if is_name(name, hash, "parent", H_PARENT) {
        Some(Special::Parent)
    } else if sem == Semantics::Compat && is_name(name, hash, "my", H_MY) {
        Some(Special::Current)
    } else if sem == Semantics::Compat && is_name(name, hash, "currenttime", H_CURRENTTIME) {
        Some(Special::CurrentTime)
    } else {
        None
    }
}

/// A special attribute name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    Root,
    Current,
    Parent,
    CurrentTime,
}
