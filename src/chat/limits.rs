//! Per-address limits on logins and sends: a token bucket per client
//! address (IPv6 by its /64, which one household or host usually owns),
//! on this node.
//!
//! Logins are charged to the address because each one is costly for
//! everyone (a "joined" line to every client, a place out of
//! `max_clients`, a line out of the history). Sends are charged to the
//! address too, so logging in again under a new name does not bring a new
//! burst. The address is the one [`crate::peer::Peer`] trusts; a request
//! without one (an in-process caller) is charged to a shared bucket.
//!
//! Memory is bounded: at [`MAX_BUCKETS`] the buckets that have refilled
//! are forgotten (they would start full anyway), then the fullest until an
//! eighth of the map is free, so a flood of addresses cannot grow the map,
//! and what it costs a forgotten address is at most a burst it had mostly
//! saved up already. Drained buckets (the ones that matter) go last.

use crate::config::ChatSettings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses remembered per limit.
pub const MAX_BUCKETS: usize = 65_536;

/// The key an address is charged under: IPv4 whole, IPv6 by its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4(u32),
    V6(u64),
    Unknown,
}

impl AddrKey {
    pub fn of(ip: Option<IpAddr>) -> AddrKey {
        match ip {
            Some(IpAddr::V4(v4)) => AddrKey::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => AddrKey::V6((u128::from(v6) >> 64) as u64),
            None => AddrKey::Unknown,
        }
    }
}

/// One limit: `rate` tokens per second, up to `burst` saved up.
pub struct Buckets {
    rate: f64,
    burst: f64,
    /// Tokens left and when they were counted, per key. Invariant: at most
    /// `cap` entries after each `take`.
    buckets: Mutex<HashMap<AddrKey, (f64, Instant)>>,
    cap: usize,
}

impl Buckets {
    /// `rate` 0 turns the limit off.
    pub fn new(rate_per_second: f64, burst: u32, cap: usize) -> Self {
        Self {
            rate: rate_per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            cap: cap.max(1),
        }
    }

    /// Takes one token for `key` at `now`; `Err(wait)` when it has none.
    pub fn take_at(&self, key: AddrKey, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let (rate, burst) = (self.rate, self.burst);
        let level = |tokens: f64, at: Instant| {
            (tokens + now.saturating_duration_since(at).as_secs_f64() * rate).min(burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.cap {
            // One pass makes room for an eighth of the cap, so a flood of
            // new addresses pays this scan once per cap/8 of them, not each.
            buckets.retain(|_, (tokens, at)| level(*tokens, *at) < burst);
            let keep = self.cap - self.cap.div_ceil(8);
            if buckets.len() > keep {
                let mut fullest: Vec<(f64, AddrKey)> = buckets
                    .iter()
                    .map(|(k, (tokens, at))| (level(*tokens, *at), *k))
                    .collect();
                let excess = fullest.len() - keep;
                fullest.select_nth_unstable_by(excess - 1, |a, b| b.0.total_cmp(&a.0));
                for (_, k) in &fullest[..excess] {
                    buckets.remove(k);
                }
            }
        }
        let (tokens, at) = buckets.entry(key).or_insert((burst, now));
        *tokens = level(*tokens, *at);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }

    pub fn take(&self, key: AddrKey) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The chat's limits.
pub struct Limits {
    pub logins: Buckets,
    pub sends: Buckets,
}

impl Limits {
    pub fn new(settings: &ChatSettings) -> Self {
        Self {
            logins: Buckets::new(
                f64::from(settings.login_rate) / 60.0,
                settings.login_burst,
                MAX_BUCKETS,
            ),
            sends: Buckets::new(
                f64::from(settings.send_rate),
                settings.send_burst,
                MAX_BUCKETS,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(n: u32) -> AddrKey {
        AddrKey::V4(n)
    }

    #[test]
    fn a_burst_is_allowed_then_the_rate_applies() {
        let buckets = Buckets::new(1.0, 3, 10);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take_at(v4(1), t).is_ok());
        }
        let wait = buckets.take_at(v4(1), t).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(
            buckets.take_at(v4(2), t).is_ok(),
            "other addresses are not charged"
        );
        assert!(buckets.take_at(v4(1), t + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
        let a = AddrKey::of("2001:db8:1:2::1".parse().ok());
        let b = AddrKey::of("2001:db8:1:2:ffff::9".parse().ok());
        let c = AddrKey::of("2001:db8:1:3::1".parse().ok());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_map_never_grows_past_its_cap_and_keeps_drained_buckets() {
        let buckets = Buckets::new(1.0, 2, 4);
        let t = Instant::now();
        // Address 0 drains its bucket; 1..100 each take one token.
        assert!(buckets.take_at(v4(0), t).is_ok());
        assert!(buckets.take_at(v4(0), t).is_ok());
        for n in 1..100 {
            assert!(buckets.take_at(v4(n), t).is_ok());
            assert!(buckets.len() <= 4);
        }
        assert!(
            buckets.take_at(v4(0), t).is_err(),
            "a drained bucket is never the one forgotten"
        );
    }

    #[test]
    fn a_full_map_makes_room_for_an_eighth_of_its_cap_at_once() {
        let buckets = Buckets::new(1.0, 2, 16);
        let t = Instant::now();
        for n in 0..16 {
            assert!(buckets.take_at(v4(n), t).is_ok());
        }
        assert_eq!(buckets.len(), 16);
        assert!(buckets.take_at(v4(100), t).is_ok());
        assert_eq!(
            buckets.len(),
            15,
            "14 kept, 2 forgotten, the newcomer added"
        );
        assert!(buckets.take_at(v4(101), t).is_ok());
        assert_eq!(buckets.len(), 16, "no scan until the cap again");
    }

    #[test]
    fn refilled_buckets_are_forgotten_when_room_is_needed() {
        let buckets = Buckets::new(1.0, 1, 2);
        let t = Instant::now();
        assert!(buckets.take_at(v4(1), t).is_ok());
        assert!(buckets.take_at(v4(2), t).is_ok());
        let later = t + Duration::from_secs(5);
        assert!(buckets.take_at(v4(3), later).is_ok());
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn rate_zero_means_no_limit() {
        let buckets = Buckets::new(0.0, 1, 1);
        for _ in 0..100 {
            assert!(buckets.take(v4(1)).is_ok());
        }
        assert!(buckets.is_empty());
    }
}
