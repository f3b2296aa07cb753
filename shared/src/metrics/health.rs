use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Readiness of a service: a set of named checks, all of which must pass.
/// Liveness (`/healthz`) is the server answering at all.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, bool>>>,
}

/// One named readiness condition, e.g. `partitions_assigned`. Starts not ready.
#[derive(Clone)]
pub struct ReadinessCheck {
    name: String,
    checks: Arc<Mutex<BTreeMap<String, bool>>>,
}

/// What `/readyz` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadinessReport {
    pub ready: bool,
    /// Checks that do not pass yet, by name.
    pub waiting_for: Vec<String>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check that holds readiness back until it is set.
    pub fn check(&self, name: &str) -> ReadinessCheck {
        lock(&self.checks).insert(name.to_owned(), false);
        ReadinessCheck {
            name: name.to_owned(),
            checks: Arc::clone(&self.checks),
        }
    }

    pub fn report(&self) -> ReadinessReport {
        let waiting_for: Vec<String> = lock(&self.checks)
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| name.clone())
            .collect();
        ReadinessReport {
            ready: waiting_for.is_empty(),
            waiting_for,
        }
    }
}

impl ReadinessCheck {
    pub fn set(&self, ready: bool) {
        lock(&self.checks).insert(self.name.clone(), ready);
    }

    pub fn is_ready(&self) -> bool {
        lock(&self.checks).get(&self.name).copied().unwrap_or(false)
    }
}

fn lock(
    checks: &Mutex<BTreeMap<String, bool>>,
) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
    checks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let health = Health::new();
        assert!(health.report().ready, "no checks: nothing to wait for");
        let assigned = health.check("partitions_assigned");
        let connected = health.check("producer_connected");
        assert_eq!(
            health.report().waiting_for,
            vec![
                "partitions_assigned".to_owned(),
                "producer_connected".to_owned()
            ]
        );
        assigned.set(true);
        assert!(!health.report().ready);
        connected.set(true);
        assert!(health.report().ready);
        assigned.set(false);
        assert_eq!(
            health.report().waiting_for,
            vec!["partitions_assigned".to_owned()]
        );
    }
}
