//! The `callbackd` binary: parses the command line and hands off to the subcommand.
//!
//! Errors carry context here (anyhow); the library's errors stay typed.

use clap::Parser;

use callbackd::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    if cli.command.quiet_by_default() && cli.log.log_level == cli::logging::DEFAULT_LEVEL {
        cli.log.log_level = "warn".into();
    }
    cli::logging::init(&cli.log);
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
            std::process::ExitCode::FAILURE
        }
    }
}
