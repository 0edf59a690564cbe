//! The site's static files as a browser gets them through the whole app
//! (router, layers, the HTTP front): the precompressed variant it accepts,
//! with `Vary`, whole with `Content-Length`, cached for good only when the
//! name is content-hashed (an hour otherwise, then revalidated with `304`),
//! and nothing outside the site root. `src/assets.rs` explains why.

mod common;

use comet::serve;
use comet_chat::assets::{FOR_AN_HOUR, IMMUTABLE};
use comet_chat::config::Config;
use comet_chat::server;
use common::http::serve_on_loopback;
use leptos::config::LeptosOptions;
use reqwest::{header, Client, Response, StatusCode};
use std::path::PathBuf;

const WASM: &str = "/pkg/comet-chat.W7kB3sVzq0a8x_Yd-1Qm2A.wasm";
const PLAIN: &[u8] = b"plain wasm bytes";
const BROTLI: &[u8] = b"brotli";
const GZIP: &[u8] = b"gzip bytes";

/// A site root in a fresh temporary folder: a hashed wasm with both
/// precompressed variants, a favicon with none, and a file outside it.
fn site() -> PathBuf {
    let base = std::env::temp_dir().join(format!(
        "comet-chat-static-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let root = base.join("site");
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    let wasm = root.join(WASM.trim_start_matches('/'));
    std::fs::write(&wasm, PLAIN).unwrap();
    std::fs::write(wasm.with_extension("wasm.br"), BROTLI).unwrap();
    std::fs::write(wasm.with_extension("wasm.gz"), GZIP).unwrap();
    std::fs::write(root.join("favicon.svg"), "<svg/>").unwrap();
    std::fs::write(base.join("secret.txt"), "not for you").unwrap();
    root
}

/// The app serving `site()` on a loopback port; its base URL.
async fn app() -> String {
    let config = Config::from_sources(None, "test", |_| None).expect("valid test config");
    let root = site();
    let options = LeptosOptions::builder()
        .output_name("comet-chat")
        .site_root(root.to_str().unwrap())
        .build();
    let provider = server::provider(&config)
        .await
        .expect("in-process provider");
    let (app, _comet) = server::build(&config, provider, options);
    format!(
        "http://{}",
        serve_on_loopback(app, serve::Limits::default())
    )
}

async fn get(base: &str, path: &str, accept_encoding: Option<&str>) -> Response {
    // reqwest here decompresses nothing: the bytes are the ones on the wire.
    let mut request = Client::new().get(format!("{base}{path}"));
    if let Some(value) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, value);
    }
    request.send().await.expect("an answer")
}

fn header(response: &Response, name: header::HeaderName) -> Option<&str> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header"))
}

#[tokio::test]
async fn sends_the_best_precompressed_variant_the_browser_accepts() {
    let base = app().await;
    for (accept, coding, body) in [
        (Some("gzip, deflate, br, zstd"), Some("br"), BROTLI),
        (Some("gzip, br;q=0"), Some("gzip"), GZIP),
        (Some("identity"), None, PLAIN),
        (None, None, PLAIN),
    ] {
        let response = get(&base, WASM, accept).await;
        assert_eq!(response.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(
            header(&response, header::CONTENT_ENCODING),
            coding,
            "{accept:?}"
        );
        assert_eq!(header(&response, header::VARY), Some("Accept-Encoding"));
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/wasm")
        );
        assert_eq!(&response.bytes().await.unwrap()[..], body, "{accept:?}");
    }
}

#[tokio::test]
async fn sends_files_whole_with_their_length() {
    let base = app().await;
    let response = get(&base, WASM, Some("br")).await;
    assert_eq!(
        header(&response, header::CONTENT_LENGTH),
        Some(BROTLI.len().to_string().as_str())
    );
    assert_eq!(header(&response, header::TRANSFER_ENCODING), None);
}

#[tokio::test]
async fn caches_hashed_files_for_good_and_the_rest_for_an_hour() {
    let base = app().await;
    let wasm = get(&base, WASM, None).await;
    assert_eq!(header(&wasm, header::CACHE_CONTROL), Some(IMMUTABLE));

    let favicon = get(&base, "/favicon.svg", Some("br")).await;
    assert_eq!(favicon.status(), StatusCode::OK);
    assert_eq!(header(&favicon, header::CACHE_CONTROL), Some(FOR_AN_HOUR));
    // No precompressed variant: the plain file, and nothing to vary on.
    assert_eq!(header(&favicon, header::CONTENT_ENCODING), None);
    assert_eq!(header(&favicon, header::VARY), None);
    assert_eq!(
        header(&favicon, header::CONTENT_TYPE),
        Some("image/svg+xml")
    );

    let etag = header(&favicon, header::ETAG).expect("an ETag").to_owned();
    let again = Client::new()
        .get(format!("{base}/favicon.svg"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, header::ETAG), Some(etag.as_str()));
}

#[tokio::test]
async fn a_head_request_gets_the_length_and_no_body() {
    let base = app().await;
    let response = Client::new()
        .head(format!("{base}{WASM}"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, header::CONTENT_ENCODING), Some("gzip"));
    assert_eq!(
        header(&response, header::CONTENT_LENGTH),
        Some(GZIP.len().to_string().as_str())
    );
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn serves_nothing_outside_the_site_root() {
    let base = app().await;
    for path in ["/../secret.txt", "/pkg/%2e%2e/%2e%2e/secret.txt", "/pkg/"] {
        let response = get(&base, path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            !response.text().await.unwrap().contains("not for you"),
            "{path}"
        );
    }
}
