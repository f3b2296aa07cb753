//! Logging through `tracing`: `RUST_LOG`-style filters, pretty or JSON lines, and a
//! panic hook that logs panics as structured errors so none goes unseen.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for terminals.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use pretty or json")),
        }
    }
}

/// The filter used when `RUST_LOG` is unset: adjoin at info, its noisy
/// dependencies at warn.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn,actix_web=warn,sqlx=warn,rdkafka=warn";

/// Installs the global subscriber. `filter` overrides `RUST_LOG`; logs go to
/// stderr so that commands can print results on stdout.
pub fn init(format: LogFormat, filter_opt: Option<&str>) -> Result<(), String> {
    let filter = match filter_opt {
        Some(directives) => EnvFilter::try_new(directives),
        None => match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(directives),
            _ => EnvFilter::try_new(DEFAULT_FILTER),
        },
    }
    .map_err(|error| format!("invalid log filter (RUST_LOG): {error}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|error| format!("cannot install the logger: {error}"))?;
    install_panic_hook(format);
    Ok(())
}

/// Logs every panic through `tracing` (with its location), so a panic shows up in
/// JSON logs too. With JSON logs the default hook's plain-text report is skipped so
/// stderr stays one JSON object per line.
fn install_panic_hook(format: LogFormat) {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = crate::supervision::panic_message(info.payload());
        let location = info
            .location()
            .map(|location| format!("{}:{}", location.file(), location.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            panic = %message,
            %location,
            thread = thread.name().unwrap_or("unnamed"),
            "panic"
        );
        // With error logs filtered out the tracing line went nowhere; the default
        // report is then the only trace a panic leaves.
        if format == LogFormat::Pretty || !tracing::enabled!(tracing::Level::ERROR) {
            default_hook(info);
        }
    }));
}
