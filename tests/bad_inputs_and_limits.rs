//! Bad inputs and limits, what the chat meets on the open internet: a
//! table of bad inputs (each gets the right status and a clear error, and
//! nothing else is damaged), rate limits, capacity limits, cross-origin
//! refusal, and beside them `/metrics`, the TLS cookie and a stopping
//! server's answer to waiting polls.

mod common;

use common::http::{chat_texts, cookie_token, start, start_with, App, Session};
use common::processes::Node;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

type Check<'a> = Pin<Box<dyn Future<Output = (StatusCode, String)> + 'a>>;

/// One bad input: what it is, what it gets, and a phrase of its answer.
struct Case<'a> {
    what: &'static str,
    status: StatusCode,
    says: &'static str,
    run: Check<'a>,
}

async fn answer(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

fn random_hex(len: usize) -> String {
    (0..len)
        .map(|i| char::from_digit(((i * 7 + 3) % 16) as u32, 16).unwrap())
        .collect()
}

#[tokio::test]
async fn bad_inputs_get_clear_errors_and_damage_nothing() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let bob_cursor = app.cursor(&bob).await;
    let cursor = app.cursor(&ann).await;
    let epoch = cursor.split_once('-').unwrap().0.to_owned();
    let poll = |token: Option<&str>, body: Vec<u8>| {
        let mut request = app.http.post(app.url("/comet/chat")).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token.to_owned());
        }
        request.send()
    };
    let fake = random_hex(64);
    let long_name = "n".repeat(33);
    let long_text = "x".repeat(2001);

    let cases: Vec<Case> = vec![
        Case {
            what: "poll: malformed JSON",
            status: StatusCode::BAD_REQUEST,
            says: "bad_request",
            run: Box::pin(async {
                answer(poll(Some(&ann.token), b"{".to_vec()).await.unwrap()).await
            }),
        },
        Case {
            what: "poll: unknown field",
            status: StatusCode::BAD_REQUEST,
            says: "unknown field",
            run: Box::pin(async {
                answer(
                    poll(Some(&ann.token), br#"{"since":null,"x":1}"#.to_vec())
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "poll: wrong type",
            status: StatusCode::BAD_REQUEST,
            says: "invalid type",
            run: Box::pin(async {
                answer(
                    poll(Some(&ann.token), br#"{"since":5}"#.to_vec())
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "poll: an array, not an object",
            status: StatusCode::BAD_REQUEST,
            says: "bad_request",
            run: Box::pin(async {
                answer(poll(Some(&ann.token), b"[]".to_vec()).await.unwrap()).await
            }),
        },
        Case {
            what: "poll: empty body",
            status: StatusCode::BAD_REQUEST,
            says: "expected",
            run: Box::pin(async {
                answer(poll(Some(&ann.token), Vec::new()).await.unwrap()).await
            }),
        },
        Case {
            what: "poll: body over COMET_MAX_BODY_BYTES",
            status: StatusCode::BAD_REQUEST,
            says: "larger than 256 bytes",
            run: Box::pin(async {
                let body = format!(r#"{{"since":"{}"}}"#, "1".repeat(300));
                answer(poll(Some(&ann.token), body.into_bytes()).await.unwrap()).await
            }),
        },
        Case {
            what: "poll: body over the server's 1 MiB cap",
            status: StatusCode::PAYLOAD_TOO_LARGE,
            says: "too large",
            run: Box::pin(async {
                answer(poll(Some(&ann.token), vec![b' '; 2 << 20]).await.unwrap()).await
            }),
        },
        Case {
            what: "poll: invalid UTF-8",
            status: StatusCode::BAD_REQUEST,
            says: "bad_request",
            run: Box::pin(async {
                answer(
                    poll(Some(&ann.token), b"{\"since\":\"\xff\xfe\"}".to_vec())
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "poll: malformed cursor",
            status: StatusCode::BAD_REQUEST,
            says: "not a cursor",
            run: Box::pin(async {
                answer(
                    poll(Some(&ann.token), br#"{"since":"nope"}"#.to_vec())
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "poll: a cursor of another channel or server",
            status: StatusCode::GONE,
            says: "cursor_expired",
            run: Box::pin(async {
                answer(
                    poll(Some(&ann.token), br#"{"since":"deadbeef-1"}"#.to_vec())
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "poll: a cursor ahead of the channel",
            status: StatusCode::BAD_REQUEST,
            says: "ahead",
            run: Box::pin(async {
                let body = format!(r#"{{"since":"{epoch}-999999"}}"#);
                answer(poll(Some(&ann.token), body.into_bytes()).await.unwrap()).await
            }),
        },
        Case {
            what: "poll: unknown token",
            status: StatusCode::UNAUTHORIZED,
            says: "unknown_client",
            run: Box::pin(async {
                answer(
                    poll(Some(&fake), br#"{"since":null}"#.to_vec())
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "poll: malformed token",
            status: StatusCode::UNAUTHORIZED,
            says: "unknown_client",
            run: Box::pin(async {
                answer(
                    poll(Some("abc"), br#"{"since":null}"#.to_vec())
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "poll: no token at all",
            status: StatusCode::UNAUTHORIZED,
            says: "unknown_client",
            run: Box::pin(async {
                answer(poll(None, br#"{"since":null}"#.to_vec()).await.unwrap()).await
            }),
        },
        Case {
            what: "poll: forged cookie",
            status: StatusCode::UNAUTHORIZED,
            says: "unknown_client",
            run: Box::pin(async {
                let response = app
                    .http
                    .post(app.url("/comet/chat"))
                    .header(header::COOKIE, format!("comet_token={fake}"))
                    .body(r#"{"since":null}"#)
                    .send()
                    .await
                    .unwrap();
                answer(response).await
            }),
        },
        Case {
            what: "poll: unknown channel",
            status: StatusCode::NOT_FOUND,
            says: "unknown_channel",
            run: Box::pin(async {
                let response = app
                    .http
                    .post(app.url("/comet/nope"))
                    .bearer_auth(&ann.token)
                    .body(r#"{"since":null}"#)
                    .send()
                    .await
                    .unwrap();
                answer(response).await
            }),
        },
        Case {
            what: "poll: wrong method",
            status: StatusCode::METHOD_NOT_ALLOWED,
            says: "",
            run: Box::pin(async {
                answer(app.http.get(app.url("/comet/chat")).send().await.unwrap()).await
            }),
        },
        Case {
            what: "poll: too many concurrent polls",
            status: StatusCode::TOO_MANY_REQUESTS,
            says: "too_many_polls",
            run: Box::pin(async {
                // The test server allows two polls per client: hold two.
                let null = || br#"{"since":null}"#.to_vec();
                let first = poll(Some(&bob.token), null());
                let second = poll(Some(&bob.token), null());
                let third = async {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    answer(poll(Some(&bob.token), null()).await.unwrap()).await
                };
                let (_, _, third) = tokio::join!(first, second, third);
                third
            }),
        },
        Case {
            what: "send: empty text",
            status: StatusCode::BAD_REQUEST,
            says: "Type a message first.",
            run: Box::pin(async { answer(app.send(&ann, "   ").await).await }),
        },
        Case {
            what: "send: text over CHAT_MAX_MESSAGE_CHARS",
            status: StatusCode::BAD_REQUEST,
            says: "too long",
            run: Box::pin(async { answer(app.send(&ann, &long_text).await).await }),
        },
        Case {
            what: "send: control characters",
            status: StatusCode::BAD_REQUEST,
            says: "control characters",
            run: Box::pin(async { answer(app.send(&ann, "bell \u{7}").await).await }),
        },
        Case {
            what: "send: invalid send id",
            status: StatusCode::BAD_REQUEST,
            says: "send id",
            run: Box::pin(async {
                answer(
                    app.server_fn(&ann, "send_message", &[("text", "hi"), ("id", "bad id!")])
                        .await,
                )
                .await
            }),
        },
        Case {
            what: "send: no session",
            status: StatusCode::UNAUTHORIZED,
            says: "session has ended",
            run: Box::pin(async {
                let response = app
                    .http
                    .post(app.url("/api/send_message"))
                    .form(&[("text", "hi")])
                    .send()
                    .await
                    .unwrap();
                answer(response).await
            }),
        },
        Case {
            what: "send: forged cookie",
            status: StatusCode::UNAUTHORIZED,
            says: "session has ended",
            run: Box::pin(async {
                let forged = Session {
                    token: fake.clone(),
                    cookie: String::new(),
                };
                answer(app.send(&forged, "hi").await).await
            }),
        },
        Case {
            what: "send: from another site",
            status: StatusCode::FORBIDDEN,
            says: "Cross-origin",
            run: Box::pin(async {
                let response = app
                    .http
                    .post(app.url("/api/send_message"))
                    .header(header::COOKIE, format!("comet_token={}", ann.token))
                    .header(header::ORIGIN, "https://evil.example")
                    .form(&[("text", "csrf")])
                    .send()
                    .await
                    .unwrap();
                answer(response).await
            }),
        },
        Case {
            what: "private: malformed recipient",
            status: StatusCode::BAD_REQUEST,
            says: "not a user's address",
            run: Box::pin(async {
                answer(
                    app.server_fn(
                        &ann,
                        "send_private_message",
                        &[("to", "zz"), ("text", "hi")],
                    )
                    .await,
                )
                .await
            }),
        },
        Case {
            what: "private: recipient not online",
            status: StatusCode::NOT_FOUND,
            says: "not online",
            run: Box::pin(async {
                let nobody = random_hex(64);
                answer(
                    app.server_fn(
                        &ann,
                        "send_private_message",
                        &[("to", &nobody[..32]), ("text", "hi")],
                    )
                    .await,
                )
                .await
            }),
        },
        Case {
            what: "login: empty name",
            status: StatusCode::BAD_REQUEST,
            says: "Please enter a name.",
            run: Box::pin(async { answer(app.call_login("  ").await).await }),
        },
        Case {
            what: "login: name too long",
            status: StatusCode::BAD_REQUEST,
            says: "too long",
            run: Box::pin(async { answer(app.call_login(&long_name).await).await }),
        },
        Case {
            what: "login: markup in the name",
            status: StatusCode::BAD_REQUEST,
            says: "Names may use",
            run: Box::pin(async { answer(app.call_login("<script>").await).await }),
        },
        Case {
            what: "login: name in use",
            status: StatusCode::CONFLICT,
            says: "already logged into the chat",
            run: Box::pin(async { answer(app.call_login("ANN").await).await }),
        },
        Case {
            what: "history: no session",
            status: StatusCode::UNAUTHORIZED,
            says: "session has ended",
            run: Box::pin(async {
                answer(
                    app.http
                        .post(app.url("/api/recent_messages"))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
        Case {
            what: "who is online: no session",
            status: StatusCode::UNAUTHORIZED,
            says: "session has ended",
            run: Box::pin(async {
                answer(
                    app.http
                        .post(app.url("/api/online_users"))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            }),
        },
    ];
    assert!(cases.len() >= 25, "the table has {} rows", cases.len());
    for case in cases {
        let (status, body) = case.run.await;
        assert_eq!(status, case.status, "{}: {body}", case.what);
        assert!(
            body.contains(case.says),
            "{}: expected the answer to say {:?}, got {body:?}",
            case.what,
            case.says
        );
    }

    // Nothing was damaged: the two users still chat, nothing bad was sent,
    // and no refused login left a client behind.
    let texts = ["still here", "and so am I"];
    app.send(&ann, texts[0]).await;
    app.send(&bob, texts[1]).await;
    let mut got = Vec::new();
    let mut since = bob_cursor;
    while got.len() < 2 {
        let (status, reply) = app.poll(&bob, Some(&since)).await;
        assert_eq!(status, StatusCode::OK);
        if let Some(last) = reply["messages"].as_array().and_then(|m| m.last()) {
            since = last["id"].as_str().unwrap().to_owned();
        }
        got.extend(chat_texts(&reply));
    }
    assert_eq!(got, texts, "only the good sends arrived, in order");
    assert_eq!(app.online_names(&ann).await, ["ann", "bob"]);
}

#[tokio::test]
async fn sending_too_fast_is_told_to_slow_down_and_recovers() {
    let app = start_with(&[("CHAT_SEND_RATE", "2"), ("CHAT_SEND_BURST", "3")]).await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    for i in 0..3 {
        assert_eq!(
            app.send(&ann, &format!("m{i}")).await.status(),
            StatusCode::OK
        );
    }
    let refused = app.send(&ann, "one too many").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    assert!(refused.text().await.unwrap().contains("Please slow down."));
    // Per address: bob, on ann's address, gets no burst of his own (so a
    // new login cannot escape the limit either).
    assert_eq!(
        app.send(&bob, "hi").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // At two per second, one more is allowed after half a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.send(&ann, "later").await.status(), StatusCode::OK);
    // The refused one was never sent.
    let history: Value = app
        .server_fn(&bob, "recent_messages", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chat_texts(&history), ["m0", "m1", "m2", "later"]);
}

#[tokio::test]
async fn a_full_chat_refuses_logins_and_a_full_node_refuses_polls_with_503() {
    let app = start_with(&[("COMET_MAX_CLIENTS", "2"), ("COMET_MAX_POLLS", "2")]).await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let full = app.call_login("cat").await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.text().await.unwrap().contains("The chat is full"));
    // Their joins go out first, so the polls below have nothing to say.
    tokio::time::sleep(common::PAST_PRESENCE_WINDOW).await;

    // Two polls held on this node (its limit): a third waits for nobody.
    let held_a = app.poll(&ann, None);
    let held_b = app.poll(&bob, None);
    let third = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.poll_raw(Some(&ann.token), json!({ "since": null }).to_string())
            .await
    };
    let (_, _, (status, headers, body)) = tokio::join!(held_a, held_b, third);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "unavailable");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("limit of 2 polls"));
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Once they are answered, polling works again.
    let (status, _) = app.poll(&ann, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let app: App = start().await;
    let ann = app.login("ann").await;
    let cursor = app.cursor(&ann).await;
    app.send(&ann, "counted").await;
    let (status, _) = app.poll(&ann, Some(&cursor)).await;
    assert_eq!(status, StatusCode::OK);
    // Let the reaper refresh the client gauge once.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for name in [
        "comet_clients{channel=\"chat\"}",
        "comet_polls_waiting{channel=\"chat\"}",
        "comet_messages_sent_total{channel=\"chat\"}",
        "comet_messages_delivered_total{channel=\"chat\"}",
        "comet_poll_hold_seconds_bucket{channel=\"chat\",le=\"0.005\"}",
        "# HELP comet_poll_timeouts_total",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    let sent: f64 = text
        .lines()
        .find(|l| l.starts_with("comet_messages_sent_total{channel=\"chat\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(sent >= 2.0, "ann's join and her message at least: {sent}");
}

#[tokio::test]
async fn the_cookie_is_secure_when_configured_for_tls() {
    let app = start_with(&[("CHAT_COOKIE_SECURE", "true")]).await;
    let s = app.login("ann").await;
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(s.cookie.contains(flag), "cookie lacks {flag}: {}", s.cookie);
    }
    // `__Host-`: the browser keeps it only as Secure, Path=/, no Domain.
    assert!(s.cookie.starts_with("__Host-comet_token="), "{}", s.cookie);
    assert!(!s.cookie.contains("Domain"), "{}", s.cookie);
    let plain = start().await.login("bob").await;
    assert!(!plain.cookie.contains("Secure"), "{}", plain.cookie);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_answers_waiting_polls_at_once() {
    let mut node =
        Node::start_in_process(&[("COMET_POLL_TIMEOUT", "20s"), ("COMET_IDLE_TIMEOUT", "30s")]);
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{}/api/login", node.base))
        .form(&[("username", "ann")])
        .send()
        .await
        .unwrap();
    let token = cookie_token(login.headers()[header::SET_COOKIE].to_str().unwrap());
    // Ann's own join goes out first: the poll below has nothing to say.
    tokio::time::sleep(common::PAST_PRESENCE_WINDOW).await;
    let held = http
        .post(format!("{}/comet/chat", node.base))
        .bearer_auth(&token)
        .body(r#"{"since":null}"#)
        .send();
    let stop = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        node.terminate();
        std::time::Instant::now()
    };
    let (reply, stopped_at) = tokio::join!(held, stop);
    let reply = reply.expect("the held poll got an answer, not a reset");
    // 503 + Retry-After, not `timeout`: a client re-polls at once on a
    // timeout (and would spin on a stopping node); on this it moves on.
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers().contains_key(header::RETRY_AFTER));
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(2),
        "answered {:?} after the stop, not after the 20 s poll timeout",
        stopped_at.elapsed()
    );
    assert!(node.wait_exit(Duration::from_secs(15)), "the server exited");
}
