//! `POST /comet`: one poll for several channels (the wire protocol in the
//! crate docs). The body names a cursor per channel; the answer groups
//! each channel's messages under its name and reports a channel whose part
//! failed under `errors`, with the error its own poll would have answered.
//! `Comet-Ack: early` works as on `POST /comet/{channel}`: the head as
//! soon as the poll is accepted, the body when it answers.

use crate::manager::ChannelsOutcome;
use crate::route::{extend_joined, held_answer, RouteError, TIMEOUT_REPLY};
use crate::wire::ChannelsRequest;
use crate::{request_token, wants_early_ack, Comet, CometError};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

/// How many times a one-channel poll's body a poll of several may be: a
/// cursor and a name per channel.
const BODY_FACTOR: usize = 8;

pub(crate) async fn poll_channels(
    State(comet): State<Comet>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RouteError> {
    let limit = comet.settings().max_body_bytes * BODY_FACTOR;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        RouteError::bad_request(format!("the request body is larger than {limit} bytes"))
    })?;
    let token = request_token(&headers).ok_or(CometError::UnknownClient)?;
    let request: ChannelsRequest = serde_json::from_slice(&bytes).map_err(|e| {
        RouteError::bad_request(format!(
            "expected {{\"channels\": {{name: cursor or null, …}}}}: {e}"
        ))
    })?;
    let early_ack = wants_early_ack(&headers);
    drop((headers, bytes));
    let mut open = comet
        .open_channels(&token, request.channels.into_iter().collect())
        .await?;
    drop((comet, token));
    let ready = open.take_ready();
    held_answer(
        ready,
        async move { open.wait().await },
        early_ack,
        encode,
        ChannelsOutcome::default(),
    )
    .await
}

/// The reply's JSON, the messages' stored bytes copied in as they are.
fn encode(outcome: ChannelsOutcome) -> Vec<u8> {
    let name = |name: &str| serde_json::to_vec(name).unwrap_or_default();
    // Where the channels asked from now on start: `,"cursors":{…}` or nothing.
    let cursors = |out: &mut Vec<u8>, cursors: &[(String, crate::Cursor)]| {
        if cursors.is_empty() {
            return;
        }
        out.extend(br#","cursors":{"#);
        for (i, (channel, cursor)) in cursors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend(name(channel));
            out.push(b':');
            out.extend(name(cursor.as_str()));
        }
        out.push(b'}');
    };
    if outcome.is_timeout() {
        if outcome.cursors.is_empty() {
            return TIMEOUT_REPLY.to_vec();
        }
        let mut out = br#"{"status":"timeout""#.to_vec();
        cursors(&mut out, &outcome.cursors);
        out.push(b'}');
        return out;
    }
    let mut out = br#"{"status":"messages","channels":{"#.to_vec();
    for (i, (channel, messages)) in outcome.messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(name(channel));
        out.extend(b":[");
        extend_joined(&mut out, messages);
        out.push(b']');
    }
    out.extend(br#"},"errors":{"#);
    for (i, (channel, error)) in outcome.errors.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(name(&channel));
        out.push(b':');
        // An ErrorBody is two strings: encoding it cannot fail.
        out.extend(serde_json::to_vec(&RouteError::from(error).body()).unwrap_or_default());
    }
    out.push(b'}');
    cursors(&mut out, &outcome.cursors);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::encode;
    use crate::manager::ChannelsOutcome;
    use crate::wire::{ChannelsReply, Message};
    use crate::{CometError, Cursor};

    #[test]
    fn the_reply_reads_as_the_wire_type() {
        let message = br#"{"id":"1-0","n":"Text","c":{"m":"hi"}}"#;
        let outcome = ChannelsOutcome {
            messages: vec![("rust".into(), vec![message.to_vec().into()])],
            errors: vec![("gone".into(), CometError::CursorExpired)],
            cursors: vec![("quiet".into(), Cursor("7-0".into()))],
        };
        let reply: ChannelsReply = serde_json::from_slice(&encode(outcome)).unwrap();
        let ChannelsReply::Messages {
            channels,
            errors,
            cursors,
        } = reply
        else {
            panic!("messages expected");
        };
        let rust: &Vec<Message> = &channels["rust"];
        assert_eq!(rust[0].contents["m"], "hi");
        assert_eq!(errors["gone"].error, "cursor_expired");
        assert_eq!(cursors["quiet"], Cursor("7-0".into()));
        let timeout: ChannelsReply =
            serde_json::from_slice(&encode(ChannelsOutcome::default())).unwrap();
        assert_eq!(
            timeout,
            ChannelsReply::Timeout {
                cursors: Default::default()
            }
        );
        let quiet = ChannelsOutcome {
            cursors: vec![("quiet".into(), Cursor("7-0".into()))],
            ..Default::default()
        };
        let timeout: ChannelsReply = serde_json::from_slice(&encode(quiet)).unwrap();
        let ChannelsReply::Timeout { cursors } = timeout else {
            panic!("timeout expected");
        };
        assert_eq!(cursors["quiet"], Cursor("7-0".into()));
    }
}
