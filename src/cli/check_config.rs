//! `callbackd check-config FILE`: validate a configuration without connecting to anything.
//! Operators run it before a restart, so a typo is caught at their desk and not at 3 a.m.

use std::path::PathBuf;

use clap::Args;

use crate::config::{Config, ExitAction, NoAgentPolicy};

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML file to check.
    pub file: PathBuf,
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    // The error already names the file, line and key; context would only repeat it.
    let config = Config::load(&args.file)?;
    print!("{}", summary(&config));
    Ok(())
}

fn summary(c: &Config) -> String {
    let mut out = format!(
        "ok: {} queue(s), {} line(s), {} agent(s)\nesl: {}\nredis: {} (prefix {:?})\n",
        c.queues.len(),
        c.lines.len(),
        c.agents.len(),
        c.esl.address,
        c.redis.redacted_url(),
        c.redis.key_prefix
    );
    for q in &c.queues {
        let max_wait = match &q.max_wait {
            None => "none".to_owned(),
            Some(m) => match &m.exit {
                ExitAction::Hangup => format!("{} s then hang up", m.after.as_secs()),
                ExitAction::Transfer { extension, context } => {
                    format!("{} s then {extension}@{context}", m.after.as_secs())
                }
            },
        };
        let no_agent = match &q.no_agent {
            NoAgentPolicy::Wait => "wait".to_owned(),
            NoAgentPolicy::Transfer { extension, context } => format!("{extension}@{context}"),
        };
        let agents = c
            .agents
            .iter()
            .filter(|a| a.queues.iter().any(|s| s.queue == q.name))
            .count();
        out.push_str(&format!(
            "queue {}: {}, ring {} s, wrap-up {} s, max wait {max_wait}, no agent: {no_agent}, {agents} agent(s)\n",
            q.name,
            q.strategy.as_str(),
            q.ring_time.as_secs(),
            q.wrap_up.as_secs(),
        ));
    }
    for l in &c.lines {
        let callback = match (l.callback.enabled, &l.outbound_caller_id) {
            (false, _) => "off".to_owned(),
            (true, None) => "enabled but never offered: no outbound_caller_id".to_owned(),
            (true, Some(_)) => format!("on, expiry {} min", l.callback.expiry.as_secs() / 60),
        };
        out.push_str(&format!(
            "line {} ({}) -> queue {}, language {}, callback {callback}\n",
            l.name, l.did, l.queue, l.language
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_the_example_names_every_queue_and_line() {
        let text = include_str!("../../callbackd.example.toml");
        let config = Config::parse(std::path::Path::new("example.toml"), text).unwrap();
        let s = summary(&config);
        assert!(
            s.starts_with("ok: 2 queue(s), 1 line(s), 2 agent(s)"),
            "{s}"
        );
        assert!(s.contains("queue support: longest-idle, ring 20 s"), "{s}");
        assert!(
            s.contains("line main (+4930123456) -> queue support"),
            "{s}"
        );
    }
}
