//! Several server processes on one Redis: no sticky sessions, nodes dying,
//! Redis restarting. Each test starts its own redis-server and nodes (this
//! crate's binary) on free loopback ports, and they die with the test.
//! Those that do not depend on one Redis (a node dying, a logout seen by
//! every node, tokens kept out of logs) run again on a Redis Cluster of
//! their own (`on_a_cluster_…`; the failover is in cluster_nodes.rs).

mod common;

use common::nodes::{self, logged_in, poll_texts as poll, User};
use common::processes::{Node, Redis};
use common::redis_cluster::Cluster;
use reqwest::{header, Client, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends through the node at `base`; the status, or 502 with no answer.
async fn send(http: &Client, base: &str, user: &User, text: &str) -> StatusCode {
    match nodes::send(http, base, user, text).send().await {
        Ok(response) => response.status(),
        Err(_) => StatusCode::BAD_GATEWAY,
    }
}

/// Polls (on the nodes given, in turn) until `count` texts arrived.
async fn collect(http: &Client, nodes: &[&Node], user: &mut User, count: usize) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut turn = 0;
    while got.len() < count && Instant::now() < deadline {
        if let Ok(texts) = poll(http, nodes[turn % nodes.len()], user).await {
            got.extend(texts);
        }
        turn += 1;
    }
    got
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_different_nodes_chat_and_switch_nodes_between_polls() {
    let redis = Redis::start();
    let (a, b) = (Node::start(&redis.url()), Node::start(&redis.url()));
    let http = http();
    let mut ann = logged_in(&http, &a, "ann").await;
    let mut bob = logged_in(&http, &b, "bob").await;
    // Display names are unique across the cluster.
    let taken = http
        .post(format!("{}/api/login", b.base))
        .form(&[("username", "ANN")])
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    // Skip bob's own join message for ann.
    ann.cursor = bob.cursor.clone();

    for text in numbered("a", 0..5) {
        assert!(send(&http, &a.base, &ann, &text).await.is_success());
    }
    // Bob alternates nodes between polls: every message once, in order.
    assert_eq!(
        collect(&http, &[&b, &a], &mut bob, 5).await,
        numbered("a", 0..5)
    );
    assert!(send(&http, &b.base, &bob, "reply from b")
        .await
        .is_success());
    assert_eq!(
        collect(&http, &[&a], &mut ann, 6).await,
        [numbered("a", 0..5), vec!["reply from b".into()]].concat()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_its_clients_resume_on_another() {
    let redis = Redis::start();
    a_killed_node_loses_nothing_its_clients_resume_on_another_on(&redis.url()).await;
}

/// The same on a Redis Cluster (three primaries, a replica each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_killed_node_loses_nothing_its_clients_resume_on_another() {
    let cluster = Cluster::start();
    a_killed_node_loses_nothing_its_clients_resume_on_another_on(&cluster.url()).await;
}

async fn a_killed_node_loses_nothing_its_clients_resume_on_another_on(url: &str) {
    let (mut a, b) = (Node::start(url), Node::start(url));
    let http = http();
    let mut reader = logged_in(&http, &a, "reader").await;
    let writer = logged_in(&http, &b, "writer").await;
    reader.cursor = writer.cursor.clone();

    let sender = {
        let (http, base, writer) = (http.clone(), b.base.clone(), writer.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                let status = send(&http, &base, &writer, &format!("m{i}")).await;
                assert!(status.is_success(), "send m{i}: {status}");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    // Read half of it through node a, then a dies mid-stream.
    let mut got = collect(&http, &[&a], &mut reader, 15).await;
    a.kill();
    // The client moves to node b with the cursor it has.
    got.extend(collect(&http, &[&b], &mut reader, 40 - got.len()).await);
    sender.await.unwrap();
    assert_eq!(
        got,
        numbered("m", 0..40),
        "every message once, in order, across the node's death"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_answers_503_then_recovers_with_nothing_sent_lost() {
    let mut redis = Redis::start();
    let node = Node::start(&redis.url());
    let http = http();
    let mut user = logged_in(&http, &node, "ann").await;
    for text in numbered("before", 0..3) {
        assert!(send(&http, &node.base, &user, &text).await.is_success());
    }

    redis.stop();
    // Redis gone: the node empties its client cache, and would stop
    // trusting it within REDIS_SILENCE (1 s) anyway, so this poll needs
    // Redis.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let health = http
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Says so without the provider's error text (that goes to the log).
    assert_eq!(health.text().await.unwrap(), "unavailable");
    let response = nodes::poll(&http, &node.base, &user.token, &user.cursor)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unavailable"
    );
    let refused = send(&http, &node.base, &user, "while down").await;
    assert!(
        !refused.is_success(),
        "a send Redis never stored must not be reported as sent"
    );

    redis.restart();
    // The node reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut after = StatusCode::SERVICE_UNAVAILABLE;
    while Instant::now() < deadline {
        after = send(&http, &node.base, &user, "after").await;
        if after.is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(after.is_success(), "sending recovered: {after}");
    let health = http
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let got = collect(&http, &[&node], &mut user, 4).await;
    assert_eq!(
        got,
        [numbered("before", 0..3), vec!["after".into()]].concat()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_redis_waits_for_it_then_serves() {
    let mut redis = Redis::start();
    redis.stop();
    let mut node = Node::spawn(&redis.url());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(node.is_running(), "the node gave up while Redis was down");
    redis.restart();
    node.wait_ready();
    let http = http();
    let mut ann = logged_in(&http, &node, "Ann").await;
    assert_eq!(send(&http, &node.base, &ann, "hello").await, StatusCode::OK);
    assert_eq!(collect(&http, &[&node], &mut ann, 1).await, ["hello"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_node_is_refused_on_every_node_at_once() {
    let redis = Redis::start();
    a_logout_on_one_node_is_refused_on_every_node_at_once_on(&redis.url()).await;
}

/// The same on a Redis Cluster (three primaries, a replica each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_logout_on_one_node_is_refused_on_every_node_at_once() {
    let cluster = Cluster::start();
    a_logout_on_one_node_is_refused_on_every_node_at_once_on(&cluster.url()).await;
}

async fn a_logout_on_one_node_is_refused_on_every_node_at_once_on(url: &str) {
    let (a, b) = (Node::start(url), Node::start(url));
    let http = http();
    let mut ann = logged_in(&http, &a, "Ann").await;
    // Node b has looked Ann up (and keeps her in its cache).
    assert!(poll(&http, &b, &mut ann).await.is_ok());
    let logout = http
        .post(format!("{}/api/logout", a.base))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success() || logout.status().is_redirection());
    // Well inside the cache's lifetime: the removal notice, not expiry,
    // makes b refuse her.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        poll(&http, &b, &mut ann).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        poll(&http, &a, &mut ann).await,
        Err(StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_token_never_reaches_a_log_line_a_page_or_a_message() {
    let redis = Redis::start();
    a_private_token_never_reaches_a_log_line_a_page_or_a_message_on(&redis.url()).await;
}

/// The same on a Redis Cluster (three primaries, a replica each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_private_token_never_reaches_a_log_line_a_page_or_a_message() {
    let cluster = Cluster::start();
    a_private_token_never_reaches_a_log_line_a_page_or_a_message_on(&cluster.url()).await;
}

async fn a_private_token_never_reaches_a_log_line_a_page_or_a_message_on(url: &str) {
    let log = std::env::temp_dir().join(format!("comet-hygiene-{}.log", std::process::id()));
    let mut node = Node::start_logging(url, &log);
    let http = http();
    let mut ann = logged_in(&http, &node, "Ann").await;
    let bob = logged_in(&http, &node, "Bob").await;
    assert!(send(&http, &node.base, &ann, "hello").await.is_success());
    assert_eq!(collect(&http, &[&node], &mut ann, 1).await, ["hello"]);
    let page = http
        .get(format!("{}/chat", node.base))
        .header(header::COOKIE, format!("comet_token={}", ann.token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Ann"), "the chat page rendered for Ann");
    let history = http
        .post(format!("{}/api/recent_messages", node.base))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(history.contains("hello"));
    let logout = http
        .post(format!("{}/api/logout", node.base))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success() || logout.status().is_redirection());
    node.kill();
    let logs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(logs.contains("logged in"), "the node logged at debug level");
    assert!(logs.contains("request{id="), "log lines carry request ids");
    for (who, token) in [("Ann", &ann.token), ("Bob", &bob.token)] {
        assert_eq!(token.len(), 64);
        assert!(
            !page.contains(token.as_str()),
            "{who}'s token is in the page"
        );
        assert!(
            !history.contains(token.as_str()),
            "{who}'s token is in a message"
        );
        assert!(
            !logs.contains(token.as_str()),
            "{who}'s token is in the logs"
        );
    }
}
