//! Soak: a few hundred clients polling and several of them sending, for a
//! bounded time, twice over on one server (in-process provider, loopback
//! only), driven by the workspace's load generator (`loadgen/`). Every client must get
//! every message addressed to it exactly once and in order, every client
//! and poll must be gone once they log out, and the second round must not
//! leave the server bigger than the first did (no leak in the manager, the
//! waiters or the retention).

mod common;

use common::processes::Node;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const CLIENTS: &str = "200";
const PUBLISHERS: &str = "4";
const RATE: &str = "10";
const SECONDS: &str = "30";

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// One `name{channel="chat"} value` line of `/metrics`.
fn metric(text: &str, name: &str) -> f64 {
    let prefix = format!("{name}{{channel=\"chat\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("/metrics has no {name}:\n{text}"))
}

/// The load generator, built first (it is another package of this
/// workspace, so cargo does not build it for this test): the debug build,
/// beside this test's own executable.
fn loadgen() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet", "-p", "loadgen"])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cargo build -p loadgen failed");
    let exe = std::env::current_exe().expect("this test's path");
    // target/debug/deps/soak-… → target/debug/loadgen
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/debug");
    dir.join("loadgen")
}

async fn round(node: &Node, n: usize) -> Value {
    let output = Command::new(loadgen())
        .args(["chat", "--server", node.addr(), "--server-pid"])
        .arg(node.pid().to_string())
        .args(["--clients", CLIENTS, "--publishers", PUBLISHERS])
        .args(["--rate", RATE, "--duration", SECONDS])
        .args(["--procs", "1", "--source-addrs", "4", "--json", "--quiet"])
        .args(["--run", &format!("soak{n}")])
        .output()
        .expect("the load generator runs");
    assert!(
        output.status.success(),
        "round {n}: loadgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("loadgen prints one JSON result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_clients_for_a_while_lose_nothing_and_leak_nothing() {
    // Hundreds of clients log in and publish from a few loopback addresses:
    // the per-address limits (proven in guards.rs) would refuse them.
    let node = Node::start_in_process(&[
        ("COMET_IDLE_TIMEOUT", "5s"),
        ("CHAT_LOGIN_RATE", "0"),
        ("CHAT_SEND_RATE", "0"),
    ]);
    let http = reqwest::Client::new();
    let mut after = Vec::new();
    for n in 1..=2 {
        let result = round(&node, n).await;
        let expected = result["expected_deliveries"].as_u64().unwrap();
        assert!(expected > 0, "round {n}: nothing was sent");
        assert_eq!(
            result["deliveries"].as_u64(),
            Some(expected),
            "round {n}: {result}"
        );
        for anomaly in ["lost", "duplicated", "out_of_order"] {
            assert_eq!(
                result[anomaly].as_u64(),
                Some(0),
                "round {n}: {anomaly} in {result}"
            );
        }
        assert!(
            result["errors"].as_object().unwrap().is_empty(),
            "round {n}: {result}"
        );
        // Everyone logged out: give the reaper a tick to refresh the gauge.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let metrics = http
            .get(format!("{}/metrics", node.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            metric(&metrics, "comet_clients"),
            0.0,
            "round {n}: clients left behind"
        );
        assert_eq!(
            metric(&metrics, "comet_polls_waiting"),
            0.0,
            "round {n}: polls left behind"
        );
        after.push(rss_kb(node.pid()));
    }
    eprintln!(
        "soak: server RSS {} kB after round one, {} kB after round two",
        after[0], after[1]
    );
    // The allocator keeps what it got in round one, so round two runs in
    // the same memory: anything beyond a little slack is a leak.
    assert!(
        after[1] <= after[0] + after[0] / 10,
        "the server grew from {} kB after round one to {} kB after round two",
        after[0],
        after[1]
    );
}
