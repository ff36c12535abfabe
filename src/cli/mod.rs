//! The operator's command line: clap definitions and one function per subcommand.
//!
//! Subcommands stay thin: they parse, build the library's objects and report.

pub mod logging;
mod probe;
mod sim;

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
    /// Connect to a FreeSWITCH event socket, print `status`, then every event, one per line.
    Probe(probe::ProbeArgs),
    /// Run the FreeSWITCH simulator (an ESL server with scripted calls).
    Sim(sim::SimArgs),
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Probe(args) => probe::run(args).await,
        Command::Sim(args) => sim::run(args).await,
    }
}
