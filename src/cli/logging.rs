//! Log setup: `tracing` with an env-filter, printed for humans or as JSON lines.
//!
//! `RUST_LOG` wins over `--log-level` so operators can turn up one module at a time; the
//! daemon's config file (`[log]`) applies where the command line says nothing.

use std::io::IsTerminal;

use clap::Args;
use tracing_subscriber::EnvFilter;

pub use crate::config::LogFormat;
use crate::config::LogSettings;

/// The log filter when neither `--log-level` nor `RUST_LOG` says otherwise.
pub const DEFAULT_LEVEL: &str = "info";

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format [default: the config file's `[log]`, else human].
    #[arg(long, global = true, value_enum, env = "CALLBACKD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log level or filter (`info`, `callbackd=debug`) [default: the config file's `[log]`,
    /// else info]; RUST_LOG overrides it.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
}

/// Install the global subscriber. Logs go to stderr so that stdout stays for output, in
/// colour only when stderr is a terminal.
/// Each setting comes from the command line, else from `config` (the daemon's `[log]`),
/// else `default_level` and human lines; RUST_LOG wins over any level.
pub fn init(args: &LogArgs, config: Option<&LogSettings>, default_level: &str) {
    let level = args
        .log_level
        .as_deref()
        .or(config.map(|c| c.level.as_str()))
        .unwrap_or(default_level);
    let format = args
        .log_format
        .or(config.map(|c| c.format))
        .unwrap_or_default();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LEVEL));
    // Colour codes help a person at a terminal and litter a file or journald with `ESC[2m`.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
