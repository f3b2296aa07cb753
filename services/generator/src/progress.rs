//! Progress while a run goes: a bar with the rate on a terminal, a plain line every
//! few seconds otherwise (logs, CI), and the numbers for the final summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar_opt: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    num_records: u64,
    num_impressions: u64,
    num_clicks: u64,
    visible: bool,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// `expected_impressions_opt` sizes the bar when the run has a count; an
    /// invisible progress only counts.
    pub fn new(expected_impressions_opt: Option<u64>, visible: bool) -> Self {
        let bar_opt = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = match expected_impressions_opt {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::new_spinner(),
            };
            let template = if expected_impressions_opt.is_some() {
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} impressions, {msg}"
            } else {
                "{spinner} [{elapsed_precise}] {pos} impressions, {msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            bar_opt,
            started: now,
            last_line: now,
            num_records: 0,
            num_impressions: 0,
            num_clicks: 0,
            visible,
        }
    }

    pub fn record(&mut self, is_impression: bool, is_click: bool) {
        self.num_records += 1;
        self.num_impressions += u64::from(is_impression);
        self.num_clicks += u64::from(is_click);
        if !self.visible {
            return;
        }
        // The bar redraws on its own; a plain line waits for its five seconds.
        if self.bar_opt.is_some() && self.num_records % 1024 != 0 {
            return;
        }
        if self.bar_opt.is_none() && self.last_line.elapsed() < LINE_EVERY {
            return;
        }
        let rate = self.records_per_second();
        if let Some(bar) = &self.bar_opt {
            bar.set_position(self.num_impressions);
            bar.set_message(format!(
                "{} clicks, {} records, {rate:.0} records/s",
                self.num_clicks, self.num_records
            ));
        } else {
            self.last_line = Instant::now();
            tracing::info!(
                impressions = self.num_impressions,
                clicks = self.num_clicks,
                records = self.num_records,
                records_per_second = rate.round() as u64,
                "generating"
            );
        }
    }

    pub fn records_per_second(&self) -> f64 {
        self.num_records as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar_opt {
            bar.finish_and_clear();
        }
    }
}
