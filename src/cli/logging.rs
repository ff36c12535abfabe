//! Log setup: `tracing` with an env-filter, printed for humans or as JSON lines.
//!
//! `RUST_LOG` wins over `--log-level` so operators can turn up one module at a time.

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal or journald.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The log filter when neither `--log-level` nor `RUST_LOG` says otherwise.
pub const DEFAULT_LEVEL: &str = "info";

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "CALLBACKD_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Default log level or filter (`info`, `callbackd=debug`); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = DEFAULT_LEVEL)]
    pub log_level: String,
}

/// Install the global subscriber. Logs go to stderr so that stdout stays for output.
pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&args.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
