//! The operator's command line: clap definitions and one function per subcommand.
//!
//! Subcommands stay thin: they parse, build the library's objects and report.

mod agent;
mod check_config;
mod demo;
pub mod logging;
mod probe;
mod prompts;
pub mod remote;
mod run;
mod service;
mod sim;
mod stats;

use clap::{Parser, Subcommand};

/// Queue-callback ("virtual hold") daemon for FreeSWITCH.
#[derive(Debug, Parser)]
#[command(name = "callbackd", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: logging::LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// See it work: a simulated FreeSWITCH, a private Redis and the daemon, narrated.
    Demo(demo::DemoArgs),
    /// Run the daemon: take over the configured queues of a FreeSWITCH.
    Run(run::RunArgs),
    /// Connect to a FreeSWITCH event socket, print `status`, then every event, one per line.
    Probe(probe::ProbeArgs),
    /// List the prompt files, or generate the default set in every shipped language.
    Prompts(prompts::PromptsArgs),
    /// Validate a configuration file without starting, and print a short summary.
    CheckConfig(check_config::CheckConfigArgs),
    /// Each queue's waiting callers and callbacks (in queue, ever, mean wait to answer).
    Stats(stats::StatsArgs),
    /// Agent administration through the store (`agent set alice away --config FILE`).
    Agent(agent::AgentArgs),
    /// Run the FreeSWITCH simulator (an ESL server with scripted calls).
    Sim(sim::SimArgs),
    /// A running daemon's readiness, queues and agents (through its HTTP API).
    Status(remote::StatusArgs),
    /// Have a running daemon read its config file again, as SIGHUP does (through its HTTP
    /// API): a config that does not load leaves the one in force, and says why.
    Reload(remote::StatusArgs),
    /// List, show, create or cancel callbacks (through the daemon's HTTP API).
    Callbacks(remote::CallbacksArgs),
    /// List the agents and their states (through the daemon's HTTP API).
    Agents(remote::AgentsArgs),
    /// Print the domain events as they happen (through the daemon's HTTP API).
    Events(remote::EventsArgs),
    /// List webhook dead letters, or replay one (through the daemon's HTTP API).
    Webhooks(remote::WebhooksArgs),
}

impl Command {
    /// The log level when neither the command line nor a config says: the demo narrates
    /// on stdout, and routine daemon logs would drown it unless asked for.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Self::Demo(_) => "warn",
            _ => logging::DEFAULT_LEVEL,
        }
    }

    /// The daemon's config file, whose `[log]` section sets up its logs.
    pub fn daemon_config(&self) -> Option<&std::path::Path> {
        match self {
            Self::Run(args) => Some(&args.config),
            _ => None,
        }
    }
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Probe(args) => probe::run(args).await,
        Command::Prompts(args) => prompts::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Agent(args) => agent::run(args).await,
        Command::Stats(args) => stats::run(args).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Status(args) => Ok(remote::status(args).await?),
        Command::Reload(args) => Ok(remote::reload(args).await?),
        Command::Callbacks(args) => Ok(remote::callbacks(args).await?),
        Command::Agents(args) => Ok(remote::agents(args).await?),
        Command::Events(args) => Ok(remote::events(args).await?),
        Command::Webhooks(args) => Ok(remote::webhooks(args).await?),
    }
}

/// sysexits(3): the config file could not be read.
pub const EX_NOINPUT: u8 = 66;
/// sysexits(3): the config file is not valid (systemd's unit does not restart on it).
pub const EX_CONFIG: u8 = 78;
/// sysexits(3): a service the daemon needs refused it for good (Redis's password, say).
pub const EX_UNAVAILABLE: u8 = 69;

/// The exit status that says why a command failed: the API commands' own, sysexits(3)
/// for a config that does not load or a store that refuses, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(remote) = cause.downcast_ref::<remote::RemoteError>() {
            return remote.exit_code();
        }
        if let Some(config) = cause.downcast_ref::<crate::config::ConfigError>() {
            return match config {
                crate::config::ConfigError::Read { .. } => EX_NOINPUT,
                crate::config::ConfigError::Invalid { .. } => EX_CONFIG,
            };
        }
        if cause.downcast_ref::<crate::store::StoreError>().is_some() {
            return EX_UNAVAILABLE;
        }
    }
    1
}
