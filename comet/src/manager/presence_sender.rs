//! Sending a channel's presence windows (what they hold and why: the
//! crate's `presence.rs`): joins and leaves recorded as they happen, a
//! window sent when it closes, and the task that closes them.

use super::{unix_millis, Manager};
use crate::presence::{presence_change, Pending};
use crate::wire::{Member, PRESENCE};
use crate::{ClientRecord, CometError, PublicToken};
use std::sync::{Arc, Weak};

#[cfg(doc)]
use crate::{Comet, Settings};

impl Manager {
    /// Announces a join with the current window.
    pub(super) fn announce_joined(&self, client: &ClientRecord) {
        self.presence()
            .record(|p| p.joined(client.public, &client.display_name));
    }

    /// Announces a leave with the current window.
    pub(super) fn announce_left(&self, client: &ClientRecord) {
        self.presence()
            .record(|p| p.left(client.public, &client.display_name));
    }

    /// Sends the pending window now (nothing if it is empty). A window that
    /// could not be sent (the provider is unreachable) is put back in front
    /// of newer changes and tried again a window later.
    pub async fn flush_presence(&self) -> Result<(), CometError> {
        let batch = self.presence();
        let _turn = batch.sending.lock().await;
        let pending = batch.take();
        if pending.is_empty() {
            return Ok(());
        }
        match self.send_presence(&pending).await {
            Ok(()) => Ok(()),
            Err(error) => {
                batch.requeue(pending);
                Err(error)
            }
        }
    }

    async fn send_presence(&self, pending: &Pending) -> Result<(), CometError> {
        let (joined, left) = pending.ordered();
        // Only joins the provider still has: a client removed on another
        // node before this window closed must not be announced after its
        // leave.
        let joined = self.still_here(joined, true).await?;
        let cap = self.settings().presence_cap;
        let change = presence_change(joined, left, cap, unix_millis());
        if change.joined_count() + change.left_count() == 0 {
            return Ok(());
        }
        self.send_to_all(PRESENCE, &serde_json::to_value(&change)?)
            .await?;
        // A client removed on another node between the check above and the
        // send may have had its leave sent first: say it again, after.
        let gone = self.still_here(change.joined, false).await?;
        if !gone.is_empty() {
            let correction = presence_change(Vec::new(), gone, cap, unix_millis());
            self.send_to_all(PRESENCE, &serde_json::to_value(&correction)?)
                .await?;
        }
        Ok(())
    }

    /// The members the provider has (`here`), or no longer has (`!here`).
    async fn still_here(
        &self,
        members: Vec<Member>,
        here: bool,
    ) -> Result<Vec<Member>, CometError> {
        let checks = members.iter().map(|member| async {
            let Some(public) = PublicToken::parse(&member.public) else {
                return Ok(false);
            };
            Ok::<_, CometError>(self.client_by_public(&public).await?.is_some())
        });
        let found = futures::future::try_join_all(checks).await?;
        Ok(members
            .into_iter()
            .zip(found)
            .filter(|(_, found)| *found == here)
            .map(|(member, _)| member)
            .collect())
    }

    /// Sends each window [`Settings::presence_window`] after its first
    /// change. Like the reaper it holds the manager only weakly, and only
    /// while sending (a dropped manager wakes it: see `Drop for Manager`);
    /// on shutdown it stops, and [`Comet::flush_presence`] sends what is
    /// left.
    pub(super) fn spawn_presence_sender(self: &Arc<Self>) {
        let weak: Weak<Manager> = Arc::downgrade(self);
        let batch = self.presence().clone();
        let shutdown = self.shutdown_token();
        let window = self.settings().presence_window;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = batch.opened.notified() => {}
                    _ = shutdown.cancelled() => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(window) => {}
                    _ = shutdown.cancelled() => return,
                }
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = manager.flush_presence().await {
                    tracing::warn!(channel = %manager.name(), %error, "presence not sent; retrying");
                }
            }
        });
    }
}
