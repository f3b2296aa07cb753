//! What the generated traffic is made of: ad categories with their prices and
//! click-through rates, ads with a Zipf-like popularity, consistent device / OS /
//! browser profiles, locations, pages and referrers. Shares are rough public
//! figures for display advertising; what matters is that the shape is realistic.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::sampling::{log_normal, zipf_weights, Weighted};

/// An ad category: what its impressions and clicks cost and how often they click.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Category {
    pub name: &'static str,
    /// Cost per thousand impressions.
    pub cpm: f64,
    /// Cost per click.
    pub cpc: f64,
    /// Click-through rate.
    pub ctr: f64,
}

pub const CATEGORIES: [Category; 8] = [
    Category {
        name: "retail",
        cpm: 1.80,
        cpc: 0.45,
        ctr: 0.035,
    },
    Category {
        name: "travel",
        cpm: 2.50,
        cpc: 0.80,
        ctr: 0.025,
    },
    Category {
        name: "finance",
        cpm: 4.00,
        cpc: 2.10,
        ctr: 0.015,
    },
    Category {
        name: "gaming",
        cpm: 1.20,
        cpc: 0.30,
        ctr: 0.045,
    },
    Category {
        name: "auto",
        cpm: 3.00,
        cpc: 1.20,
        ctr: 0.020,
    },
    Category {
        name: "health",
        cpm: 2.20,
        cpc: 0.95,
        ctr: 0.022,
    },
    Category {
        name: "tech",
        cpm: 2.80,
        cpc: 1.10,
        ctr: 0.028,
    },
    Category {
        name: "food",
        cpm: 1.00,
        cpc: 0.25,
        ctr: 0.040,
    },
];

/// One ad of a campaign, with prices and CTR around its category's.
#[derive(Clone, Debug, PartialEq)]
pub struct Ad {
    pub ad_id: String,
    pub category: Category,
    pub cpm: f64,
    pub cpc: f64,
    pub ctr: f64,
}

/// A device, OS and browser that occur together (no Safari on Android).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    pub device: &'static str,
    pub os: &'static str,
    pub browser: &'static str,
}

const fn profile(device: &'static str, os: &'static str, browser: &'static str) -> DeviceProfile {
    DeviceProfile {
        device,
        os,
        browser,
    }
}

/// Device / OS / browser combinations with their share of traffic (percent).
pub const DEVICE_PROFILES: [(DeviceProfile, f64); 14] = [
    (profile("mobile", "Android", "Chrome"), 30.0),
    (profile("mobile", "Android", "Samsung Internet"), 5.0),
    (profile("mobile", "Android", "Firefox"), 1.0),
    (profile("mobile", "iOS", "Safari"), 22.0),
    (profile("mobile", "iOS", "Chrome"), 4.0),
    (profile("desktop", "Windows", "Chrome"), 15.0),
    (profile("desktop", "Windows", "Edge"), 6.0),
    (profile("desktop", "Windows", "Firefox"), 3.0),
    (profile("desktop", "macOS", "Safari"), 5.0),
    (profile("desktop", "macOS", "Chrome"), 5.0),
    (profile("desktop", "Linux", "Firefox"), 1.0),
    (profile("desktop", "Linux", "Chrome"), 1.0),
    (profile("tablet", "iPadOS", "Safari"), 2.0),
    (profile("tablet", "Android", "Chrome"), 1.0),
];

/// Countries (ISO 3166 codes) with their share of traffic (percent).
pub const LOCATIONS: [(&str, f64); 14] = [
    ("US", 30.0),
    ("DE", 10.0),
    ("GB", 9.0),
    ("IN", 8.0),
    ("FR", 7.0),
    ("BR", 6.0),
    ("JP", 6.0),
    ("CA", 5.0),
    ("ES", 4.0),
    ("IT", 4.0),
    ("NL", 3.0),
    ("AU", 3.0),
    ("MX", 3.0),
    ("PL", 2.0),
];

/// Where visitors come from; empty is direct traffic.
pub const REFERRERS: [(&str, f64); 8] = [
    ("https://www.google.com/", 40.0),
    ("", 20.0),
    ("https://www.facebook.com/", 10.0),
    ("https://news.ycombinator.com/", 3.0),
    ("https://www.reddit.com/", 7.0),
    ("https://t.co/", 5.0),
    ("https://www.bing.com/", 6.0),
    ("https://duckduckgo.com/", 9.0),
];

/// Everything traffic is drawn from, fixed for a run by its seed.
pub struct Catalog {
    pub ads: Weighted<Ad>,
    pub devices: Weighted<DeviceProfile>,
    pub locations: Weighted<&'static str>,
    pub referrers: Weighted<&'static str>,
    pub pages: Weighted<String>,
    pub num_users: u32,
}

impl Catalog {
    /// Builds `num_ads` ads with Zipf-like popularity (`zipf_exponent`), pages with
    /// the same kind of skew, and the fixed profile, location and referrer shares.
    pub fn new(
        rng: &mut ChaCha8Rng,
        num_ads: usize,
        num_pages: usize,
        num_users: u32,
        zipf_exponent: f64,
    ) -> Self {
        let ads = (0..num_ads).map(|index| {
            let category = CATEGORIES[rng.gen_range(0..CATEGORIES.len())];
            // Each ad's price and appeal spread around its category's.
            let ad = Ad {
                ad_id: format!("ad-{:05}", index + 1),
                category,
                cpm: round_micros(category.cpm * log_normal(rng, 1.0, 0.2)),
                cpc: round_micros(category.cpc * log_normal(rng, 1.0, 0.2)),
                ctr: (category.ctr * log_normal(rng, 1.0, 0.3)).min(0.5),
            };
            ad
        });
        let ad_weights = zipf_weights(num_ads, zipf_exponent);
        let pages = (0..num_pages).map(|index| format!("page-{:05}", index + 1));
        let page_weights = zipf_weights(num_pages, 0.9);
        Self {
            ads: Weighted::new(ads.zip(ad_weights)),
            devices: Weighted::new(DEVICE_PROFILES),
            locations: Weighted::new(LOCATIONS),
            referrers: Weighted::new(REFERRERS),
            pages: Weighted::new(pages.zip(page_weights)),
            num_users,
        }
    }

    pub fn user_id(&self, rng: &mut ChaCha8Rng) -> String {
        format!("user-{:08}", rng.gen_range(1..=self.num_users))
    }
}

/// Rounds a price to millionths, so sums stay exact in decimal columns.
pub fn round_micros(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn popularity_is_skewed_towards_the_first_ads() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let catalog = Catalog::new(&mut rng, 100, 10, 1000, 1.1);
        let draws = 20_000;
        let num_top = (0..draws)
            .filter(|_| catalog.ads.sample(&mut rng).ad_id == "ad-00001")
            .count();
        let num_last = (0..draws)
            .filter(|_| catalog.ads.sample(&mut rng).ad_id == "ad-00100")
            .count();
        assert!(num_top > 20 * num_last.max(1), "{num_top} vs {num_last}");
    }

    #[test]
    fn profiles_never_pair_safari_with_android_or_windows() {
        for (profile, _) in DEVICE_PROFILES {
            if profile.browser == "Safari" {
                assert!(
                    matches!(profile.os, "iOS" | "iPadOS" | "macOS"),
                    "{profile:?}"
                );
            }
            if profile.os == "iOS" {
                assert_eq!(profile.device, "mobile");
            }
        }
    }

    #[test]
    fn prices_are_in_millionths() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let catalog = Catalog::new(&mut rng, 50, 10, 1000, 1.1);
        for ad in catalog.ads.items() {
            assert_eq!(round_micros(ad.cpc), ad.cpc);
            assert!(ad.ctr > 0.0 && ad.ctr < 0.5);
        }
    }
}
