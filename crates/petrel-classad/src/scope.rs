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
    Ad { ad: AdRef<'a>, parent: Option<usize>, alternate: Option<usize> },
    /// `[other = .RIGHT; target = .RIGHT; my = .LEFT; ad = .LEFT]` and its mirror.
    MatchCtx(Side),
    /// `[LEFT = ...; RIGHT = ...]`
    MatchRoot,
}

/// Names that stop the upward search (handled by the first ad searched).
pub(crate) fn special_name(name: &str, sem: Semantics) -> Option<Special> {
    let n = name.as_bytes();
    let eq = |s: &str| n.eq_ignore_ascii_case(s.as_bytes());
    if eq("toplevel") || eq("root") {
        Some(Special::Root)
    } else if eq("self") {
        Some(Special::Current)
    } else if eq("parent") {
        Some(Special::Parent)
    } else if sem == Semantics::Compat && eq("my") {
        Some(Special::Current)
    } else if sem == Semantics::Compat && eq("currenttime") {
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
