//! The chat's guards, over HTTP: malformed server-function arguments get
//! `400` with a sentence, a provider outage `503` + `Retry-After`, logins
//! and sends are limited per client address (forwarded addresses believed
//! only from a trusted proxy), `Origin` must be this server's scheme, host
//! and port, two session cookies are refused, and text that could deceive
//! (bidi controls, invisible messages, look-alike names) is refused.

mod common;

use comet::Provider;
use comet_chat::config::Config;
use common::flaky::Flaky;
use common::http::{start, start_with, App, Session};
use reqwest::{header, StatusCode};
use std::sync::Arc;

async fn text_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn malformed_arguments_get_400_saying_what_is_wrong() {
    let app = start().await;
    let ann = app.login("ann").await;
    let post = |endpoint: &str, content_type: &str, body: &str| {
        app.http
            .post(app.url(&format!("/api/{endpoint}")))
            .header(header::COOKIE, format!("comet_token={}", ann.token))
            .header(header::CONTENT_TYPE, content_type.to_owned())
            .body(body.to_owned())
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let cases = [
        ("login", form, "", "Missing argument \"username\""),
        ("login", form, "name=bob", "Unknown argument \"name\""),
        (
            "login",
            form,
            "username=bob&username=cy",
            "\"username\" was given more than once",
        ),
        (
            "login",
            form,
            "username=bob&admin=1",
            "Unknown argument \"admin\"",
        ),
        (
            "login",
            "application/json",
            r#"{"username":"bob"}"#,
            "as a form",
        ),
        ("send_message", form, "id=x1", "Missing argument \"text\""),
        (
            "send_message",
            form,
            "text=a&text=b",
            "\"text\" was given more than once",
        ),
        (
            "send_private_message",
            form,
            "text=hi",
            "Missing argument \"to\"",
        ),
        (
            "recent_messages",
            form,
            "since=5",
            "Unknown argument \"since\"",
        ),
    ];
    for (endpoint, content_type, body, says) in cases {
        let (status, text) = text_of(post(endpoint, content_type, body).await.unwrap()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{endpoint} {body:?}: {text}"
        );
        assert!(text.contains(says), "{endpoint} {body:?}: {text}");
    }
    // Nothing was sent, nobody logged in.
    let online = online(&app, &ann).await;
    assert_eq!(online.as_array().map(Vec::len), Some(1), "{online}");
}

/// Who is online, as `s` is shown it.
async fn online(app: &App, s: &Session) -> serde_json::Value {
    app.server_fn(s, "online_users", &[])
        .await
        .json()
        .await
        .unwrap()
}

/// The app on `provider`, with the tests' short timeouts.
async fn start_on(provider: Arc<dyn Provider>) -> App {
    let env = |key: &str| match key {
        "COMET_POLL_TIMEOUT" => Some("500ms".to_owned()),
        "COMET_IDLE_TIMEOUT" => Some("3s".to_owned()),
        _ => None,
    };
    let config = Config::from_sources(None, "test", env).expect("valid test config");
    common::http::start_on(&config, provider).await
}

#[tokio::test]
async fn a_provider_outage_is_503_with_retry_after_in_every_server_function() {
    let provider = Flaky::new();
    let app = start_on(provider.clone()).await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let bob_public = online(&app, &ann).await[1]["public"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(bob);
    provider.refuse();
    let calls = [
        ("login", vec![("username", "cy")]),
        ("send_message", vec![("text", "hi")]),
        (
            "send_private_message",
            vec![("to", bob_public.as_str()), ("text", "hi")],
        ),
        ("online_users", vec![]),
        ("recent_messages", vec![]),
    ];
    for (endpoint, form) in calls {
        let response = app.server_fn(&ann, endpoint, &form).await;
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let (status, text) = text_of(response).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{endpoint}: {text}"
        );
        assert!(retry_after.is_some(), "{endpoint}: no Retry-After");
        assert!(text.contains("unavailable right now"), "{endpoint}: {text}");
    }
}

/// An app that believes forwarded addresses from loopback (the tests' own
/// "proxy"), with small login and send limits.
async fn behind_proxy(extra: &[(&str, &str)]) -> App {
    let mut settings = vec![
        ("CHAT_TRUSTED_PROXIES", "127.0.0.1"),
        ("CHAT_LOGIN_RATE", "1"),
        ("CHAT_LOGIN_BURST", "2"),
        ("CHAT_SEND_RATE", "1"),
        ("CHAT_SEND_BURST", "2"),
    ];
    settings.extend_from_slice(extra);
    start_with(&settings).await
}

async fn login_from(app: &App, name: &str, from: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/login"))
        .header("x-forwarded-for", from)
        .form(&[("username", name)])
        .send()
        .await
        .unwrap()
}

async fn send_from(app: &App, s: &Session, text: &str, from: &str) -> StatusCode {
    app.http
        .post(app.url("/api/send_message"))
        .header("x-forwarded-for", from)
        .header(header::COOKIE, format!("comet_token={}", s.token))
        .form(&[("text", text)])
        .send()
        .await
        .unwrap()
        .status()
}

/// Whether `name` may log in from `from`.
async fn admitted(app: &App, name: &str, from: &str) -> bool {
    login_from(app, name, from).await.status().is_success()
}

fn session(response: &reqwest::Response) -> Session {
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    Session {
        token: common::http::cookie_token(&cookie),
        cookie,
    }
}

#[tokio::test]
async fn logins_are_limited_per_client_address() {
    let app = behind_proxy(&[]).await;
    for name in ["a1", "a2"] {
        let status = login_from(&app, name, "198.51.100.1").await.status();
        assert!(status.is_success(), "{name}: {status}");
    }
    let refused = login_from(&app, "a3", "198.51.100.1").await;
    let retry_after = refused.headers().get(header::RETRY_AFTER).cloned();
    let (status, text) = text_of(refused).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("Too many logins from your network"), "{text}");
    let secs: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    // Another address has its own bucket; the same /64 does not.
    assert!(admitted(&app, "b1", "198.51.100.2").await);
    assert!(admitted(&app, "c1", "2001:db8:0:1::1").await);
    assert!(admitted(&app, "c2", "2001:db8:0:1::2").await);
    let same_64 = login_from(&app, "c3", "2001:db8:0:1::3").await.status();
    assert_eq!(same_64, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_unless_the_proxy_is_trusted() {
    let app = start_with(&[("CHAT_LOGIN_RATE", "1"), ("CHAT_LOGIN_BURST", "2")]).await;
    for (i, from) in ["198.51.100.1", "198.51.100.2"].iter().enumerate() {
        assert!(admitted(&app, &format!("u{i}"), from).await);
    }
    // A third "address" is only a header: the socket's bucket is empty.
    let status = login_from(&app, "u3", "198.51.100.3").await.status();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_new_login_does_not_escape_the_send_limit() {
    let app = behind_proxy(&[("CHAT_LOGIN_BURST", "5")]).await;
    let here = "198.51.100.7";
    let ann = session(&login_from(&app, "ann", here).await);
    assert_eq!(send_from(&app, &ann, "m1", here).await, StatusCode::OK);
    assert_eq!(send_from(&app, &ann, "m2", here).await, StatusCode::OK);
    assert_eq!(
        send_from(&app, &ann, "m3", here).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let again = session(&login_from(&app, "ann again", here).await);
    assert_eq!(
        send_from(&app, &again, "m4", here).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh name on the same address gets no fresh burst"
    );
    let elsewhere = session(&login_from(&app, "bob", "198.51.100.8").await);
    assert_eq!(
        send_from(&app, &elsewhere, "hi", "198.51.100.8").await,
        StatusCode::OK
    );
}

/// Request headers as raw bytes (some are not valid text on purpose).
type RawHeaders<'a> = Vec<(&'a str, &'a [u8])>;

async fn login_with_headers(app: &App, headers: &[(&str, &[u8])]) -> StatusCode {
    let mut request = app
        .http
        .post(app.url("/api/login"))
        .form(&[("username", "ann")]);
    for (name, value) in headers {
        request = request.header(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn origin_must_be_this_servers_scheme_host_and_port() {
    let app = start().await;
    let host = app.base.strip_prefix("http://").unwrap().to_owned();
    let (ip, port) = host.rsplit_once(':').unwrap();
    let other_port = format!("http://{ip}:{}", port.parse::<u16>().unwrap() + 1);
    let https = format!("https://{host}");
    let forbidden: Vec<(&str, RawHeaders)> = vec![
        ("https scheme", vec![("origin", https.as_bytes())]),
        ("other port", vec![("origin", other_port.as_bytes())]),
        ("non-ASCII", vec![("origin", b"http://127.0.0.1\xe9")]),
        ("null", vec![("origin", b"null")]),
        (
            "twice",
            vec![
                ("origin", app.base.as_bytes()),
                ("origin", app.base.as_bytes()),
            ],
        ),
        (
            "forwarded host from anyone",
            vec![
                ("x-forwarded-host", b"evil.example"),
                ("origin", b"http://evil.example"),
            ],
        ),
    ];
    for (what, headers) in forbidden {
        assert_eq!(
            login_with_headers(&app, &headers).await,
            StatusCode::FORBIDDEN,
            "{what}"
        );
    }
    let own = [("origin", app.base.as_bytes())];
    assert!(login_with_headers(&app, &own).await.is_success());
}

#[tokio::test]
async fn a_trusted_proxy_may_name_the_public_origin() {
    let app = start_with(&[("CHAT_TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let headers: [(&str, &[u8]); 3] = [
        ("x-forwarded-host", b"chat.example"),
        ("x-forwarded-proto", b"https"),
        ("origin", b"https://chat.example"),
    ];
    assert!(login_with_headers(&app, &headers).await.is_success());
}

#[tokio::test]
async fn two_session_cookies_are_refused_rather_than_guessed() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let with_cookie = |cookie: String| {
        app.http
            .post(app.url("/api/recent_messages"))
            .header(header::COOKIE, cookie)
            .send()
    };
    for cookie in [
        format!("comet_token={}; comet_token={}", bob.token, ann.token),
        format!(
            "comet_token={}; __Host-comet_token={}",
            ann.token, ann.token
        ),
    ] {
        let (status, text) = text_of(with_cookie(cookie.clone()).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cookie}: {text}");
        assert!(text.contains("more than one session cookie"), "{text}");
        let poll = app
            .http
            .post(app.url("/comet/chat"))
            .header(header::COOKIE, cookie)
            .body(r#"{"since":null}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(poll.status(), StatusCode::UNAUTHORIZED);
    }
    // One cookie of either name works.
    for name in ["comet_token", "__Host-comet_token"] {
        let response = with_cookie(format!("{name}={}", ann.token)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
    }
}

#[tokio::test]
async fn bidi_controls_and_invisible_messages_are_refused() {
    let app = start().await;
    let ann = app.login("ann").await;
    let cases = [
        (
            "right-to-left override",
            "look \u{202E}gnp.exe",
            "text-direction",
        ),
        ("isolate", "\u{2067}hi\u{2069}", "text-direction"),
        (
            "zero-width only",
            "\u{200B}\u{200D}\u{2060}",
            "show as nothing",
        ),
        ("Hangul filler", "\u{3164}\u{3164}", "show as nothing"),
    ];
    for (what, text, says) in cases {
        let (status, body) = text_of(app.send(&ann, text).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert!(body.contains(says), "{what}: {body}");
    }
    let (status, body) = text_of(app.call_login("ann\u{202E}nimda").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("text-direction"), "{body}");
    let (status, _) = text_of(app.call_login("\u{200B}\u{3164}").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.send(&ann, "still fine").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_look_alike_of_an_online_name_is_refused() {
    let app = start().await;
    app.login("Ada").await;
    let (status, text) = text_of(app.call_login("\u{0410}da").await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(
        text.contains("That name looks too much like someone who is online."),
        "{text}"
    );
    // The exact name (any case) keeps the original sentence.
    let (status, text) = text_of(app.call_login("ada").await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        text.contains("User is already logged into the chat application."),
        "{text}"
    );
    app.login("Adam").await;
}
