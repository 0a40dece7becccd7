//! HTCondor's ClassAd language for petrel.
//!
//! A [`ClassAd`] maps attribute names (case-insensitively) to expressions
//! ([`Expr`]); evaluating an expression gives a [`Value`] with HTCondor's
//! three-valued logic (UNDEFINED and ERROR propagate through strict
//! operators; `&&`, `||`, `?:`, `=?=` and `=!=` are not strict).
//!
//! * Parsing: [`parse_expr`], [`parse_classad`] (new syntax `[a = 1; b = a]`),
//!   [`parser::old_syntax`] (the `condor_q -long` form), [`json`].
//! * Printing: [`unparse()`] prints expressions back exactly as HTCondor does;
//!   [`ClassAd::to_old_syntax`], [`ClassAd::to_json`].
//! * Evaluation: [`ClassAd::eval_attr`], [`ClassAd::eval`], [`eval_in`] with
//!   `MY`/`TARGET` scopes; the built-in functions of HTCondor's manual.
//! * Matching: [`matching::matches`] (symmetric `Requirements`),
//!   [`matching::rank`].
//!
//! # Scoping
//!
//! [`Semantics::Strict`] follows the ClassAd library itself (what HTCondor's
//! Python `classad2` module does, and what the differential tests check):
//! `MY` and `TARGET` exist only while two ads are matched. The evaluation
//! functions without a `Semantics` argument use it.
//! [`Semantics::Compat`] follows HTCondor's daemons and command-line tools
//! (`STRICT_CLASSAD_EVALUATION = false`, their default): `MY.` always means
//! the current ad, `CurrentTime` is `time()`, and while matching an unscoped
//! name missing from its own ad is looked up in the other one (so a job's
//! `Memory >= 1024` reads the slot's `Memory`). [`matching::matches`] and
//! [`matching::rank`] use it.
//!
//! # Compatibility notes
//!
//! Petrel matches HTCondor 25 (checked against `classad2`) including its
//! surprises: a reference cycle (`a = a + 1`) evaluates to UNDEFINED, not
//! ERROR; a `relTime("...")` literal evaluates to a real number of seconds;
//! `0x10` reads as `0` and `017` as `17`; a selected name (`ad.'x y'`) is
//! printed unquoted; `5.0 % 2` is ERROR; integer overflow wraps. The string
//! list functions, `split*` and `envV1ToV2` are registered by HTCondor
//! outside the ClassAd library (classad2 lacks them) and are tested against
//! HTCondor's manual. Regular expressions use the `regex` crate rather than
//! PCRE (see [`builtins::regex`]).
//!
//! # Limits
//!
//! Parsing is bounded by [`ParseLimits`] (input size, tree depth, nesting)
//! and fails with [`Error::TooDeep`] / [`Error::TooLarge`]; evaluation is
//! bounded by depth (400, as in HTCondor) and a budget of ten million node
//! evaluations, past which the result is ERROR.
//!
//! ```
//! use petrel_classad::{matching, parse_classad, parse_expr, ClassAd, Value};
//!
//! let job = parse_classad(r#"[ RequestMemory = 2048; RequestCpus = 1;
//!     Requirements = TARGET.Memory >= MY.RequestMemory && TARGET.Cpus >= MY.RequestCpus ]"#)?;
//! let slot: ClassAd = "[ Memory = 4096; Cpus = 4; Requirements = TARGET.RequestCpus <= MY.Cpus ]".parse()?;
//! assert!(matching::matches(&job, &slot));
//!
//! let e = parse_expr("RequestMemory / 1024 + 0.5")?;
//! assert_eq!(job.eval(&e), Value::Real(2.5));
//! assert_eq!(e.to_string(), "RequestMemory / 1024 + 5.000000000000000E-01");
//! assert_eq!(job.eval_str("undefined && false")?, Value::Bool(false));
//! # Ok::<(), petrel_classad::Error>(())
//! ```

pub mod ast;
pub mod builtins;
mod classad;
pub mod error;
pub mod eval;
pub mod json;
mod lexer;
pub mod matching;
mod ops;
pub mod parser;
mod scope;
pub mod timefmt;
pub mod tools;
pub mod unparse;
mod value;

pub use ast::{BinaryOp, Expr, Name, UnaryOp};
pub use classad::ClassAd;
pub use error::{excerpt, Error, Position, Result, QUOTE_LIMIT};
pub use eval::{eval, eval_attr, eval_in, Semantics};
pub use parser::{
    parse_classad, parse_classad_any, parse_expr, parse_expr_with as parse_expr_with_limits,
    ParseLimits,
};
pub use unparse::{unparse, unparse_value};
pub use value::{AbsTime, Value};
