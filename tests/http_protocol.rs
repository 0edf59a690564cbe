//! The wire protocol over real HTTP: the whole app router on a loopback
//! port, driven by a plain HTTP client the way `curl` users would.

mod common;

use common::http::{chat_texts, start, App, Session};
use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = start().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_with_a_long_random_token() {
    let app = start().await;
    let s = app.login("ann").await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(s.cookie.contains(flag), "cookie lacks {flag}: {}", s.cookie);
    }
    assert_eq!(s.token.len(), 64, "256-bit hex token");
    assert_ne!(s.token, app.login("bob").await.token);
}

#[tokio::test]
async fn duplicate_login_is_refused_with_the_exact_message() {
    let app = start().await;
    app.login("Ann").await;
    let response = app.call_login("ann").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let body = response.text().await.unwrap();
    assert!(
        body.contains("User is already logged into the chat application."),
        "{body}"
    );
}

#[tokio::test]
async fn bad_names_are_refused_with_a_clear_message() {
    let app = start().await;
    for (name, expected) in [
        ("", "enter a name"),
        ("   ", "enter a name"),
        (&"x".repeat(33), "too long"),
        ("<b>", "letters, digits"),
    ] {
        let response = app.call_login(name).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(expected), "{name:?}: {body}");
    }
}

#[tokio::test]
async fn poll_times_out_then_answers_timeout() {
    let app = start().await;
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    let started = Instant::now();
    let (status, reply) = app.poll(&s, Some(&cursor)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({ "status": "timeout" }));
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "held {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn poll_waits_then_receives_a_sent_message() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let cursor = app.cursor(&bob).await;
    let waiting = {
        let (app, token) = (
            App {
                base: app.base.clone(),
                http: app.http.clone(),
            },
            bob.token.clone(),
        );
        tokio::spawn(async move {
            let s = Session {
                token,
                cookie: String::new(),
            };
            app.poll(&s, Some(&cursor)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(app.send(&ann, "hello bob").await.status().is_success());
    let (status, reply) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["status"], "messages");
    assert_eq!(chat_texts(&reply), ["hello bob"]);
    let message = &reply["messages"][0];
    assert_eq!(message["c"]["f"], "ann");
    assert!(message["id"].is_string());
}

#[tokio::test]
async fn cookie_and_bearer_both_identify_the_client() {
    let app = start().await;
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    app.send(&s, "one").await;
    let by_cookie = app
        .http
        .post(app.url("/comet/chat"))
        .header(header::COOKIE, format!("other=1; comet_token={}", s.token))
        .body(json!({ "since": cursor }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    assert_eq!(chat_texts(&by_cookie.json().await.unwrap()), ["one"]);
    let (status, reply) = app.poll(&s, Some(&cursor)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chat_texts(&reply), ["one"]);
}

#[tokio::test]
async fn replies_resume_from_the_last_id_without_duplicates() {
    let app = start().await;
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    for text in ["a", "b", "c"] {
        app.send(&s, text).await;
    }
    let (_, reply) = app.poll(&s, Some(&cursor)).await;
    assert_eq!(
        chat_texts(&reply),
        ["a", "b", "c"],
        "one reply batches everything pending"
    );
    let last = reply["messages"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(&s, "d").await;
    let (_, reply) = app.poll(&s, Some(&last)).await;
    assert_eq!(chat_texts(&reply), ["d"]);
}

#[tokio::test]
async fn unknown_missing_or_malformed_tokens_get_401() {
    let app = start().await;
    let body = || json!({ "since": null }).to_string();
    for token in [None, Some("not-a-token"), Some(&*"0".repeat(64))] {
        let (status, _, reply) = app.poll_raw(token, body()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(reply["error"], "unknown_client");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn malformed_bodies_get_400() {
    let app = start().await;
    let s = app.login("ann").await;
    for body in [
        "not json".to_owned(),
        r#"{"since": 5}"#.to_owned(),
        r#"{"since": null, "extra": 1}"#.to_owned(),
        r#"{"sinse": null}"#.to_owned(),
        "[]".to_owned(),
        r#"{"since": "nonsense"}"#.to_owned(),
        format!(r#"{{"since": "{}"}}"#, "x".repeat(1000)),
    ] {
        let (status, headers, reply) = app.poll_raw(Some(&s.token), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply["error"], "bad_request", "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
    // And the client is unharmed.
    app.send(&s, "still here").await;
    let (status, _) = app.poll(&s, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_body_gets_400() {
    let app = start().await;
    let s = app.login("ann").await;
    let (status, _, reply) = app.poll_raw(Some(&s.token), " ".repeat(10_000)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("larger than 256 bytes"),
        "{reply}"
    );
}

#[tokio::test]
async fn expired_cursor_gets_410() {
    let app = start().await;
    let s = app.login("ann").await;
    let old = app.cursor(&s).await;
    for i in 0..8 {
        app.send(&s, &i.to_string()).await;
    }
    let (status, reply) = app.poll(&s, Some(&old)).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(reply["error"], "cursor_expired");
}

#[tokio::test]
async fn too_many_concurrent_polls_get_429() {
    let app = start().await;
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    let held: Vec<_> = (0..2)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/comet/chat"))
                .bearer_auth(&s.token)
                .body(json!({ "since": cursor }).to_string());
            tokio::spawn(async move {
                // Read the whole body: the poll holds its slot until answered.
                let response = request.send().await.unwrap();
                let status = response.status();
                response.bytes().await.unwrap();
                status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, reply) = app.poll(&s, Some(&cursor)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply["error"], "too_many_polls");
    for poll in held {
        assert_eq!(poll.await.unwrap(), StatusCode::OK);
    }
}

#[tokio::test]
async fn unknown_channel_gets_404() {
    let app = start().await;
    let s = app.login("ann").await;
    let response = app
        .http
        .post(app.url("/comet/nope"))
        .bearer_auth(&s.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unknown_channel"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = start().await;
    let s = app.login("ann").await;
    let response = app.server_fn(&s, "logout", &[]).await;
    assert!(response.status().is_success());
    let cleared = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, reply) = app.poll(&s, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply["error"], "unknown_client");
    // The name is free again.
    app.login("ann").await;
}

#[tokio::test]
async fn bad_messages_are_refused_and_nothing_is_sent() {
    let app = start().await;
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    for (text, expected) in [
        ("", "Type a message"),
        ("  \n ", "Type a message"),
        (&"x".repeat(2001), "too long"),
        ("bell\u{7}", "control characters"),
    ] {
        let response = app.send(&s, text).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response.text().await.unwrap();
        assert!(body.contains(expected), "{text:?}: {body}");
    }
    app.send(&s, "fine").await;
    let (_, reply) = app.poll(&s, Some(&cursor)).await;
    assert_eq!(chat_texts(&reply), ["fine"]);
}

#[tokio::test]
async fn sending_without_a_session_is_refused() {
    let app = start().await;
    let nobody = Session {
        token: "0".repeat(64),
        cookie: String::new(),
    };
    let response = app.send(&nobody, "hi").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("session has ended"));
}

#[tokio::test]
async fn private_message_reaches_only_its_target_over_http() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let cid = app.login("cid").await;
    let users: Value = app
        .server_fn(&ann, "online_users", &[])
        .await
        .json()
        .await
        .unwrap();
    let bob_public = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "bob")
        .expect("bob is online")["public"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob_cursor, cid_cursor) = (app.cursor(&bob).await, app.cursor(&cid).await);
    let response = app
        .server_fn(
            &ann,
            "send_private_message",
            &[("to", &bob_public), ("text", "psst")],
        )
        .await;
    assert!(response.status().is_success());
    app.send(&ann, "public").await;
    let (_, for_bob) = app.poll(&bob, Some(&bob_cursor)).await;
    let (_, for_cid) = app.poll(&cid, Some(&cid_cursor)).await;
    let private: Vec<_> = for_bob["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["n"] == "PrivateMessage")
        .collect();
    assert_eq!(private.len(), 1);
    assert_eq!(private[0]["c"]["m"], "psst");
    assert_eq!(chat_texts(&for_cid), ["public"]);
    assert!(!for_cid.to_string().contains("psst"));
}

#[tokio::test]
async fn pages_never_contain_the_private_token() {
    let app = start().await;
    let s = app.login("ann").await;
    app.send(&s, "hello").await;
    let page = app
        .http
        .get(app.url("/chat"))
        .header(header::COOKIE, format!("comet_token={}", s.token))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("hello"), "the history is rendered");
    assert!(
        !html.contains(&s.token),
        "the private token leaked into the page"
    );
}

#[tokio::test]
async fn chat_page_without_a_session_redirects_to_login() {
    let app = start().await;
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(app.url("/chat"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[header::LOCATION], "/");
}

#[tokio::test]
async fn early_ack_poll_answers_headers_before_the_body() {
    let app = start().await;
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    let started = Instant::now();
    let response = app
        .http
        .post(app.url("/comet/chat"))
        .bearer_auth(&s.token)
        .header("Comet-Ack", "early")
        .body(json!({ "since": cursor }).to_string())
        .send()
        .await
        .unwrap();
    let headers_after = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let body_after = started.elapsed();
    assert_eq!(body, json!({ "status": "timeout" }));
    assert!(
        headers_after < Duration::from_millis(400) && body_after >= Duration::from_millis(450),
        "headers after {headers_after:?}, body after {body_after:?}"
    );
}

#[tokio::test]
async fn server_functions_accept_a_bearer_token() {
    let app = start().await;
    let s = app.login("ann").await;
    let response = app
        .http
        .post(app.url("/api/send_message"))
        .bearer_auth(&s.token)
        .form(&[("text", "from curl")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let history: Value = app
        .server_fn(&s, "recent_messages", &[])
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["c"]["m"].as_str())
        .collect();
    assert_eq!(texts, ["from curl"]);
}

#[tokio::test]
async fn plain_poll_answers_headers_and_body_together() {
    let app = start().await;
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    let started = Instant::now();
    let response = app
        .http
        .post(app.url("/comet/chat"))
        .bearer_auth(&s.token)
        .body(json!({ "since": cursor }).to_string())
        .send()
        .await
        .unwrap();
    let headers_after = started.elapsed();
    assert!(
        headers_after >= Duration::from_millis(450),
        "headers after {headers_after:?}"
    );
    assert!(
        response.headers().get(header::CONTENT_LENGTH).is_some(),
        "one complete reply"
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "timeout" })
    );
}
