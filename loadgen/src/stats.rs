//! Measurements that merge exactly across processes: a log-linear latency
//! histogram (counts add up, so percentiles come from the merged counts,
//! never from averaged percentiles), error counts by kind, and the
//! per-client sequence tracker that finds lost, duplicated and out-of-order
//! messages.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Sub-buckets per power of two: values are kept to within 1/64 (~1.6 %).
const SUB: u64 = 64;
/// Buckets needed for every u64 value.
const BUCKETS: usize = 58 * SUB as usize + SUB as usize;

fn bucket(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros() as u64;
    let shift = msb - (SUB.trailing_zeros() as u64);
    (shift * SUB + (v >> shift)) as usize
}

/// The middle of a bucket's value range.
fn bucket_value(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i - shift * SUB;
    (sub << shift) + ((1u64 << shift) >> 1)
}

/// A latency histogram in nanoseconds, as sent between processes: only the
/// non-empty buckets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Histogram {
    /// `[bucket, count]` pairs.
    pub buckets: Vec<(u32, u64)>,
    pub count: u64,
    pub sum: f64,
    pub max: u64,
}

impl Histogram {
    pub fn merge(&mut self, other: &Histogram) {
        let mut all: BTreeMap<u32, u64> = self.buckets.iter().copied().collect();
        for (b, n) in &other.buckets {
            *all.entry(*b).or_default() += n;
        }
        self.buckets = all.into_iter().collect();
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), in nanoseconds.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(bucket_value(*b as usize).min(self.max));
            }
        }
        Some(self.max)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// A histogram many tasks record into at once (relaxed atomics: each
/// sample is one add on one counter).
pub struct AtomicHistogram {
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    pub fn record(&self, v: u64) {
        self.counts[bucket(v).min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        // Microseconds: a u64 sum of nanoseconds could overflow in long runs.
        self.sum.fetch_add(v / 1000, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Histogram {
        let buckets: Vec<(u32, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((i as u32, n))
            })
            .collect();
        Histogram {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum: self.sum.load(Ordering::Relaxed) as f64 * 1000.0,
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// Errors counted by kind, e.g. `poll:status_410` or `login:connect`.
#[derive(Default)]
pub struct Errors(Mutex<BTreeMap<String, u64>>);

impl Errors {
    pub fn add(&self, op: &str, kind: &str) {
        let key = format!("{op}:{kind}");
        *self
            .0
            .lock()
            .expect("error counts poisoned")
            .entry(key)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("error counts poisoned").clone()
    }

    pub fn merge(&self, from: &BTreeMap<String, u64>) {
        merge_errors(&mut self.0.lock().expect("error counts poisoned"), from);
    }
}

pub fn merge_errors(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Sequence numbers above this are not ours (a corrupt or foreign text).
pub const MAX_SEQ: u64 = 1 << 24;

/// What one client received from one publisher: a bitset of the sequence
/// numbers seen, the highest so far, and the anomalies met on the way.
#[derive(Default)]
struct Stream {
    seen: Vec<u64>,
    highest: Option<u64>,
    distinct: u64,
    duplicated: u64,
    out_of_order: u64,
}

/// One client's view of every publisher's stream.
#[derive(Default)]
pub struct Tracker {
    streams: Vec<Stream>,
}

/// A client's tally against what was sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

impl Tracker {
    /// Records one delivery of `seq` from publisher `publisher`.
    pub fn record(&mut self, publisher: usize, seq: u64) {
        if self.streams.len() <= publisher {
            self.streams.resize_with(publisher + 1, Stream::default);
        }
        let s = &mut self.streams[publisher];
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if s.seen.len() <= word {
            s.seen.resize(word + 1, 0);
        }
        if s.seen[word] & (1 << bit) != 0 {
            s.duplicated += 1;
            return;
        }
        s.seen[word] |= 1 << bit;
        s.distinct += 1;
        match s.highest {
            Some(h) if seq < h => s.out_of_order += 1,
            _ => s.highest = Some(seq),
        }
    }

    /// Whether every message `0..expected[p]` of every publisher arrived.
    pub fn complete(&self, expected: &[u64]) -> bool {
        expected.iter().enumerate().all(|(p, &n)| {
            n == 0
                || self
                    .streams
                    .get(p)
                    .is_some_and(|s| s.distinct >= n && s.highest == Some(n - 1))
        })
    }

    pub fn tally(&self, expected: &[u64]) -> Tally {
        let mut t = Tally::default();
        for (p, &n) in expected.iter().enumerate() {
            let Some(s) = self.streams.get(p) else {
                t.lost += n;
                continue;
            };
            // Count only what was expected: a seq ≥ n cannot be ours.
            let mut got = 0;
            for seq in 0..n {
                let (word, bit) = ((seq / 64) as usize, seq % 64);
                if s.seen.get(word).is_some_and(|w| w & (1 << bit) != 0) {
                    got += 1;
                }
            }
            t.received += got;
            t.lost += n - got;
            t.duplicated += s.duplicated;
            t.out_of_order += s.out_of_order;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            1000,
            65_535,
            1_000_000,
            123_456_789,
            u64::MAX / 2,
        ] {
            let b = bucket(v);
            assert!(b >= last);
            last = b;
            let back = bucket_value(b) as f64;
            assert!(
                (back - v as f64).abs() <= v as f64 / 60.0 + 1.0,
                "{v} -> {back}"
            );
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn merged_percentiles() {
        let a = AtomicHistogram::default();
        let b = AtomicHistogram::default();
        for v in 1..=500u64 {
            a.record(v * 1000);
        }
        for v in 501..=1000u64 {
            b.record(v * 1000);
        }
        let mut h = a.snapshot();
        h.merge(&b.snapshot());
        let p50 = h.quantile(0.5).unwrap() as f64;
        assert!((p50 - 500_000.0).abs() < 10_000.0, "{p50}");
        assert_eq!(h.max, 1_000_000);
    }

    #[test]
    fn tracker_finds_anomalies() {
        let mut t = Tracker::default();
        for seq in [0, 1, 3, 2, 3, 5] {
            t.record(0, seq);
        }
        let tally = t.tally(&[6]);
        assert_eq!(tally.lost, 1); // 4
        assert_eq!(tally.duplicated, 1); // second 3
        assert_eq!(tally.out_of_order, 1); // 2 after 3
        assert!(!t.complete(&[6]));
        assert_eq!(t.tally(&[4]).lost, 0);
    }
}
