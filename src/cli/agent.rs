//! `callbackd agent set ID STATE`: an operator changes an agent's state from a shell.
//! It goes through the same atomic store step as the daemon, so the change is checked and recorded.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::queue::{AgentId, AgentState, Clock, SystemClock};
use crate::store::{StateSource, Store};

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Set an agent's state: available, away, offline or transfers_only.
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The agent's id as in the config (`alice`).
    pub id: String,
    /// available, away, offline or transfers_only.
    pub state: String,
    /// The daemon's config file: names the agents and the Redis to write to.
    #[arg(long, env = "CALLBACKD_CONFIG")]
    pub config: PathBuf,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    match args.command {
        AgentCommand::Set(args) => set(args).await,
    }
}

async fn set(args: SetArgs) -> anyhow::Result<()> {
    let state: AgentState = args.state.parse()?;
    if !state.is_chosen_by_people() {
        bail!("{state} is set by the daemon itself while a call is handled; choose available, away, offline or transfers_only");
    }
    let id = AgentId::new(&args.id)?;
    let config = Config::load(&args.config)?;
    let agent = config.agent(&id).with_context(|| {
        format!(
            "agent {id} is not in {}; agents there: {}",
            args.config.display(),
            config
                .agents
                .iter()
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let store = Store::connect(&config.redis).await?;
    let now = SystemClock.now();
    // The daemon may never have run against this Redis: register the agent first. It keeps
    // the state of an agent already there.
    store
        .register_agents(std::slice::from_ref(agent), now)
        .await
        .context("registering the agent")?;
    let previous = store
        .set_agent_state(&id, state, now, StateSource::Cli)
        .await
        .with_context(|| format!("setting agent {id} to {state}"))?;
    if previous == state {
        println!("{id}: already {state}");
    } else {
        println!("{id}: {previous} -> {state}");
    }
    Ok(())
}
