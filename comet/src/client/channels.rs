//! The poll loop behind [`Client::channels`](super::Client::channels): one
//! held poll for several channels, a cursor each, moved only past a
//! message handed to the stream (so each is yielded once, and a poll after
//! any failure asks again from the last one yielded).

use super::event::{ClientError, Next};
use super::poller::wait;
use super::Client;
use crate::status::random_unit;
use crate::wire::{codes, ChannelsReply, ErrorBody};
use crate::{Cursor, Message};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// One item of [`Client::channels`](super::Client::channels).
#[derive(Debug)]
pub enum ChannelEvent {
    /// A message of `channel`, in that channel's order.
    Message { channel: String, message: Message },
    /// `channel`'s cursor was older than what it keeps (`cursor_expired`),
    /// or not one of its cursors: messages were missed, and the stream
    /// follows it from now on.
    Gap { channel: String },
    /// The server no longer has `channel` for this client
    /// (`unknown_channel`: closed or never opened; `unknown_client`: not a
    /// member there); it is not polled again.
    Left { channel: String, error: ErrorBody },
    /// `401`: no channel knows this client. The stream ends after this.
    Ended,
    /// A poll failed in a way that may pass; polled again after `after`.
    Retrying { error: ClientError, after: Duration },
    /// A poll was refused in a way retrying cannot fix. The stream ends.
    Failed(ClientError),
}

pub(super) async fn follow(
    client: Client,
    mut cursors: BTreeMap<String, Option<Cursor>>,
    events: mpsc::Sender<ChannelEvent>,
) {
    let mut failures = 0u32;
    while !cursors.is_empty() {
        let reply = tokio::select! {
            _ = events.closed() => return,
            reply = client.poll_channels(cursors.clone()) => reply,
        };
        let error = match reply {
            Ok(ChannelsReply::Messages {
                channels,
                errors,
                cursors: starts,
            }) => {
                failures = 0;
                crate::wire::start_from(&mut cursors, starts);
                for (channel, messages) in channels {
                    for message in messages {
                        let id = message.id.clone();
                        let event = ChannelEvent::Message {
                            channel: channel.clone(),
                            message,
                        };
                        if events.send(event).await.is_err() {
                            return;
                        }
                        if let Some(cursor) = cursors.get_mut(&channel) {
                            *cursor = Some(id);
                        }
                    }
                }
                for (channel, error) in errors {
                    let event = match error.error.as_str() {
                        codes::CURSOR_EXPIRED | codes::BAD_REQUEST => {
                            cursors.insert(channel.clone(), None);
                            ChannelEvent::Gap { channel }
                        }
                        _ => {
                            cursors.remove(&channel);
                            ChannelEvent::Left { channel, error }
                        }
                    };
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(ChannelsReply::Timeout { cursors: starts }) => {
                failures = 0;
                crate::wire::start_from(&mut cursors, starts);
                continue;
            }
            Err(error) => error,
        };
        match error.next() {
            Next::End => {
                let _ = events.send(ChannelEvent::Ended).await;
                return;
            }
            Next::Retry { retry_after } => {
                failures = failures.saturating_add(1);
                let after = wait(failures, client.max_backoff, retry_after, random_unit());
                if events
                    .send(ChannelEvent::Retrying { error, after })
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::select! {
                    _ = events.closed() => return,
                    _ = tokio::time::sleep(after) => {}
                }
            }
            // A whole-poll 410 is not an answer of this route; whatever
            // else the server refuses, retrying the same request cannot fix.
            Next::GiveUp | Next::Resynchronise => {
                let _ = events.send(ChannelEvent::Failed(error)).await;
                return;
            }
        }
    }
}
