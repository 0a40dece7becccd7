//! Library side of command-line tools (printing is left to the caller).
//!
//! [`classad_eval`] behaves like HTCondor's `classad_eval`: arguments are
//! processed left to right; one that parses as a ClassAd (`[a = 1; b = 2]`
//! or `a = 1`) updates the context ad, any other is an expression that is
//! evaluated against it and printed. Before the first result after a
//! change, the context ad is printed unless `-quiet` was given.

use crate::classad::ClassAd;
use crate::error::{Error, Result};
use crate::eval::Semantics;
use crate::parser::{parse_classad_any, parse_expr, parse_first_classad};
use crate::unparse::{unparse_ad, unparse_value};

/// The usage text of `classad_eval`.
pub fn classad_eval_usage(prog: &str) -> String {
    format!(
        "Usage: {prog} [options] <expr|assignment>[ <expr|assignment>]*\n\n\
         Evaluate ClassAd expressions.\n\
         Assignments modify the ClassAd context.\n\n\
         Where [options] is one of\n\
         \t-[my-]file   <file>\tA file containing the initial ClassAd context\n\
         \t-target-file <file>\tA file containing the target ClassAd\n\
         \t-debug             \tEnable debug mode\n\
         \t-help              \tPrint this screen and exit\n\n\
         Flags may replace expressions or assignments:\n\
         \t-quiet             \tDon't print the ClassAd context after this flag\n"
    )
}

/// What a `classad_eval` run asks of its caller beyond the printed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalToolStatus {
    /// All arguments were processed.
    Done,
    /// `-help` was given; the usage text was written.
    Help,
}

fn make_ad(text: &str, from_file: bool) -> Option<ClassAd> {
    let mut t = text;
    if from_file && t.starts_with("{\n") && t.ends_with("\n}\n") {
        t = &t[2..];
    }
    if let Ok(ad) = parse_first_classad(t) {
        return Some(ad);
    }
    if let Ok(ad) = parse_first_classad(&format!("[{t}]")) {
        return Some(ad);
    }
    if from_file {
        return parse_classad_any(t).ok();
    }
    None
}

fn read_ad(path: &str) -> Result<ClassAd> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.into(),
        message: e.to_string(),
    })?;
    make_ad(&text, true).ok_or_else(|| {
        Error::Usage(format!(
            "Unable to turn file '{}' into a ClassAd.",
            crate::error::excerpt(path, crate::error::QUOTE_LIMIT)
        ))
    })
}

/// Run `classad_eval` over `args` (without the program name), appending
/// what it prints to `out`. Flags take one dash as in HTCondor; two are
/// accepted too.
pub fn classad_eval_to(args: &[String], out: &mut String) -> Result<EvalToolStatus> {
    let mut quiet = false;
    let mut updated = true;
    let mut target: Option<ClassAd> = None;
    let mut my = ClassAd::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let flag = arg.strip_prefix("--").map(|f| format!("-{f}"));
        let flag = flag.as_deref().unwrap_or(arg);
        match flag {
            "-quiet" => quiet = true,
            "-file" | "-my-file" | "-target-file" => {
                i += 1;
                let Some(path) = args.get(i) else {
                    return Err(Error::Usage(format!("{arg} requires an argument")));
                };
                let ad = read_ad(path)?;
                if flag == "-target-file" {
                    target = Some(ad);
                } else {
                    my = ad;
                }
            }
            "-debug" => {}
            "-help" => {
                out.push_str(&classad_eval_usage("classad_eval"));
                return Ok(EvalToolStatus::Help);
            }
            _ => {
                if let Some(ad) = make_ad(arg, false) {
                    my.update(&ad);
                    updated = true;
                } else {
                    if updated {
                        updated = false;
                        if !quiet {
                            out.push_str(&unparse_ad(&my));
                            out.push('\n');
                        }
                    }
                    let expr = parse_expr(arg).map_err(|_| {
                        Error::Usage(format!(
                            "Unable to turn '{}' into a ClassAd or an expression.",
                            crate::error::excerpt(arg, crate::error::QUOTE_LIMIT)
                        ))
                    })?;
                    let v =
                        crate::eval::eval_in(&expr, Some(&my), target.as_ref(), Semantics::Strict);
                    out.push_str(&unparse_value(&v));
                    out.push('\n');
                }
            }
        }
        i += 1;
    }
    Ok(EvalToolStatus::Done)
}

/// [`classad_eval_to`] returning the printed text.
pub fn classad_eval(args: &[String]) -> Result<String> {
    let mut out = String::new();
    classad_eval_to(args, &mut out)?;
    Ok(out)
}
