//! The channel route, `POST /comet/{channel}`: one poll per request.
//!
//! Who is polling comes from the session cookie (browsers: `comet_token`,
//! or `__Host-comet_token` over HTTPS; two of them count as none) or an
//! `Authorization: Bearer` header (anything else). The body is read with a
//! hard size cap before it is parsed, and every failure is one of the JSON
//! errors of the wire protocol, so a client can always tell what to do next:
//! stop (401), fix its request (400), resynchronise (410) or back off (429,
//! 503).

use super::wire::{codes, ErrorBody, PollRequest};
use super::{request_token, Comet, CometError, Cursor, Manager, PollOutcome, PrivateToken};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

const REPLY_HEAD: &[u8] = br#"{"status":"messages","messages":["#;
const REPLY_TAIL: &[u8] = b"]}";
pub(crate) const TIMEOUT_REPLY: &[u8] = br#"{"status":"timeout"}"#;

impl Comet {
    /// The channel route for this set of channels, ready to merge into an
    /// app's router whatever its state type.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/comet/{channel}", post(poll))
            .route("/comet", post(crate::channels_route::poll_channels))
            .with_state(self.clone())
    }
}

/// An error answer of the channel route.
#[derive(Debug)]
pub(crate) struct RouteError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl RouteError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: codes::BAD_REQUEST,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<CometError> for RouteError {
    fn from(error: CometError) -> Self {
        let (status, code) = match &error {
            CometError::UnknownClient => (StatusCode::UNAUTHORIZED, codes::UNKNOWN_CLIENT),
            CometError::UnknownChannel(_) => (StatusCode::NOT_FOUND, codes::UNKNOWN_CHANNEL),
            CometError::InvalidCursor(_)
            | CometError::InvalidMessage(_)
            | CometError::InvalidClient(_)
            | CometError::InvalidChannel(_)
            | CometError::UnknownRecipient
            | CometError::ClientExists(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            CometError::CursorExpired => (StatusCode::GONE, codes::CURSOR_EXPIRED),
            CometError::Refused(_) => (StatusCode::FORBIDDEN, codes::REFUSED),
            CometError::TooManyPolls(_) => (StatusCode::TOO_MANY_REQUESTS, codes::TOO_MANY_POLLS),
            CometError::Unavailable(_) | CometError::AtCapacity(_) | CometError::Stopping => {
                (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE)
            }
            CometError::Encode(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        };
        Self {
            status,
            code,
            message: error.to_string(),
            retry_after: error.retry_after().map(|d| d.as_secs().max(1)),
        }
    }
}

impl RouteError {
    /// The error's JSON body: `{"error": code, "message": text}`.
    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
        }
    }

    /// The error as the wire protocol's JSON answer.
    fn into_poll_response(self) -> PollResponse {
        let body = self.body();
        PollResponse {
            status: self.status,
            retry_after: self.retry_after,
            // An ErrorBody is two strings: encoding it cannot fail.
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }
}

impl IntoResponse for RouteError {
    fn into_response(self) -> Response {
        self.into_poll_response().into_response()
    }
}

/// The HTTP response to one poll: its status, `Retry-After`, and body
/// bytes (a [`PollReply`](crate::wire::PollReply) or an error's JSON),
/// built from a [`PollOutcome`] or an error. What the axum route sends,
/// and what a server that answers polls itself (without the router, e.g.
/// through a [`serve::Shortcut`](crate::serve::Shortcut)) sends. Always
/// JSON and `Cache-Control: no-store`.
#[derive(Debug)]
pub struct PollResponse {
    pub status: StatusCode,
    /// Seconds, for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

impl PollResponse {
    /// The response headers: `Content-Type`, `Cache-Control`, and
    /// `Retry-After` when set.
    pub fn headers(&self) -> impl Iterator<Item = (header::HeaderName, HeaderValue)> {
        [
            Some((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )),
            Some((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))),
            self.retry_after
                .map(|secs| (header::RETRY_AFTER, HeaderValue::from(secs))),
        ]
        .into_iter()
        .flatten()
    }
}

impl IntoResponse for PollResponse {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in self.headers() {
            headers.insert(name, value);
        }
        *response.body_mut() = Body::from(self.body);
        response
    }
}

/// What a poll needs from its request, taken out at once so that a held
/// poll keeps nothing of the request alive.
struct PollInput {
    manager: Arc<Manager>,
    token: PrivateToken,
    since: Option<Cursor>,
}

/// The checks in the order the protocol answers them: channel (404), token
/// (401), body size and shape (400).
fn poll_input(
    channel: Result<Arc<Manager>, CometError>,
    headers: &HeaderMap,
    body: Result<&[u8], ()>,
) -> Result<PollInput, RouteError> {
    let manager = channel?;
    let token = request_token(headers).ok_or(CometError::UnknownClient)?;
    let limit = manager.settings().max_body_bytes;
    let body = body
        .ok()
        .filter(|body| body.len() <= limit)
        .ok_or_else(|| {
            RouteError::bad_request(format!("the request body is larger than {limit} bytes"))
        })?;
    let request: PollRequest = serde_json::from_slice(body).map_err(|e| {
        RouteError::bad_request(format!("expected {{\"since\": cursor or null}}: {e}"))
    })?;
    Ok(PollInput {
        manager,
        token,
        since: request.since,
    })
}

impl Comet {
    /// The channel route without axum: the same checks and the same answers
    /// as `POST /comet/{channel}` (never the early acknowledgement, which
    /// needs a streamed body), for a server that answers its hottest
    /// request itself. `channel` is the path segment, already decoded.
    pub fn answer(
        &self,
        channel: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> impl std::future::Future<Output = PollResponse> + Send + 'static {
        // Combinators and a plain `async fn`, not nested `async move`
        // blocks: a block keeps what it captured for its whole life, beside
        // the copies it moves into what it awaits, and a held poll keeps
        // this future for as long as it waits.
        use futures::future::{Either, FutureExt};
        let Some(manager) = self.channel(channel) else {
            // A channel this node has not served yet: ask the provider
            // (rare, so the copies and the box do not matter).
            let (comet, channel) = (self.clone(), channel.to_owned());
            let (headers, body) = (headers.clone(), body.to_vec());
            return Either::Right(Box::pin(async move {
                let found = comet.find(&channel).await;
                match poll_input(found, &headers, Ok(&body)) {
                    Ok(input) => {
                        respond(answer_poll(input.manager, input.token, input.since).await)
                    }
                    Err(error) => error.into_poll_response(),
                }
            })
                as Pin<Box<dyn Future<Output = PollResponse> + Send>>);
        };
        match poll_input(Ok(manager), headers, Ok(body)) {
            Ok(PollInput {
                manager,
                token,
                since,
            }) => Either::Left(answer_poll(manager, token, since).map(respond)),
            Err(error) => {
                let response = error.into_poll_response();
                Either::Right(Box::pin(async move { response }))
            }
        }
    }
}

/// A poll's result as the response the protocol gives it.
fn respond(result: Result<Vec<u8>, RouteError>) -> PollResponse {
    match result {
        Ok(body) => PollResponse {
            status: StatusCode::OK,
            retry_after: None,
            body,
        },
        Err(error) => error.into_poll_response(),
    }
}

/// A poll that passed the request's checks, answered.
async fn answer_poll(
    manager: Arc<Manager>,
    token: PrivateToken,
    since: Option<Cursor>,
) -> Result<Vec<u8>, RouteError> {
    let mut open = manager.open_poll(&token, since).await?;
    drop((manager, token));
    let poll = match open.take_ready() {
        Some(ready) => ready,
        None => open.wait().await?,
    };
    Ok(encode(poll))
}

async fn poll(
    State(comet): State<Comet>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RouteError> {
    let found = comet.find(&channel).await;
    let limit = found
        .as_ref()
        .map_or(0, |manager| manager.settings().max_body_bytes);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ());
    let PollInput {
        manager,
        token,
        since,
    } = poll_input(found, &headers, bytes.as_deref().map_err(|_| ()))?;
    let early_ack = wants_early_ack(&headers);
    // A held poll keeps this future alive for up to the connection timeout:
    // free what it no longer needs before waiting.
    drop((headers, bytes, comet, channel));
    let mut open = manager.open_poll(&token, since).await?;
    drop((manager, token));
    let ready = open.take_ready();
    held_answer(
        ready,
        async move { open.wait().await },
        early_ack,
        encode,
        PollOutcome::Timeout,
    )
    .await
}

/// The answer to a poll that passed its checks, one channel's or several
/// (`POST /comet`): what it found at once, else what `wait` finds. With
/// `Comet-Ack: early` and nothing yet, the status line and headers go now
/// (so the client can say "connected") and the body when something
/// arrives; that costs one more write per poll, so clients ask only when
/// they need it (first poll, after an error). A failure while waiting can
/// no longer change the status, so it answers `nothing` (a timeout); the
/// next poll reports it.
pub(crate) async fn held_answer<T: Send + 'static>(
    ready: Option<T>,
    wait: impl Future<Output = Result<T, CometError>> + Send + 'static,
    early_ack: bool,
    encode: fn(T) -> Vec<u8>,
    nothing: T,
) -> Result<Response, RouteError> {
    let body = match ready {
        Some(ready) => Body::from(encode(ready)),
        None if early_ack => Body::from_stream(futures::stream::once(async move {
            let outcome = wait.await.unwrap_or_else(|error| {
                tracing::warn!(%error, "poll failed while waiting");
                nothing
            });
            Ok::<_, std::convert::Infallible>(encode(outcome))
        })),
        None => Body::from(encode(wait.await?)),
    };
    let mut response = PollResponse {
        status: StatusCode::OK,
        retry_after: None,
        body: Vec::new(),
    }
    .into_response();
    *response.body_mut() = body;
    Ok(response)
}

/// A poll outcome's JSON body (a `PollReply`). The messages are already
/// JSON: concatenate, never re-encode.
fn encode(poll: PollOutcome) -> Vec<u8> {
    match poll {
        PollOutcome::Timeout => TIMEOUT_REPLY.to_vec(),
        PollOutcome::Messages(messages) => {
            let len = messages.iter().map(|m| m.len() + 1).sum::<usize>();
            let mut out = Vec::with_capacity(REPLY_HEAD.len() + len + REPLY_TAIL.len());
            out.extend_from_slice(REPLY_HEAD);
            extend_joined(&mut out, &messages);
            out.extend_from_slice(REPLY_TAIL);
            out
        }
    }
}

/// Appends stored messages' JSON as the items of a JSON array: joined by
/// commas, never re-encoded.
pub(crate) fn extend_joined(out: &mut Vec<u8>, messages: &[bytes::Bytes]) {
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(message);
    }
}

/// The request header that asks for the status line and headers as soon
/// as the poll is accepted: `Comet-Ack: early`.
pub const EARLY_ACK_HEADER: &str = "comet-ack";

pub fn wants_early_ack(headers: &HeaderMap) -> bool {
    headers
        .get(EARLY_ACK_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"early"))
}
