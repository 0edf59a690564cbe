//! One poll for several channels: a cursor per channel, held until any of
//! them has something for the client, answered with every channel that
//! had something at once (and the errors of those whose part failed).

use super::poll::NodeSlot;
use super::{Comet, PollOutcome};
use crate::wire::MAX_CHANNELS_PER_POLL;
use crate::{CometError, Cursor, PrivateToken};
use bytes::Bytes;

/// What one poll of several channels answers. Both lists empty: nothing
/// arrived within the connection timeout.
#[derive(Debug, Default)]
pub struct ChannelsOutcome {
    /// The channels with messages for the client: each one's wire JSON,
    /// in order (at most `batch_limit` per channel).
    pub messages: Vec<(String, Vec<Bytes>)>,
    /// The channels whose part of the poll failed, with what a poll of that
    /// channel alone would have answered: [`CometError::UnknownChannel`],
    /// [`CometError::UnknownClient`], [`CometError::CursorExpired`] or
    /// [`CometError::InvalidCursor`].
    pub errors: Vec<(String, CometError)>,
    /// The channels asked for from now on (no cursor) that have no
    /// messages here, with the cursor "now" was: where the client polls
    /// them from next, so nothing between two polls is missed.
    pub cursors: Vec<(String, Cursor)>,
}

impl ChannelsOutcome {
    /// Nothing arrived and nothing failed (`cursors` may still say where
    /// channels asked from now on start).
    pub fn is_timeout(&self) -> bool {
        self.messages.is_empty() && self.errors.is_empty()
    }
}

/// An error that belongs to one channel of the poll; any other (the node
/// stopping or full, the store away, too many polls) fails the whole poll.
fn channel_error(error: CometError) -> Result<CometError, CometError> {
    match error {
        CometError::UnknownChannel(_)
        | CometError::UnknownClient
        | CometError::CursorExpired
        | CometError::InvalidCursor(_) => Ok(error),
        other => Err(other),
    }
}

/// A poll of several channels that passed its checks: what was ready at
/// once, or the polls to hold. [`wait`](Self::wait) finishes it.
pub struct OpenChannels {
    out: ChannelsOutcome,
    held: Vec<(String, super::OpenPoll)>,
    /// One of the node's polls, however many channels it follows.
    _slot: NodeSlot,
}

impl OpenChannels {
    /// The outcome, if it needs no waiting: a channel had messages or
    /// failed at once, or there is nothing to hold.
    pub fn take_ready(&mut self) -> Option<ChannelsOutcome> {
        (!self.out.is_timeout() || self.held.is_empty()).then(|| std::mem::take(&mut self.out))
    }

    /// Holds the poll until one channel has messages (that one answers; the
    /// others are polled again at once by the client's next poll) or fails,
    /// or the connection timeout passes.
    pub async fn wait(&mut self) -> Result<ChannelsOutcome, CometError> {
        let mut out = std::mem::take(&mut self.out);
        if !out.is_timeout() || self.held.is_empty() {
            return Ok(out);
        }
        let waits = self
            .held
            .iter_mut()
            .map(|(name, poll)| Box::pin(async move { (name.clone(), poll.wait().await) }));
        let ((name, result), _, _) = futures::future::select_all(waits).await;
        match result {
            Ok(PollOutcome::Messages(messages)) => {
                out.cursors.retain(|(channel, _)| *channel != name);
                out.messages.push((name, messages));
            }
            Ok(PollOutcome::Timeout) => {}
            Err(error) => out.errors.push((name, channel_error(error)?)),
        }
        Ok(out)
    }
}

impl Comet {
    /// One poll of several channels by the client holding `token` in each
    /// (see [`Manager::join_with_token`](super::Manager::join_with_token)),
    /// from a cursor per channel (`None`: from now on). Each channel keeps
    /// its own guarantee: what a channel's part answers is exactly what a
    /// poll of that channel alone from that cursor would have, so the client
    /// polls again with each channel's last `id`. Answers at once if any
    /// channel has messages or fails; otherwise holds until one has
    /// messages or the connection timeout passes ([`OpenChannels::wait`]).
    /// Fails whole with [`CometError::UnknownClient`] when no channel knows
    /// the client, and for errors that are not a channel's own (`429`,
    /// `503`. It counts as one poll against the node's
    /// [`max_polls`](crate::Settings::max_polls), whatever its channels.
    pub async fn poll_channels(
        &self,
        token: &PrivateToken,
        cursors: Vec<(String, Option<Cursor>)>,
    ) -> Result<ChannelsOutcome, CometError> {
        let mut open = self.open_channels(token, cursors).await?;
        match open.take_ready() {
            Some(ready) => Ok(ready),
            None => open.wait().await,
        }
    }

    /// [`poll_channels`](Self::poll_channels) up to where it would wait:
    /// every check done and every channel's first read made, so a route can
    /// acknowledge the poll (`Comet-Ack: early`) before holding it.
    pub async fn open_channels(
        &self,
        token: &PrivateToken,
        cursors: Vec<(String, Option<Cursor>)>,
    ) -> Result<OpenChannels, CometError> {
        if cursors.is_empty() || cursors.len() > MAX_CHANNELS_PER_POLL {
            return Err(CometError::InvalidChannel(format!(
                "a poll follows 1 to {MAX_CHANNELS_PER_POLL} channels, not {}",
                cursors.len()
            )));
        }
        let asked = cursors.len();
        let slot = NodeSlot::take(&self.parts.node_polls, self.parts.settings.max_polls)?;
        let mut out = ChannelsOutcome::default();
        let mut held = Vec::new();
        for (name, since) in cursors {
            let from_now_on = since.is_none();
            let opened = match self.find(&name).await {
                Ok(manager) => manager.open_poll_within(token, since).await,
                Err(error) => Err(error),
            };
            match opened {
                Ok(mut poll) => match poll.take_ready() {
                    Some(PollOutcome::Messages(messages)) => out.messages.push((name, messages)),
                    _ => {
                        if from_now_on {
                            out.cursors.push((name.clone(), poll.since().clone()));
                        }
                        held.push((name, poll));
                    }
                },
                Err(error) => out.errors.push((name, channel_error(error)?)),
            }
        }
        let unknown = |e: &(String, CometError)| matches!(e.1, CometError::UnknownClient);
        if out.errors.len() == asked && out.errors.iter().all(unknown) {
            return Err(CometError::UnknownClient);
        }
        Ok(OpenChannels {
            out,
            held,
            _slot: slot,
        })
    }
}
