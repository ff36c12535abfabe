//! `callbackd probe`: the first thing an operator runs against a real switch.
//!
//! It uses the same supervised client as the daemon, so it connects and decodes as the daemon
//! does; it subscribes to every event by default, without the daemon's filters.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use crate::esl::{Client, ClientConfig, Delivery, Event, EventFormat};

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Event socket address.
    #[arg(long, default_value = "127.0.0.1:8021")]
    pub esl: String,
    /// Event socket password.
    #[arg(long, default_value = "ClueCon", env = "CALLBACKD_ESL_PASSWORD")]
    pub password: String,
    /// Events to subscribe to (`CHANNEL_PARK DTMF CUSTOM callbackd::agent`); all by default.
    #[arg(long, num_args = 1.., default_value = "ALL")]
    pub events: Vec<String>,
    /// Print each event as one JSON object instead of a summary line.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let mut config = ClientConfig::new(&args.esl, args.password.as_str());
    let (events, custom): (Vec<_>, Vec<_>) =
        args.events.iter().cloned().partition(|e| !e.contains("::"));
    config.events = events;
    config.custom_subclasses = custom;
    config.format = EventFormat::Plain;
    let (client, mut deliveries) = Client::start(config);
    let stdout = std::io::stdout();
    loop {
        let delivery = tokio::select! {
            d = deliveries.recv() => d,
            _ = tokio::signal::ctrl_c() => {
                client.shutdown().await;
                return Ok(());
            }
        };
        let Some(delivery) = delivery else {
            return Ok(());
        };
        let mut out = stdout.lock();
        match delivery {
            Delivery::Connected | Delivery::Reconnected => {
                let status = client.api("status").await.context("api status")?;
                writeln!(out, "# connected to {}\n{}", args.esl, status.trim_end())?;
            }
            Delivery::Disconnected(reason) => writeln!(out, "# disconnected: {reason}")?,
            Delivery::Gap { dropped } => writeln!(out, "# gap: {dropped} events dropped")?,
            Delivery::Event(event) if args.json => {
                let map: serde_json::Map<String, serde_json::Value> = event
                    .headers()
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_owned().into()))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(map))?;
            }
            Delivery::Event(event) => writeln!(out, "{}", summary(&event))?,
        }
    }
}

/// One line per event: its name and the headers that tell calls apart.
fn summary(event: &Event) -> String {
    let mut line = event.name().unwrap_or_default().into_owned();
    for header in [
        "Event-Subclass",
        "Unique-ID",
        "Channel-Name",
        "Caller-Caller-ID-Number",
        "Application",
        "Application-Response",
        "DTMF-Digit",
        "Hangup-Cause",
        "Job-UUID",
    ] {
        if let Some(value) = event.header(header) {
            line.push_str(&format!(" {header}={value}"));
        }
    }
    let body = event.body();
    if !body.is_empty() {
        line.push_str(&format!(" body={:?}", body.trim_end()));
    }
    line
}
