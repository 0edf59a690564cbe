//! Where a request's private token comes from: `Authorization: Bearer`,
//! else the session cookie (its two names, and what two cookies mean).

use crate::PrivateToken;
use axum::http::{header, HeaderMap};

/// The cookie that carries the private token in browsers served over
/// plain HTTP.
pub const TOKEN_COOKIE: &str = "comet_token";
/// The same cookie over HTTPS. Browsers accept a `__Host-` cookie only
/// with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot
/// plant one for this host.
pub const SECURE_TOKEN_COOKIE: &str = "__Host-comet_token";

/// The session cookie's name: [`SECURE_TOKEN_COOKIE`] when it is `Secure`.
pub fn token_cookie(secure: bool) -> &'static str {
    if secure {
        SECURE_TOKEN_COOKIE
    } else {
        TOKEN_COOKIE
    }
}

/// The private token from `Authorization: Bearer …`, else from the cookie.
/// A malformed token is treated as no token: the answer is the same 401.
pub fn request_token(headers: &HeaderMap) -> Option<PrivateToken> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Bearer ")
            .and_then(|t| PrivateToken::parse(t.trim()));
    }
    cookie_token(headers)
}

/// The private token from the session cookie (either name), if well
/// formed. A request carrying more than one session cookie (one planted by
/// a sibling subdomain, say) gets none: guessing which is the user's would
/// let the planter choose. See [`cookie_clash`].
pub fn cookie_token(headers: &HeaderMap) -> Option<PrivateToken> {
    let mut found = session_cookies(headers);
    let (_, value) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    PrivateToken::parse(value)
}

/// Whether the request carries more than one session cookie (two
/// `comet_token`, or both names), so a caller can say so.
pub fn cookie_clash(headers: &HeaderMap) -> bool {
    session_cookies(headers).nth(1).is_some()
}

fn session_cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == TOKEN_COOKIE || *name == SECURE_TOKEN_COOKIE)
}
