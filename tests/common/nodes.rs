//! A chat user of a node process, over HTTP as a browser's scripts would
//! be: shared by the tests that run several nodes or break one.

use super::http::cookie_token;
use super::processes::Node;
use reqwest::{header, Client, RequestBuilder, Response};
use serde_json::{json, Value};

/// A logged-in user: the private token, and the cursor to poll from.
#[derive(Clone)]
pub struct User {
    pub token: String,
    pub cursor: String,
}

/// A login of `name` on `node`: the answer, whatever it is.
pub async fn login(http: &Client, node: &Node, name: &str) -> Response {
    http.post(format!("{}/api/login", node.base))
        .form(&[("username", name)])
        .send()
        .await
        .unwrap()
}

/// `name` logged in on `node`, with the cursor its chat page starts from.
pub async fn logged_in(http: &Client, node: &Node, name: &str) -> User {
    let response = login(http, node, name).await;
    assert!(
        response.status().is_success(),
        "login {name}: {}",
        response.status()
    );
    let token = cookie_token(response.headers()[header::SET_COOKIE].to_str().unwrap());
    // Start after our own join, like a page that renders history.
    tokio::time::sleep(super::PAST_PRESENCE_WINDOW).await;
    let history: Value = http
        .post(format!("{}/api/recent_messages", node.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    User {
        token,
        cursor: history["cursor"].as_str().unwrap().to_owned(),
    }
}

/// `user` sending `text` through the node at `base`, not yet sent (the
/// caller decides what a lost answer means).
pub fn send(http: &Client, base: &str, user: &User, text: &str) -> RequestBuilder {
    http.post(format!("{base}/api/send_message"))
        .bearer_auth(&user.token)
        .form(&[("text", text)])
}

/// A poll by `token` from `cursor` on the node at `base`, not yet sent.
pub fn poll(http: &Client, base: &str, token: &str, cursor: &str) -> RequestBuilder {
    http.post(format!("{base}/comet/chat"))
        .bearer_auth(token)
        .body(json!({ "since": cursor }).to_string())
}

/// One poll on `node` from the user's cursor: the chat texts it brought
/// (advancing the cursor), or the error status.
pub async fn poll_texts(
    http: &Client,
    node: &Node,
    user: &mut User,
) -> Result<Vec<String>, reqwest::StatusCode> {
    use reqwest::StatusCode;
    let response = poll(http, &node.base, &user.token, &user.cursor)
        .send()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    let reply: Value = response.json().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let messages = reply["messages"].as_array().cloned().unwrap_or_default();
    if let Some(last) = messages.last() {
        user.cursor = last["id"].as_str().unwrap().to_owned();
    }
    Ok(messages
        .iter()
        .filter(|m| m["n"] == "ChatMessage")
        .map(|m| m["c"]["m"].as_str().unwrap().to_owned())
        .collect())
}
