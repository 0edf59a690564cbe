//! What a run reports: one [`Report`], printed for people, or as one JSON
//! object with `--json` (which `loadgen summarize`, in `summary.rs`, reads).

use crate::stats::Histogram;
use serde::{Deserialize, Serialize};
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
    /// The server's protocol: "comet" (ours) or "nchan".
    #[serde(default = "comet")]
    pub protocol: String,
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
    /// With several `--server-pid`s: each one's RSS (with its descendants)
    /// when all polls were held, in the order given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_held_each_kb: Option<Vec<u64>>,
    /// The load generator's own RSS (all its processes) at the same moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_rss_held_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_end_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_held_poll_bytes: Option<f64>,
    /// The server's processes at the end (nginx: master and workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_processes: Option<usize>,
    /// CPU time (user + system) of all the server's processes from the
    /// first send until every client had what was sent, and per delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_delivery: Option<f64>,
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
    /// Polls answered per delivery: the requests a message costs a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls_per_delivery: Option<f64>,
    /// The rooms scenario: rooms, and rooms each client follows in its poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms_per_client: Option<usize>,
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

fn comet() -> String {
    "comet".to_owned()
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
            let nchan = self.protocol == "nchan";
            let logged_in = if nchan {
                "–".to_owned()
            } else {
                self.logged_in.to_string()
            };
            let _ = writeln!(
                s,
                "clients       {} asked, {logged_in} logged in, {} polling after {:.1}s; {} polls held",
                self.clients, self.ready, self.ready_secs, self.held_polls
            );
            if let (Some(rooms), Some(k)) = (self.rooms, self.rooms_per_client) {
                let _ = writeln!(
                    s,
                    "rooms         {rooms}, each client in {k} of them, all in one poll"
                );
            }
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
            if let Some(each) = &self.rss_held_each_kb {
                let mb: Vec<String> = each
                    .iter()
                    .map(|kb| format!("{:.1}", *kb as f64 / 1024.0))
                    .collect();
                let _ = writeln!(s, "  each       {} MB (per --server-pid)", mb.join(" + "));
            }
            if let Some(kb) = self.loadgen_rss_held_kb {
                let _ = write!(
                    s,
                    "loadgen RSS   {:.1} MB with polls held",
                    kb as f64 / 1024.0
                );
                if self.held_polls > 0 {
                    let per = kb as f64 * 1024.0 / self.held_polls as f64;
                    let _ = write!(s, ": {:.1} KB per client", per / 1024.0);
                }
                s.push('\n');
            }
            if let (Some(cpu), Some(procs)) = (self.server_cpu_secs, self.server_processes) {
                let _ = write!(s, "server CPU    {cpu:.2}s over {procs} process(es) from the first send to the last delivery");
                if let Some(per) = self.server_cpu_us_per_delivery {
                    let _ = write!(s, ": {per:.1} µs per delivery");
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
            let logged_out = if nchan {
                "–".to_owned()
            } else {
                self.logged_out.to_string()
            };
            let _ = write!(
                s,
                "polls         {} answered ({} timeouts), {} other messages (joins/leaves); {logged_out} logged out",
                self.polls, self.poll_timeouts, self.other_messages
            );
            if let Some(per) = self.polls_per_delivery {
                let _ = write!(s, "; {per:.3} polls per delivery");
            }
            s.push('\n');
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
