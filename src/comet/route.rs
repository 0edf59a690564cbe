//! The channel route, `POST /comet/{channel}`: one poll per request.
//!
//! Who is polling comes from the `comet_token` cookie (browsers) or an
//! `Authorization: Bearer` header (anything else). The body is read with a
//! hard size cap before it is parsed, and every failure is one of the JSON
//! errors of the wire protocol, so a client can always tell what to do next:
//! stop (401), fix its request (400), resynchronise (410) or back off (429,
//! 503).

use super::wire::{codes, ErrorBody, PollRequest};
use super::{Comet, CometError, Poll, PrivateToken};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// The cookie that carries the private token in browsers.
pub const TOKEN_COOKIE: &str = "comet_token";

const REPLY_HEAD: &[u8] = br#"{"status":"messages","messages":["#;
const REPLY_TAIL: &[u8] = b"]}";
const TIMEOUT_REPLY: &[u8] = br#"{"status":"timeout"}"#;

impl Comet {
    /// The channel route for this set of channels, ready to merge into an
    /// app's router whatever its state type.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/comet/{channel}", post(poll))
            .with_state(self.clone())
    }
}

/// An error answer of the channel route.
#[derive(Debug)]
struct RouteError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl RouteError {
    fn bad_request(message: impl Into<String>) -> Self {
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
            | CometError::UnknownRecipient
            | CometError::ClientExists(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            CometError::CursorExpired => (StatusCode::GONE, codes::CURSOR_EXPIRED),
            CometError::TooManyPolls(_) => (StatusCode::TOO_MANY_REQUESTS, codes::TOO_MANY_POLLS),
            CometError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE),
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

impl IntoResponse for RouteError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

async fn poll(
    State(comet): State<Comet>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RouteError> {
    let manager = comet
        .channel(&channel)
        .ok_or_else(|| RouteError::from(CometError::UnknownChannel(channel)))?;
    let token = request_token(&headers).ok_or(CometError::UnknownClient)?;
    let early_ack = wants_early_ack(&headers);
    // A held poll keeps this future alive for up to the connection timeout:
    // free what it no longer needs before waiting.
    drop(headers);
    let limit = manager.settings().max_body_bytes;
    let since = {
        let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
            RouteError::bad_request(format!("the request body is larger than {limit} bytes"))
        })?;
        let request: PollRequest = serde_json::from_slice(&body).map_err(|e| {
            RouteError::bad_request(format!("expected {{\"since\": cursor or null}}: {e}"))
        })?;
        request.since
    };
    let mut open = manager.open_poll(&token, since).await?;
    drop(token);
    let body = match open.take_ready() {
        Some(ready) => Body::from(encode(ready)),
        // Nothing yet, and the client asked to know its poll was accepted
        // (to say "connected"): answer the headers now and the body when
        // something arrives. That costs one more write per poll, so clients
        // ask only when they need it (first poll, after an error). A failure
        // while waiting can no longer change the status, so it becomes a
        // timeout; the next poll reports it.
        None if early_ack => Body::from_stream(futures::stream::once(async move {
            let poll = open.wait().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "poll failed while waiting");
                Poll::Timeout
            });
            Ok::<_, std::convert::Infallible>(encode(poll))
        })),
        None => Body::from(encode(open.wait().await?)),
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

/// A poll's JSON. The messages are already JSON: concatenate, never re-encode.
fn encode(poll: Poll) -> Vec<u8> {
    match poll {
        Poll::Timeout => TIMEOUT_REPLY.to_vec(),
        Poll::Messages(messages) => {
            let len = messages.iter().map(|m| m.len() + 1).sum::<usize>();
            let mut out = Vec::with_capacity(REPLY_HEAD.len() + len + REPLY_TAIL.len());
            out.extend_from_slice(REPLY_HEAD);
            for (i, message) in messages.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(message);
            }
            out.extend_from_slice(REPLY_TAIL);
            out
        }
    }
}

/// The request header that asks for the status line and headers as soon
/// as the poll is accepted: `Comet-Ack: early`.
pub const EARLY_ACK_HEADER: &str = "comet-ack";

fn wants_early_ack(headers: &HeaderMap) -> bool {
    headers
        .get(EARLY_ACK_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"early"))
}

/// The private token from `Authorization: Bearer …`, else from the cookie.
/// A malformed token is treated as no token: the answer is the same 401.
pub fn request_token(headers: &HeaderMap) -> Option<PrivateToken> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Bearer ")
            .and_then(|t| PrivateToken::parse(t.trim()));
    }
    cookie_token(headers)
}

/// The private token from the `comet_token` cookie, if well formed.
pub fn cookie_token(headers: &HeaderMap) -> Option<PrivateToken> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .and_then(|(_, value)| PrivateToken::parse(value))
}
