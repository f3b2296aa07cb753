//! Reading metrics back from the text format `/metrics` serves: the demo's live
//! summary and terminal views sum series and take histogram quantiles from it,
//! the same way whether the registry is in this process or across HTTP.

/// One sample line: `name{label="value",...} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }

    fn matches(&self, filter: &[(&str, &str)]) -> bool {
        filter
            .iter()
            .all(|(name, value)| self.label(name) == Some(*value))
    }
}

/// The samples of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the Prometheus or OpenMetrics text format. Comment lines are skipped,
    /// and so is any line that does not parse: a scrape is read for display, and
    /// one odd line must not hide the rest.
    pub fn parse(text: &str) -> Self {
        Self {
            samples: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// Sums every series of `name` whose labels include all of `filter`; 0 when
    /// there is none.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name && sample.matches(filter))
            .map(|sample| sample.value)
            // A float sum of nothing is -0.0, which would print as "-0".
            .fold(0.0, |sum, value| sum + value)
    }

    /// Whether any series of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|sample| sample.name == name)
    }

    /// The cumulative buckets of histogram `name` (series `name_bucket`), summed
    /// over every other label and ordered by upper bound.
    pub fn buckets(&self, name: &str, filter: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let bucket_name = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for sample in &self.samples {
            if sample.name != bucket_name || !sample.matches(filter) {
                continue;
            }
            let Some(bound) = sample.label("le").and_then(parse_value) else {
                continue;
            };
            match buckets.iter_mut().find(|(existing, _)| *existing == bound) {
                Some((_, count)) => *count += sample.value,
                None => buckets.push((bound, sample.value)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

/// The `q` quantile of cumulative histogram buckets `(upper bound, count)`,
/// interpolated linearly inside the bucket it falls in, as Prometheus'
/// `histogram_quantile` does; `None` without observations. A quantile in the
/// `+Inf` bucket is reported as the highest finite bound.
pub fn histogram_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = bound;
        lower_count = count;
    }
    Some(lower_bound)
}

/// The buckets observed between two scrapes (`later` minus `earlier`), so a
/// quantile describes the recent interval rather than the whole run.
pub fn bucket_delta(later: &[(f64, f64)], earlier: &[(f64, f64)]) -> Vec<(f64, f64)> {
    later
        .iter()
        .map(|&(bound, count)| {
            let before = earlier
                .iter()
                .find(|(earlier_bound, _)| *earlier_bound == bound)
                .map_or(0.0, |(_, count)| *count);
            (bound, (count - before).max(0.0))
        })
        .collect()
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inside)?;
        labels = parsed;
        rest = after;
    }
    // The value, then an optional timestamp or exemplar, which are not needed.
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(value)?,
    })
}

/// Parses `name="value",...}` and returns the labels and the text after `}`.
fn parse_labels(text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after_name) = rest.split_once('=')?;
        let quoted = after_name.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            let (index, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break index,
                other => value.push(other),
            }
        };
        labels.push((name.trim().to_owned(), value));
        rest = &quoted[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP adjoin_sink_rows Rows written.
# TYPE adjoin_sink_rows counter
adjoin_sink_rows_total{table="impressions",result="inserted"} 90
adjoin_sink_rows_total{table="clicks",result="inserted"} 10
adjoin_sink_rows_total{table="clicks",result="duplicate"} 2
adjoin_join_waiting_clicks{shard="0"} 3
adjoin_join_waiting_clicks{shard="1"} 4
odd_label{path="a \"quoted\", comma} b"} 1.5
adjoin_sink_end_to_end_latency_seconds_bucket{le="0.5"} 50
adjoin_sink_end_to_end_latency_seconds_bucket{le="1.0"} 90
adjoin_sink_end_to_end_latency_seconds_bucket{le="+Inf"} 100
adjoin_sink_end_to_end_latency_seconds_count 100
this line is not a sample
# EOF
"#;

    #[test]
    fn sums_series_by_label_filter() {
        let scrape = Scrape::parse(TEXT);
        assert_eq!(scrape.sum("adjoin_sink_rows_total", &[]), 102.0);
        assert_eq!(
            scrape.sum("adjoin_sink_rows_total", &[("result", "inserted")]),
            100.0
        );
        assert_eq!(
            scrape.sum(
                "adjoin_sink_rows_total",
                &[("table", "clicks"), ("result", "duplicate")]
            ),
            2.0
        );
        assert_eq!(scrape.sum("adjoin_join_waiting_clicks", &[]), 7.0);
        assert_eq!(scrape.sum("missing", &[]).to_string(), "0");
        assert!(!scrape.has("this"));
    }

    #[test]
    fn label_values_keep_escaped_quotes_and_commas() {
        let scrape = Scrape::parse(TEXT);
        let odd = scrape
            .samples
            .iter()
            .find(|sample| sample.name == "odd_label")
            .unwrap();
        assert_eq!(odd.label("path"), Some(r#"a "quoted", comma} b"#));
        assert_eq!(odd.value, 1.5);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let scrape = Scrape::parse(TEXT);
        let buckets = scrape.buckets("adjoin_sink_end_to_end_latency_seconds", &[]);
        assert_eq!(
            buckets,
            vec![(0.5, 50.0), (1.0, 90.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!(histogram_quantile(&buckets, 0.5), Some(0.5));
        assert_eq!(histogram_quantile(&buckets, 0.25), Some(0.25));
        assert_eq!(histogram_quantile(&buckets, 0.7), Some(0.75));
        // In the +Inf bucket: the highest finite bound, not infinity.
        assert_eq!(histogram_quantile(&buckets, 0.99), Some(1.0));
        assert_eq!(
            histogram_quantile(&[(1.0, 0.0), (f64::INFINITY, 0.0)], 0.5),
            None
        );
        assert_eq!(histogram_quantile(&[], 0.5), None);
    }

    #[test]
    fn deltas_describe_the_interval_between_scrapes() {
        let earlier = vec![(0.5, 50.0), (1.0, 90.0), (f64::INFINITY, 100.0)];
        let later = vec![(0.5, 50.0), (1.0, 100.0), (f64::INFINITY, 110.0)];
        let delta = bucket_delta(&later, &earlier);
        assert_eq!(delta, vec![(0.5, 0.0), (1.0, 10.0), (f64::INFINITY, 10.0)]);
        assert_eq!(histogram_quantile(&delta, 0.5), Some(0.75));
    }
}
