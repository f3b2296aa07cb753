use std::fmt::Write;

use anyhow::Context;

use adjoin_shared::config::{Config, Service};

use crate::cli::{Cli, ConfigArgs};

/// Prints the effective configuration as TOML, secrets redacted. The output is a
/// valid config file: `adjoin config > adjoin.toml` is a starting point.
pub fn run(cli: &Cli, args: &ConfigArgs) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(service) = args.service {
        config.metrics.listen = Some(config.metrics.listen_for(service));
    }
    let mut text = config.to_redacted_toml();
    if config.metrics.listen.is_none() {
        text.push_str(
            "\n# metrics.listen is unset: each service serves /metrics on its own port:\n",
        );
        for service in Service::ALL {
            let _ = writeln!(
                text,
                "#   {:<9} {}",
                service.as_str(),
                config.metrics.listen_for(service)
            );
        }
    }
    print!("{text}");
    Ok(())
}
