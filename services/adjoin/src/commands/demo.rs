//! `adjoin demo`: the whole pipeline in one process (generator, ingest, join,
//! sink and one metrics server) with a live summary. With no `kafka.brokers` it
//! runs on the embedded mock cluster, with the default `database.url` on an
//! SQLite file, so a fresh machine needs nothing but the binary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::System;
use anyhow::Context;
use clap::{Args, Parser};

use adjoin_generator::GenerateArgs;
use adjoin_shared::config::{redact_url, Config, DatabaseKind, Service};
use adjoin_shared::kafka::KafkaEndpoint;
use adjoin_shared::metrics::scrape::{bucket_delta, histogram_quantile, Scrape};
use adjoin_shared::metrics::{Health, Metrics, MetricsServer};
use adjoin_sink::store::Store;

use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Impressions per second the built-in generator writes; clicks, duplicates,
    /// late, orphan and malformed records come on top, as `adjoin generate` makes them.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Stop after this long (e.g. 2m); default: run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// How often to print the summary.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub every: Duration,
    /// Seed of the generated traffic (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `GenerateArgs` is a flattened argument group, so it is built the way the
/// command line builds it: its defaults are then the same as `adjoin generate`'s.
#[derive(Parser)]
struct GeneratorCommand {
    #[command(flatten)]
    args: GenerateArgs,
}

fn generator_args(args: &DemoArgs) -> anyhow::Result<GenerateArgs> {
    let mut argv = vec!["generate".to_owned(), format!("--rate={}", args.rate)];
    if let Some(seed) = args.seed {
        argv.push(format!("--seed={seed}"));
    }
    let mut parsed = GeneratorCommand::try_parse_from(argv)
        .context("building the generator's settings")?
        .args;
    parsed.quiet = true;
    parsed.validate().map_err(anyhow::Error::msg)?;
    Ok(parsed)
}

pub fn run(cli: &Cli, args: &DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0.0 && args.rate <= 50_000.0,
        "--rate {} is out of range: give 1 to 50000 impressions per second",
        args.rate
    );
    anyhow::ensure!(
        args.every >= Duration::from_millis(100),
        "--every must be at least 100ms"
    );
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    config
        .database
        .kind()
        .map_err(anyhow::Error::msg)
        .context("checking database.url")?;
    let generate = generator_args(args)?;
    let endpoint = KafkaEndpoint::from_config(&config.kafka).context("configuring Kafka")?;
    let metrics = Metrics::new();
    let health = Health::new();
    let listen = config.metrics.listen_for(Service::Demo);
    let system = System::new();
    let server = system
        .block_on(async { MetricsServer::start(listen, metrics.clone(), health.clone()) })
        .with_context(|| {
            format!(
                "serving metrics on {listen}; another demo may be running, or set \
                 metrics.listen (ADJOIN__METRICS__LISTEN) to a free address"
            )
        })?;
    print_banner(&config, &endpoint, server.local_addr(), args);

    // Downstream first, so each stage is listening before its input arrives.
    let sink = adjoin_sink::SinkService::start(&config, &endpoint, &metrics, &health)
        .context("starting the sink")?;
    let join = adjoin_join::JoinService::start(&config, &endpoint, &metrics, &health)
        .context("starting the join")?;
    let ingest = adjoin_ingest::IngestService::start(&config, &endpoint, &metrics, &health)
        .context("starting ingest")?;
    let stop = Arc::new(AtomicBool::new(false));
    let generator = start_generator(&endpoint, &config, generate, Arc::clone(&stop))?;

    let started = Instant::now();
    let reason = system.block_on(watch(
        &config.database.url,
        &metrics,
        args,
        started,
        &generator,
    ));
    println!("stopping ({reason}): flushing and committing what is in flight");
    stop.store(true, Ordering::Relaxed);
    let generated = generator.join();
    ingest.shutdown();
    join.shutdown();
    sink.shutdown();
    system.block_on(server.stop());
    let generated = match generated {
        Ok(Ok(summary)) => summary.describe(),
        Ok(Err(error)) => return Err(error.context("the generator failed")),
        Err(_) => anyhow::bail!("the generator thread panicked"),
    };
    println!("generator: {generated}");
    print_next_steps(&config);
    // The process ends next. Tearing the embedded cluster down first would only
    // make clients still closing log "all brokers down".
    std::mem::forget(endpoint);
    Ok(())
}

type GeneratorThread = JoinHandle<anyhow::Result<adjoin_generator::Summary>>;

fn start_generator(
    endpoint: &KafkaEndpoint,
    config: &Config,
    args: GenerateArgs,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<GeneratorThread> {
    let endpoint = endpoint.clone();
    let config = config.clone();
    std::thread::Builder::new()
        .name("demo-generator".to_owned())
        .spawn(move || adjoin_generator::run_with_endpoint(&endpoint, &config, &args, &stop))
        .context("starting the generator thread")
}

fn print_banner(
    config: &Config,
    endpoint: &KafkaEndpoint,
    metrics: std::net::SocketAddr,
    args: &DemoArgs,
) {
    let kafka = if endpoint.is_embedded() {
        format!(
            "embedded mock cluster at {} (set kafka.brokers to use real brokers)",
            endpoint.bootstrap_servers()
        )
    } else {
        endpoint.bootstrap_servers().to_owned()
    };
    println!("adjoin demo: generator -> ingest -> join -> sink, in one process");
    println!("  kafka     {kafka}");
    println!("  database  {}", redact_url(&config.database.url));
    println!("  metrics   http://{metrics}/metrics");
    println!(
        "  traffic   {} impressions/s with clicks; {}",
        args.rate,
        match args.duration {
            Some(duration) => format!("stops after {}", humantime::format_duration(duration)),
            None => "Ctrl-C stops".to_owned(),
        }
    );
}

fn print_next_steps(config: &Config) {
    let url = &config.database.url;
    let query = "SELECT * FROM kpis_minute ORDER BY minute DESC LIMIT 5";
    println!("look next:");
    match config.database.kind() {
        Ok(DatabaseKind::Sqlite) => {
            let file = url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap_or_default();
            println!("  sqlite3 {file} \"{query}\"");
        }
        _ => println!("  psql \"{}\" -c \"{query}\"", redact_url(url)),
    }
    println!("  docs/schema.md (tables and views), docs/metrics.md (the metrics)");
}

/// Prints the summary every `--every` until Ctrl-C, SIGTERM, `--duration` or the
/// generator's end; returns why it stopped.
async fn watch(
    url: &str,
    metrics: &Metrics,
    args: &DemoArgs,
    started: Instant,
    generator: &GeneratorThread,
) -> &'static str {
    let mut summary = Summary::new(url);
    let signal = adjoin_shared::signals::wait_for_shutdown_signal();
    tokio::pin!(signal);
    let mut ticks = tokio::time::interval(args.every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = &mut signal => return "Ctrl-C",
            _ = ticks.tick() => {}
        }
        summary.print(metrics, started.elapsed()).await;
        if args
            .duration
            .is_some_and(|duration| started.elapsed() >= duration)
        {
            return "--duration reached";
        }
        if generator.is_finished() {
            return "the generator ended";
        }
    }
}

/// What the summary compares between ticks.
struct Summary {
    store: Option<Store>,
    url: String,
    previous: Scrape,
    previous_at: Instant,
}

impl Summary {
    fn new(url: &str) -> Self {
        Self {
            store: None,
            url: url.to_owned(),
            previous: Scrape::default(),
            previous_at: Instant::now(),
        }
    }

    async fn print(&mut self, metrics: &Metrics, elapsed: Duration) {
        let scrape = Scrape::parse(&metrics.encode());
        let seconds = self.previous_at.elapsed().as_secs_f64().max(1e-3);
        let previous = &self.previous;
        let rate = |name: &str, filter: &[(&str, &str)]| {
            (scrape.sum(name, filter) - previous.sum(name, filter)).max(0.0) / seconds
        };
        let records_in = rate("adjoin_ingest_records_total", &[]);
        let rows_out = rate("adjoin_sink_rows_total", &[("result", "inserted")]);
        let waiting = scrape.sum("adjoin_join_waiting_clicks", &[]);
        let duplicates = scrape.sum("adjoin_join_duplicates_total", &[]);
        let dead_letters = scrape.sum("adjoin_ingest_dead_letters_total", &[])
            + scrape.sum("adjoin_join_dead_letters_total", &[])
            + scrape.sum("adjoin_sink_dead_letters_total", &[]);
        let latency = "adjoin_sink_end_to_end_latency_seconds";
        let recent = bucket_delta(
            &scrape.buckets(latency, &[]),
            &self.previous.buckets(latency, &[]),
        );
        let show_seconds = |value: Option<f64>| {
            value.map_or_else(|| "-".to_owned(), |seconds| format!("{seconds:.2}s"))
        };
        let stored = self.read_database().await;
        println!(
            "[{:>5}s] in {records_in:.0} records/s, out {rows_out:.0} rows/s | {} | waiting {waiting:.0}, duplicates {duplicates:.0}, DLQ {dead_letters:.0}",
            elapsed.as_secs(),
            stored.counts,
        );
        println!(
            "         {} | end-to-end latency p50 {}, p99 {}",
            stored.kpis,
            show_seconds(histogram_quantile(&recent, 0.5)),
            show_seconds(histogram_quantile(&recent, 0.99)),
        );
        self.previous = scrape;
        self.previous_at = Instant::now();
    }

    /// Rows and KPIs as the database has them: what a dashboard would show.
    async fn read_database(&mut self) -> Stored {
        match self.try_read_database().await {
            Ok(stored) => stored,
            Err(error) => {
                // Reconnect on the next tick; the sink may still be migrating.
                self.store = None;
                Stored {
                    counts: format!("database not readable yet: {error}"),
                    kpis: String::new(),
                }
            }
        }
    }

    async fn try_read_database(&mut self) -> anyhow::Result<Stored> {
        if self.store.is_none() {
            self.store = Some(Store::connect(&self.url, 1).await?);
        }
        let store = self.store.as_ref().context("no database connection")?;
        let minutes = store.minute_totals().await?;
        let outcomes = store.outcome_counts().await?;
        let impressions: i64 = minutes.iter().map(|minute| minute.impressions).sum();
        let matched: i64 = minutes.iter().map(|minute| minute.clicks).sum();
        let impression_cost: i64 = minutes
            .iter()
            .map(|minute| minute.impression_cost_micros)
            .sum();
        let click_cost: i64 = minutes.iter().map(|minute| minute.click_cost_micros).sum();
        let clicks: i64 = outcomes.iter().map(|(_, count)| count).sum();
        let by_outcome: Vec<String> = outcomes
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();
        let ratio = |part: i64, whole: i64| (whole > 0).then(|| part as f64 / whole as f64);
        let show = |value: Option<f64>, format: fn(f64) -> String| {
            value.map_or_else(|| "-".to_owned(), format)
        };
        Ok(Stored {
            counts: format!(
                "stored: {impressions} impressions, {clicks} clicks ({})",
                if by_outcome.is_empty() {
                    "none yet".to_owned()
                } else {
                    by_outcome.join(", ")
                }
            ),
            kpis: format!(
                "CTR {}, CPC {}, CPI {}",
                show(ratio(matched, impressions), |ctr| format!(
                    "{:.2}%",
                    ctr * 100.0
                )),
                show(ratio(click_cost, matched), |cpc| format!(
                    "{:.4}",
                    cpc / 1e6
                )),
                show(ratio(impression_cost, impressions), |cpi| format!(
                    "{:.5}",
                    cpi / 1e6
                )),
            ),
        })
    }
}

struct Stored {
    counts: String,
    kpis: String,
}
