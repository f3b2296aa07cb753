//! Small, stable samplers over a seeded ChaCha generator. Written here rather than
//! taken from `rand_distr` so that a seed produces the same bytes whatever version
//! of a distribution crate a build resolves to.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Picks from a fixed set by weight, in O(log n).
#[derive(Clone, Debug)]
pub struct Weighted<T> {
    items: Vec<T>,
    cumulative: Vec<f64>,
}

impl<T> Weighted<T> {
    pub fn new(pairs: impl IntoIterator<Item = (T, f64)>) -> Self {
        let mut items = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (item, weight) in pairs {
            debug_assert!(weight >= 0.0 && weight.is_finite());
            total += weight;
            items.push(item);
            cumulative.push(total);
        }
        assert!(total > 0.0, "at least one positive weight");
        Self { items, cumulative }
    }

    pub fn sample(&self, rng: &mut ChaCha8Rng) -> &T {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let target = rng.gen::<f64>() * total;
        let index = self.cumulative.partition_point(|&bound| bound <= target);
        &self.items[index.min(self.items.len() - 1)]
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }
}

/// Zipf-like weights `1 / rank^exponent` over `count` ranks (rank 1 first).
pub fn zipf_weights(count: usize, exponent: f64) -> Vec<f64> {
    (1..=count)
        .map(|rank| (rank as f64).powf(-exponent))
        .collect()
}

/// A standard normal variate (Box-Muller).
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - u keeps the logarithm's argument in (0, 1].
    let radius = (-2.0 * (1.0 - rng.gen::<f64>()).ln()).sqrt();
    let angle = std::f64::consts::TAU * rng.gen::<f64>();
    radius * angle.cos()
}

/// A log-normal variate with the given median and shape (sigma of the logarithm).
pub fn log_normal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * standard_normal(rng)).exp()
}

/// An exponential variate with the given mean (Poisson inter-arrival times).
pub fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.gen::<f64>()).ln()
}

/// True with probability `probability`.
pub fn chance(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    probability > 0.0 && rng.gen::<f64>() < probability
}

/// A random UUID-shaped identifier (version 4 layout) from the seeded generator.
pub fn uuid(rng: &mut ChaCha8Rng) -> String {
    let high: u64 = rng.gen();
    let low: u64 = rng.gen();
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn weighted_choice_follows_the_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let choice = Weighted::new([("a", 1.0), ("b", 3.0), ("never", 0.0)]);
        let draws = 40_000;
        let num_b = (0..draws)
            .filter(|_| *choice.sample(&mut rng) == "b")
            .count();
        let share = num_b as f64 / draws as f64;
        assert!((share - 0.75).abs() < 0.01, "{share}");
        assert!((0..1000).all(|_| *choice.sample(&mut rng) != "never"));
    }

    #[test]
    fn log_normal_has_the_requested_median() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut values: Vec<f64> = (0..20_001)
            .map(|_| log_normal(&mut rng, 20.0, 1.0))
            .collect();
        values.sort_by(f64::total_cmp);
        let median = values[values.len() / 2];
        assert!((median - 20.0).abs() < 1.0, "{median}");
    }

    #[test]
    fn uuids_look_like_version_4() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let id = uuid(&mut rng);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, uuid(&mut rng));
    }
}
