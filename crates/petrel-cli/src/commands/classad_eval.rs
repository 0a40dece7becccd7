//! `petrel classad-eval`: HTCondor's `classad_eval`.
//!
//! Arguments are taken HTCondor style and in order: an ad (`'[ a = 1 ]'`) or
//! an assignment (`'a = 1'`) updates the context ad; anything else is an
//! expression, evaluated against it and printed. Flags: `-quiet`,
//! `-file`/`-my-file FILE`, `-target-file FILE`, `-debug`, `-help` (single
//! dash as in HTCondor; two dashes work too).

use petrel_classad::tools::{classad_eval_to, EvalToolStatus};
use petrel_classad::Error;

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Ads, assignments, expressions and flags, processed left to right.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "AD|ASSIGNMENT|EXPR|FLAG"
    )]
    pub args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut out = String::new();
    let result = classad_eval_to(&args.args, &mut out);
    print!("{out}");
    match result {
        Ok(EvalToolStatus::Done) => Ok(0),
        Ok(EvalToolStatus::Help) => Ok(255),
        Err(Error::Usage(msg)) if msg.ends_with("requires an argument") => {
            eprintln!("petrel classad-eval: {msg}");
            Ok(255)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}
