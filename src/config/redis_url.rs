//! The Redis URL, which may carry a password (`redis://:secret@host`):
//! a newtype whose `Debug` and `Display` hide it, so neither a start-up
//! error, a log line nor `{:?}` of the whole configuration can echo it.
//! Only [`RedisUrl::expose`] (and `Deref`, for the one call that connects)
//! gives the real text.

use std::fmt;
use std::ops::Deref;

#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Schemes the redis crate connects to.
    const SCHEMES: [&'static str; 3] = ["redis://", "rediss://", "unix://"];

    /// The URL if it names a scheme Redis understands; the refusal's
    /// reason otherwise.
    pub fn new(url: String) -> Result<Self, &'static str> {
        if Self::SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
            Ok(Self(url))
        } else {
            Err("expected redis://host:port[/db], rediss://… or unix://…")
        }
    }

    /// The full URL, password included: for connecting, never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Deref for RedisUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", redact(&self.0))
    }
}

/// `url` with its password replaced by `***`: the one in the user-info
/// (`redis://user:pw@host`, `redis://:pw@host`; a user-info without a colon
/// is hidden whole, as some clients read it as the password) and a `pass`
/// or `password` query parameter (`unix:///run/redis.sock?pass=pw`).
/// Text that is not a URL at all is hidden whole: it might be anything.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    // Up to the query, not the path: a password with an unencoded `/` must
    // still count as user-info (the last `@` ends it).
    let authority_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if matches!(key, "pass" | "password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_info_are_hidden() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redact("rediss://ada:secret@host"), "rediss://ada:***@host");
        assert_eq!(redact("redis://secret@host"), "redis://***@host");
        assert_eq!(redact("redis://:se/cr@et@host/1"), "redis://:***@host/1");
    }

    #[test]
    fn passwords_in_the_query_are_hidden() {
        assert_eq!(
            redact("unix:///run/redis.sock?db=1&pass=secret"),
            "unix:///run/redis.sock?db=1&pass=***"
        );
    }

    #[test]
    fn urls_without_secrets_are_shown_as_they_are() {
        assert_eq!(
            redact("redis://127.0.0.1:6379/2"),
            "redis://127.0.0.1:6379/2"
        );
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let url = RedisUrl::new("redis://:hunter2@host".into()).unwrap();
        assert!(!format!("{url}").contains("hunter2"));
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "redis://:hunter2@host");
    }
}
