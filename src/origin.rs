//! Server functions act for whoever holds the session cookie, so a page on
//! another site must not be able to call them: a `POST /api/…` whose
//! `Origin` is not this server's own origin gets `403`.
//!
//! "Own origin" is scheme, host and port, all three: `http://chat.example`
//! is not `https://chat.example`, and a page on `chat.example:8080` is not
//! this server on `chat.example`. The scheme is `https` when the session
//! cookie is `Secure` (the server is meant to be reached over HTTPS) or a
//! trusted proxy says so (`X-Forwarded-Proto`); the host is `Host`, or a
//! trusted proxy's `X-Forwarded-Host`. Forwarding headers from anyone else
//! are ignored (see [`crate::peer`]): otherwise any page could name itself.
//!
//! What cannot be compared is refused rather than waved through: an
//! `Origin` that is not ASCII, that is `null`, that appears twice, or a
//! `Host` that appears twice. Requests with neither `Origin` nor
//! `Sec-Fetch-Site: cross-site` pass: browsers send `Origin` on every
//! cross-origin POST, and clients that send neither (curl, other servers)
//! carry no one else's cookie.

use crate::peer::Peer;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// What this server's own origin is made of.
#[derive(Clone, Debug)]
pub struct OriginRule {
    /// The session cookie is `Secure`: the server is reached over HTTPS.
    pub secure: bool,
    pub peer: Peer,
}

/// Said to a refused request.
pub const CROSS_ORIGIN: &str = "Cross-origin requests to this server's functions are refused.";

/// The answer to a cross-origin server-function call, `None` for any
/// other request (`crate::guard` applies it to every request).
pub fn refusal(rule: &OriginRule, request: &Request) -> Option<Response> {
    if request.method() != Method::POST || !request.uri().path().starts_with("/api/") {
        return None;
    }
    let headers = request.headers();
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    (cross_site || !rule.origin_ok(headers, request.extensions()))
        .then(|| (StatusCode::FORBIDDEN, CROSS_ORIGIN).into_response())
}

impl OriginRule {
    /// Whether the request's `Origin` (if any) is this server's own.
    pub fn origin_ok(&self, headers: &HeaderMap, extensions: &http::Extensions) -> bool {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return true;
        };
        if origins.next().is_some() {
            return false;
        }
        let Some(theirs) = origin.to_str().ok().and_then(Origin::parse) else {
            return false;
        };
        self.own_origin(headers, extensions)
            .is_some_and(|ours| ours == theirs)
    }

    /// This server's origin as the client reached it, if it can be told.
    fn own_origin(&self, headers: &HeaderMap, extensions: &http::Extensions) -> Option<Origin> {
        let scheme = match self.peer.forwarded_proto(headers, extensions) {
            Some(proto) => proto.to_ascii_lowercase(),
            None if self.secure => "https".into(),
            None => "http".into(),
        };
        let host = match self.peer.forwarded_host(headers, extensions) {
            Some(host) => host,
            None => {
                let mut hosts = headers.get_all(header::HOST).iter();
                let host = hosts.next()?.to_str().ok()?;
                if hosts.next().is_some() {
                    return None;
                }
                host
            }
        };
        Origin::parse(&format!("{scheme}://{host}"))
    }
}

/// A tuple origin: scheme, host (lower-cased) and port (the scheme's
/// default made explicit, so `http://a` equals `http://a:80`).
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        if rest.is_empty()
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
        {
            return None;
        }
        // `[v6]:port`, `host:port` or a bare host.
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (host, port.parse().ok()?)
            }
            _ => (rest, default_port),
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;

    fn check(rule: &OriginRule, socket: &str, headers: &[(&str, &[u8])]) -> bool {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                header::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let mut extensions = http::Extensions::new();
        extensions.insert(ConnectInfo(socket.parse::<SocketAddr>().unwrap()));
        rule.origin_ok(&map, &extensions)
    }

    fn rule(secure: bool, trusted: &[&str]) -> OriginRule {
        OriginRule {
            secure,
            peer: Peer::new(
                trusted
                    .iter()
                    .map(|t| crate::peer::Cidr::parse(t).unwrap())
                    .collect(),
            ),
        }
    }

    const ME: &str = "198.51.100.9:5000";

    #[test]
    fn scheme_host_and_port_must_all_match() {
        let plain = rule(false, &[]);
        let host = ("host", b"chat.example:3000".as_slice());
        assert!(check(
            &plain,
            ME,
            &[host, ("origin", b"http://chat.example:3000")]
        ));
        assert!(check(
            &plain,
            ME,
            &[host, ("origin", b"http://CHAT.example:3000")]
        ));
        assert!(!check(
            &plain,
            ME,
            &[host, ("origin", b"https://chat.example:3000")]
        ));
        assert!(!check(
            &plain,
            ME,
            &[host, ("origin", b"http://chat.example:3001")]
        ));
        assert!(!check(
            &plain,
            ME,
            &[host, ("origin", b"http://chat.example")]
        ));
        assert!(!check(
            &plain,
            ME,
            &[host, ("origin", b"http://evil.example:3000")]
        ));
        let default_port = ("host", b"chat.example".as_slice());
        assert!(check(
            &plain,
            ME,
            &[default_port, ("origin", b"http://chat.example:80")]
        ));
        let secure = rule(true, &[]);
        assert!(check(
            &secure,
            ME,
            &[default_port, ("origin", b"https://chat.example")]
        ));
        assert!(!check(
            &secure,
            ME,
            &[default_port, ("origin", b"http://chat.example")]
        ));
    }

    #[test]
    fn unreadable_null_or_repeated_origins_are_refused() {
        let plain = rule(false, &[]);
        let host = ("host", b"chat.example".as_slice());
        assert!(!check(
            &plain,
            ME,
            &[host, ("origin", "http://chat.example\u{e9}".as_bytes())]
        ));
        assert!(!check(&plain, ME, &[host, ("origin", b"null")]));
        assert!(!check(
            &plain,
            ME,
            &[
                host,
                ("origin", b"http://chat.example"),
                ("origin", b"http://chat.example")
            ]
        ));
        assert!(!check(
            &plain,
            ME,
            &[
                host,
                ("host", b"evil.example"),
                ("origin", b"http://chat.example")
            ]
        ));
        assert!(
            check(&plain, ME, &[host]),
            "no Origin: not a browser's cross-site call"
        );
    }

    #[test]
    fn forwarded_host_and_proto_count_only_from_a_trusted_proxy() {
        let forwarded: &[(&str, &[u8])] = &[
            ("host", b"10.0.0.5:3000"),
            ("x-forwarded-host", b"chat.example"),
            ("x-forwarded-proto", b"https"),
            ("origin", b"https://chat.example"),
        ];
        assert!(check(
            &rule(false, &["10.0.0.0/8"]),
            "10.0.0.2:4000",
            forwarded
        ));
        assert!(!check(&rule(false, &[]), "10.0.0.2:4000", forwarded));
        assert!(!check(&rule(false, &["10.0.0.0/8"]), ME, forwarded));
    }
}
