//! A poll can be answered two ways: by the connection loop's shortcut
//! (`PollShortcut`, `Comet::answer`: no router request or response is
//! built) or by the axum route `POST /comet/{channel}` (what an
//! early-acknowledged poll, or a server without the shortcut, goes
//! through). A client must not be able to tell which one answered: every
//! outcome of the wire protocol is run through both, on two servers that
//! share one set of channels, and the status, the headers a client acts
//! on, and the body must be the same.

mod common;

use comet::{serve, Comet, Manager, PrivateToken};
use comet_chat::config::Config;
use comet_chat::{chat, server};
use common::http::serve_on_loopback;
use leptos::config::LeptosOptions;
use reqwest::{header, Client, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The two servers: the app as `main.rs` serves it (shortcut first), and
/// the same router with no shortcut.
struct Paths {
    shortcut: String,
    router: String,
    comet: Comet,
    chat: Arc<Manager>,
    http: Client,
}

/// What a client sees of one answer.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: StatusCode,
    content_type: Option<String>,
    cache_control: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Paths {
    async fn start() -> Self {
        let env = |key: &str| {
            match key {
                "COMET_RETENTION_MESSAGES" => Some("3"),
                "COMET_MAX_POLLS_PER_CLIENT" => Some("1"),
                "COMET_MAX_BODY_BYTES" => Some("64"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let config = Config::from_sources(None, "test", env).expect("valid test config");
        let options = LeptosOptions::builder().output_name("comet-chat").build();
        let provider = server::provider(&config)
            .await
            .expect("in-process provider");
        let (routes, comet) = server::build(&config, provider, options);
        assert!(routes.shortcut.is_some(), "the app answers polls itself");
        let without = serve::Routes::from(routes.router.clone());
        let chat = comet.channel(chat::CHANNEL).expect("the chat channel");
        Self {
            shortcut: base(routes),
            router: base(without),
            comet,
            chat,
            http: Client::new(),
        }
    }

    /// `body` posted to `path` with `token` through both servers, which
    /// must answer alike; what they answered.
    async fn both(&self, path: &str, token: Option<&PrivateToken>, body: &str) -> Seen {
        let shortcut = self.poll(&self.shortcut, path, token, body).await;
        let router = self.poll(&self.router, path, token, body).await;
        assert_eq!(
            shortcut, router,
            "shortcut (left) and router (right) differ"
        );
        shortcut
    }

    async fn poll(&self, base: &str, path: &str, token: Option<&PrivateToken>, body: &str) -> Seen {
        let mut request = self
            .http
            .post(format!("{base}{path}"))
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.expect("an answer");
        let header = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII header").to_owned())
        };
        Seen {
            status: response.status(),
            content_type: header(header::CONTENT_TYPE),
            cache_control: header(header::CACHE_CONTROL),
            retry_after: header(header::RETRY_AFTER),
            body: response.text().await.expect("a body"),
        }
    }

    /// A client of the chat channel whose polls are held for `hold`.
    async fn client(&self, name: &str, hold: Duration) -> PrivateToken {
        let (token, _) = self
            .chat
            .initialize_client_with(name, hold, Duration::from_secs(60))
            .await
            .expect("a new client");
        token
    }

    async fn head(&self, token: &PrivateToken) -> String {
        let (_, cursor) = self.chat.recent(token, 0).await.expect("a cursor");
        cursor.as_str().to_owned()
    }

    async fn say(&self, text: &str) {
        self.chat
            .send_to_all("Text", &json!({ "m": text }))
            .await
            .expect("sent");
    }
}

/// `routes` on a free loopback port with the default limits, as a base
/// URL.
fn base(routes: serve::Routes) -> String {
    format!(
        "http://{}",
        serve_on_loopback(routes, serve::Limits::default())
    )
}

fn since(cursor: &str) -> String {
    json!({ "since": cursor }).to_string()
}

const CHAT: &str = "/comet/chat";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poll_outcome_is_answered_alike_by_the_shortcut_and_the_router() {
    let paths = Paths::start().await;
    let ann = paths.client("ann", Duration::from_secs(20)).await;
    let quick = paths.client("quick", Duration::from_millis(100)).await;

    // 200 messages.
    let before = paths.head(&ann).await;
    paths.say("hello").await;
    let seen = paths.both(CHAT, Some(&ann), &since(&before)).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.body.contains("hello"), "{}", seen.body);
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(seen.cache_control.as_deref(), Some("no-store"));

    // 200 timeout.
    let now = paths.head(&quick).await;
    let seen = paths.both(CHAT, Some(&quick), &since(&now)).await;
    assert_eq!(
        (seen.status, seen.body.as_str()),
        (StatusCode::OK, r#"{"status":"timeout"}"#)
    );

    // 400: a body that is not a poll, one too large, a cursor not ours.
    for body in ["nope".to_owned(), "x".repeat(65), since("not-a-cursor")] {
        let seen = paths.both(CHAT, Some(&ann), &body).await;
        assert_eq!(seen.status, StatusCode::BAD_REQUEST, "{body}");
    }

    // 401: no token, and a token nobody holds.
    let stranger = PrivateToken::generate();
    for token in [None, Some(&stranger)] {
        let seen = paths.both(CHAT, token, &since(&before)).await;
        assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
    }

    // 404.
    let seen = paths
        .both("/comet/elsewhere", Some(&ann), &since(&before))
        .await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND);

    // 410: retention keeps 3 messages; `before` is older than those.
    for i in 0..4 {
        paths.say(&format!("m{i}")).await;
    }
    let seen = paths.both(CHAT, Some(&ann), &since(&before)).await;
    assert_eq!(seen.status, StatusCode::GONE);

    // 429: Ann already holds her one poll.
    let held = {
        let (chat, ann, now) = (paths.chat.clone(), ann.clone(), paths.head(&ann).await);
        tokio::spawn(async move { chat.poll(&ann, Some(comet::Cursor(now))).await })
    };
    while paths.chat.waiting_polls() == 0 {
        tokio::task::yield_now().await;
    }
    let now = paths.head(&ann).await;
    let seen = paths.both(CHAT, Some(&ann), &since(&now)).await;
    assert_eq!(seen.status, StatusCode::TOO_MANY_REQUESTS);
    held.abort();
    let _ = held.await;

    // 503 + Retry-After: the node is stopping.
    paths.comet.shutdown();
    let seen = paths.both(CHAT, Some(&ann), &since(&now)).await;
    assert_eq!(seen.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(seen.retry_after.is_some(), "{seen:?}");
}

/// A held poll keeps the shortcut's boxed future for as long as it waits,
/// on every connection: the box must hold the answer's future once. (An
/// `async move` block that awaits a future it captured keeps it twice,
/// which made the box 1 464 bytes instead of 736.)
#[tokio::test]
async fn the_shortcut_boxes_the_answer_once() {
    use comet::serve::Shortcut;
    use comet::{MemoryProvider, Provider, Retention};

    let provider: Arc<dyn Provider> = Arc::new(MemoryProvider::new(Retention::default()));
    let comet = Comet::new(provider, Default::default(), &["c"]);
    let (token, _) = comet
        .channel("c")
        .unwrap()
        .initialize_client("ann")
        .await
        .unwrap();
    let mut headers = axum::http::HeaderMap::new();
    let bearer = format!("Bearer {}", token.expose());
    headers.insert(header::AUTHORIZATION, bearer.parse().unwrap());
    let answer = comet.answer("c", &headers, b"{}");
    let boxed = server::PollShortcut(comet.clone())
        .answer(
            &axum::http::Method::POST,
            &"/comet/c".parse().unwrap(),
            &headers,
            bytes::Bytes::from_static(b"{}"),
        )
        .expect("a plain poll takes the shortcut");
    let (answer, boxed) = (
        std::mem::size_of_val(&answer),
        std::mem::size_of_val(&*boxed),
    );
    assert!(
        boxed < answer + 64,
        "the box ({boxed} B) holds more than one answer future ({answer} B)"
    );
}
