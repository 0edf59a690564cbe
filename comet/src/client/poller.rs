//! The poll loop behind [`Client::messages`](super::Client::messages): one
//! task per stream, feeding a bounded channel the stream reads.
//!
//! The loop is the only owner of the cursor, and moves it only past a
//! message it has handed to the channel: a message is yielded once, and a
//! poll after any failure asks again from the last one yielded. The loop
//! stops as soon as the stream is dropped (`Sender::closed`), even in the
//! middle of a held poll or a back-off.

use super::event::{Event, Next};
use super::Client;
use crate::status::{backoff, random_unit};
use crate::wire::PollReply;
use crate::Cursor;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest `Retry-After` honoured: a larger one (a misconfigured proxy)
/// would stall the stream for good.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub(super) struct Poller {
    client: Client,
    url: String,
    since: Option<Cursor>,
    /// Failed polls in a row; the back-off grows with it.
    failures: u32,
}

impl Poller {
    pub(super) fn new(client: Client, url: String, since: Option<Cursor>) -> Self {
        Self {
            client,
            url,
            since,
            failures: 0,
        }
    }

    pub(super) async fn run(mut self, events: mpsc::Sender<Event>) {
        loop {
            let reply = tokio::select! {
                _ = events.closed() => return,
                reply = self.client.poll_url(&self.url, self.since.clone()) => reply,
            };
            let error = match reply {
                Ok(PollReply::Messages { messages }) => {
                    self.failures = 0;
                    for message in messages {
                        let id = message.id.clone();
                        if events.send(Event::Message(message)).await.is_err() {
                            return;
                        }
                        self.since = Some(id);
                    }
                    continue;
                }
                Ok(PollReply::Timeout) => {
                    self.failures = 0;
                    continue;
                }
                Err(error) => error,
            };
            match error.next() {
                Next::End => {
                    let _ = events.send(Event::Ended).await;
                    return;
                }
                Next::GiveUp => {
                    let _ = events.send(Event::Failed(error)).await;
                    return;
                }
                Next::Resynchronise => {
                    // The server keeps nothing older; continue from now on.
                    self.since = None;
                    if events.send(Event::Gap).await.is_err() {
                        return;
                    }
                }
                Next::Retry { retry_after } => {
                    self.failures = self.failures.saturating_add(1);
                    let after = self.backoff(retry_after);
                    if events.send(Event::Retrying { error, after }).await.is_err() {
                        return;
                    }
                    tokio::select! {
                        _ = events.closed() => return,
                        _ = tokio::time::sleep(after) => {}
                    }
                }
            }
        }
    }

    fn backoff(&self, retry_after: Option<Duration>) -> Duration {
        wait(
            self.failures,
            self.client.max_backoff,
            retry_after,
            random_unit(),
        )
    }
}

/// The wait before retry number `failures`: the browser subscriber's
/// back-off (exponential from 500 ms to `max`, full jitter from `random`),
/// never shorter than `retry_after` (itself capped at [`MAX_RETRY_AFTER`]).
pub(super) fn wait(
    failures: u32,
    max: Duration,
    retry_after: Option<Duration>,
    random: f64,
) -> Duration {
    let retry_after = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
    backoff(failures, max, retry_after, random)
}

/// `Retry-After` as the server sends it: whole seconds. (The HTTP-date
/// form is not used by comet servers; it reads as none, and the back-off
/// applies.)
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(10);

    #[test]
    fn back_off_doubles_up_to_its_cap() {
        assert_eq!(wait(1, MAX, None, 1.0), Duration::from_millis(500));
        assert_eq!(wait(2, MAX, None, 1.0), Duration::from_secs(1));
        assert_eq!(wait(40, MAX, None, 1.0), MAX);
        assert_eq!(wait(40, MAX, None, 0.0), MAX / 2);
    }

    #[test]
    fn retry_after_is_honoured_even_over_the_cap_but_not_forever() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(wait(1, MAX, secs(2), 0.0), Duration::from_secs(2));
        assert_eq!(wait(1, MAX, secs(60), 0.0), Duration::from_secs(60));
        assert_eq!(wait(1, MAX, secs(1 << 40), 0.0), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_reads_whole_seconds_only() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
