//! `adjoin top`: a live terminal view of every actor across the services whose
//! metrics endpoints it reads, one row per actor, refreshed every second. Built
//! from the same `/metrics` text Prometheus scrapes, so what it shows is what the
//! dashboards show. No colour is needed to read it: the sort column is marked in
//! the header.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use adjoin_shared::config::{Config, Service};
use adjoin_shared::metrics::http_get;
use adjoin_shared::metrics::scrape::{bucket_delta, histogram_quantile, Scrape};

use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// A metrics endpoint (host:port) to read; repeat for several. Default:
    /// `metrics.listen` if set, else every service's default port on 127.0.0.1.
    #[arg(long = "endpoint", short = 'e', value_name = "HOST:PORT")]
    pub endpoints: Vec<String>,
    /// How often to refresh.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// The column to sort by (highest first; `name` sorts by endpoint, service, actor).
    #[arg(long, value_enum, default_value_t = SortBy::Rate)]
    pub sort: SortBy,
    /// Print one table (two scrapes an interval apart, so rates exist) and exit:
    /// for scripts and terminals without a screen.
    #[arg(long)]
    pub once: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    Name,
    Rate,
    Mailbox,
    Handler,
    Restarts,
    State,
    Lag,
}

impl SortBy {
    const ALL: [SortBy; 7] = [
        SortBy::Name,
        SortBy::Rate,
        SortBy::Mailbox,
        SortBy::Handler,
        SortBy::Restarts,
        SortBy::State,
        SortBy::Lag,
    ];

    fn next(self) -> Self {
        let index = Self::ALL.iter().position(|sort| *sort == self).unwrap_or(0);
        Self::ALL[(index + 1) % Self::ALL.len()]
    }

    /// The column (after endpoint, service, actor) it sorts by.
    fn column(self) -> usize {
        match self {
            SortBy::Name => 2,
            SortBy::Rate => 3,
            SortBy::Mailbox => 4,
            SortBy::Handler => 6,
            SortBy::Restarts => 7,
            SortBy::State => 8,
            SortBy::Lag => 9,
        }
    }
}

/// One actor as last seen.
#[derive(Clone, Debug, PartialEq)]
pub struct ActorRow {
    pub endpoint: String,
    pub service: String,
    pub actor: String,
    /// Messages handled per second since the previous scrape.
    pub rate_opt: Option<f64>,
    pub mailbox: f64,
    /// Handler time quantiles over the interval, in seconds.
    pub handler_p50_opt: Option<f64>,
    pub handler_p99_opt: Option<f64>,
    pub restarts: f64,
    /// A join shard's state size and watermark lag.
    pub state_bytes_opt: Option<f64>,
    pub watermark_lag_opt: Option<f64>,
}

/// The actors of one endpoint's scrape; rates and handler times over the time
/// since `previous_opt`.
pub fn actor_rows(
    endpoint: &str,
    scrape: &Scrape,
    previous_opt: Option<(&Scrape, Duration)>,
) -> Vec<ActorRow> {
    let mut actors: BTreeSet<(String, String)> = BTreeSet::new();
    for sample in &scrape.samples {
        if sample.name.starts_with("adjoin_actor_") {
            if let (Some(service), Some(actor)) = (sample.label("service"), sample.label("actor")) {
                actors.insert((service.to_owned(), actor.to_owned()));
            }
        }
    }
    actors
        .into_iter()
        .map(|(service, actor)| {
            let filter = [("service", service.as_str()), ("actor", actor.as_str())];
            let handled = "adjoin_actor_messages_handled_total";
            let histogram = "adjoin_actor_handler_duration_seconds";
            let buckets = scrape.buckets(histogram, &filter);
            let (rate_opt, recent) = match previous_opt {
                Some((previous, elapsed)) => {
                    let seconds = elapsed.as_secs_f64().max(1e-3);
                    let rate = (scrape.sum(handled, &filter) - previous.sum(handled, &filter))
                        .max(0.0)
                        / seconds;
                    (
                        Some(rate),
                        bucket_delta(&buckets, &previous.buckets(histogram, &filter)),
                    )
                }
                None => (None, buckets),
            };
            let shard_opt = actor.strip_prefix("shard_").map(str::to_owned);
            let per_shard = |name: &str| {
                let shard = shard_opt.as_deref()?;
                scrape
                    .has(name)
                    .then(|| scrape.sum(name, &[("shard", shard)]))
            };
            ActorRow {
                endpoint: endpoint.to_owned(),
                rate_opt,
                mailbox: scrape.sum("adjoin_actor_mailbox_depth", &filter),
                handler_p50_opt: histogram_quantile(&recent, 0.5),
                handler_p99_opt: histogram_quantile(&recent, 0.99),
                restarts: scrape.sum("adjoin_actor_restarts_total", &filter),
                state_bytes_opt: per_shard("adjoin_join_state_bytes"),
                watermark_lag_opt: per_shard("adjoin_join_watermark_lag_seconds"),
                service,
                actor,
            }
        })
        .collect()
}

/// Orders rows by `sort`, highest first; missing values last, names break ties.
pub fn sort_rows(rows: &mut [ActorRow], sort: SortBy) {
    let key = |row: &ActorRow| -> Option<f64> {
        match sort {
            SortBy::Name => None,
            SortBy::Rate => row.rate_opt,
            SortBy::Mailbox => Some(row.mailbox),
            SortBy::Handler => row.handler_p99_opt,
            SortBy::Restarts => Some(row.restarts),
            SortBy::State => row.state_bytes_opt,
            SortBy::Lag => row.watermark_lag_opt,
        }
    };
    rows.sort_by(|a, b| {
        let by_value = match (key(a), key(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_value
            .then_with(|| a.endpoint.cmp(&b.endpoint))
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.actor.cmp(&b.actor))
    });
}

/// Everything one frame shows.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub rows: &'a [ActorRow],
    pub sort: SortBy,
    /// Endpoints that did not answer, with why.
    pub unreachable: &'a [(String, String)],
    pub num_endpoints: usize,
}

const HEADERS: [&str; 10] = [
    "ENDPOINT", "SERVICE", "ACTOR", "MSG/S", "MAILBOX", "P50", "P99", "RESTARTS", "STATE", "WM LAG",
];

impl Widget for View<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let [title, status, table] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(1),
        ])
        .areas(area);
        Paragraph::new(format!(
            "adjoin top: {} actors on {} endpoint(s), sorted by {:?} | s: next sort  q: quit",
            self.rows.len(),
            self.num_endpoints,
            self.sort
        ))
        .render(title, buffer);
        let status_text = if self.unreachable.is_empty() {
            String::new()
        } else {
            let listed: Vec<String> = self
                .unreachable
                .iter()
                .map(|(endpoint, why)| format!("{endpoint} ({why})"))
                .collect();
            format!("not answering: {}", listed.join(", "))
        };
        Paragraph::new(status_text).render(status, buffer);

        let header = Row::new(HEADERS.iter().enumerate().map(|(index, name)| {
            if index == self.sort.column() {
                format!("{name}*")
            } else {
                (*name).to_owned()
            }
        }))
        .style(Style::new().add_modifier(Modifier::BOLD));
        let rows = self.rows.iter().map(|row| {
            Row::new([
                row.endpoint.clone(),
                row.service.clone(),
                row.actor.clone(),
                row.rate_opt
                    .map_or_else(|| "-".to_owned(), |rate| format!("{rate:.1}")),
                format!("{:.0}", row.mailbox),
                show_seconds(row.handler_p50_opt),
                show_seconds(row.handler_p99_opt),
                format!("{:.0}", row.restarts),
                row.state_bytes_opt
                    .map_or_else(|| "-".to_owned(), show_bytes),
                show_seconds(row.watermark_lag_opt),
            ])
        });
        let widths = [
            Constraint::Length(21),
            Constraint::Length(9),
            Constraint::Length(22),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
        ];
        Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .render(table, buffer);
    }
}

fn show_seconds(value_opt: Option<f64>) -> String {
    match value_opt {
        None => "-".to_owned(),
        Some(seconds) if seconds < 1e-3 => format!("{:.0}us", seconds * 1e6),
        Some(seconds) if seconds < 1.0 => format!("{:.1}ms", seconds * 1e3),
        Some(seconds) => format!("{seconds:.2}s"),
    }
}

fn show_bytes(bytes: f64) -> String {
    match bytes {
        b if b >= 1e9 => format!("{:.1}GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1}MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1}kB", b / 1e3),
        b => format!("{b:.0}B"),
    }
}

/// The endpoints to read: given ones, else `metrics.listen`, else every service's
/// default port.
fn endpoints(args: &TopArgs, config: &Config) -> anyhow::Result<Vec<(String, SocketAddr)>> {
    if args.endpoints.is_empty() {
        return Ok(match config.metrics.listen {
            Some(listen) => vec![(listen.to_string(), listen)],
            None => [Service::Ingest, Service::Join, Service::Sink, Service::Demo]
                .into_iter()
                .map(|service| {
                    let listen = config.metrics.listen_for(service);
                    (listen.to_string(), listen)
                })
                .collect(),
        });
    }
    args.endpoints
        .iter()
        .map(|endpoint| {
            let addr = endpoint
                .to_socket_addrs()
                .with_context(|| {
                    format!("--endpoint {endpoint:?}: give host:port, e.g. 127.0.0.1:9302")
                })?
                .next()
                .with_context(|| format!("--endpoint {endpoint:?} resolves to no address"))?;
            Ok((endpoint.clone(), addr))
        })
        .collect()
}

/// Scrapes and the rows they give, kept between refreshes for rates.
struct Watcher {
    endpoints: Vec<(String, SocketAddr)>,
    previous: BTreeMap<String, (Scrape, Instant)>,
    runtime: tokio::runtime::Runtime,
}

impl Watcher {
    fn refresh(&mut self) -> (Vec<ActorRow>, Vec<(String, String)>) {
        let mut rows = Vec::new();
        let mut unreachable = Vec::new();
        for (name, addr) in &self.endpoints {
            let reply = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(800), http_get(*addr, "/metrics")).await
            });
            let scrape = match reply {
                Ok(Ok(reply)) if reply.status == 200 => Scrape::parse(&reply.body),
                Ok(Ok(reply)) => {
                    unreachable.push((name.clone(), format!("HTTP {}", reply.status)));
                    continue;
                }
                Ok(Err(error)) => {
                    unreachable.push((name.clone(), error.kind().to_string()));
                    continue;
                }
                Err(_) => {
                    unreachable.push((name.clone(), "timed out".to_owned()));
                    continue;
                }
            };
            let now = Instant::now();
            let previous_opt = self
                .previous
                .get(name)
                .map(|(scrape, at)| (scrape, now.duration_since(*at)));
            rows.extend(actor_rows(name, &scrape, previous_opt));
            self.previous.insert(name.clone(), (scrape, now));
        }
        (rows, unreachable)
    }
}

pub fn run(cli: &Cli, args: &TopArgs) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    anyhow::ensure!(
        args.interval >= Duration::from_millis(100),
        "--interval must be at least 100ms"
    );
    let mut watcher = Watcher {
        endpoints: endpoints(args, &config)?,
        previous: BTreeMap::new(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime")?,
    };
    if args.once || !std::io::stdout().is_terminal() {
        watcher.refresh();
        std::thread::sleep(args.interval);
        let (mut rows, unreachable) = watcher.refresh();
        sort_rows(&mut rows, args.sort);
        print!(
            "{}",
            render_text(
                View {
                    rows: &rows,
                    sort: args.sort,
                    unreachable: &unreachable,
                    num_endpoints: watcher.endpoints.len(),
                },
                160
            )
        );
        return Ok(());
    }
    let mut terminal = ratatui::init();
    let outcome = live(&mut terminal, &mut watcher, args);
    ratatui::restore();
    outcome
}

fn live(
    terminal: &mut ratatui::DefaultTerminal,
    watcher: &mut Watcher,
    args: &TopArgs,
) -> anyhow::Result<()> {
    let mut sort = args.sort;
    let (mut rows, mut unreachable) = watcher.refresh();
    let mut refreshed_at = Instant::now();
    loop {
        sort_rows(&mut rows, sort);
        terminal.draw(|frame| {
            frame.render_widget(
                View {
                    rows: &rows,
                    sort,
                    unreachable: &unreachable,
                    num_endpoints: watcher.endpoints.len(),
                },
                frame.area(),
            );
        })?;
        let wait = args.interval.saturating_sub(refreshed_at.elapsed());
        if event::poll(wait)? {
            if let Event::Key(key) = event::read()? {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(())
                    }
                    KeyCode::Char('s') => sort = sort.next(),
                    _ => {}
                }
            }
            continue;
        }
        (rows, unreachable) = watcher.refresh();
        refreshed_at = Instant::now();
    }
}

/// Renders a frame into text lines `width` columns wide, trailing blanks trimmed.
pub fn render_text(view: View<'_>, width: u16) -> String {
    let height = u16::try_from(view.rows.len() + 3).unwrap_or(u16::MAX);
    let area = Rect::new(0, 0, width, height);
    let mut buffer = Buffer::empty(area);
    view.render(area, &mut buffer);
    let mut text = buffer_lines(&buffer).join("\n");
    text.push('\n');
    text
}

/// A rendered buffer as text, one line per row, trailing blanks trimmed.
fn buffer_lines(buffer: &Buffer) -> Vec<String> {
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;
    use ratatui::Terminal;

    /// A join process's metrics, as recorded from `/metrics`, one second apart.
    const JOIN_BEFORE: &str = r#"adjoin_actor_messages_handled_total{service="join",actor="shard_0"} 1000
adjoin_actor_messages_handled_total{service="join",actor="shard_1"} 500
adjoin_actor_mailbox_depth{service="join",actor="shard_0"} 2
adjoin_actor_mailbox_depth{service="join",actor="shard_1"} 40
adjoin_actor_handler_duration_seconds_bucket{service="join",actor="shard_0",le="0.001"} 900
adjoin_actor_handler_duration_seconds_bucket{service="join",actor="shard_0",le="0.01"} 1000
adjoin_actor_handler_duration_seconds_bucket{service="join",actor="shard_0",le="+Inf"} 1000
adjoin_actor_restarts_total{service="join",actor="shard_1",reason="panic"} 1
adjoin_join_state_bytes{shard="0"} 2500000
adjoin_join_state_bytes{shard="1"} 900
adjoin_join_watermark_lag_seconds{shard="0"} 6.5
adjoin_join_watermark_lag_seconds{shard="1"} 61
"#;
    const JOIN_AFTER: &str = r#"adjoin_actor_messages_handled_total{service="join",actor="shard_0"} 3000
adjoin_actor_messages_handled_total{service="join",actor="shard_1"} 600
adjoin_actor_mailbox_depth{service="join",actor="shard_0"} 1
adjoin_actor_mailbox_depth{service="join",actor="shard_1"} 55
adjoin_actor_handler_duration_seconds_bucket{service="join",actor="shard_0",le="0.001"} 900
adjoin_actor_handler_duration_seconds_bucket{service="join",actor="shard_0",le="0.01"} 3000
adjoin_actor_handler_duration_seconds_bucket{service="join",actor="shard_0",le="+Inf"} 3000
adjoin_actor_restarts_total{service="join",actor="shard_1",reason="panic"} 2
adjoin_join_state_bytes{shard="0"} 2600000
adjoin_join_state_bytes{shard="1"} 1000
adjoin_join_watermark_lag_seconds{shard="0"} 6.0
adjoin_join_watermark_lag_seconds{shard="1"} 62
"#;
    const SINK: &str = r#"adjoin_actor_messages_handled_total{service="sink",actor="writer"} 10
adjoin_actor_mailbox_depth{service="sink",actor="writer"} 0
"#;

    fn rows() -> Vec<ActorRow> {
        let mut rows = actor_rows(
            "127.0.0.1:9302",
            &Scrape::parse(JOIN_AFTER),
            Some((&Scrape::parse(JOIN_BEFORE), Duration::from_secs(1))),
        );
        rows.extend(actor_rows("127.0.0.1:9303", &Scrape::parse(SINK), None));
        rows
    }

    #[test]
    fn rows_carry_rates_interval_quantiles_and_shard_state() {
        let rows = rows();
        let shard_0 = rows.iter().find(|row| row.actor == "shard_0").unwrap();
        assert_eq!(shard_0.rate_opt, Some(2000.0));
        assert_eq!(shard_0.mailbox, 1.0);
        // Over the interval all 2000 handled messages took 1-10 ms.
        assert!(shard_0.handler_p50_opt.unwrap() > 0.001, "{shard_0:?}");
        assert_eq!(shard_0.state_bytes_opt, Some(2_600_000.0));
        assert_eq!(shard_0.watermark_lag_opt, Some(6.0));
        let shard_1 = rows.iter().find(|row| row.actor == "shard_1").unwrap();
        assert_eq!(shard_1.restarts, 2.0);
        let writer = rows.iter().find(|row| row.actor == "writer").unwrap();
        assert_eq!(writer.rate_opt, None, "no rate from a single scrape");
        assert_eq!(writer.state_bytes_opt, None, "not a shard");
    }

    #[test]
    fn sorting_puts_the_highest_first_and_missing_values_last() {
        let mut rows = rows();
        sort_rows(&mut rows, SortBy::Rate);
        let order: Vec<&str> = rows.iter().map(|row| row.actor.as_str()).collect();
        assert_eq!(order, ["shard_0", "shard_1", "writer"]);
        sort_rows(&mut rows, SortBy::Mailbox);
        assert_eq!(rows[0].actor, "shard_1");
        sort_rows(&mut rows, SortBy::Lag);
        assert_eq!(rows[0].actor, "shard_1");
        assert_eq!(rows[2].actor, "writer");
        sort_rows(&mut rows, SortBy::Name);
        let order: Vec<&str> = rows.iter().map(|row| row.actor.as_str()).collect();
        assert_eq!(order, ["shard_0", "shard_1", "writer"]);
        assert_eq!(
            SortBy::Lag.next(),
            SortBy::Name,
            "s cycles through every column"
        );
    }

    #[test]
    fn a_frame_renders_every_actor_without_colour() {
        let mut rows = rows();
        sort_rows(&mut rows, SortBy::Mailbox);
        let unreachable = vec![("127.0.0.1:9301".to_owned(), "connection refused".to_owned())];
        let backend = TestBackend::new(130, 8);
        let mut terminal = Terminal::new(backend).unwrap();
        let view = View {
            rows: &rows,
            sort: SortBy::Mailbox,
            unreachable: &unreachable,
            num_endpoints: 3,
        };
        terminal
            .draw(|frame| frame.render_widget(view, frame.area()))
            .unwrap();
        let buffer = terminal.backend().buffer().clone();
        let lines = buffer_lines(&buffer);
        let text = lines.join("\n");
        assert!(
            text.contains("3 actors on 3 endpoint(s), sorted by Mailbox"),
            "{text}"
        );
        assert!(
            text.contains("not answering: 127.0.0.1:9301 (connection refused)"),
            "{text}"
        );
        assert!(
            text.contains("MAILBOX*"),
            "the sort column is marked:\n{text}"
        );
        // Rows follow the header in sort order: shard_1 (55 queued) first.
        assert!(
            lines[3].contains("shard_1") && lines[3].contains("55"),
            "{text}"
        );
        assert!(
            lines[3].contains("1.0kB") && lines[3].contains("62.00s"),
            "{text}"
        );
        assert!(
            lines[4].contains("shard_0") && lines[4].contains("2000.0"),
            "{text}"
        );
        assert!(lines[4].contains("2.6MB"), "{text}");
        assert!(
            lines[5].contains("writer") && lines[5].contains(" - "),
            "{text}"
        );
        for cell in buffer.content() {
            assert_eq!(cell.fg, Color::Reset, "no colour: {text}");
            assert_eq!(cell.bg, Color::Reset, "no colour: {text}");
        }
        assert_eq!(
            render_text(view, 130).lines().nth(3).map(str::to_owned),
            Some(lines[3].clone()),
            "--once prints the same frame"
        );
    }
}
