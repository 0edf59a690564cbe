//! What the browser's two poll loops share (`subscriber.rs`: one channel,
//! `channels_subscriber.rs`: several): one `fetch` POST that an
//! `AbortController` can cancel, reading its answer, `Retry-After`, the
//! back-off between failures, and the status a page is told about.

use super::wire::ErrorBody;
use super::Status;
use std::cell::Cell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub(super) type Handler<T> = Box<dyn Fn(T)>;

/// What one poll's request came back with.
pub(super) enum Answer {
    /// No HTTP answer at all (server down, network dropped), or its body
    /// could not be read.
    Network(String),
    /// A status, the body's text and `Retry-After` in milliseconds.
    Http {
        code: u16,
        text: String,
        retry_after_ms: Option<f64>,
    },
}

impl Answer {
    /// The error body of a non-`200` answer, if it is the protocol's JSON.
    pub(super) fn error_body(text: &str) -> Option<ErrorBody> {
        serde_json::from_str(text).ok()
    }
}

/// One poll: POSTs `body` to `url`, tells `on_head` the status as soon as
/// the head arrives (with `early_ack`, before anything is pending), then
/// reads the body. Aborted through `signal`, it ends as `Network`: the
/// caller that aborted drops it first.
pub(super) async fn poll(
    url: &str,
    body: &str,
    early_ack: bool,
    signal: Option<&web_sys::AbortSignal>,
    on_head: impl FnOnce(u16),
) -> Answer {
    let response = match post_json(url, body, early_ack, signal).await {
        Ok(response) => response,
        Err(e) => return Answer::Network(e),
    };
    let code = response.status();
    on_head(code);
    match body_text(&response).await {
        Ok(text) => Answer::Http {
            code,
            text,
            retry_after_ms: retry_after_ms(&response),
        },
        Err(e) => Answer::Network(e),
    }
}

/// The status shown to the page: the handler is called on changes only.
pub(super) struct StatusCell {
    now: Cell<Status>,
    on_status: Handler<Status>,
}

impl StatusCell {
    /// Starts at `Connecting`, and says so.
    pub(super) fn new(on_status: Handler<Status>) -> Self {
        on_status(Status::Connecting);
        Self {
            now: Cell::new(Status::Connecting),
            on_status,
        }
    }

    pub(super) fn get(&self) -> Status {
        self.now.get()
    }

    pub(super) fn set(&self, new: Status) {
        if self.now.replace(new) != new {
            (self.on_status)(new);
        }
    }
}

/// Exponential back-off with full jitter (anywhere in [b/2, b]), so a
/// restarted server is not hit by every client at the same instant;
/// never shorter than the server's `Retry-After`.
pub(super) async fn back_off(failures: u32, max_backoff_ms: f64, retry_after_ms: Option<f64>) {
    let wait = super::status::backoff_ms(
        failures,
        max_backoff_ms,
        retry_after_ms,
        js_sys::Math::random(),
    );
    gloo_timers::future::sleep(std::time::Duration::from_millis(wait as u64)).await;
}

fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// One `fetch` POST, resolved when the response headers arrive; `Err` when
/// there was no HTTP answer at all.
async fn post_json(
    url: &str,
    body: &str,
    early_ack: bool,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<web_sys::Response, String> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    init.set_signal(signal);
    let headers = web_sys::Headers::new().map_err(js_error)?;
    headers
        .set("content-type", "application/json")
        .map_err(js_error)?;
    if early_ack {
        headers.set("comet-ack", "early").map_err(js_error)?;
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(js_error)?;
    let window = web_sys::window().ok_or("no window")?;
    JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)
}

async fn body_text(response: &web_sys::Response) -> Result<String, String> {
    let text = JsFuture::from(response.text().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(text.as_string().unwrap_or_default())
}

/// `Retry-After` (in seconds) as milliseconds.
fn retry_after_ms(response: &web_sys::Response) -> Option<f64> {
    response
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|secs| secs * 1000.0)
}
