//! Sending to a channel's clients (everyone, or a few), and reading a
//! client's recent messages with the cursor to poll from.

use super::Manager;
use crate::provider::{Audience, NewMessage, ReadTail};
use crate::{CometError, Cursor, Message, PrivateToken, PublicToken};

impl Manager {
    /// Sends to every client of the channel.
    pub async fn send_to_all(
        &self,
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        self.send_to_all_idempotent(None, name, contents).await
    }

    /// As [`send_to_all`](Self::send_to_all); with `idempotency_key`, a key
    /// the sender chose for this send (see
    /// [`Provider::append`](crate::Provider::append)): sending again with
    /// the same key sends nothing and returns the first send's id.
    pub async fn send_to_all_idempotent(
        &self,
        idempotency_key: Option<&str>,
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        check_name(name)?;
        self.append(NewMessage {
            audience: Audience::Everyone,
            name,
            contents,
            idempotency_key,
        })
        .await
    }

    /// Appends a checked message under the provider timeout, and counts
    /// the send or its failure.
    async fn append(&self, message: NewMessage<'_>) -> Result<Cursor, CometError> {
        let sent = self
            .bounded(self.provider.append(&self.name, message))
            .await;
        match &sent {
            Ok(_) => self.metrics.sent.increment(1),
            Err(error) => self.count_error(error),
        }
        sent
    }

    /// Sends to the clients with these public tokens only (for a private
    /// message: the target and the sender). Every one must exist.
    pub async fn send_to(
        &self,
        to: &[PublicToken],
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        self.send_to_idempotent(to, None, name, contents).await
    }

    /// As [`send_to`](Self::send_to), with an idempotency key as in
    /// [`send_to_all_idempotent`](Self::send_to_all_idempotent).
    pub async fn send_to_idempotent(
        &self,
        to: &[PublicToken],
        idempotency_key: Option<&str>,
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        check_name(name)?;
        for public in to {
            if self.client_by_public(public).await?.is_none() {
                return Err(CometError::UnknownRecipient);
            }
        }
        self.append(NewMessage {
            audience: Audience::Clients(to.to_vec()),
            name,
            contents,
            idempotency_key,
        })
        .await
    }

    /// The newest `limit` messages for this client, and the cursor to poll
    /// from so nothing between them and the first poll is lost or repeated.
    pub async fn recent(
        &self,
        token: &PrivateToken,
        limit: usize,
    ) -> Result<(Vec<Message>, Cursor), CometError> {
        let client = self.client(token).await?.ok_or(CometError::UnknownClient)?;
        let (stored, head) = self
            .bounded(self.provider.read_tail(
                &self.name,
                ReadTail {
                    reader: &client.public,
                    limit,
                },
            ))
            .await?;
        let messages = stored
            .iter()
            .map(|m| serde_json::from_slice(&m.json))
            .collect::<Result<Vec<Message>, _>>()?;
        Ok((messages, head))
    }
}

/// Message names are short identifiers (`Headline`), not payload.
fn check_name(name: &str) -> Result<(), CometError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CometError::InvalidMessage(format!(
            "invalid message name {name:?}"
        )))
    }
}
