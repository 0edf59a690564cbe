//! Where a browser subscription stands, and how long a subscriber waits
//! before retrying: the one back-off of the browser subscriber, the native
//! client and the server-side stream. Shared (not behind `browser`) so
//! server-rendered pages can show the initial status too, and so the
//! back-off is tested natively.

#[cfg(any(feature = "server", feature = "client"))]
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Connecting,
    Connected,
    Reconnecting,
    /// The server no longer knows this client; the subscription has stopped.
    Ended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Connected => "connected",
            Status::Reconnecting => "reconnecting",
            Status::Ended => "ended",
        }
    }
}

/// How long to wait before retry number `failures` (1, 2, …): exponential
/// from 500 ms up to `max_ms`, with full jitter (anywhere in [b/2, b], from
/// `random` in [0, 1)) so clients cut off together do not all come back in
/// the same instant, and never sooner than the server's `Retry-After`.
pub fn backoff_ms(failures: u32, max_ms: f64, retry_after_ms: Option<f64>, random: f64) -> f64 {
    let ceiling = (250.0 * 2f64.powi(failures.min(16) as i32)).min(max_ms);
    let wait = ceiling * (0.5 + 0.5 * random.clamp(0.0, 1.0));
    match retry_after_ms {
        Some(ms) => wait.max(ms),
        None => wait,
    }
}

/// [`backoff_ms`] for native callers (the client's poll loop, a
/// server-side stream), in `Duration`s.
#[cfg(any(feature = "server", feature = "client"))]
pub(crate) fn backoff(
    failures: u32,
    max: Duration,
    retry_after: Option<Duration>,
    random: f64,
) -> Duration {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Duration::from_secs_f64(backoff_ms(failures, ms(max), retry_after.map(ms), random) / 1000.0)
}

/// A number in [0, 1) for the jitter of a native caller. It only needs to
/// differ between callers and retries, not to be secret: std's randomly
/// keyed hasher gives that without a dependency.
#[cfg(any(feature = "server", feature = "client"))]
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[cfg(any(feature = "server", feature = "client"))]
    #[test]
    fn jitter_is_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..100).map(|_| super::random_unit()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn back_off_grows_to_its_cap_and_honours_retry_after() {
        assert_eq!(backoff_ms(1, 5_000.0, None, 1.0), 500.0);
        assert_eq!(backoff_ms(2, 5_000.0, None, 1.0), 1_000.0);
        assert_eq!(backoff_ms(3, 5_000.0, None, 1.0), 2_000.0);
        assert_eq!(backoff_ms(30, 5_000.0, None, 1.0), 5_000.0);
        assert_eq!(backoff_ms(1, 5_000.0, Some(3_000.0), 0.0), 3_000.0);
        assert_eq!(backoff_ms(5, 5_000.0, Some(1_000.0), 1.0), 5_000.0);
    }

    #[test]
    fn a_thousand_clients_cut_off_together_come_back_spread_out() {
        // A thousand clients with evenly spread random draws: their retries
        // cover the whole jitter window instead of one instant.
        let waits: Vec<f64> = (0..1000)
            .map(|i| backoff_ms(4, 5_000.0, None, f64::from(i) / 1000.0))
            .collect();
        let (lo, hi) = waits
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &w| (lo.min(w), hi.max(w)));
        assert_eq!(lo, 2_000.0);
        assert!(hi > 3_990.0 && hi <= 4_000.0, "{hi}");
        // No 10 ms slot gets more than a few of them.
        let mut slots = std::collections::HashMap::new();
        for w in &waits {
            *slots.entry((w / 10.0) as u64).or_insert(0) += 1;
        }
        assert!(
            slots.values().all(|&n| n <= 6),
            "{:?}",
            slots.values().max()
        );
    }
}
