//! The publishers' timed sends (chat and rooms): each publisher on its
//! own fixed schedule, the publishers spread evenly over one interval, so
//! the server sees a steady rate rather than bursts. A late send goes out
//! at once and nothing is skipped, so a rate past what the server keeps up
//! with is sending flat out; nothing is sent after the end (by the
//! schedule or by the clock, whichever comes first).

use crate::publisher::Publisher;
use crate::stats::Errors;
use std::sync::Arc;
use std::time::Duration;

/// What the publishing phase produced.
#[derive(Default)]
pub struct Sending {
    /// Messages sent, per publisher.
    pub sent: Vec<u64>,
    /// When the first and the last send went out (unix nanos).
    pub first_ns: u64,
    pub last_ns: u64,
    pub secs: f64,
}

/// `rate` messages per second over all `publishers` together for
/// `duration` seconds, texts padded by `pad` bytes.
pub async fn timed_sends(
    run: &str,
    pad: usize,
    rate: f64,
    duration: f64,
    publishers: &mut Vec<Publisher>,
    errors: &Errors,
) -> Sending {
    let count = publishers.len();
    let interval = count as f64 / rate;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let end = start + secs(duration);
    let task_errors = Arc::new(Errors::default());
    let mut tasks = Vec::new();
    for mut p in publishers.drain(..) {
        let run = run.to_owned();
        let errors = task_errors.clone();
        let offset = p.index as f64 / rate;
        tasks.push(tokio::spawn(async move {
            let (mut sent, mut first, mut last) = (0u64, 0u64, 0u64);
            loop {
                let at = start + secs(offset + sent as f64 * interval);
                // The schedule's end, and the clock's: a publisher behind
                // its schedule (flat out) stops on time too.
                if at >= end || tokio::time::Instant::now() >= end {
                    break;
                }
                tokio::time::sleep_until(at).await;
                match p.send(&run, sent, pad).await {
                    Ok(ns) => {
                        if first == 0 {
                            first = ns;
                        }
                        last = ns;
                    }
                    Err(e) => errors.add("send", &e.kind()),
                }
                sent += 1;
            }
            (p, sent, first, last)
        }));
    }
    let mut s = Sending {
        sent: vec![0; count],
        ..Default::default()
    };
    let mut back = Vec::new();
    for t in tasks {
        if let Ok((p, sent, first, last)) = t.await {
            s.sent[p.index] = sent;
            if first > 0 && (s.first_ns == 0 || first < s.first_ns) {
                s.first_ns = first;
            }
            s.last_ns = s.last_ns.max(last);
            back.push(p);
        }
    }
    back.sort_by_key(|p| p.index);
    *publishers = back;
    s.secs = duration;
    errors.merge(&task_errors.snapshot());
    s
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
