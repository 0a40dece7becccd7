//! Petrel's local pool: HTCondor's schedd, negotiator, startd and starter for one machine.
//!
//! - [`daemon::run`] is `petrel pool run`: the queue (SQLite, [`store`]), matchmaking
//!   ([`negotiate`]), the machine as one partitionable slot ([`machine`]), the job
//!   lifecycle ([`lifecycle`]) and the API on a Unix socket ([`proto`]).
//! - [`starter::run`] is `petrel starter`: one process per running job.
//! - [`client::Client`] talks to a daemon, starting it on first use.
//!
//! Names, states and hold codes are HTCondor's ([`job::JobStatus`], [`holdcodes`]); the
//! jobs' event logs are HTCondor user logs (`petrel-userlog`).

pub mod client;
pub mod config;
pub mod core;
pub mod creds;
pub mod daemon;
pub mod enter;
pub mod error;
pub mod events;
pub mod gate;
pub mod holdcodes;
pub mod job;
pub mod lifecycle;
pub mod machine;
pub mod negotiate;
pub mod policy;
pub mod proc_ads;
pub mod protected;
pub mod proto;
pub mod queue;
pub mod runtimes;
pub mod starter;
pub mod starters;
pub mod store;
mod submit;
pub mod trust;

pub use client::Client;
pub use config::{default_pool_dir, PoolConfig, PoolPaths};
pub use error::PoolError;
pub use job::{JobId, JobSelector, JobStatus};
