//! Clients and names: names unique per channel (by the app's key), invalid
//! names and unknown tokens refused, removal, channels kept apart.

use super::support::{decode, join, random_channel, say, settings, single, texts};
use super::Factory;
use crate::{Comet, CometError, PollOutcome, PrivateToken};

/// A display name taken in the channel (in any case) is refused.
pub async fn duplicate_display_name_is_refused(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    chat.initialize_client("Ann").await.unwrap();
    for taken in ["Ann", "ann", "ANN"] {
        let err = chat.initialize_client(taken).await.unwrap_err();
        assert!(
            matches!(err, CometError::ClientExists(crate::Taken::DisplayName)),
            "{err:?}"
        );
        assert!(err.to_string().contains("client already exists"));
    }
    assert_eq!(chat.clients().await.unwrap().len(), 1);
}

/// An app's name key (here: the chat's look-alike skeleton) is what the
/// provider keeps names unique by, so the rule holds on every node, and a
/// removed client frees its key.
pub async fn names_are_unique_by_the_key_the_app_gives(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let key = |name: &str| name.to_lowercase().replace('\u{430}', "a");
    let (_, ada) = chat
        .initialize_client_keyed("ada", key("ada"))
        .await
        .unwrap();
    // Cyrillic "а": a different name, the same key.
    let err = chat
        .initialize_client_keyed("\u{430}da", key("\u{430}da"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CometError::ClientExists(crate::Taken::DisplayName)),
        "{err:?}"
    );
    chat.remove_client(&ada.public).await.unwrap();
    chat.initialize_client_keyed("\u{430}da", key("\u{430}da"))
        .await
        .unwrap();
    assert_eq!(chat.clients().await.unwrap().len(), 1);
}

/// Empty, padded, too long or control-character names are refused.
pub async fn invalid_display_names_are_refused(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    for bad in ["", " ann", "x".repeat(33).as_str(), "a\u{7}b"] {
        let err = chat.initialize_client(bad).await.unwrap_err();
        assert!(
            matches!(err, CometError::InvalidClient(_)),
            "{bad:?}: {err:?}"
        );
    }
    assert!(chat.clients().await.unwrap().is_empty());
}

/// A token no client has is `UnknownClient`.
pub async fn unknown_token_is_unknown_client(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let err = chat
        .poll(&PrivateToken::generate(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CometError::UnknownClient), "{err:?}");
}

/// A removed client's token is `UnknownClient`, and its name is free again.
pub async fn removed_client_gets_unknown_client(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, public, _) = join(&chat, "ann").await;
    chat.remove_client(&public).await.unwrap();
    assert!(matches!(
        chat.poll(&token, None).await,
        Err(CometError::UnknownClient)
    ));
    // The name is free again.
    chat.initialize_client("ann").await.unwrap();
}

/// Channels of one provider keep apart their messages, names and clients.
pub async fn channels_of_one_provider_are_independent(factory: Factory) {
    let provider = factory.default_provider().await;
    let (a, b) = (random_channel(), random_channel());
    let comet = Comet::new(provider.clone(), settings(), &[a.as_str(), b.as_str()]);
    let chat_a = comet.channel(&a).expect("channel a");
    let chat_b = comet.channel(&b).expect("channel b");
    let (token_a, _, cursor_a) = join(&chat_a, "ann").await;
    // The same display name is free in another channel.
    let (token_b, _, cursor_b) = join(&chat_b, "ann").await;
    say(&chat_a, "only in a").await;
    assert!(
        matches!(
            chat_b.poll(&token_b, Some(cursor_b)).await,
            Ok(PollOutcome::Timeout)
        ),
        "a message of one channel never reaches another"
    );
    let got = decode(chat_a.poll(&token_a, Some(cursor_a)).await.unwrap());
    assert_eq!(texts(&got), ["only in a"]);
    assert!(matches!(
        chat_b.poll(&token_a, None).await,
        Err(CometError::UnknownClient)
    ));
}
