//! `adjoin`: one binary, one subcommand per service, so each service is deployed,
//! configured and scaled on its own.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use adjoin_shared::telemetry;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(message) = telemetry::init(cli.log_format, None) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let outcome = match &cli.command {
        cli::Command::Config(args) => commands::config::run(&cli, args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
