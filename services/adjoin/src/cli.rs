use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use adjoin_generator::GenerateArgs;
use adjoin_shared::config::Service;
use adjoin_shared::telemetry::LogFormat;

/// Real-time ad analytics: joins clicks to impressions from Kafka on event time and
/// keeps PostgreSQL tables of impressions, click outcomes and per-minute rollups.
#[derive(Debug, Parser)]
#[command(name = "adjoin", version, propagate_version = true)]
#[command(
    after_help = "Configuration: defaults, then --config FILE (TOML), then environment \
variables ADJOIN__SECTION__KEY (e.g. ADJOIN__KAFKA__BROKERS=127.0.0.1:9092). \
Logging: RUST_LOG filters (default info)."
)]
pub struct Cli {
    /// TOML configuration file; environment variables override it.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "ADJOIN_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Log line format on stderr: pretty or json.
    #[arg(
        long,
        global = true,
        env = "ADJOIN_LOG_FORMAT",
        default_value = "pretty",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline in one process with generated traffic and a live
    /// summary: on the embedded mock cluster unless kafka.brokers is set, into
    /// database.url (default: the SQLite file adjoin.db). Ctrl-C stops it cleanly.
    Demo(crate::commands::demo::DemoArgs),
    /// Print the effective configuration (defaults, file and environment merged),
    /// with secrets redacted.
    Config(ConfigArgs),
    /// Write realistic impression and click traffic to the raw topics (or files),
    /// with the truth a correct pipeline must produce from it.
    Generate(Box<GenerateArgs>),
    /// Run the ingest service: raw topics in, validated and re-keyed keyed topics,
    /// dead letters and watermark markers out. Stops cleanly on Ctrl-C or SIGTERM.
    Ingest,
    /// Run the join service: keyed topics in, one outcome per distinct click out
    /// (`click-outcomes`). Start more processes with the same `join.group_id` to
    /// share the shards. Stops cleanly on Ctrl-C or SIGTERM.
    Join,
    /// Run the sink: impressions and click outcomes into the database
    /// (`database.url`, PostgreSQL or SQLite) with per-minute rollups, its offsets
    /// in the same transactions. Stops cleanly on Ctrl-C or SIGTERM.
    Sink,
    /// Watch every actor of the running services live: messages/s, mailbox depth,
    /// handler time, restarts and, for join shards, state size and watermark lag.
    /// Reads the metrics endpoints given with --endpoint (default: every service's
    /// port on 127.0.0.1). Keys: s changes the sort column, q quits.
    Top(crate::commands::top::TopArgs),
    /// Compare the database (`database.url`) with a generator's truth file: distinct
    /// impressions, each click's outcome, rollups against the facts and the truth's
    /// per-minute totals. Prints the first differences of each kind; exits 1 on any.
    Verify(crate::commands::verify::VerifyArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Resolve per-service defaults (the metrics address) for this service.
    #[arg(long, value_parser = parse_service)]
    pub service: Option<Service>,
}

fn parse_service(name: &str) -> Result<Service, String> {
    Service::ALL
        .into_iter()
        .find(|service| service.as_str() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Service::ALL
                .iter()
                .map(|service| service.as_str())
                .collect();
            format!("unknown service {name:?}; one of {}", names.join(", "))
        })
}
