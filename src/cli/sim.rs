//! `callbackd sim`: the FreeSWITCH simulator as a process, for demos and manual testing.
//!
//! Without a scenario it is an idle switch that still answers every command. On ctrl-c it
//! prints what happened to each call.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;

use crate::sim::{ClockMode, Scenario, SimConfig, Switch};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address the event socket listens on.
    #[arg(long, default_value = "127.0.0.1:8021")]
    pub listen: SocketAddr,
    /// Password clients must send with `auth`.
    #[arg(long, default_value = "ClueCon")]
    pub password: String,
    /// Scripted callers and parties (TOML, see tests/scenarios/README.md).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Run simulated time this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a positive number, not {}", args.speed);
    }
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::default(),
    };
    let config = SimConfig {
        listen: args.listen,
        password: args.password,
        clock: ClockMode::Scaled(args.speed),
        ..SimConfig::default()
    };
    let switch = Switch::start_with(config, scenario)
        .await
        .context("starting the simulator")?;
    eprintln!("callbackd sim: listening on {}", switch.addr());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    // What happened, one line per channel: the run's record for whoever watched it.
    let records = switch
        .records()
        .await
        .context("collecting the call records")?;
    let mut out = std::io::stdout().lock();
    for r in &records {
        writeln!(
            out,
            "{} {} from={} to={} events={} media=[{}] digits={:?} bridged={:?} hangup={}",
            r.uuid,
            r.channel_name,
            r.caller_number,
            r.destination,
            r.events.len(),
            r.media.join(" "),
            r.digits,
            r.bridges,
            r.hangup_cause.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}
