//! One module per `petrel` command. Each exposes `Args` (its flags, with the help text)
//! and `run(Args) -> anyhow::Result<u8>`, the process exit status on success.

pub mod act;
pub mod classad_eval;
pub mod image;
pub mod pool;
pub mod pool_client;
pub mod probe;
pub mod queue;
pub mod run;
pub mod submit;
pub mod wait;

/// Exit status when petrel itself fails (bad option, setup error), as `docker run` uses 125.
pub const EXIT_PETREL_ERROR: u8 = 125;
