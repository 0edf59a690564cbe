//! The `tail` example (examples/tail.rs) as its user runs it: a process
//! with the chat on its stdout and what to send on its stdin.
//!
//! Cargo gives tests the path of the crate's binaries, not of its examples,
//! and does not build examples for `cargo test --test tail`. So the test
//! builds it first (`cargo build --example tail` into the target directory
//! and profile of the `comet-chat` binary Cargo built for the tests, so it
//! is quick when up to date and never a stale binary), and runs it from
//! `<target>/<profile>/examples/`.

mod common;

use common::http::{chat_texts, start_with, App, Session};
use common::processes::die_with_parent;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

const PATIENCE: Duration = Duration::from_secs(20);

/// The example's binary, built now if it is not up to date: into the
/// target directory and profile of the `comet-chat` binary Cargo built for
/// this test.
async fn tail_binary() -> PathBuf {
    let binaries = Path::new(env!("CARGO_BIN_EXE_comet-chat"))
        .parent()
        .expect("the binaries' directory");
    let profile = match binaries.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let target_dir = binaries.parent().expect("the target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let status = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", "tail", "--features", "ssr,client"])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .await
        .expect("cargo runs");
    assert!(status.success(), "cargo build --example tail: {status}");
    binaries.join("examples/tail")
}

/// `tail <app> <name>` with its stdin, stdout and stderr piped to us.
async fn spawn_tail(
    binary: &Path,
    app: &App,
    name: &str,
) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut command = std::process::Command::new(binary);
    command
        .args([&app.base, name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut command);
    let mut child = Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .expect("tail runs");
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    wait_connected(stderr).await;
    (child, stdout)
}

/// Waits for tail to say it has read the history and is polling.
async fn wait_connected(mut stderr: Lines<BufReader<ChildStderr>>) {
    let connected = async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.starts_with("* connected as") {
                return;
            }
            eprintln!("tail: {line}");
        }
        panic!("tail ended before it connected");
    };
    tokio::time::timeout(PATIENCE, connected)
        .await
        .expect("tail connects");
    // Keep reading its stderr, so it can never block on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("tail: {line}");
        }
    });
}

/// Reads tail's stdout until `expected` is printed.
async fn wait_printed(stdout: &mut Lines<BufReader<ChildStdout>>, expected: &str) {
    let printed = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line == expected {
                return;
            }
        }
        panic!("tail's stdout ended before {expected:?}");
    };
    tokio::time::timeout(PATIENCE, printed)
        .await
        .unwrap_or_else(|_| panic!("tail did not print {expected:?}"));
}

/// Polls as `s` from `cursor` until a chat message `text` comes.
async fn wait_received(app: &App, s: &Session, mut cursor: String, text: &str) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let (_, reply) = app.poll(s, Some(&cursor)).await;
        if chat_texts(&reply).iter().any(|t| t == text) {
            return;
        }
        if let Some(last) = reply["messages"].as_array().and_then(|m| m.last()) {
            cursor = last["id"].as_str().unwrap().to_owned();
        }
    }
    panic!("{text:?} never reached the poll");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_the_chat_and_sends_what_is_typed() {
    // Built before anyone logs in: a build can outlast an idle timeout.
    let binary = tail_binary().await;
    let app = start_with(&[
        ("COMET_RETENTION_MESSAGES", "100"),
        ("COMET_IDLE_TIMEOUT", "30s"),
    ])
    .await;
    let bob = app.login("bob").await;
    let cursor = app.cursor(&bob).await;
    let (mut tail, mut stdout) = spawn_tail(&binary, &app, "ada").await;

    // What someone else says is printed, as `name: text`.
    assert!(app.send(&bob, "hello ada").await.status().is_success());
    wait_printed(&mut stdout, "bob: hello ada").await;

    // What is typed reaches everyone.
    let mut stdin = tail.stdin.take().unwrap();
    stdin.write_all(b"hello bob\n").await.unwrap();
    stdin.flush().await.unwrap();
    wait_received(&app, &bob, cursor, "hello bob").await;
    wait_printed(&mut stdout, "ada: hello bob").await;

    // The end of input logs out, and tail exits.
    drop(stdin);
    let status = tokio::time::timeout(PATIENCE, tail.wait())
        .await
        .expect("tail exits at the end of its input")
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(app.online_names(&bob).await, ["bob"], "ada logged out");
}
