//! The app on a loopback port, driven by a plain HTTP client the way
//! `curl` users would: shared by the protocol and bad-input tests.

use comet::serve::{self, Limits};
use comet::Provider;
use comet_chat::config::Config;
use comet_chat::server;
use leptos::config::LeptosOptions;
use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub struct App {
    pub base: String,
    pub http: Client,
}

/// A server with short timeouts and a small retention, on a free port.
pub async fn start() -> App {
    start_with(&[]).await
}

/// As [`start`], with these settings (environment variable names) too.
pub async fn start_with(overrides: &[(&str, &str)]) -> App {
    let config = test_config(overrides);
    let provider = server::provider(&config)
        .await
        .expect("in-process provider");
    start_on(&config, provider).await
}

/// The app with `config` on `provider`, on a free loopback port.
pub async fn start_on(config: &Config, provider: Arc<dyn Provider>) -> App {
    App::at(serve_app(config, provider))
}

/// The tests' settings: short timeouts, a small retention, few polls per
/// client and small bodies, with `overrides` (environment variable names)
/// on top.
pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let env = move |key: &str| {
        if let Some((_, v)) = overrides.iter().find(|(k, _)| k == key) {
            return Some(v.clone());
        }
        match key {
            "COMET_POLL_TIMEOUT" => Some("500ms"),
            "COMET_IDLE_TIMEOUT" => Some("3s"),
            "COMET_RETENTION_MESSAGES" => Some("5"),
            "COMET_MAX_POLLS_PER_CLIENT" => Some("2"),
            "COMET_MAX_BODY_BYTES" => Some("256"),
            "COMET_PRESENCE_WINDOW" => Some(super::PRESENCE_WINDOW),
            _ => None,
        }
        .map(str::to_owned)
    };
    Config::from_sources(None, "test", env).expect("valid test config")
}

/// The chat app with `config` on `provider`, served as `main.rs` serves
/// it (our HTTP/1.1 loop in front of the router) for the rest of the test.
pub fn serve_app(config: &Config, provider: Arc<dyn Provider>) -> SocketAddr {
    let options = LeptosOptions::builder().output_name("comet-chat").build();
    let (routes, _comet) = server::build(config, provider, options);
    serve_on_loopback(routes, config.http.clone())
}

/// `routes` served with `limits` on a free loopback port for the rest of
/// the test.
pub fn serve_on_loopback(
    routes: impl Into<serve::Routes> + Send + 'static,
    limits: Limits,
) -> SocketAddr {
    serve_on_loopback_until(routes, limits, std::future::pending()).0
}

/// `routes` served with `limits` on a free loopback port until `stop`
/// resolves; its address, and the task that ends once it has stopped.
pub fn serve_on_loopback_until(
    routes: impl Into<serve::Routes> + Send + 'static,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = serve::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    (
        addr,
        tokio::spawn(serve::serve(listener, routes, limits, stop)),
    )
}

/// A logged-in client: its private token as the cookie carried it.
pub struct Session {
    pub token: String,
    pub cookie: String,
}

impl App {
    /// A client of the app served at `addr`.
    pub fn at(addr: SocketAddr) -> App {
        App {
            base: format!("http://{addr}"),
            http: Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, name: &str) -> Session {
        let response = self.call_login(name).await;
        assert!(
            response.status().is_success(),
            "login {name}: {}",
            response.status()
        );
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .expect("login sets the token cookie")
            .to_str()
            .unwrap()
            .to_owned();
        let token = cookie_token(&cookie);
        Session { token, cookie }
    }

    pub async fn call_login(&self, name: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/login"))
            .form(&[("username", name)])
            .send()
            .await
            .unwrap()
    }

    pub async fn server_fn(
        &self,
        s: &Session,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/{endpoint}")))
            .header(header::COOKIE, format!("comet_token={}", s.token))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn send(&self, s: &Session, text: &str) -> reqwest::Response {
        self.server_fn(s, "send_message", &[("text", text)]).await
    }

    /// The names of who is online, as `s` is shown them (sorted by name).
    pub async fn online_names(&self, s: &Session) -> Vec<String> {
        let online: Value = self
            .server_fn(s, "online_users", &[])
            .await
            .json()
            .await
            .unwrap();
        online
            .as_array()
            .expect("online_users answers a list")
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The cursor to poll from, as the chat page gets it.
    /// Where to poll from to get what comes after this client's own join
    /// (which goes out at the end of its presence window).
    pub async fn cursor(&self, s: &Session) -> String {
        tokio::time::sleep(super::PAST_PRESENCE_WINDOW).await;
        let history: Value = self
            .server_fn(s, "recent_messages", &[])
            .await
            .json()
            .await
            .unwrap();
        history["cursor"]
            .as_str()
            .expect("history has a cursor")
            .to_owned()
    }

    pub async fn poll_raw(
        &self,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.post(self.url("/comet/chat")).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let json = response.json().await.unwrap_or(Value::Null);
        (status, headers, json)
    }

    pub async fn poll(&self, s: &Session, since: Option<&str>) -> (StatusCode, Value) {
        let (status, _, json) = self
            .poll_raw(Some(&s.token), json!({ "since": since }).to_string())
            .await;
        (status, json)
    }
}

/// The private token a login's `Set-Cookie` carries (`comet_token`, or
/// `__Host-comet_token` when the cookie is secure).
pub fn cookie_token(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .map(|pair| pair.strip_prefix("__Host-").unwrap_or(pair))
        .and_then(|pair| pair.strip_prefix("comet_token="))
        .expect("comet_token cookie")
        .to_owned()
}

pub fn chat_texts(reply: &Value) -> Vec<String> {
    texts_in(&reply["messages"])
}

/// The texts of the chat messages in a list of messages (a poll reply's,
/// a history's, one channel's of a poll of several).
pub fn texts_in(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|list| {
            list.iter()
                .filter(|m| m["n"] == "ChatMessage")
                .map(|m| m["c"]["m"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
