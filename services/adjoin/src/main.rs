//! `adjoin`: one binary, one subcommand per service, so each service is deployed,
//! configured and scaled on its own.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use adjoin_shared::telemetry::{self, LogFormat};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(message) = telemetry::init(cli.log_format, None) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let outcome = match &cli.command {
        cli::Command::Config(args) => commands::config::run(&cli, args),
        cli::Command::Generate(args) => commands::generate::run(&cli, args),
        cli::Command::Ingest => commands::ingest::run(&cli),
        cli::Command::Join => commands::join::run(&cli),
        cli::Command::Sink => commands::sink::run(&cli),
        cli::Command::Verify(args) => commands::verify::run(&cli, args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report_failure(cli.log_format, &error);
            ExitCode::FAILURE
        }
    }
}

/// Says why the command failed: as a log event when logs are JSON (so stderr stays
/// one object per line), as a plain line for people otherwise.
fn report_failure(format: LogFormat, error: &anyhow::Error) {
    if format == LogFormat::Json && tracing::enabled!(tracing::Level::ERROR) {
        tracing::error!(error = format!("{error:#}"), "adjoin failed");
    } else {
        eprintln!("error: {error:#}");
    }
}
