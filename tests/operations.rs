//! What an operator and a browser see of a node besides the chat: the
//! health check, where `/metrics` is served, the security headers, and
//! how a bad setting stops the server (by name, without a panic, without
//! echoing a secret).

mod common;

use comet::{MemoryProvider, Provider, Retention};
use comet_chat::config::Config;
use common::flaky::Flaky;
use common::http::{serve_app, start_with};
use common::processes::{die_with_parent, free_port, wait_for_port, Node};
use reqwest::{header, StatusCode};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The app on `provider` with the default settings, on a free port.
fn serve_on(provider: Arc<dyn Provider>) -> String {
    let config = Config::from_sources(None, "test", |_| None).expect("defaults are valid");
    format!("http://{}", serve_app(&config, provider))
}

#[tokio::test]
async fn healthz_says_unavailable_without_the_providers_error() {
    // Refusing with an error that names an internal address.
    let provider = Flaky::new();
    provider.refuse();
    let base = serve_on(provider);
    let response = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.text().await.unwrap();
    assert_eq!(body, "unavailable");
    assert!(!body.contains("10.0.0.7"), "{body}");
}

#[tokio::test]
async fn healthz_says_ok_when_the_provider_answers() {
    let base = serve_on(Arc::new(MemoryProvider::new(Retention::default())));
    let response = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn metrics_are_served_on_the_public_port_by_default() {
    let app = start_with(&[]).await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
}

#[tokio::test]
async fn metrics_turned_off_are_not_served() {
    let app = start_with(&[("COMET_METRICS", "off")]).await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[test]
fn metrics_on_their_own_address_are_served_there_and_not_on_the_public_port() {
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let node = Node::start_in_process(&[("COMET_METRICS", &metrics_addr)]);
    wait_for_port(metrics_port, "the metrics listener");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let public = reqwest::get(format!("{}/metrics", node.base))
            .await
            .unwrap();
        assert_eq!(public.status(), StatusCode::NOT_FOUND);
        let health = reqwest::get(format!("{}/healthz", node.base))
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let private = reqwest::get(format!("http://{metrics_addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(private.status(), StatusCode::OK);
        let kind = private.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        // The channel's own metrics, not an empty recorder's.
        let text = private.text().await.unwrap();
        assert!(
            text.contains("comet_polls_waiting{channel=\"chat\"}"),
            "{text}"
        );
    });
}

/// The directives the policy must hold, whatever else it says.
const REQUIRED_DIRECTIVES: &[&str] = &[
    "default-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "'wasm-unsafe-eval'",
];

fn assert_common_headers(headers: &header::HeaderMap, what: &str) {
    let get = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "same-origin", "{what}");
    let policy = get("content-security-policy");
    for directive in REQUIRED_DIRECTIVES {
        assert!(
            policy.contains(directive),
            "{what}: {directive} missing from {policy}"
        );
    }
    let scripts = policy
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src "))
        .unwrap_or_else(|| panic!("{what}: no script-src in {policy}"));
    assert!(!scripts.contains("unsafe-inline"), "{what}: {scripts}");
}

/// The nonce a page's policy allows (`'nonce-…'` in `script-src`).
fn policy_nonce(headers: &header::HeaderMap) -> String {
    let policy = headers["content-security-policy"].to_str().unwrap();
    let start = policy.find("'nonce-").expect("a page's policy has a nonce") + "'nonce-".len();
    let end = start + policy[start..].find('\'').unwrap();
    policy[start..end].to_owned()
}

#[tokio::test]
async fn every_inline_script_of_a_page_carries_the_policys_fresh_nonce() {
    let app = start_with(&[]).await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let response = app.http.get(app.url("/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_common_headers(&headers, "the login page");
        let nonce = policy_nonce(&headers);
        assert!(
            nonce.len() >= 16,
            "nonce {nonce:?} is too short to be unguessable"
        );
        let html = response.text().await.unwrap();
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "the page has its hydration script");
        for script in scripts {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains(&format!("nonce=\"{nonce}\"")), "<script{tag}>");
        }
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "each page gets its own nonce");
}

#[tokio::test]
async fn the_chat_page_and_not_found_pages_carry_a_nonce_policy() {
    let app = start_with(&[]).await;
    let session = app.login("ada").await;
    let chat = app
        .http
        .get(app.url("/chat"))
        .header(header::COOKIE, format!("comet_token={}", session.token))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), StatusCode::OK);
    assert_common_headers(chat.headers(), "the chat page");
    let nonce = policy_nonce(chat.headers());
    let html = chat.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")));

    let missing = app.http.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_common_headers(missing.headers(), "a missing page");
}

#[tokio::test]
async fn responses_that_are_not_pages_carry_the_headers_without_a_nonce() {
    let app = start_with(&[]).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_common_headers(health.headers(), "/healthz");
    let refused = app
        .http
        .post(app.url("/api/login"))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[("username", "mallory")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_common_headers(refused.headers(), "a refused cross-origin call");
    let policy = refused.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(!policy.contains("nonce-"), "{policy}");
}

/// Runs the server binary with `env`, expecting it to refuse to start:
/// its exit status and output. A server that starts anyway is killed
/// after a bound and fails the test (it would otherwise run forever).
fn refused_start(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_comet-chat"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LEPTOS_OUTPUT_NAME", "comet-chat")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove("COMET_REDIS_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut command);
    let mut child = command.spawn().expect("the comet-chat binary runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with {env:?} instead of refusing it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("the child's output");
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.code(), text)
}

#[test]
fn a_huge_duration_stops_the_server_naming_its_variable_without_a_panic() {
    let (code, text) = refused_start(&[("COMET_POLL_TIMEOUT", "99999999999999999999h")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("COMET_POLL_TIMEOUT"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_bad_file_value_stops_the_server_naming_its_key() {
    let dir = std::env::temp_dir().join(format!("comet-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[comet]\nmax_polls = 0\n").unwrap();
    let (code, text) = refused_start(&[("COMET_CONFIG", path.to_str().unwrap())]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("comet.max_polls in "), "{text}");
}

#[test]
fn a_bad_redis_url_stops_the_server_without_echoing_its_password() {
    let (code, text) = refused_start(&[("COMET_REDIS_URL", "http://:hunter2@cache:6379")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("COMET_REDIS_URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
