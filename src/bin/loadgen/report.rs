//! What a run reports: one [`Report`] (printed for people, or as one JSON
//! object with `--json`), and `loadgen summarize`, which takes several runs'
//! JSON lines and prints per-scenario medians, with the chat figures as
//! ratios of the hello baseline measured in the same session.

use crate::stats::Histogram;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram) -> Option<Latency> {
        let ms = |ns: u64| ns as f64 / 1e6;
        Some(Latency {
            samples: h.count,
            p50_ms: ms(h.quantile(0.50)?),
            p90_ms: ms(h.quantile(0.90)?),
            p99_ms: ms(h.quantile(0.99)?),
            max_ms: ms(h.max),
            mean_ms: h.mean()? / 1e6,
        })
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub run: String,
    pub servers: Vec<String>,
    pub procs: usize,
    pub clients: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishers: Option<usize>,
    pub logged_in: usize,
    /// Clients whose first poll was accepted.
    pub ready: usize,
    /// From start to every client holding its first poll.
    pub ready_secs: f64,
    /// Polls held (head received, body pending) once all were ready.
    pub held_polls: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_polls_end: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_before_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_held_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_end_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_held_poll_bytes: Option<f64>,
    pub sent: u64,
    pub send_secs: f64,
    pub sends_per_sec: f64,
    pub expected_deliveries: u64,
    pub deliveries: u64,
    /// First send to last delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_window_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries_per_sec: Option<f64>,
    /// Publisher's send → the reply's arrival at the client's socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Publisher's send → read by the client's code in this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_latency: Option<Latency>,
    pub lost: u64,
    pub lost_clients: usize,
    pub duplicated: u64,
    pub duplicated_clients: usize,
    pub out_of_order: u64,
    pub out_of_order_clients: usize,
    /// Hold: clients that got the broadcast, and when the last one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub got: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery_secs: Option<f64>,
    pub polls: u64,
    pub poll_timeouts: u64,
    pub other_messages: u64,
    /// Hello: requests done and their rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_sec: Option<f64>,
    pub logged_out: usize,
    pub errors: BTreeMap<String, u64>,
    pub elapsed_secs: f64,
    /// The attack scenarios' own figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<crate::stall::StallFigures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowloris: Option<crate::slowloris::SlowlorisFigures>,
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.3} ms")
    }
}

impl Report {
    /// The summary for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== {} (run {}) against {} — {} procs, {:.1}s",
            self.scenario,
            self.run,
            self.servers.join(", "),
            self.procs,
            self.elapsed_secs
        );
        if let Some(f) = &self.stall {
            f.human(&mut s);
        } else if let Some(f) = &self.slowloris {
            f.human(&mut s);
        } else if self.scenario == "hello" {
            let _ = writeln!(
                s,
                "requests      {} over {} connections: {:.0} req/s",
                self.requests.unwrap_or(0),
                self.connections.unwrap_or(0),
                self.requests_per_sec.unwrap_or(0.0)
            );
        } else {
            let _ = writeln!(
                s,
                "clients       {} asked, {} logged in, {} polling after {:.1}s; {} polls held",
                self.clients, self.logged_in, self.ready, self.ready_secs, self.held_polls
            );
            if let (Some(before), Some(held)) = (self.rss_before_kb, self.rss_held_kb) {
                let _ = write!(
                    s,
                    "server RSS    {:.1} MB before, {:.1} MB with polls held",
                    before as f64 / 1024.0,
                    held as f64 / 1024.0
                );
                if let Some(end) = self.rss_end_kb {
                    let _ = write!(s, ", {:.1} MB at the end", end as f64 / 1024.0);
                }
                if let Some(per) = self.rss_per_held_poll_bytes {
                    let _ = write!(s, ": {:.1} KB per held poll", per / 1024.0);
                }
                s.push('\n');
            }
            if let Some(end) = self.held_polls_end {
                let _ = writeln!(s, "held at end   {end}");
            }
            if self.sent > 0 {
                let _ = writeln!(
                    s,
                    "sent          {} messages in {:.2}s ({:.0}/s, {} publisher(s))",
                    self.sent,
                    self.send_secs,
                    self.sends_per_sec,
                    self.publishers.unwrap_or(1)
                );
                let _ = write!(
                    s,
                    "delivered     {} of {} expected",
                    self.deliveries, self.expected_deliveries
                );
                if let (Some(rate), Some(window)) =
                    (self.deliveries_per_sec, self.delivery_window_secs)
                {
                    let _ = write!(s, ": {rate:.0} deliveries/s over {window:.2}s");
                }
                s.push('\n');
                for (label, latency) in [
                    ("latency    ", &self.latency),
                    ("  when read", &self.read_latency),
                ] {
                    if let Some(l) = latency {
                        let _ = writeln!(
                            s,
                            "{label}   p50 {}  p90 {}  p99 {}  max {}  (mean {}, {} samples)",
                            ms(l.p50_ms),
                            ms(l.p90_ms),
                            ms(l.p99_ms),
                            ms(l.max_ms),
                            ms(l.mean_ms),
                            l.samples
                        );
                    }
                }
                let _ = writeln!(
                    s,
                    "anomalies     lost {} ({} clients), duplicated {} ({} clients), out of order {} ({} clients)",
                    self.lost,
                    self.lost_clients,
                    self.duplicated,
                    self.duplicated_clients,
                    self.out_of_order,
                    self.out_of_order_clients
                );
            }
            if let (Some(got), Some(last)) = (self.got, self.last_delivery_secs) {
                let _ = writeln!(
                    s,
                    "hold          {got} of {} clients got the broadcast; the last after {:.3}s",
                    self.ready, last
                );
            }
            let _ = writeln!(
                s,
                "polls         {} answered ({} timeouts), {} other messages (joins/leaves); {} logged out",
                self.polls, self.poll_timeouts, self.other_messages, self.logged_out
            );
        }
        if let Some(l) = self.latency.as_ref().filter(|_| self.scenario == "hello") {
            let _ = writeln!(
                s,
                "latency       p50 {}  p90 {}  p99 {}  max {}",
                ms(l.p50_ms),
                ms(l.p90_ms),
                ms(l.p99_ms),
                ms(l.max_ms)
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(s, "errors        none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect();
            let _ = writeln!(s, "errors        {}", list.join(", "));
        }
        s
    }
}

/// The figures `summarize` shows, per scenario, in order.
fn keys(scenario: &str) -> &'static [(&'static str, &'static str)] {
    const LATENCY: [(&str, &str); 3] = [
        ("latency.p50_ms", "latency p50 ms"),
        ("latency.p99_ms", "latency p99 ms"),
        ("latency.max_ms", "latency max ms"),
    ];
    const READ: [(&str, &str); 2] = [
        ("read_latency.p50_ms", "  when read: p50 ms"),
        ("read_latency.p99_ms", "  when read: p99 ms"),
    ];
    match scenario {
        "hello" => &[
            ("requests_per_sec", "req/s"),
            LATENCY[0],
            LATENCY[1],
            LATENCY[2],
        ],
        "idle" => &[
            ("ready", "clients polling"),
            ("ready_secs", "s to all polling"),
            ("held_polls", "polls held"),
            ("held_polls_end", "polls held at end"),
            ("rss_held_kb", "server RSS kB, polls held"),
            ("rss_per_held_poll_bytes", "RSS bytes / held poll"),
        ],
        "stall" => &[
            ("stall.reply_bytes", "reply bytes"),
            ("stall.stalled", "stalled readers"),
            ("stall.rss_baseline_kb", "server RSS kB, baseline"),
            ("stall.rss_peak_kb", "server RSS kB, peak"),
            ("stall.rss_after_kb", "server RSS kB, after"),
            ("stall.rss_excess_after_kb", "  after − baseline, kB"),
            ("stall.fds_peak", "server fds, peak"),
            ("stall.fds_after", "server fds, after"),
            ("stall.closed_by_server", "closed by the server"),
            ("stall.completed", "kept and completed"),
        ],
        "slowloris" => &[
            ("slowloris.opened", "trickling connections opened"),
            ("slowloris.reconnects", "  reconnects"),
            ("slowloris.connect_failed", "  refused at connect"),
            ("slowloris.closed_by_server", "  closed by the server"),
            ("slowloris.still_open", "  still open at the end"),
            ("slowloris.fds_peak", "server fds, peak"),
            ("slowloris.login.p50_ms", "user login p50 ms"),
            ("slowloris.login.p99_ms", "user login p99 ms"),
            ("slowloris.send.p50_ms", "user send p50 ms"),
            ("slowloris.send.p99_ms", "user send p99 ms"),
            ("slowloris.poll.p50_ms", "user poll answer p50 ms"),
            ("slowloris.poll.p99_ms", "user poll answer p99 ms"),
            ("slowloris.user_errors", "user errors"),
        ],
        "hold" => &[
            ("ready", "clients polling"),
            ("ready_secs", "s to all polling"),
            ("held_polls", "polls held"),
            ("rss_held_kb", "server RSS kB, polls held"),
            ("rss_per_held_poll_bytes", "RSS bytes / held poll"),
            ("got", "clients that got it"),
            ("last_delivery_secs", "s until the last got it"),
            LATENCY[0],
            LATENCY[1],
            ("lost", "lost"),
            ("duplicated", "duplicated"),
            ("out_of_order", "out of order"),
        ],
        _ => &[
            ("ready", "clients polling"),
            ("ready_secs", "s to all polling"),
            ("sent", "messages sent"),
            ("sends_per_sec", "sends/s"),
            ("deliveries_per_sec", "deliveries/s"),
            ("delivery_window_secs", "s first send → last delivery"),
            LATENCY[0],
            LATENCY[1],
            LATENCY[2],
            READ[0],
            READ[1],
            ("lost", "lost"),
            ("duplicated", "duplicated"),
            ("out_of_order", "out of order"),
        ],
    }
}

fn lookup(v: &Value, key: &str) -> Option<f64> {
    let mut cur = v;
    for part in key.split('.') {
        cur = cur.get(part)?;
    }
    cur.as_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// `loadgen summarize`: medians (and ranges) per scenario.
pub fn summarize(files: &[String]) -> anyhow::Result<String> {
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("{file}:{}: not a JSON result", n + 1))?;
            let scenario = v
                .get("scenario")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            match groups.iter_mut().find(|(s, _)| *s == scenario) {
                Some((_, runs)) => runs.push(v),
                None => groups.push((scenario, vec![v])),
            }
        }
    }
    let mut out = String::new();
    // The median of one figure over one scenario's runs, if it ran.
    let median_of = |scenario: &str, key: &str| {
        groups
            .iter()
            .find(|(s, _)| s == scenario)
            .map(|(_, runs)| median(runs.iter().filter_map(|r| lookup(r, key)).collect()))
            .filter(|v| *v > 0.0)
    };
    let hello_rps = median_of("hello", "requests_per_sec");
    // In-process broadcast deliveries/s: what `cluster` (the same broadcast
    // on two nodes over Redis) is quoted against.
    let broadcast_dps = median_of("broadcast", "deliveries_per_sec");
    for (scenario, runs) in &groups {
        let (what, unit) = if scenario == "hello" {
            ("connections", "connections")
        } else {
            ("clients", "clients")
        };
        let size = runs.first().and_then(|r| lookup(r, what)).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "== {scenario}: median of {} run(s), {} {unit}",
            runs.len(),
            fmt_num(size)
        );
        for (key, label) in keys(scenario) {
            let xs: Vec<f64> = runs.iter().filter_map(|r| lookup(r, key)).collect();
            if xs.is_empty() {
                continue;
            }
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let m = median(xs);
            let _ = write!(out, "  {label:<32} {:>12}", fmt_num(m));
            if lo != hi {
                let _ = write!(out, "   (range {} – {})", fmt_num(lo), fmt_num(hi));
            }
            // Only broadcast runs flat out; chat's rates are set by --rate.
            if let Some(base) = hello_rps.filter(|_| scenario == "broadcast") {
                if matches!(*key, "deliveries_per_sec" | "sends_per_sec") {
                    let _ = write!(out, "   = {:.3} × hello req/s", m / base);
                }
            }
            if let Some(base) = broadcast_dps.filter(|_| scenario == "cluster") {
                if *key == "deliveries_per_sec" {
                    let _ = write!(out, "   = {:.3} × in-process broadcast", m / base);
                }
            }
            out.push('\n');
        }
        let errors: Vec<f64> = runs
            .iter()
            .map(|r| {
                r.get("errors")
                    .and_then(Value::as_object)
                    .map(|m| m.values().filter_map(Value::as_f64).fold(0.0, |a, b| a + b))
                    .unwrap_or(0.0)
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:<32} {:>12}",
            "client errors (median)",
            fmt_num(median(errors))
        );
    }
    if let Some(base) = hello_rps {
        let _ = writeln!(out, "(hello baseline: {} req/s)", fmt_num(base));
    }
    Ok(out)
}
