//! Helpers shared by the generator's tests.

#![allow(dead_code)]

use clap::Parser;

use adjoin_generator::oracle::JoinRules;
use adjoin_generator::record::{Content, RawRecord, Topic};
use adjoin_generator::traffic::TrafficSettings;
use adjoin_generator::{traffic_settings, GenerateArgs};
use adjoin_shared::config::Config;
use adjoin_shared::schema::{Decoder, EventTime};

#[derive(Parser)]
struct TestCli {
    #[command(flatten)]
    args: GenerateArgs,
}

/// Parses generator flags as the command line would.
pub fn args(flags: &str) -> GenerateArgs {
    let argv = std::iter::once("generate").chain(flags.split_whitespace());
    TestCli::try_parse_from(argv).expect("valid flags").args
}

/// Settings for a backlog run with the given flags and partition counts.
pub fn settings(config: &Config, flags: &str, partitions: i32) -> TrafficSettings {
    let parsed = args(flags);
    let seed = parsed.seed.expect("tests pass --seed");
    traffic_settings(config, &parsed, seed, partitions, partitions).expect("valid settings")
}

pub fn rules(config: &Config) -> JoinRules {
    JoinRules {
        window: config.join.window,
        skew: config.join.skew,
        allowed_lateness: config.watermark.allowed_lateness,
    }
}

/// Rebuilds what a record holds from its bytes alone, as a consumer sees it.
pub fn content_from_bytes(decoder: &Decoder, topic: Topic, payload: &[u8]) -> Content {
    // 2100-01-01: far ahead of any test's event times, so only the record decides.
    let now = EventTime::from_millis(4_102_444_800_000);
    match topic {
        Topic::Impressions => decoder
            .decode_impression(payload, now)
            .map(|impression| Content::Impression(Box::new(impression))),
        Topic::Clicks => decoder.decode_click(payload, now).map(Content::Click),
    }
    .unwrap_or_else(|error| Content::Malformed(error.reason()))
}

pub fn is_click(record: &RawRecord) -> bool {
    matches!(
        record.content,
        Content::Click(_) | Content::DuplicateClick(_)
    )
}
