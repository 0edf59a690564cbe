//! Server-side subscribers: [`Manager::subscribe`] gives an in-process
//! consumer (a bot, a bridge to another system) a [`Stream`] of the
//! messages addressed to one client, with the cursor guarantee of an HTTP
//! poll.
//!
//! A [`Subscription`] is the long-poll loop of the browser subscriber,
//! run in the server: it calls the manager's own [`Manager::poll`] (so
//! every check a poll makes applies to it: the client must exist, its
//! per-client poll cap counts the subscription's poll, a poll is activity
//! that keeps the client from being reaped as idle, waking and answering
//! are coordinated with the node's other polls) and hands out the batch a
//! poll returns one message at a time, moving its cursor past each message
//! as it is handed out.

use super::status::{backoff, random_unit};
use super::{CometError, Cursor, Manager, Message, PollOutcome, PrivateToken};
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll as Ready};
use std::time::Duration;
use tokio_stream::Stream;

/// The longest wait between two tries after transient errors: what a
/// `503` asks an HTTP client to wait ([`CometError::retry_after`]).
const MAX_BACK_OFF: Duration = Duration::from_secs(2);

/// The wait before the next try after `failures` transient errors in a
/// row: the back-off of the browser subscriber and the native client
/// (`status::backoff_ms`: from 500 ms, doubling, anywhere in its upper
/// half), capped at [`MAX_BACK_OFF`]. The jitter matters here too: the
/// streams of every node that lost the same Redis would otherwise all try
/// again in the same instant. A `503`'s `Retry-After` is not added: it is
/// this node's advice to remote clients, and [`MAX_BACK_OFF`] already
/// follows it; honoured, it would make every wait the longest.
fn back_off(failures: u32) -> Duration {
    backoff(failures, MAX_BACK_OFF, None, random_unit())
}

/// What one step of the loop found out.
enum Step {
    /// Where "from now on" starts (a subscription begun without a cursor).
    Head(Cursor),
    /// One poll's answer.
    Poll(PollOutcome),
}

type StepFuture = Pin<Box<dyn Future<Output = Result<Step, CometError>> + Send>>;

enum State {
    /// Nothing under way: the next item starts a step.
    Idle,
    /// A head look-up or a poll under way.
    Asking(StepFuture),
    /// Waiting out a back-off after a transient error.
    Resting(Pin<Box<tokio::time::Sleep>>),
    /// Ended: an error retrying cannot fix was yielded.
    Ended,
}

/// A stream of one client's messages, from [`Manager::subscribe`].
///
/// Items are `Ok(message)`, in the channel's order, or `Err(error)`:
///
/// - An error no retry can fix ends the stream (the next item is `None`):
///   [`CometError::UnknownClient`] (the client was removed, e.g. as idle,
///   or never existed), [`CometError::CursorExpired`] (the cursor is older
///   than what the channel keeps: resynchronise from
///   [`Manager::recent`]), [`CometError::InvalidCursor`] and
///   [`CometError::Stopping`] (the node is shutting down).
/// - A transient error ([`CometError::Unavailable`]: the provider did not
///   answer; [`CometError::AtCapacity`]; [`CometError::TooManyPolls`]: the
///   same client holds its cap of polls elsewhere) is yielded, never
///   swallowed, and the stream tries again after a short back-off (from
///   250–500 ms, doubling up to 1–2 s, jittered like the browser's) from
///   the same cursor: nothing is lost.
///
/// A poll that times out yields nothing: the stream polls again at once.
/// The stream is lazy: it polls only while it is being read, and holds at
/// most one poll of its client at a time (counted against the client's
/// poll cap). Like a browser that stops polling, a client whose stream is
/// left unread for longer than its idle timeout may be removed as idle;
/// the stream then ends with [`CometError::UnknownClient`].
///
/// The guarantee: every message addressed to the client and newer than
/// the cursor the stream started from is yielded exactly once and in
/// order, including what was sent while the stream was between two polls
/// or not being read. The cursor moves past a message when that message is
/// yielded, not when its batch arrives, so a consumer that drops the
/// stream (even in the middle of a batch) and subscribes again from the
/// `id` of the last message it got (or [`cursor`](Self::cursor)) receives
/// every later message, and none twice.
pub struct Subscription {
    manager: Arc<Manager>,
    token: PrivateToken,
    /// The id of the last message yielded (or the head a subscription
    /// without a cursor starts from); `None` until that head is known.
    cursor: Option<Cursor>,
    /// The rest of the last poll's batch, not yet yielded.
    pending: VecDeque<Bytes>,
    state: State,
    /// Transient errors in a row; the back-off grows with it.
    failures: u32,
}

impl Manager {
    /// The messages addressed to the client holding `token`, newer than
    /// `since` (or, for `None`, sent from the moment the stream is first
    /// read), as a [`Stream`]: see [`Subscription`] for its items and its
    /// exactly-once guarantee.
    pub fn subscribe(self: &Arc<Self>, token: PrivateToken, since: Option<Cursor>) -> Subscription {
        Subscription {
            manager: self.clone(),
            token,
            cursor: since,
            pending: VecDeque::new(),
            state: State::Idle,
            failures: 0,
        }
    }
}

impl Subscription {
    /// Where a new subscription resumes without losing or repeating
    /// anything: the `id` of the last message yielded (or the cursor the
    /// stream started from). `None` only before a subscription without a
    /// cursor has learnt where "from now on" starts.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }

    /// The next step: the head, if the start is not known yet, else a poll.
    fn ask(&self) -> StepFuture {
        let manager = self.manager.clone();
        let token = self.token.clone();
        match self.cursor.clone() {
            // `recent` with no messages: the head cursor, after the same
            // client check a poll makes.
            None => Box::pin(async move {
                let (_, head) = manager.recent(&token, 0).await?;
                Ok(Step::Head(head))
            }),
            Some(since) => Box::pin(async move {
                let poll = manager.poll(&token, Some(since)).await?;
                Ok(Step::Poll(poll))
            }),
        }
    }

    /// Takes in what a step found out; `Some` is an error to yield.
    fn settle(&mut self, step: Result<Step, CometError>) -> Option<CometError> {
        self.state = State::Idle;
        match step {
            Ok(step) => {
                self.failures = 0;
                match step {
                    Step::Head(head) => self.cursor = Some(head),
                    Step::Poll(PollOutcome::Messages(batch)) => self.pending = batch.into(),
                    Step::Poll(PollOutcome::Timeout) => {}
                }
                None
            }
            Err(error) if is_transient(&error) => {
                self.failures = self.failures.saturating_add(1);
                let wait = back_off(self.failures);
                self.state = State::Resting(Box::pin(tokio::time::sleep(wait)));
                Some(error)
            }
            Err(error) => {
                self.end();
                Some(error)
            }
        }
    }

    fn end(&mut self) {
        self.state = State::Ended;
        self.pending.clear();
    }
}

/// Whether trying again later can succeed.
fn is_transient(error: &CometError) -> bool {
    matches!(
        error,
        CometError::Unavailable(_) | CometError::AtCapacity(_) | CometError::TooManyPolls(_)
    )
}

impl Stream for Subscription {
    type Item = Result<Message, CometError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Ready<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(json) = this.pending.pop_front() {
                return Ready::Ready(Some(match serde_json::from_slice::<Message>(&json) {
                    Ok(message) => {
                        this.cursor = Some(message.id.clone());
                        Ok(message)
                    }
                    // Not a wire message: the store is corrupt, and
                    // skipping it would be a silent gap.
                    Err(error) => {
                        this.end();
                        Err(error.into())
                    }
                }));
            }
            match &mut this.state {
                State::Ended => return Ready::Ready(None),
                State::Idle => this.state = State::Asking(this.ask()),
                State::Asking(step) => {
                    let step = ready!(step.as_mut().poll(cx));
                    if let Some(error) = this.settle(step) {
                        return Ready::Ready(Some(Err(error)));
                    }
                }
                State::Resting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state = State::Idle;
                }
            }
        }
    }
}
