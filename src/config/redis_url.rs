//! The Redis URL, which may carry a password (`redis://:secret@host`), or
//! a Redis Cluster's seeds, comma-separated (`redis://a:7000,redis://b:7000`):
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

    /// The URL if it (or each seed of a list) names a scheme Redis
    /// understands; the refusal's reason otherwise.
    pub fn new(url: String) -> Result<Self, &'static str> {
        if comet::redis::seeds(&url)
            .iter()
            .all(|seed| Self::SCHEMES.iter().any(|scheme| seed.starts_with(scheme)))
        {
            Ok(Self(url))
        } else {
            Err("expected redis://host:port[/db], rediss://… or unix://…, or a Redis Cluster's seeds: redis://host:port,redis://host:port")
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
/// A list of seeds is redacted seed by seed.
pub fn redact(url: &str) -> String {
    comet::redis::seeds(url)
        .into_iter()
        .map(redact_one)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one(url: &str) -> String {
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
    fn every_seed_of_a_cluster_has_its_password_hidden() {
        let url = "redis://:secret@10.0.0.1:7000,redis://:secret@10.0.0.2:7000";
        assert_eq!(
            redact(url),
            "redis://:***@10.0.0.1:7000,redis://:***@10.0.0.2:7000"
        );
        let url = RedisUrl::new(url.into()).unwrap();
        assert!(!format!("{url:?}").contains("secret"));
        // A comma inside a password does not start another seed.
        assert_eq!(
            redact("redis://:se,cret@a:1,redis://:se,cret@b:2"),
            "redis://:***@a:1,redis://:***@b:2"
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
