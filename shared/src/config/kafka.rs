use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Where the brokers are and how to talk to them (section `kafka`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`. Empty starts librdkafka's
    /// embedded mock cluster in-process: fine for the demo and small tests, but it
    /// keeps only about 5 MB per partition and is invisible to other processes.
    pub brokers: String,
    /// librdkafka properties passed through unchanged (TLS, SASL, tuning), e.g.
    /// `"security.protocol" = "SASL_SSL"`. From the environment, `_` in a key stands
    /// for `.`: `ADJOIN__KAFKA__OPTIONS__SASL_PASSWORD` sets `sasl.password`.
    #[serde(deserialize_with = "deserialize_options")]
    pub options: BTreeMap<String, String>,
}

impl KafkaConfig {
    pub fn uses_embedded_cluster(&self) -> bool {
        self.brokers.trim().is_empty()
    }

    /// Returns a copy whose secret options are replaced by `[redacted]`.
    pub fn redacted(&self) -> Self {
        let options = self
            .options
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret_option(key) {
                    super::REDACTED.to_owned()
                } else {
                    value.clone()
                };
                (key.clone(), shown)
            })
            .collect();
        Self {
            brokers: self.brokers.clone(),
            options,
        }
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.redacted();
        formatter
            .debug_struct("KafkaConfig")
            .field("brokers", &shown.brokers)
            .field("options", &shown.options)
            .finish()
    }
}

/// Whether a librdkafka property holds a secret that must never be printed.
pub fn is_secret_option(key: &str) -> bool {
    const SECRET_PARTS: [&str; 5] = [
        "password",
        "secret",
        ".pem",
        "ssl.key",
        "oauthbearer.config",
    ];
    let lowercase_key = key.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|part| lowercase_key.contains(part))
}

/// Accepts options as flat quoted keys (`"sasl.mechanism" = "PLAIN"`), as nested
/// TOML tables (`sasl.mechanism = "PLAIN"` parses as a table), or from the
/// environment with `_` for `.`; scalar values of any type become strings.
fn deserialize_options<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let tree = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    let mut options = BTreeMap::new();
    for (key, value) in tree {
        flatten_option(&key.replace('_', "."), value, &mut options)
            .map_err(serde::de::Error::custom)?;
    }
    Ok(options)
}

fn flatten_option(
    key: &str,
    value: serde_json::Value,
    options: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    use serde_json::Value;
    let text = match value {
        Value::String(text) => text,
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Object(children) => {
            for (child_key, child) in children {
                flatten_option(
                    &format!("{key}.{}", child_key.replace('_', ".")),
                    child,
                    options,
                )?;
            }
            return Ok(());
        }
        Value::Null | Value::Array(_) => {
            return Err(format!(
                "kafka.options.{key} must be a string, number or boolean"
            ));
        }
    };
    options.insert(key.to_owned(), text);
    Ok(())
}
