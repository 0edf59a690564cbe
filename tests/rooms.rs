//! Rooms over HTTP: opening, joining and leaving them through the server
//! functions, and one `POST /comet` following several of them, each
//! room's messages reaching its members and nobody else.

mod common;

use common::http::{start, App, Session};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn call(app: &App, s: &Session, endpoint: &str, form: &[(&str, &str)]) -> StatusCode {
    app.server_fn(s, endpoint, form).await.status()
}

/// The rooms `s` sees: (name, joined), the default room first.
async fn rooms(app: &App, s: &Session) -> Vec<(String, bool)> {
    let list: Value = app.server_fn(s, "rooms", &[]).await.json().await.unwrap();
    list.as_array()
        .expect("rooms answers a list")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["joined"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// `s` says `text` in `room`.
async fn say(app: &App, s: &Session, room: &str, text: &str) -> StatusCode {
    app.server_fn(s, "send_message", &[("text", text), ("room", room)])
        .await
        .status()
}

/// Who is in `room`, as `s` is shown it: (name, public token), by name.
async fn here(app: &App, s: &Session, room: &str) -> Vec<(String, String)> {
    let list: Value = app
        .server_fn(s, "online_users", &[("room", room)])
        .await
        .json()
        .await
        .unwrap();
    let mut here: Vec<(String, String)> = list
        .as_array()
        .expect("online_users answers a list")
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["public"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    here.sort();
    here
}

fn names(here: &[(String, String)]) -> Vec<&str> {
    here.iter().map(|(name, _)| name.as_str()).collect()
}

async fn room_cursor(app: &App, s: &Session, room: &str) -> String {
    tokio::time::sleep(common::PAST_PRESENCE_WINDOW).await;
    let history: Value = app
        .server_fn(s, "recent_messages", &[("room", room)])
        .await
        .json()
        .await
        .unwrap();
    history["cursor"].as_str().expect("a cursor").to_owned()
}

/// One poll of several rooms: the reply's chat texts per room.
async fn poll_rooms(app: &App, s: &Session, cursors: Value) -> Value {
    let response = reqwest::Client::new()
        .post(app.url("/comet"))
        .bearer_auth(&s.token)
        .body(json!({ "channels": cursors }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn texts(reply: &Value, room: &str) -> Vec<String> {
    common::http::texts_in(&reply["channels"][room])
}

#[tokio::test]
async fn a_room_opened_by_name_is_listed_and_joined_by_its_opener() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let status = call(&app, &ann, "create_room", &[("name", "  Rust Lang ")]).await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    assert_eq!(
        rooms(&app, &ann).await,
        [("chat".to_owned(), true), ("rust-lang".to_owned(), true)]
    );
    assert_eq!(
        rooms(&app, &bob).await,
        [("chat".to_owned(), true), ("rust-lang".to_owned(), false)]
    );
}

#[tokio::test]
async fn a_message_in_one_room_reaches_its_members_and_no_one_else() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let cid = app.login("cid").await;
    call(&app, &ann, "create_room", &[("name", "rust")]).await;
    assert_eq!(
        call(&app, &bob, "join_room", &[("room", "rust")]).await,
        StatusCode::OK
    );
    let bob_rust = room_cursor(&app, &bob, "rust").await;
    let bob_chat = room_cursor(&app, &bob, "chat").await;
    let cid_chat = room_cursor(&app, &cid, "chat").await;

    assert_eq!(say(&app, &ann, "rust", "borrowck").await, StatusCode::OK);

    let reply = poll_rooms(&app, &bob, json!({ "chat": bob_chat, "rust": bob_rust })).await;
    assert_eq!(texts(&reply, "rust"), ["borrowck"]);
    assert!(texts(&reply, "chat").is_empty());
    // The default room carries none of it.
    app.send(&ann, "hello all").await;
    let (_, reply) = app.poll(&cid, Some(&cid_chat)).await;
    assert_eq!(common::http::chat_texts(&reply), ["hello all"]);
    // Not a member: cannot read, write or poll the room.
    for (endpoint, form) in [
        ("recent_messages", vec![("room", "rust")]),
        ("online_users", vec![("room", "rust")]),
        ("send_message", vec![("text", "hi"), ("room", "rust")]),
    ] {
        assert_eq!(
            call(&app, &cid, endpoint, &form).await,
            StatusCode::FORBIDDEN,
            "{endpoint}"
        );
    }
    let reply = poll_rooms(&app, &cid, json!({ "chat": null, "rust": null })).await;
    assert_eq!(
        reply["errors"]["rust"]["error"], "unknown_client",
        "{reply}"
    );
}

#[tokio::test]
async fn joining_a_room_shows_its_history_and_who_is_there() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    call(&app, &ann, "create_room", &[("name", "ops")]).await;
    say(&app, &ann, "ops", "before bob").await;
    call(&app, &bob, "join_room", &[("room", "ops")]).await;
    // Joining twice is fine.
    assert_eq!(
        call(&app, &bob, "join_room", &[("room", "ops")]).await,
        StatusCode::OK
    );
    let history: Value = app
        .server_fn(&bob, "recent_messages", &[("room", "ops")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(common::http::chat_texts(&history), ["before bob"]);
    assert_eq!(history["me"]["name"], "bob");
    assert_eq!(names(&here(&app, &bob, "ops").await), ["ann", "bob"]);
}

#[tokio::test]
async fn a_private_message_in_a_room_reaches_only_its_target() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let cid = app.login("cid").await;
    call(&app, &ann, "create_room", &[("name", "ops")]).await;
    call(&app, &bob, "join_room", &[("room", "ops")]).await;
    call(&app, &cid, "join_room", &[("room", "ops")]).await;
    let in_ops = here(&app, &ann, "ops").await;
    let (_, bob_public) = in_ops.iter().find(|(name, _)| name == "bob").unwrap();
    let (bob_at, cid_at) = (
        room_cursor(&app, &bob, "ops").await,
        room_cursor(&app, &cid, "ops").await,
    );
    let sent = app
        .server_fn(
            &ann,
            "send_private_message",
            &[("to", bob_public), ("text", "psst"), ("room", "ops")],
        )
        .await;
    assert_eq!(sent.status(), StatusCode::OK);
    say(&app, &ann, "ops", "all").await;
    let reply = poll_rooms(&app, &bob, json!({ "ops": bob_at })).await;
    let private: Vec<&str> = reply["channels"]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["n"] == "PrivateMessage")
        .map(|m| m["c"]["m"].as_str().unwrap())
        .collect();
    assert_eq!(private, ["psst"]);
    let reply = poll_rooms(&app, &cid, json!({ "ops": cid_at })).await;
    assert_eq!(texts(&reply, "ops"), ["all"], "{reply}");
    assert!(!reply.to_string().contains("psst"));
}

#[tokio::test]
async fn the_last_member_leaving_closes_the_room() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    call(&app, &ann, "create_room", &[("name", "tmp")]).await;
    call(&app, &bob, "join_room", &[("room", "tmp")]).await;
    assert_eq!(
        call(&app, &ann, "leave_room", &[("room", "tmp")]).await,
        StatusCode::OK
    );
    assert_eq!(
        rooms(&app, &ann).await,
        [("chat".to_owned(), true), ("tmp".to_owned(), false)]
    );
    call(&app, &bob, "leave_room", &[("room", "tmp")]).await;
    assert_eq!(rooms(&app, &ann).await, [("chat".to_owned(), true)]);
    assert_eq!(
        call(&app, &ann, "join_room", &[("room", "tmp")]).await,
        StatusCode::NOT_FOUND
    );
    // The default room is left by logging out only.
    assert_eq!(
        call(&app, &ann, "leave_room", &[("room", "chat")]).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn logging_out_leaves_every_room() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    call(&app, &ann, "create_room", &[("name", "ops")]).await;
    call(&app, &bob, "join_room", &[("room", "ops")]).await;
    call(&app, &ann, "logout", &[]).await;
    assert_eq!(names(&here(&app, &bob, "ops").await), ["bob"]);
}

#[tokio::test]
async fn bad_room_names_are_refused_and_unknown_rooms_are_not_found() {
    let app = start().await;
    let ann = app.login("ann").await;
    let long = "x".repeat(33);
    for bad in ["", "a/b", "é", "{x}", long.as_str()] {
        let response = app.server_fn(&ann, "create_room", &[("name", bad)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(
            response.text().await.unwrap().contains("room name"),
            "{bad:?}"
        );
    }
    assert_eq!(
        call(&app, &ann, "join_room", &[("room", "nowhere")]).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, &ann, "recent_messages", &[("room", "Bad/Name")]).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(rooms(&app, &ann).await, [("chat".to_owned(), true)]);
}

#[tokio::test]
async fn opening_and_closing_a_room_is_announced_in_the_chat_room() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let mut cursor = app.cursor(&bob).await;
    call(&app, &ann, "create_room", &[("name", "news")]).await;
    // Joining an open room announces nothing.
    call(&app, &bob, "create_room", &[("name", "news")]).await;
    call(&app, &ann, "leave_room", &[("room", "news")]).await;
    call(&app, &bob, "leave_room", &[("room", "news")]).await;
    let mut said = Vec::new();
    while said.len() < 2 {
        let (status, reply) = app.poll(&bob, Some(&cursor)).await;
        assert_eq!(status, StatusCode::OK);
        let Some(messages) = reply["messages"].as_array() else {
            panic!("no announcement: {reply}");
        };
        for m in messages {
            cursor = m["id"].as_str().unwrap().to_owned();
            if m["n"] == "Room" {
                said.push(m["c"].clone());
            }
        }
    }
    assert_eq!(
        said,
        [
            json!({"name": "news", "open": true}),
            json!({"name": "news", "open": false})
        ]
    );
}

/// The page at `/chat/{room}`, as `s` gets it (redirects not followed).
async fn page(app: &App, s: &Session, path: &str) -> (StatusCode, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(path))
        .header(reqwest::header::COOKIE, format!("comet_token={}", s.token))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_rooms_address_opens_it_and_joins_it() {
    let app = start().await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    call(&app, &ann, "create_room", &[("name", "rust")]).await;
    say(&app, &ann, "rust", "ownership").await;
    let (status, html) = page(&app, &bob, "/chat/rust").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("ownership"), "the room's history is rendered");
    assert!(html.contains(r#"data-testid="room-title""#));
    assert_eq!(
        rooms(&app, &bob).await,
        [("chat".to_owned(), true), ("rust".to_owned(), true)]
    );
    let (status, html) = page(&app, &bob, "/chat/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("There is no room by that name."), "{html}");
    assert_eq!(rooms(&app, &bob).await.len(), 2);
}
