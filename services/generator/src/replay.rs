//! `--from-file`: replays recorded events (JSON lines, either naming style) into
//! the raw topics, placed as the generator would have placed them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;

use adjoin_shared::config::Config;
use adjoin_shared::schema::{Decoder, EventTime};

use crate::options::GenerateArgs;
use crate::output::Output;
use crate::record::{place_from_payload, topic_of_payload, Content, KeyBy, RawRecord, Topic};
use crate::Summary;

pub fn replay(
    config: &Config,
    args: &GenerateArgs,
    output: &mut dyn Output,
    impression_partitions: i32,
    click_partitions: i32,
    stop: &AtomicBool,
) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        args.key_by != KeyBy::User,
        "--from-file cannot key clicks by user: a click does not name its user; use --key-by random or impression_id"
    );
    let decoder = Decoder::new(config.decode.clone());
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut unplaced = Vec::new();
    'files: for path in &args.from_file {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let fallback_topic = topic_of_file(path);
        for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if stop.load(Ordering::Relaxed) {
                break 'files;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(topic) = topic_of_payload(&line).or(fallback_topic) else {
                unplaced.push(format!("{}:{}", path.display(), index + 1));
                continue;
            };
            let num_partitions = match topic {
                Topic::Impressions => impression_partitions,
                Topic::Clicks => click_partitions,
            };
            let (key, partition) = place_from_payload(args.key_by, &line, num_partitions);
            let now = EventTime::now();
            let content = match topic {
                Topic::Impressions => decoder
                    .decode_impression(&line, now)
                    .map(|impression| Content::Impression(Box::new(impression))),
                Topic::Clicks => decoder.decode_click(&line, now).map(Content::Click),
            }
            .unwrap_or_else(|error| Content::Malformed(error.reason()));
            let record = RawRecord {
                topic,
                partition,
                key,
                payload: line,
                deliver_at: now,
                content,
            };
            if !output.write(&record, stop)? {
                break 'files;
            }
            crate::count(&mut summary, &record);
        }
    }
    summary.delivery = output.finish()?;
    summary.elapsed = started.elapsed();
    summary.records_per_second =
        summary.num_records as f64 / summary.elapsed.as_secs_f64().max(1e-9);
    anyhow::ensure!(
        unplaced.is_empty(),
        "{} line(s) name neither a click nor an impression and their file name says neither; not sent: {}",
        unplaced.len(),
        unplaced.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(summary)
}

/// A file named like `clicks*.jsonl` or `impressions*.jsonl` says where lines that
/// name neither (malformed ones) belong.
fn topic_of_file(path: &Path) -> Option<Topic> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.contains("click") {
        Some(Topic::Clicks)
    } else if name.contains("impression") {
        Some(Topic::Impressions)
    } else {
        None
    }
}
