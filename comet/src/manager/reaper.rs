//! The reaper: one task per channel that removes clients gone idle (and
//! refreshes the channel's gauges while at it).

use super::Manager;
use crate::CometError;
use std::sync::{Arc, Weak};

impl Manager {
    /// Removes every idle client once and announces it. A client with a
    /// poll in progress here is not idle, however long ago it started.
    pub async fn reap_idle(&self) -> Result<usize, CometError> {
        let mut removed = 0;
        for client in self.bounded(self.provider.idle_clients(&self.name)).await? {
            if self.is_polling(&client.public) {
                self.bounded(self.provider.touch(&self.name, &(&client).into()))
                    .await?;
                continue;
            }
            if self.remove_client(&client.public).await? {
                tracing::info!(channel = %self.name, client = %client.public, "removed idle client");
                self.metrics.idle_removals.increment(1);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The reaper holds only a weak reference, so dropping every `Comet`
    /// handle ends it as surely as a shutdown does.
    pub(super) fn spawn_reaper(self: &Arc<Self>) {
        let weak: Weak<Manager> = Arc::downgrade(self);
        let shutdown = self.shutdown.clone();
        let period = self.settings.reap_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                // A channel closed on another node: let go of it here.
                if let Ok(false) = manager.still_open().await {
                    manager.close_here();
                    return;
                }
                if let Err(error) = manager.reap_idle().await {
                    manager.count_error(&error);
                    tracing::warn!(channel = %manager.name, %error, "idle reaping failed");
                }
                let waiting: usize = manager
                    .polls
                    .lock()
                    .expect("poll counts poisoned")
                    .values()
                    .sum();
                manager.metrics.polls_waiting.set(waiting as f64);
                match manager
                    .bounded(manager.provider.client_count(&manager.name))
                    .await
                {
                    Ok(n) => manager.metrics.clients.set(n as f64),
                    Err(error) => manager.count_error(&error),
                }
            }
        });
    }
}
