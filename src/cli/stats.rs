//! `callbackd stats`: each queue's callers and callbacks as Redis holds them now.
//!
//! The same figures the demo ends with, for a deployment.

use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The daemon's config file: names the queues and the Redis to read.
    #[arg(long, env = "CALLBACKD_CONFIG")]
    pub config: PathBuf,
}

pub async fn run(args: StatsArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let store = Store::connect(&config.redis).await?;
    print(&store, &config).await
}

/// One line per queue: callers waiting, callbacks open, callbacks ever, mean callback wait.
pub async fn print(store: &Store, config: &Config) -> anyhow::Result<()> {
    println!(
        "{:<16} {:>8} {:>12} {:>15} {:>22}",
        "queue", "waiting", "callbacks", "callbacks ever", "avg callback wait"
    );
    for queue in &config.queues {
        let waiting = store.waiting_count(&queue.name).await?;
        let callbacks = store.callback_stats(&queue.name).await?;
        let average = callbacks
            .average_wait
            .map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        println!(
            "{:<16} {:>8} {:>12} {:>15} {:>22}",
            queue.name.as_str(),
            waiting,
            callbacks.in_queue,
            callbacks.total,
            average
        );
    }
    Ok(())
}
