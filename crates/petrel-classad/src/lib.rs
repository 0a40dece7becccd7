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
pub use error::{Error, Position, Result};
pub use eval::{eval, eval_attr, eval_in, Semantics};
pub use parser::{
    parse_classad, parse_classad_any, parse_expr, parse_expr_with as parse_expr_with_limits,
    ParseLimits,
};
pub use unparse::{unparse, unparse_value};
pub use value::{AbsTime, Value};
