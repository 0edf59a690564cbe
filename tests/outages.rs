//! Faults injected into real processes: a redis-server paused (SIGSTOP) or
//! killed under a node, a node stopped (SIGTERM) while it holds polls, and
//! Redis losing its data under a logged-in client. In each case the client
//! must get an answer it can act on, at once: `503` + `Retry-After` (go
//! elsewhere or retry later) or `401` (log in again), never a request held
//! for the length of the store's own retries, a `500`, or a `400`.
//!
//! The nodes run with the default provider timeout (800 ms); "at once"
//! below is that bound plus a margin for a loaded machine, far below the
//! ~9.4 s requests were held before it existed.

mod common;

use common::nodes::{self, logged_in, login, User};
use common::processes::{Node, Redis};
use reqwest::{header, Client, Response, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The provider timeout plus a margin for a loaded test machine.
const PROMPTLY: Duration = Duration::from_millis(2500);

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(15))
        // No kept-alive connections: a stopping node's exit must not
        // depend on this client closing its idle ones.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn send(http: &Client, node: &Node, user: &User, text: &str) -> Response {
    nodes::send(http, &node.base, user, text)
        .send()
        .await
        .unwrap()
}

async fn poll(http: &Client, node: &Node, token: &str, cursor: &str) -> Response {
    nodes::poll(http, &node.base, token, cursor)
        .send()
        .await
        .unwrap()
}

async fn healthz(http: &Client, node: &Node) -> Response {
    http.get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap()
}

/// Runs `request`, and asserts it was answered `503` within
/// [`PROMPTLY`]; the response.
async fn refused_promptly(
    what: &str,
    request: impl std::future::Future<Output = Response>,
) -> Response {
    let started = Instant::now();
    let response = request.await;
    let took = started.elapsed();
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{what} during the outage"
    );
    assert!(took < PROMPTLY, "{what} was held {took:?}");
    response
}

/// As [`refused_promptly`], with a `Retry-After` (what a client acts on;
/// `/healthz` answers a load balancer, which has its own interval).
async fn unavailable_promptly(
    what: &str,
    request: impl std::future::Future<Output = Response>,
) -> Response {
    let response = refused_promptly(what, request).await;
    assert!(
        response.headers().contains_key(header::RETRY_AFTER),
        "{what}: 503 without Retry-After"
    );
    response
}

/// `/healthz` and a poll answer `503` (the poll with `Retry-After`) at
/// once while Redis is out, and go on doing so (the connection manager's
/// reconnect back-off must not hold later requests either).
async fn polls_and_health_are_refused_promptly(http: &Client, node: &Node, user: &User) {
    // A paused Redis closes no connection: past REDIS_SILENCE (1 s) the
    // node stops trusting its client cache, so the poll needs Redis.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..3 {
        refused_promptly("/healthz", healthz(http, node)).await;
        let polled =
            unavailable_promptly("a poll", poll(http, node, &user.token, &user.cursor)).await;
        let body: Value = polled.json().await.unwrap();
        assert_eq!(body["error"], "unavailable");
    }
}

/// A node on `redis` with the default settings, a client, and Ann
/// logged in through it.
async fn ann_on_a_node(redis: &Redis) -> (Node, Client, User) {
    let node = Node::start(&redis.url());
    let http = http();
    let user = logged_in(&http, &node, "ann").await;
    (node, http, user)
}

/// A connection to `redis` of the test's own.
async fn admin(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Drops every connection but the caller's, as a network blip would.
async fn drop_connections(redis: &Redis) {
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut admin(redis).await)
        .await
        .unwrap();
    assert!(killed > 0, "the node's connections were dropped");
}

/// A network blip drops the node's connections, then Redis hangs: the
/// node's reconnect attempts are accepted by the kernel and never
/// answered, the worst case for a client that waits on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_gets_polls_and_healthz_503_at_once() {
    let redis = Redis::start();
    let (node, http, user) = ann_on_a_node(&redis).await;
    drop_connections(&redis).await;
    redis.pause();
    polls_and_health_are_refused_promptly(&http, &node, &user).await;
    redis.resume();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_gets_polls_and_healthz_503_at_once() {
    let mut redis = Redis::start();
    let (node, http, user) = ann_on_a_node(&redis).await;
    redis.kill();
    polls_and_health_are_refused_promptly(&http, &node, &user).await;
}

/// Logins and sends go through server functions: they too must answer
/// `503` + `Retry-After` at once (never `500`), and work again when Redis
/// is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_gets_logins_and_sends_503_at_once_then_recovers() {
    let redis = Redis::start();
    let (node, http, user) = ann_on_a_node(&redis).await;
    drop_connections(&redis).await;
    redis.pause();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    unavailable_promptly("a login", login(&http, &node, "bob")).await;
    unavailable_promptly("a send", send(&http, &node, &user, "while paused")).await;
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = send(&http, &node, &user, "after").await.status();
        if status.is_success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sending never recovered: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(healthz(&http, &node).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_answers_its_held_polls_503_at_once_and_exits() {
    let redis = Redis::start();
    let mut node = Node::start_with(
        &redis.url(),
        &[("COMET_POLL_TIMEOUT", "20s"), ("COMET_IDLE_TIMEOUT", "40s")],
    );
    let http = http();
    let user = logged_in(&http, &node, "ann").await;
    let held = {
        let poll = nodes::poll(&http, &node.base, &user.token, &user.cursor);
        tokio::spawn(async move {
            let response = poll.send().await.unwrap();
            (Instant::now(), response)
        })
    };
    // Let the poll reach the node and be held (it would be for 20 s).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!held.is_finished(), "the poll was held");
    let stopped = Instant::now();
    node.terminate();
    let (answered, response) = held.await.unwrap();
    assert!(
        answered - stopped < PROMPTLY,
        "the held poll was answered {:?} after SIGTERM",
        answered - stopped
    );
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("stopping"),
        "{body}"
    );
    assert!(
        node.wait_exit(Duration::from_secs(5)),
        "the node exits once its requests are answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_data_redis_lost_gets_401_even_with_a_cursor_ahead() {
    let redis = Redis::start();
    let (node, http, user) = ann_on_a_node(&redis).await;
    // The node now knows Ann (its client cache); Redis forgets everything.
    let () = redis::cmd("FLUSHALL")
        .query_async(&mut admin(&redis).await)
        .await
        .unwrap();
    // A cursor past anything the (now empty) channel has.
    let response = poll(&http, &node, &user.token, "99999999999999-0").await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "told to log in again, not that the cursor is bad"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unknown_client");
}
