//! Malformed server-function calls get `400` and a sentence, before Leptos
//! sees them.
//!
//! Leptos decodes a server function's form body with `serde_qs` and turns
//! any failure into `ServerFnError::Args`, answered `500`: a missing
//! `username` looks like a server bug. Worse, what it accepts is loose:
//! unknown fields are ignored and a field given twice is resolved one way
//! or another, so two readers (a proxy's filter, the server) could disagree
//! about what was sent. So each endpoint's fields are declared here and a
//! body is checked against them: a form, each known field at most once,
//! the required ones present, nothing else. A `500` that Leptos still
//! answers for arguments (bytes this check let through) becomes `400` too.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use tower::{Service, ServiceExt};

/// Largest server-function body read: the HTTP front's own body cap
/// (1 MiB), so a message within `CHAT_MAX_MESSAGE_CHARS` (checked in
/// characters, and settable well above its default 2000: 12 bytes per
/// character percent-encoded at worst) is never refused for its bytes.
pub const MAX_ARGS_BYTES: usize = 1024 * 1024;

/// A field of an endpoint: its name and whether it must be present.
pub type Field = (&'static str, bool);

/// Each `/api/` endpoint's fields (see `api.rs`). An endpoint missing here
/// is not checked: add new server functions to this table.
const ENDPOINTS: &[(&str, &[Field])] = &[
    ("login", &[("username", true)]),
    ("logout", &[]),
    (
        "send_message",
        &[("text", true), ("id", false), ("room", false)],
    ),
    (
        "send_private_message",
        &[("to", true), ("text", true), ("id", false), ("room", false)],
    ),
    ("online_users", &[("room", false)]),
    ("recent_messages", &[("room", false)]),
    ("rooms", &[]),
    ("create_room", &[("name", true)]),
    ("join_room", &[("room", true)]),
    ("leave_room", &[("room", true)]),
];

/// What is wrong with a call's arguments, as the caller is told.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("Send the arguments as a form (Content-Type: application/x-www-form-urlencoded).")]
    NotAForm,
    #[error("The arguments are too long: at most {MAX_ARGS_BYTES} bytes.")]
    TooLong,
    #[error("Missing argument \"{0}\".")]
    Missing(&'static str),
    #[error("Argument \"{0}\" was given more than once.")]
    Repeated(String),
    #[error("Unknown argument \"{0}\".")]
    Unknown(String),
    #[error("The arguments could not be read: {0}")]
    Unreadable(String),
}

/// Checks a form body against `fields`.
pub fn check_form(fields: &[Field], body: &[u8]) -> Result<(), ArgsError> {
    let mut seen = vec![false; fields.len()];
    for (name, _) in form_urlencoded::parse(body) {
        let Some(i) = fields.iter().position(|(known, _)| *known == name) else {
            return Err(ArgsError::Unknown(printable(&name)));
        };
        if std::mem::replace(&mut seen[i], true) {
            return Err(ArgsError::Repeated(name.into_owned()));
        }
    }
    match fields
        .iter()
        .zip(&seen)
        .find(|((_, required), seen)| *required && !**seen)
    {
        Some(((name, _), _)) => Err(ArgsError::Missing(name)),
        None => Ok(()),
    }
}

/// A caller's field name, shortened and without controls, for the answer.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// Calls `inner` with `request` if its body has `fields`' shape (else
/// answers `400`), and turns an argument `500` from Leptos into `400`.
/// For requests [`endpoint_fields`] names; `crate::guard` calls it.
pub async fn checked_call<S>(fields: &'static [Field], request: Request, inner: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let bytes = match axum::body::to_bytes(body, MAX_ARGS_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, &ArgsError::TooLong),
    };
    // An empty body needs no content type (a call without arguments).
    if !is_form && !bytes.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, &ArgsError::NotAForm);
    }
    if let Err(error) = check_form(fields, &bytes) {
        return refuse(StatusCode::BAD_REQUEST, &error);
    }
    let response = match inner
        .oneshot(Request::from_parts(parts, Body::from(bytes)))
        .await
    {
        Ok(response) => response,
        Err(never) => match never {},
    };
    args_500_to_400(response).await
}

/// The fields of the server function `request` calls, if it calls one
/// listed in this file's table.
pub fn endpoint_fields(request: &Request) -> Option<&'static [Field]> {
    if request.method() != Method::POST {
        return None;
    }
    let endpoint = request.uri().path().strip_prefix("/api/")?;
    ENDPOINTS
        .iter()
        .find(|(name, _)| *name == endpoint)
        .map(|(_, fields)| *fields)
}

/// Leptos answers an argument error `500` with a `serverfnerror` header
/// and a body `Args|…` or `MissingArg|…`; that is the caller's fault.
async fn args_500_to_400(response: Response) -> Response {
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key("serverfnerror")
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ARGS_BYTES).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    for prefix in ["Args|", "MissingArg|"] {
        if let Some(detail) = text.strip_prefix(prefix) {
            return refuse(
                StatusCode::BAD_REQUEST,
                &ArgsError::Unreadable(printable(detail)),
            );
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The answer in Leptos's own error encoding (`ServerError|sentence`), so
/// a hydrated page shows the sentence as it shows any other refusal.
fn refuse(status: StatusCode, error: &ArgsError) -> Response {
    let mut response = (status, format!("ServerError|{error}")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &[Field] = &[("text", true), ("id", false)];

    #[test]
    fn a_form_with_the_declared_fields_passes() {
        assert_eq!(check_form(SEND, b"text=hi&id=a1"), Ok(()));
        assert_eq!(check_form(SEND, b"text=hi"), Ok(()));
        assert_eq!(check_form(&[], b""), Ok(()));
    }

    #[test]
    fn missing_repeated_and_unknown_fields_are_named() {
        assert_eq!(check_form(SEND, b"id=a1"), Err(ArgsError::Missing("text")));
        assert_eq!(
            check_form(SEND, b"text=a&text=b"),
            Err(ArgsError::Repeated("text".into()))
        );
        assert_eq!(
            check_form(SEND, b"text=a&admin=1"),
            Err(ArgsError::Unknown("admin".into()))
        );
        assert_eq!(
            check_form(&[], br#"{"text":"hi"}"#),
            Err(ArgsError::Unknown(r#"{"text":"hi"}"#.into()))
        );
    }
}
