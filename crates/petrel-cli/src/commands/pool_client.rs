//! What the pool commands share: HTCondor-style flags (`-nobatch`, `--nobatch`), the
//! connection to the pool (started on first use), and reading ads back.

use anyhow::{bail, Context};
use petrel_classad::ClassAd;
use petrel_pool::proto::{Request, Response};
use petrel_pool::{default_pool_dir, Client};

/// The arguments of an HTCondor-style command (`condor_q -nobatch -af A B`), parsed by
/// the command itself: clap does not take single-dash words.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CondorArgs {
    /// Job ids and HTCondor-style flags; `-help` lists them.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// HTCondor's flags are single-dash words; two dashes work too. Returns the bare name.
pub fn flag(arg: &str) -> Option<&str> {
    let f = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    (!f.is_empty() && !f.starts_with(|c: char| c.is_ascii_digit())).then_some(f)
}

/// Walks an argument list, handing out flag values.
pub struct ArgWalk<'a> {
    args: &'a [String],
    i: usize,
    usage: &'static str,
}

impl<'a> ArgWalk<'a> {
    pub fn new(args: &'a [String], usage: &'static str) -> Self {
        ArgWalk { args, i: 0, usage }
    }

    pub fn next_arg(&mut self) -> Option<&'a str> {
        let a = self.args.get(self.i)?;
        self.i += 1;
        Some(a)
    }

    /// The value after a flag.
    pub fn value(&mut self, name: &str) -> anyhow::Result<&'a str> {
        match self.next_arg() {
            Some(v) => Ok(v),
            None => bail!("-{name} requires an argument\n{}", self.usage),
        }
    }

    /// Every following argument that is not a flag (for `-af A B C`).
    pub fn values(&mut self) -> Vec<&'a str> {
        let mut out = Vec::new();
        while let Some(a) = self.args.get(self.i) {
            if flag(a).is_some() {
                break;
            }
            out.push(a.as_str());
            self.i += 1;
        }
        out
    }

    pub fn unknown(&self, arg: &str) -> anyhow::Error {
        anyhow::anyhow!("unknown option {arg}\n{}", self.usage)
    }
}

/// Connects to this user's pool (or `PETREL_POOL_DIR`), starting it if needed.
pub fn connect() -> anyhow::Result<Client> {
    let dir = default_pool_dir();
    let program = std::env::current_exe().context("finding the petrel binary")?;
    Ok(Client::connect_or_start(&dir, &program)?)
}

/// Connects only if the pool is running.
pub fn connect_running() -> anyhow::Result<Client> {
    let dir = default_pool_dir();
    Ok(Client::connect(&petrel_pool::PoolPaths::new(dir))?)
}

/// Whether `e` is the pool's refusal (an untrusted pool, a request it turned down)
/// rather than a pool that is not there.
pub fn is_refusal(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<petrel_pool::PoolError>(),
        Some(petrel_pool::PoolError::Refused(_))
    )
}

/// Ads matching a query, parsed.
pub fn query(
    client: &mut Client,
    constraint: Option<String>,
    attrs: Vec<String>,
    history: bool,
    limit: Option<usize>,
) -> anyhow::Result<Vec<ClassAd>> {
    match client.call(&Request::Query {
        constraint,
        attrs,
        history,
        limit,
    })? {
        Response::Ads { ads } => ads
            .iter()
            .map(|t| {
                ClassAd::parse(t)
                    .map_err(|e| anyhow::anyhow!("the pool sent an unreadable ad: {e}"))
            })
            .collect(),
        other => bail!("unexpected answer from the pool: {other:?}"),
    }
}

/// Combines job ids and a constraint into one constraint expression.
pub fn ids_constraint(
    ids: &[petrel_pool::JobSelector],
    constraint: Option<String>,
) -> Option<String> {
    let mut parts = Vec::new();
    if !ids.is_empty() {
        let any: Vec<String> = ids
            .iter()
            .map(|s| match s {
                petrel_pool::JobSelector::Cluster(c) => format!("ClusterId == {c}"),
                petrel_pool::JobSelector::Job(j) => {
                    format!("(ClusterId == {} && ProcId == {})", j.cluster, j.proc)
                }
            })
            .collect();
        parts.push(format!("({})", any.join(" || ")));
    }
    if let Some(c) = constraint {
        parts.push(format!("({c})"));
    }
    (!parts.is_empty()).then(|| parts.join(" && "))
}

/// An attribute as `-af` prints it: strings without quotes, `undefined` when missing.
pub fn af_value(ad: &ClassAd, attr: &str) -> String {
    match ad.eval_attr(attr) {
        petrel_classad::Value::String(s) => s.to_string(),
        v => v.to_string(),
    }
}
