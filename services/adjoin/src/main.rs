//! `adjoin`: one binary, one subcommand per service, so each service is deployed,
//! configured and scaled on its own.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use adjoin_shared::telemetry::{self, LogFormat};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The demo prints its own summary on stdout; only warnings go to stderr
    // unless RUST_LOG asks for more.
    let demo_filter =
        matches!(cli.command, cli::Command::Demo(_)) && std::env::var_os("RUST_LOG").is_none();
    if let Err(message) = telemetry::init(cli.log_format, demo_filter.then_some("warn")) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    if let Err(message) = configure_failpoints() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let outcome = match &cli.command {
        cli::Command::Config(args) => commands::config::run(&cli, args),
        cli::Command::Demo(args) => commands::demo::run(&cli, args),
        cli::Command::Generate(args) => commands::generate::run(&cli, args),
        cli::Command::Ingest => commands::ingest::run(&cli),
        cli::Command::Join => commands::join::run(&cli),
        cli::Command::Sink => commands::sink::run(&cli),
        cli::Command::Top(args) => commands::top::run(&cli, args),
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

/// Failpoints from `FAILPOINTS` (`name=actions;name=actions`, the `fail` crate's
/// syntax), so system tests can make a service process fail on cue. Only builds
/// whose services have their `failpoints` feature (test builds) act on them.
fn configure_failpoints() -> Result<(), String> {
    let Ok(spec) = std::env::var("FAILPOINTS") else {
        return Ok(());
    };
    if !fail::has_failpoints() {
        tracing::warn!("FAILPOINTS is set, but this build has no failpoints; ignoring it");
        return Ok(());
    }
    for entry in spec.split(';').filter(|entry| !entry.trim().is_empty()) {
        let (name, actions) = entry.split_once('=').ok_or_else(|| {
            format!("FAILPOINTS entry {entry:?} must be name=actions, e.g. join-shard-record=100*off->1*panic->off")
        })?;
        fail::cfg(name.trim(), actions.trim())
            .map_err(|error| format!("FAILPOINTS entry {entry:?}: {error}"))?;
        tracing::warn!(
            failpoint = name.trim(),
            actions = actions.trim(),
            "failpoint armed"
        );
    }
    Ok(())
}
