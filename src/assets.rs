//! The site's static files (`pkg/`: the app's `.wasm`, `.js` and `.css`;
//! `public/`: the favicon), served so that a phone on a slow link loads
//! the page fast and a second visit loads nothing again:
//!
//! - **Compressed ahead of time.** A release build with `--precompress`
//!   (cargo-leptos) writes `name.br` and `name.gz` beside every file; the
//!   best one the browser accepts (`Accept-Encoding`: brotli, then gzip) is
//!   sent with `Content-Encoding`, else the plain file. Every answer for a
//!   file that has such variants says `Vary: Accept-Encoding`, so a shared
//!   cache never hands brotli to a client that did not ask for it.
//! - **Sent whole, with `Content-Length`.** The file is read into memory
//!   and sent as one body of known length: the HTTP front (`serve/`) sends
//!   a body of unknown length chunked, and a browser shows no progress and
//!   a proxy cannot tell a cut-off file from a whole one. The largest file
//!   is the wasm, under a megabyte.
//! - **Cached for good when the name says what is in it.** With
//!   `hash-files` cargo-leptos renames `pkg/` files to `stem.<hash>.ext`
//!   (an MD5 in 22 characters of unpadded base64url), and the page links
//!   those names (Leptos reads them from `hash.txt` beside the server).
//!   A new build has new names, so a hashed file may be kept a year
//!   without asking again (`immutable`). Any other file (the favicon; a
//!   build without hashes) may be kept an hour: a repeat visit asks for
//!   nothing, and a changed favicon shows within the hour. After that the
//!   browser revalidates it with its `ETag` (a `304`).
//!
//! Anything that is not a file here (a page route that does not exist, a
//! path with `..` or `%`) goes on to Leptos's handler, which renders the
//! "Page not found" page. Ranges are not served: nobody asks this site for
//! part of a file.

use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use leptos::config::LeptosOptions;
use leptos::IntoView;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::UNIX_EPOCH;

/// A hashed file: the same name is the same bytes, for as long as anyone
/// keeps it.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Any other file: its name stays when its bytes change, so not for long.
pub const FOR_AN_HOUR: &str = "public, max-age=3600";

/// What the fallback handler returns: the answer, later.
type Answer = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// The router's fallback: a static file if the path names one under the
/// site root, else Leptos's `file_and_error_handler` (the 404 page).
/// Drop-in for `leptos_axum::file_and_error_handler(shell)`.
pub fn file_and_error_handler<S, IV>(
    shell: impl Fn(LeptosOptions) -> IV + 'static + Clone + Send,
) -> impl Fn(Uri, State<S>, Request<Body>) -> Answer + Clone + Send + 'static
where
    IV: IntoView + 'static,
    S: Send + Sync + Clone + 'static,
    LeptosOptions: FromRef<S>,
{
    let not_found = leptos_axum::file_and_error_handler(shell);
    move |uri: Uri, State(state): State<S>, request: Request<Body>| {
        let not_found = not_found.clone();
        Box::pin(async move {
            let root = LeptosOptions::from_ref(&state).site_root;
            match static_file(Path::new(&*root), request.method(), &uri, request.headers()).await {
                Some(response) => response,
                None => not_found(uri, State(state), request).await,
            }
        })
    }
}

/// The answer for `uri` if it names a file under `root`; `None` if it does
/// not (or the method is not `GET`/`HEAD`), for the 404 page to answer.
pub async fn static_file(
    root: &Path,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let relative = site_relative(uri.path())?;
    let plain = root.join(relative);
    let meta = tokio::fs::metadata(&plain).await.ok()?;
    if !meta.is_file() {
        return None;
    }
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let mut response = Response::builder()
        .header(CONTENT_TYPE, content_type(name))
        .header(
            CACHE_CONTROL,
            if is_content_hashed(name) {
                IMMUTABLE
            } else {
                FOR_AN_HOUR
            },
        );
    // Weak: the brotli, gzip and plain bytes are one file, and share it.
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("W/\"{:x}-{modified:x}\"", meta.len());
    response = response.header(ETAG, &etag);

    let mut variants = Vec::with_capacity(2);
    for coding in Coding::ALL {
        let path = coding.path(&plain);
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            variants.push((coding, path));
        }
    }
    if !variants.is_empty() {
        response = response.header(VARY, "Accept-Encoding");
    }
    if headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .any(|value| etag_matches(value, &etag))
    {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .ok();
    }

    let chosen = variants
        .into_iter()
        .find(|(coding, _)| accepts(headers, coding.token()));
    let (path, coding) = match chosen {
        Some((coding, path)) => (path, Some(coding)),
        None => (plain, None),
    };
    // Read whole: a body of known length goes out with Content-Length.
    let bytes = tokio::fs::read(&path).await.ok()?;
    if let Some(coding) = coding {
        response = response.header(CONTENT_ENCODING, coding.token());
    }
    response = response.header(CONTENT_LENGTH, bytes.len());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    response.status(StatusCode::OK).body(body).ok()
}

/// A content coding we keep a precompressed file for, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    /// Brotli first: a fifth smaller than gzip on our wasm.
    const ALL: [Coding; 2] = [Coding::Brotli, Coding::Gzip];

    fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// Where cargo-leptos's `--precompress` puts this coding of `plain`.
    fn path(self, plain: &Path) -> PathBuf {
        let mut name = plain.as_os_str().to_owned();
        name.push(match self {
            Coding::Brotli => ".br",
            Coding::Gzip => ".gz",
        });
        PathBuf::from(name)
    }
}

/// The path below the site root that `path` names, if it is a plain one:
/// segments of letters, digits, `-`, `_` and `.`, none empty or starting
/// with a dot. That keeps out `..`, hidden files and percent-escapes
/// (our files have none in their names) without decoding anything.
pub fn site_relative(path: &str) -> Option<&str> {
    let relative = path.strip_prefix('/')?;
    let plain = relative.split('/').all(|segment| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    plain.then_some(relative)
}

/// True for a name cargo-leptos's `hash-files` gave: `stem.<hash>.ext`,
/// the hash an MD5 in 22 characters of unpadded base64url.
pub fn is_content_hashed(name: &str) -> bool {
    let mut parts = name.rsplit('.');
    let (Some(_extension), Some(hash), Some(_stem)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    hash.len() == 22
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `Accept-Encoding` accepts `coding`: named (or `*`) with a
/// non-zero quality. A named entry wins over `*`; no header accepts none.
pub fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let mut named = None;
    let mut any = None;
    let entries = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for entry in entries {
        let mut params = entry.split(';');
        let token = params.next().unwrap_or("").trim();
        let quality = params
            .filter_map(|param| {
                let (key, value) = param.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok())
            })
            .next();
        // A malformed quality is not a yes.
        let accepted = match quality {
            None => true,
            Some(Some(q)) => q > 0.0,
            Some(None) => false,
        };
        if token.eq_ignore_ascii_case(coding) {
            named = Some(accepted);
        } else if token == "*" {
            any = Some(accepted);
        }
    }
    named.or(any).unwrap_or(false)
}

/// `If-None-Match` against our (weak) ETag: `*`, or any listed tag equal to
/// it with the weakness ignored (weak comparison, as for GET).
fn etag_matches(value: &HeaderValue, etag: &str) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let ours = etag.trim_start_matches("W/");
    value.split(',').any(|tag| {
        let tag = tag.trim();
        tag == "*" || tag.trim_start_matches("W/") == ours
    })
}

/// The `Content-Type` for a file name (the few kinds a site like this has).
fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accepts_what_the_browser_names_with_nonzero_quality() {
        let chromium = accept("gzip, deflate, br, zstd");
        assert!(accepts(&chromium, "br"));
        assert!(accepts(&chromium, "gzip"));
        assert!(!accepts(&accept("gzip;q=1.0, br;q=0"), "br"));
        assert!(accepts(&accept("gzip;q=1.0, br;q=0"), "gzip"));
        assert!(accepts(&accept("*"), "br"));
        assert!(!accepts(&accept("*, br;q=0.000"), "br"));
        assert!(!accepts(&accept("br;q=x"), "br"));
        assert!(!accepts(&accept("identity"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
    }

    #[test]
    fn knows_a_hashed_name_from_a_plain_one() {
        assert!(is_content_hashed("comet-chat.W7kB3sVzq0a8x_Yd-1Qm2A.wasm"));
        assert!(!is_content_hashed("comet-chat.wasm"));
        assert!(!is_content_hashed("favicon.svg"));
        assert!(!is_content_hashed("W7kB3sVzq0a8x_Yd-1Qm2A.wasm"));
        assert!(!is_content_hashed("comet-chat.W7kB3sVzq0a8x_Yd+1Qm2A.wasm"));
    }

    #[test]
    fn refuses_paths_that_leave_the_site_root() {
        assert_eq!(site_relative("/pkg/a.js"), Some("pkg/a.js"));
        assert_eq!(site_relative("/favicon.svg"), Some("favicon.svg"));
        assert_eq!(site_relative("/pkg/../Cargo.toml"), None);
        assert_eq!(site_relative("/pkg/%2e%2e/x"), None);
        assert_eq!(site_relative("/.env"), None);
        assert_eq!(site_relative("/pkg//a.js"), None);
        assert_eq!(site_relative("/"), None);
    }

    #[test]
    fn a_listed_etag_matches_weakly() {
        let ours = "W/\"10-abc\"";
        assert!(etag_matches(
            &HeaderValue::from_static("W/\"10-abc\""),
            ours
        ));
        assert!(etag_matches(
            &HeaderValue::from_static("\"x\", \"10-abc\""),
            ours
        ));
        assert!(etag_matches(&HeaderValue::from_static("*"), ours));
        assert!(!etag_matches(
            &HeaderValue::from_static("W/\"10-abd\""),
            ours
        ));
    }
}
