//! Where a browser subscription stands, and how long it waits before
//! retrying. Shared (not behind `browser`) so server-rendered pages can
//! show the initial status too, and so the back-off is tested natively.

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

#[cfg(test)]
mod tests {
    use super::backoff_ms;

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
