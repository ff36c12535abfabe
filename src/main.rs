//! The `callbackd` binary: parses the command line and hands off to the subcommand.
//!
//! Errors carry context here (anyhow); the library's errors stay typed.

use clap::Parser;

use callbackd::cli::{self, Cli};
use callbackd::config::Config;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Logging starts before the command runs; a config that does not load is reported by
    // the command itself, with the defaults' logging.
    let config = cli
        .command
        .daemon_config()
        .and_then(|path| Config::load(path).ok());
    cli::logging::init(
        &cli.log,
        config.as_ref().map(|c| &c.log),
        cli.command.default_log_level(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callbackd: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callbackd: {e:#}");
            // The status says why to scripts and to systemd (see `cli::exit_code`).
            std::process::ExitCode::from(cli::exit_code(&e))
        }
    }
}
