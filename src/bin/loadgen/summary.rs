//! `loadgen summarize`: several runs' JSON lines (one [`Report`] each) as
//! per-scenario medians and ranges, with the broadcast figures as ratios
//! of the hello baseline measured in the same session and `cluster`
//! against the in-process broadcast.
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
            CPU[0],
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
            CPU[0],
            CPU[1],
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
