//! Server processes on a Redis Cluster (three primaries, three replicas,
//! started by the test): clients on different nodes chat, and the primary
//! holding the busy chat channel fails over under load, with sends waiting
//! for a replica (`COMET_REDIS_WAIT_REPLICAS=1`).

mod common;

use common::nodes::{self, logged_in, poll_texts as poll};
use common::processes::Node;
use common::redis_cluster::Cluster;
use reqwest::{Client, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Nodes on the cluster, sends waiting for one replica, no send rate limit.
fn node(cluster: &Cluster) -> Node {
    Node::start_with(
        &cluster.url(),
        &[
            ("COMET_REDIS_WAIT_REPLICAS", "1"),
            ("COMET_REDIS_WAIT_TIMEOUT", "300ms"),
            ("CHAT_SEND_RATE", "0"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_different_nodes_chat_over_a_cluster() {
    let cluster = Cluster::start();
    let (a, b) = (node(&cluster), node(&cluster));
    let http = http();
    let mut ann = logged_in(&http, &a, "ann").await;
    let bob = logged_in(&http, &b, "bob").await;
    ann.cursor = bob.cursor.clone();
    for i in 0..5 {
        let sent = nodes::send(&http, &b.base, &bob, &format!("b{i}"))
            .send()
            .await
            .unwrap();
        assert!(sent.status().is_success(), "{}", sent.status());
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 5 && Instant::now() < deadline {
        got.extend(poll(&http, &a, &mut ann).await.unwrap_or_default());
    }
    assert_eq!(got, ["b0", "b1", "b2", "b3", "b4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_of_the_busy_channels_primary_loses_no_message_reported_sent() {
    let mut cluster = Cluster::start();
    let (a, b) = (node(&cluster), node(&cluster));
    let http = http();
    let mut reader = logged_in(&http, &a, "reader").await;
    let writer = logged_in(&http, &b, "writer").await;
    reader.cursor = writer.cursor.clone();

    // The writer sends m0, m1, … every 20 ms through node b, and keeps
    // the texts reported sent; it stops after 40 sent once told to.
    let sent = Arc::new(Mutex::new(Vec::<usize>::new()));
    // Set by the writer once it sent its last message.
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop, mut stopping) = tokio::sync::watch::channel(false);
    let sender = {
        let (http, base, writer, sent) =
            (http.clone(), b.base.clone(), writer.clone(), sent.clone());
        let finished = finished.clone();
        tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut sent_after_stop = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            for i in 0.. {
                if Instant::now() > deadline {
                    finished.store(true, std::sync::atomic::Ordering::SeqCst);
                    return failed;
                }
                let status = match nodes::send(&http, &base, &writer, &format!("m{i}"))
                    .send()
                    .await
                {
                    Ok(response) => response.status(),
                    Err(_) => StatusCode::BAD_GATEWAY,
                };
                if status.is_success() {
                    sent.lock().unwrap().push(i);
                    if *stopping.borrow_and_update() {
                        sent_after_stop += 1;
                        if sent_after_stop == 40 {
                            finished.store(true, std::sync::atomic::Ordering::SeqCst);
                            return failed;
                        }
                    }
                } else {
                    failed.push(status.as_u16());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            unreachable!()
        })
    };

    // The reader follows on both nodes in turn.
    let reading = {
        let (http, sent, finished) = (http.clone(), sent.clone(), finished.clone());
        let nodes = [Arc::new(a), Arc::new(b)];
        let kept = nodes.clone();
        tokio::spawn(async move {
            let _kept = kept;
            let mut got = Vec::<usize>::new();
            let mut unavailable = 0;
            let mut turn = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match poll(&http, &nodes[turn % 2], &mut reader).await {
                    Ok(texts) => got.extend(texts.iter().map(|t| t[1..].parse::<usize>().unwrap())),
                    Err(_) => {
                        unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                turn += 1;
                let done = {
                    let sent = sent.lock().unwrap();
                    finished.load(std::sync::atomic::Ordering::SeqCst)
                        && sent.last().is_some_and(|last| got.last() >= Some(last))
                };
                if done || Instant::now() > deadline {
                    return (got, unavailable, nodes);
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    let slot = cluster.slot("comet:{chat}:log");
    let old = cluster.primary_of(slot);
    let killed_at = Instant::now();
    cluster.kill(old);
    let new = tokio::task::block_in_place(|| cluster.wait_failover(slot, old));
    let promoted_in = killed_at.elapsed();
    // The killed node comes back as the new primary's replica, so sends
    // that wait for one replica succeed again.
    cluster.restart(old);
    tokio::task::block_in_place(|| cluster.wait_ok());
    stop.send(true).unwrap();
    let failed = sender.await.unwrap();
    let (got, unavailable, _nodes) = reading.await.unwrap();
    let sent = sent.lock().unwrap().clone();
    eprintln!(
        "failover {old} -> {new} in {promoted_in:?}; {} sent, sends failed: {failed:?}, {} received, {unavailable} polls failed",
        sent.len(),
        got.len()
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "received once each, in order: {got:?}"
    );
    let missing: Vec<_> = sent.iter().filter(|i| !got.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "reported sent but never received: {missing:?}"
    );
    assert!(sent.len() >= 80, "sends resumed after the failover");
}
