//! The provider suite (comet's, feature `testing`) against the in-process
//! provider.

use comet::{MemoryProvider, Provider, Retention};
use std::sync::Arc;

async fn memory(retention: Retention) -> Arc<dyn Provider> {
    Arc::new(MemoryProvider::new(retention))
}

comet::provider_suite!(memory);

/// In-process, a send wakes waiting polls synchronously, so the moment
/// between "woken" and "answered" can be seen: the node is answering, and
/// `answered()` waits, until every woken poll has answered.
#[tokio::test]
async fn a_node_is_answering_until_every_woken_poll_answers() {
    use comet::{Comet, PollOutcome};
    use futures::FutureExt;
    use std::time::Duration;

    let provider = memory(Retention::default()).await;
    let comet = Comet::new(provider, Default::default(), &["c"]);
    let chat = comet.channel("c").unwrap();
    let mut polls = Vec::new();
    for i in 0..5 {
        let (token, _) = chat.initialize_client(&format!("u{i}")).await.unwrap();
        let (_, cursor) = chat.recent(&token, 0).await.unwrap();
        polls.push((token, cursor));
    }
    // Everyone polls from after the last join.
    let (_, cursor) = chat.recent(&polls[4].0, 0).await.unwrap();
    let polls: Vec<_> = polls
        .into_iter()
        .map(|(token, _)| {
            let (chat, cursor) = (chat.clone(), cursor.clone());
            tokio::spawn(async move { chat.poll(&token, Some(cursor)).await })
        })
        .collect();
    while chat.waiting_polls() < 5 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!comet.is_answering());
    assert!(comet.answered().now_or_never().is_some());

    // This test's runtime has one thread: the woken polls cannot run
    // before this task awaits something.
    chat.send_to_all("Text", &serde_json::json!({ "m": "hi" }))
        .await
        .unwrap();
    assert!(comet.is_answering());
    let mut answered = Box::pin(comet.answered());
    assert!((&mut answered).now_or_never().is_none());
    for poll in polls {
        assert!(matches!(poll.await.unwrap().unwrap(), PollOutcome::Messages(m) if m.len() == 1));
    }
    tokio::time::timeout(Duration::from_secs(1), answered)
        .await
        .expect("answered once all five answered");
    assert!(!comet.is_answering());
}
