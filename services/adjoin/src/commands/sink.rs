use anyhow::Context;

use adjoin_shared::config::Config;

use crate::cli::Cli;

/// Runs the sink service until Ctrl-C or SIGTERM.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    adjoin_sink::run(&config)
}
