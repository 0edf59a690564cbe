//! `loadgen summarize`: several runs' JSON lines (one [`Report`] each) as
//! per-scenario medians and ranges. Broadcast figures are quoted as ratios
//! of the hello baseline of the same session, `cluster` against the
//! in-process broadcast, `rooms-cluster` (rooms over a Redis Cluster)
//! against `rooms` (over one Redis), and a scenario run against both our
//! server and Nchan is shown side by side: ours, Nchan, ours ÷ Nchan.
//! Rooms runs are grouped by rooms per client as well: K = 1 and K = 10
//! are two configurations, not two samples of one.
//!
//! [`Report`]: crate::report::Report

use anyhow::Context;
use serde_json::Value;
use std::fmt::Write as _;

/// The figures `summarize` shows, per scenario, in order.
fn keys(scenario: &str) -> &'static [(&'static str, &'static str)] {
    const LATENCY: [(&str, &str); 3] = [
        ("latency.p50_ms", "latency p50 ms"),
        ("latency.p99_ms", "latency p99 ms"),
        ("latency.max_ms", "latency max ms"),
    ];
    const CPU: [(&str, &str); 2] = [
        ("server_cpu_us_per_delivery", "server CPU µs / delivery"),
        ("server_cpu_secs", "server CPU s, delivery window"),
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
            ("logged_in", "clients logged in"),
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
        // hold100k: the hold scenario on several nodes (scripts/bench).
        "hold" | "hold100k" => &[
            ("ready", "clients polling"),
            ("ready_secs", "s to all polling"),
            ("held_polls", "polls held"),
            ("rss_held_kb", "server RSS kB, polls held"),
            ("rss_per_held_poll_bytes", "RSS bytes / held poll"),
            ("loadgen_rss_held_kb", "loadgen RSS kB, polls held"),
            ("got", "clients that got it"),
            ("last_delivery_secs", "s until the last got it"),
            LATENCY[0],
            LATENCY[1],
            CPU[0],
            CPU[1],
            ("lost", "lost"),
            ("duplicated", "duplicated"),
            ("out_of_order", "out of order"),
        ],
        // broadcast, chat, cluster, rooms, rooms-cluster (a figure a
        // scenario does not report, such as rooms, is left out).
        _ => &[
            ("logged_in", "clients logged in"),
            ("ready", "clients polling"),
            ("ready_secs", "s to all polling"),
            ("rooms", "rooms"),
            ("rooms_per_client", "rooms per client's poll"),
            ("sent", "messages sent"),
            ("sends_per_sec", "sends/s"),
            ("deliveries_per_sec", "deliveries/s"),
            ("delivery_window_secs", "s first send → last delivery"),
            LATENCY[0],
            LATENCY[1],
            LATENCY[2],
            READ[0],
            READ[1],
            CPU[0],
            CPU[1],
            ("polls_per_delivery", "polls / delivery"),
            ("rss_held_kb", "server RSS kB, polls held"),
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

/// Figures Nchan has no counterpart for (it has no login): "–".
const LOGIN_KEYS: [&str; 1] = ["logged_in"];

/// The runs of one scenario against one server (and, rooms, one number
/// of rooms per client).
struct Group {
    scenario: String,
    protocol: String,
    per_client: Option<u64>,
    runs: Vec<Value>,
}

impl Group {
    /// The scenario as headings name it.
    fn title(&self) -> String {
        match self.per_client {
            Some(k) => format!("{}, {k} room(s) per client", self.scenario),
            None => self.scenario.clone(),
        }
    }

    fn values(&self, key: &str) -> Vec<f64> {
        self.runs.iter().filter_map(|r| lookup(r, key)).collect()
    }

    fn median(&self, key: &str) -> Option<f64> {
        let xs = self.values(key);
        (!xs.is_empty()).then(|| median(xs))
    }

    /// `(low, high)` when the runs differ.
    fn range(&self, key: &str) -> Option<(f64, f64)> {
        let xs = self.values(key);
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (!xs.is_empty() && lo != hi).then_some((lo, hi))
    }

    /// The median over runs of each run's error count.
    fn median_errors(&self) -> f64 {
        median(
            self.runs
                .iter()
                .map(|r| {
                    r.get("errors")
                        .and_then(Value::as_object)
                        .map(|m| m.values().filter_map(Value::as_f64).fold(0.0, |a, b| a + b))
                        .unwrap_or(0.0)
                })
                .collect(),
        )
    }

    fn size(&self) -> (f64, &'static str) {
        let what = if self.scenario == "hello" {
            "connections"
        } else {
            "clients"
        };
        let size = self.runs.first().and_then(|r| lookup(r, what));
        (size.unwrap_or(0.0), what)
    }
}

/// Groups the results in `files` (name, contents) by scenario and server.
fn read_groups(files: &[(String, String)]) -> anyhow::Result<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    for (file, text) in files {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("{file}:{}: not a JSON result", n + 1))?;
            let field = |name: &str, default: &str| {
                v.get(name)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(default)
                    .to_owned()
            };
            let (scenario, protocol) = (field("scenario", "?"), field("protocol", "comet"));
            let per_client = v.get("rooms_per_client").and_then(Value::as_u64);
            match groups.iter_mut().find(|g| {
                g.scenario == scenario && g.protocol == protocol && g.per_client == per_client
            }) {
                Some(g) => g.runs.push(v),
                None => groups.push(Group {
                    scenario,
                    protocol,
                    per_client,
                    runs: vec![v],
                }),
            }
        }
    }
    Ok(groups)
}

/// `loadgen summarize`: medians (and ranges) per scenario.
pub fn summarize(files: &[String]) -> anyhow::Result<String> {
    let mut texts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        texts.push((file.clone(), text));
    }
    summarize_texts(&texts)
}

fn summarize_texts(files: &[(String, String)]) -> anyhow::Result<String> {
    let groups = read_groups(files)?;
    let find = |scenario: &str, protocol: &str| {
        groups
            .iter()
            .find(|g| g.scenario == scenario && g.protocol == protocol)
    };
    let hello_rps = find("hello", "comet")
        .and_then(|g| g.median("requests_per_sec"))
        .filter(|v| *v > 0.0);
    // In-process broadcast deliveries/s: what `cluster` (the same broadcast
    // on two nodes over Redis) is quoted against.
    let broadcast_dps = find("broadcast", "comet")
        .and_then(|g| g.median("deliveries_per_sec"))
        .filter(|v| *v > 0.0);
    let mut out = String::new();
    let mut done: Vec<&str> = Vec::new();
    for g in &groups {
        if done.contains(&g.scenario.as_str()) {
            continue;
        }
        done.push(&g.scenario);
        match (find(&g.scenario, "comet"), find(&g.scenario, "nchan")) {
            (Some(ours), Some(theirs)) if g.per_client.is_none() => {
                side_by_side(&mut out, ours, theirs)
            }
            _ => {
                for one in groups.iter().filter(|o| o.scenario == g.scenario) {
                    // Rooms over a Redis Cluster: against one Redis, same K.
                    let one_redis = groups
                        .iter()
                        .find(|r| {
                            one.scenario == "rooms-cluster"
                                && r.scenario == "rooms"
                                && r.protocol == one.protocol
                                && r.per_client == one.per_client
                        })
                        .and_then(|r| r.median("deliveries_per_sec"))
                        .filter(|v| *v > 0.0);
                    let base = Bases {
                        hello_rps,
                        broadcast_dps,
                        one_redis,
                    };
                    alone(&mut out, one, &base);
                }
            }
        }
    }
    if let Some(base) = hello_rps {
        let _ = writeln!(out, "(hello baseline: {} req/s)", fmt_num(base));
    }
    Ok(out)
}

/// What a group's figures are quoted against.
struct Bases {
    hello_rps: Option<f64>,
    broadcast_dps: Option<f64>,
    /// Rooms' deliveries/s over one Redis, for `rooms-cluster`.
    one_redis: Option<f64>,
}

/// One server's runs of a scenario.
fn alone(out: &mut String, g: &Group, bases: &Bases) {
    let Bases {
        hello_rps,
        broadcast_dps,
        one_redis,
    } = *bases;
    let (size, unit) = g.size();
    let against = if g.protocol == "nchan" {
        " against Nchan"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "== {}{against}: median of {} run(s), {} {unit}",
        g.title(),
        g.runs.len(),
        fmt_num(size)
    );
    for (key, label) in keys(&g.scenario) {
        let Some(m) = g.median(key) else { continue };
        if g.protocol == "nchan" && LOGIN_KEYS.contains(key) {
            let _ = writeln!(out, "  {label:<32} {:>12}", "–");
            continue;
        }
        let _ = write!(out, "  {label:<32} {:>12}", fmt_num(m));
        if let Some((lo, hi)) = g.range(key) {
            let _ = write!(out, "   (range {} – {})", fmt_num(lo), fmt_num(hi));
        }
        // Only broadcast runs flat out; chat's rates are set by --rate.
        if let Some(base) = hello_rps.filter(|_| g.scenario == "broadcast") {
            if matches!(*key, "deliveries_per_sec" | "sends_per_sec") {
                let _ = write!(out, "   = {:.3} × hello req/s", m / base);
            }
        }
        if let Some(base) = broadcast_dps.filter(|_| g.scenario == "cluster") {
            if *key == "deliveries_per_sec" {
                let _ = write!(out, "   = {:.3} × in-process broadcast", m / base);
            }
        }
        if let Some(base) = one_redis {
            if *key == "deliveries_per_sec" {
                let _ = write!(out, "   = {:.3} × rooms over one Redis", m / base);
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "  {:<32} {:>12}",
        "client errors (median)",
        fmt_num(g.median_errors())
    );
}

/// A scenario run against both servers: medians side by side, their
/// ratio, then each side's range where its runs differ.
fn side_by_side(out: &mut String, ours: &Group, theirs: &Group) {
    let (size, unit) = ours.size();
    let _ = writeln!(
        out,
        "== {}: ours vs Nchan, median of {} / {} run(s), {} {unit}",
        ours.scenario,
        ours.runs.len(),
        theirs.runs.len(),
        fmt_num(size)
    );
    let _ = writeln!(
        out,
        "  {:<32} {:>12} {:>12} {:>12}",
        "", "ours", "Nchan", "ours ÷ Nchan"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), fmt_num);
    for (key, label) in keys(&ours.scenario) {
        let a = ours.median(key);
        let b = theirs.median(key).filter(|_| !LOGIN_KEYS.contains(key));
        if a.is_none() && b.is_none() {
            continue;
        }
        let ratio = match (a, b) {
            (Some(a), Some(b)) if b != 0.0 => format!("{:.3}", a / b),
            _ => "–".to_owned(),
        };
        let _ = write!(
            out,
            "  {label:<32} {:>12} {:>12} {:>12}",
            cell(a),
            cell(b),
            ratio
        );
        let ranges: Vec<String> = [("ours", ours, a), ("Nchan", theirs, b)]
            .into_iter()
            .filter(|(_, _, m)| m.is_some())
            .filter_map(|(who, g, _)| g.range(key).map(|(lo, hi)| (who, lo, hi)))
            .map(|(who, lo, hi)| format!("{who} {} – {}", fmt_num(lo), fmt_num(hi)))
            .collect();
        if !ranges.is_empty() {
            let _ = write!(out, "   (ranges: {})", ranges.join("; "));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "  {:<32} {:>12} {:>12}",
        "client errors (median)",
        fmt_num(ours.median_errors()),
        fmt_num(theirs.median_errors())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(lines: &[&str]) -> String {
        summarize_texts(&[("results.jsonl".to_owned(), lines.join("\n"))]).unwrap()
    }

    fn line_of<'a>(text: &'a str, label: &str) -> &'a str {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in\n{text}"))
    }

    #[test]
    fn a_scenario_run_against_both_is_shown_side_by_side() {
        let text = summary(&[
            r#"{"scenario":"broadcast","clients":1000,"logged_in":1000,"deliveries_per_sec":300000,"server_cpu_us_per_delivery":10.0,"errors":{}}"#,
            r#"{"scenario":"broadcast","protocol":"nchan","clients":1000,"logged_in":1000,"deliveries_per_sec":100000,"server_cpu_us_per_delivery":20.0,"errors":{}}"#,
            r#"{"scenario":"broadcast","clients":1000,"logged_in":1000,"deliveries_per_sec":200000,"server_cpu_us_per_delivery":12.0,"errors":{"send":1}}"#,
            r#"{"scenario":"broadcast","protocol":"nchan","clients":1000,"logged_in":1000,"deliveries_per_sec":150000,"server_cpu_us_per_delivery":30.0,"errors":{}}"#,
        ]);
        assert!(text.contains("== broadcast: ours vs Nchan, median of 2 / 2 run(s), 1000 clients"));
        let rate: Vec<&str> = line_of(&text, "deliveries/s").split_whitespace().collect();
        assert_eq!(&rate[1..4], ["250000", "125000", "2.000"]);
        let cpu: Vec<&str> = line_of(&text, "server CPU µs").split_whitespace().collect();
        assert_eq!(&cpu[5..8], ["11", "25", "0.440"]);
        // Nchan has no login.
        let login: Vec<&str> = line_of(&text, "clients logged in")
            .split_whitespace()
            .collect();
        assert_eq!(&login[3..6], ["1000", "–", "–"]);
    }

    #[test]
    fn rooms_runs_group_by_rooms_per_client_and_the_cluster_is_quoted_against_one_redis() {
        let text = summary(&[
            r#"{"scenario":"rooms","clients":2000,"rooms_per_client":1,"deliveries_per_sec":10000,"polls_per_delivery":1.0,"errors":{}}"#,
            r#"{"scenario":"rooms","clients":200,"rooms_per_client":10,"deliveries_per_sec":9000,"polls_per_delivery":0.25,"errors":{}}"#,
            r#"{"scenario":"rooms","clients":2000,"rooms_per_client":1,"deliveries_per_sec":12000,"polls_per_delivery":0.9,"errors":{}}"#,
            r#"{"scenario":"rooms-cluster","clients":2000,"rooms_per_client":1,"deliveries_per_sec":22000,"errors":{}}"#,
        ]);
        assert!(text.contains("== rooms, 1 room(s) per client: median of 2 run(s), 2000 clients"));
        assert!(text.contains("== rooms, 10 room(s) per client: median of 1 run(s), 200 clients"));
        let k10 = text.split("10 room(s) per client").nth(1).unwrap();
        assert!(line_of(k10, "polls / delivery").contains("0.250"));
        let cluster = text.split("== rooms-cluster").nth(1).unwrap();
        assert!(line_of(cluster, "deliveries/s").ends_with("= 2.000 × rooms over one Redis"));
    }

    #[test]
    fn a_scenario_run_against_ours_only_keeps_its_own_block() {
        let text = summary(&[
            r#"{"scenario":"hello","connections":50,"requests_per_sec":100000,"errors":{}}"#,
            r#"{"scenario":"broadcast","clients":1000,"deliveries_per_sec":300000,"errors":{}}"#,
        ]);
        assert!(text.contains("== broadcast: median of 1 run(s), 1000 clients"));
        assert!(line_of(&text, "deliveries/s").ends_with("= 3.000 × hello req/s"));
        assert!(!text.contains("Nchan"));
    }
}
