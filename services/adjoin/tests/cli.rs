//! The `adjoin` command line: help, and `adjoin config` printing the effective
//! configuration with secrets redacted.

use std::io::Write;
use std::process::{Command, Output};

fn adjoin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_adjoin"));
    command.args(args);
    // A developer's or CI's own ADJOIN_ variables must not change what is tested.
    for (name, _) in std::env::vars() {
        if name.starts_with("ADJOIN") {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("adjoin runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_the_subcommands_and_global_options() {
    let output = adjoin(&["--help"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in ["config", "--config", "--log-format", "ADJOIN__SECTION__KEY"] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    let version = adjoin(&["--version"], &[]);
    assert!(
        stdout(&version).starts_with("adjoin "),
        "{}",
        stdout(&version)
    );
}

#[test]
fn config_prints_defaults_as_loadable_toml() {
    let output = adjoin(&["config"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("[join]\nwindow = \"15m\"\nskew = \"5s\""),
        "{text}"
    );
    assert!(text.contains("url = \"sqlite://adjoin.db\""), "{text}");
    assert!(text.contains("#   ingest    127.0.0.1:9301"), "{text}");

    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let again = adjoin(&["config", "--config", file.path().to_str().unwrap()], &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stdout(&again),
        text,
        "printed configuration loads back unchanged"
    );
}

#[test]
fn config_merges_file_and_env_and_redacts_secrets() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(
        file,
        "[kafka]\nbrokers = \"kafka:9092\"\n[kafka.options]\n\"sasl.password\" = \"from-file-secret\"\n[topics]\npartitions = 8"
    )
    .unwrap();
    let output = adjoin(
        &[
            "--config",
            file.path().to_str().unwrap(),
            "config",
            "--service",
            "sink",
        ],
        &[
            ("ADJOIN__TOPICS__PARTITIONS", "16"),
            (
                "ADJOIN__DATABASE__URL",
                "postgres://adjoin:env-secret@db:5432/adjoin",
            ),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("brokers = \"kafka:9092\""), "{text}");
    assert!(
        text.contains("partitions = 16"),
        "env wins over file: {text}"
    );
    assert!(
        text.contains("listen = \"127.0.0.1:9303\""),
        "sink's port: {text}"
    );
    assert!(
        !text.contains("from-file-secret") && !text.contains("env-secret"),
        "{text}"
    );
    assert!(
        text.contains("postgres://adjoin:[redacted]@db:5432/adjoin"),
        "{text}"
    );
}

#[test]
fn an_unknown_key_fails_with_its_name() {
    let output = adjoin(&["config"], &[("ADJOIN__TOPICS__PARTITONS", "3")]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("`topics.partitons`"), "{text}");
    assert!(text.contains("ADJOIN__TOPICS__PARTITONS"), "{text}");
}

#[test]
fn a_bad_log_format_is_rejected() {
    let output = adjoin(&["--log-format", "xml", "config"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("pretty or json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn with_json_logs_a_failure_is_a_json_line() {
    let output = adjoin(
        &["--log-format", "json", "config"],
        &[("ADJOIN__JOIN__WINDOW", "soon")],
    );
    assert!(!output.status.success());
    let text = stderr(&output);
    let line: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|error| panic!("stderr is not one JSON line ({error}): {text}"));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(
        line["error"].as_str().unwrap().contains("join.window"),
        "{line}"
    );
}

#[test]
fn generate_needs_brokers_or_an_output_directory() {
    let output = adjoin(&["generate", "--count", "10"], &[]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("kafka.brokers") && text.contains("--out-dir"),
        "{text}"
    );
}

#[test]
fn generate_writes_a_backlog_and_its_truth_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.json");
    let output = adjoin(
        &[
            "generate",
            "--start",
            "2026-11-27T00:00:00Z",
            "--count",
            "500",
            "--seed",
            "1",
            "--out-dir",
            dir.path().to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("500 impressions") && text.contains("0 failed"),
        "{text}"
    );
    assert!(text.contains("seed 1"), "{text}");
    let lines = std::fs::read_to_string(dir.path().join("impressions.jsonl")).unwrap();
    assert!(lines.lines().count() >= 500);
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
    assert_eq!(truth["format"], "adjoin-truth/1");
    assert_eq!(truth["impressions"]["distinct"], 500);
}

#[test]
fn generate_rejects_impossible_flags() {
    let output = adjoin(
        &["generate", "--late-fraction", "1.5", "--out-dir", "/tmp/x"],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--late-fraction"),
        "{}",
        stderr(&output)
    );
    let output = adjoin(
        &[
            "generate",
            "--start",
            "2026-11-27T00:00:00Z",
            "--out-dir",
            "/tmp/x",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--count or --duration"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn ingest_needs_brokers() {
    let output = adjoin(&["ingest"], &[]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("kafka.brokers") && text.contains("adjoin demo"),
        "{text}"
    );
}

#[test]
fn ingest_with_both_topics_off_says_so() {
    let output = adjoin(
        &["ingest"],
        &[
            ("ADJOIN__KAFKA__BROKERS", "127.0.0.1:9"),
            ("ADJOIN__INGEST__IMPRESSIONS", "false"),
            ("ADJOIN__INGEST__CLICKS", "false"),
            ("ADJOIN__METRICS__LISTEN", "127.0.0.1:0"),
        ],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nothing to ingest"),
        "{}",
        stderr(&output)
    );
}
