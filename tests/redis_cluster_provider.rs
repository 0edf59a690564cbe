//! The provider suite (comet's, feature `testing`) against the Redis
//! provider on a Redis Cluster (three primaries, three replicas) these
//! tests start themselves, and what a Cluster adds: channels spread over
//! the shards, wake-ups by sharded pub/sub.

mod common;

use comet::{Provider, RedisProvider, Retention};
use std::sync::Arc;

async fn cluster(retention: Retention) -> Arc<dyn Provider> {
    let url = common::redis_cluster::shared_url();
    Arc::new(
        RedisProvider::connect(url, retention)
            .await
            .expect("connects to the test cluster"),
    )
}

mod suite {
    comet::provider_suite!(super::cluster);
}

mod sharding {
    use super::common::redis_cluster::{cli, shared_url, Cluster};
    use comet::{Audience, NewMessage, Provider, RedisProvider, Retention};
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// A node of the shared cluster to ask things.
    fn a_node() -> u16 {
        let first = shared_url().split(',').next().unwrap();
        first.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn slot(key: &str) -> u16 {
        cli(a_node(), &["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap()
    }

    fn primary_of(key: &str) -> u16 {
        Cluster::primary_seen_by(a_node(), slot(key)).unwrap()
    }

    /// How many connections follow `channel`'s wake-ups, on its primary.
    fn followers(channel: &str) -> i64 {
        let shard_channel = format!("comet:{{{channel}}}:wake");
        let reply = cli(
            primary_of(&shard_channel),
            &["pubsub", "shardnumsub", &shard_channel],
        );
        reply.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    #[test]
    fn channels_spread_over_the_shards() {
        let primaries: BTreeSet<u16> = (0..12)
            .map(|i| primary_of(&format!("comet:{{room-{i}}}:log")))
            .collect();
        assert!(primaries.len() >= 2, "12 channels on {primaries:?}");
        // A channel's keys and its wake-up channel share one slot.
        let s = slot("comet:{room-1}:log");
        for what in [
            "trimmed",
            "clients",
            "digests",
            "names",
            "deadlines",
            "wake",
        ] {
            assert_eq!(slot(&format!("comet:{{room-1}}:{what}")), s, "{what}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wake_up_reaches_the_nodes_following_the_channel_and_no_other() {
        let url = shared_url();
        let a = RedisProvider::connect(url, Retention::default())
            .await
            .unwrap();
        let b = RedisProvider::connect(url, Retention::default())
            .await
            .unwrap();
        let channel = format!("wake-{}", std::process::id());
        let mut woken = b.watch(&channel);
        // b follows the channel (it subscribes in the background); a
        // does not yet.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while followers(&channel) != 1 {
            assert!(std::time::Instant::now() < deadline, "b never subscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        woken.borrow_and_update();
        let contents = serde_json::json!({"m": "hi"});
        let sent = a
            .append(
                &channel,
                NewMessage {
                    audience: Audience::Everyone,
                    name: "ChatMessage",
                    contents: &contents,
                    idempotency_key: None,
                },
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(2), woken.changed())
            .await
            .expect("b woken by a's append")
            .unwrap();
        assert_eq!(b.head(&channel).await.unwrap(), sent);
        assert_eq!(followers(&channel), 1, "sending does not make a follow");
        let _ = a.watch(&channel);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(followers(&channel), 2, "a follows once it watches");
    }
}

mod replicas {
    use super::common::redis_cluster::shared_url;
    use comet::{Audience, NewMessage, Provider, RedisProvider, Retention};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_waits_for_a_replica_and_counts_as_sent() {
        let provider = RedisProvider::connect(shared_url(), Retention::default())
            .await
            .unwrap()
            .wait_for_replicas(1, Duration::from_millis(500));
        let contents = serde_json::json!({"m": "kept"});
        let message = NewMessage {
            audience: Audience::Everyone,
            name: "ChatMessage",
            contents: &contents,
            idempotency_key: None,
        };
        let sent = provider.append("replicated", message).await;
        assert!(sent.is_ok(), "{sent:?}");
    }
}
