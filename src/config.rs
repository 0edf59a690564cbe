//! Runtime settings: `Leptos.toml` (or the file named by `COMET_CONFIG`),
//! then environment variables, then the built-in defaults for anything
//! neither sets. A bad value stops start-up with a message naming it: a
//! server that silently ignores `COMET_POLL_TIMEOUT=abc` is worse than one
//! that does not start.

use crate::comet::{Retention, Settings};
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub comet: Settings,
    pub retention: Retention,
    pub chat: ChatSettings,
    /// Keep clients and messages in this Redis (several nodes, one chat);
    /// in-process when unset.
    pub redis_url: Option<String>,
    /// The HTTP front's deadlines and caps (`HTTP_*`, `[http]`).
    pub http: crate::serve::Limits,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatSettings {
    pub max_name_chars: usize,
    pub max_message_chars: usize,
    /// Messages shown when the chat page opens.
    pub history: usize,
    /// Add `Secure` to the token cookie (serve over HTTPS).
    pub cookie_secure: bool,
    /// Sends per second one client address may keep up (per node); 0: no limit.
    pub send_rate: u32,
    /// Sends one client address may make in a burst before the rate applies.
    pub send_burst: u32,
    /// Logins per minute one client address may keep up (per node); 0: no limit.
    pub login_rate: u32,
    /// Logins one client address may make in a burst before the rate applies.
    pub login_burst: u32,
    /// Proxies whose forwarding headers (`X-Forwarded-For`, `Forwarded`,
    /// `X-Forwarded-Proto`, `X-Forwarded-Host`) are believed.
    pub trusted_proxies: Vec<crate::peer::Cidr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{key}={value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// The file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct File {
    comet: CometFile,
    chat: ChatFile,
    http: HttpFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CometFile {
    redis_url: Option<String>,
    poll_timeout: Option<String>,
    idle_timeout: Option<String>,
    reap_interval: Option<String>,
    retention_messages: Option<usize>,
    retention_age: Option<String>,
    max_polls_per_client: Option<usize>,
    max_polls: Option<usize>,
    max_clients: Option<usize>,
    batch_limit: Option<usize>,
    max_body_bytes: Option<usize>,
    provider_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ChatFile {
    max_name_chars: Option<usize>,
    max_message_chars: Option<usize>,
    history: Option<usize>,
    cookie_secure: Option<bool>,
    send_rate: Option<usize>,
    send_burst: Option<usize>,
    login_rate: Option<usize>,
    login_burst: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct HttpFile {
    head_timeout: Option<String>,
    min_body_rate: Option<usize>,
    write_timeout: Option<String>,
    keepalive_timeout: Option<String>,
    tcp_keepalive: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_addr: Option<usize>,
    drain_timeout: Option<String>,
}

impl Config {
    /// From `COMET_CONFIG` (default `Leptos.toml`, if present) and the process environment.
    pub fn load() -> Result<Config, ConfigError> {
        let path = std::env::var("COMET_CONFIG").ok();
        let text = match &path {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => std::fs::read_to_string("Leptos.toml").ok(),
        };
        let path = path.unwrap_or_else(|| "Leptos.toml".into());
        Self::from_sources(text.as_deref(), &path, |key| std::env::var(key).ok())
    }

    /// From a settings file's text and an environment lookup.
    pub fn from_sources(
        file: Option<&str>,
        path: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file: File = match file {
            Some(text) => toml::from_str(text).map_err(|source| ConfigError::Parse {
                path: path.into(),
                source: Box::new(source),
            })?,
            None => File::default(),
        };
        let defaults = Settings::default();
        let retention = Retention::default();
        let f = &file.comet;
        let comet = Settings {
            connection_timeout: duration(
                &env,
                "COMET_POLL_TIMEOUT",
                &f.poll_timeout,
                defaults.connection_timeout,
            )?,
            idle_timeout: duration(
                &env,
                "COMET_IDLE_TIMEOUT",
                &f.idle_timeout,
                defaults.idle_timeout,
            )?,
            reap_interval: duration(
                &env,
                "COMET_REAP_INTERVAL",
                &f.reap_interval,
                defaults.reap_interval,
            )?,
            max_polls_per_client: count(
                &env,
                "COMET_MAX_POLLS_PER_CLIENT",
                f.max_polls_per_client,
                defaults.max_polls_per_client,
            )?,
            max_polls: count(&env, "COMET_MAX_POLLS", f.max_polls, defaults.max_polls)?,
            max_clients: count(
                &env,
                "COMET_MAX_CLIENTS",
                f.max_clients,
                defaults.max_clients,
            )?,
            batch_limit: count(
                &env,
                "COMET_BATCH_LIMIT",
                f.batch_limit,
                defaults.batch_limit,
            )?,
            max_body_bytes: count(
                &env,
                "COMET_MAX_BODY_BYTES",
                f.max_body_bytes,
                defaults.max_body_bytes,
            )?,
            max_display_name_chars: count(
                &env,
                "CHAT_MAX_NAME_CHARS",
                file.chat.max_name_chars,
                defaults.max_display_name_chars,
            )?,
            provider_timeout: duration(
                &env,
                "COMET_PROVIDER_TIMEOUT",
                &f.provider_timeout,
                defaults.provider_timeout,
            )?,
        };
        if comet.idle_timeout <= comet.connection_timeout {
            return Err(ConfigError::Invalid {
                key: "COMET_IDLE_TIMEOUT".into(),
                value: format!("{:?}", comet.idle_timeout),
                reason: format!(
                    "must be longer than the poll timeout ({:?}), or clients holding a poll would be removed",
                    comet.connection_timeout
                ),
            });
        }
        let retention = Retention {
            max_messages: count(
                &env,
                "COMET_RETENTION_MESSAGES",
                f.retention_messages,
                retention.max_messages,
            )?,
            max_age: duration(
                &env,
                "COMET_RETENTION_AGE",
                &f.retention_age,
                retention.max_age,
            )?,
        };
        let c = &file.chat;
        let chat = ChatSettings {
            max_name_chars: comet.max_display_name_chars,
            max_message_chars: count(&env, "CHAT_MAX_MESSAGE_CHARS", c.max_message_chars, 2000)?,
            history: count(&env, "CHAT_HISTORY", c.history, 50)?,
            cookie_secure: flag(&env, "CHAT_COOKIE_SECURE", c.cookie_secure, false)?,
            send_rate: limit(&env, "CHAT_SEND_RATE", c.send_rate, 10)?,
            send_burst: count(&env, "CHAT_SEND_BURST", c.send_burst, 50)?.min(u32::MAX as usize)
                as u32,
            // 10 a minute after a burst of 20: a household or office behind
            // one NAT logging in together, and each retyping a taken name
            // once or twice, stays under it; a script filling the chat from
            // one address gets 20 names, then one every 6 seconds.
            login_rate: limit(&env, "CHAT_LOGIN_RATE", c.login_rate, 10)?,
            login_burst: count(&env, "CHAT_LOGIN_BURST", c.login_burst, 20)?.min(u32::MAX as usize)
                as u32,
            trusted_proxies: networks(&env, "CHAT_TRUSTED_PROXIES", &c.trusted_proxies)?,
        };
        let redis_url = env("COMET_REDIS_URL")
            .or_else(|| f.redis_url.clone())
            .filter(|url| !url.trim().is_empty());
        if let Some(url) = &redis_url {
            let known = ["redis://", "rediss://", "unix://"];
            if !known.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(invalid(
                    "COMET_REDIS_URL",
                    url,
                    "expected redis://host:port[/db]",
                ));
            }
        }
        let http = http_limits(&env, &file.http)?;
        Ok(Config {
            comet,
            retention,
            chat,
            redis_url,
            http,
        })
    }
}

/// The HTTP front's settings (`HTTP_*`), each defaulting to
/// [`Limits::default`](crate::serve::Limits).
fn http_limits(
    env: &impl Fn(&str) -> Option<String>,
    f: &HttpFile,
) -> Result<crate::serve::Limits, ConfigError> {
    let d = crate::serve::Limits::default();
    let min_body_rate = count(
        env,
        "HTTP_MIN_BODY_RATE",
        f.min_body_rate,
        d.min_body_rate as usize,
    )?;
    let min_body_rate = u32::try_from(min_body_rate).map_err(|_| {
        invalid(
            "HTTP_MIN_BODY_RATE",
            &min_body_rate.to_string(),
            "expected bytes per second below 4294967296",
        )
    })?;
    Ok(crate::serve::Limits {
        head_timeout: duration(env, "HTTP_HEAD_TIMEOUT", &f.head_timeout, d.head_timeout)?,
        min_body_rate,
        write_timeout: duration(env, "HTTP_WRITE_TIMEOUT", &f.write_timeout, d.write_timeout)?,
        keepalive_timeout: duration(
            env,
            "HTTP_KEEPALIVE_TIMEOUT",
            &f.keepalive_timeout,
            d.keepalive_timeout,
        )?,
        tcp_keepalive: duration(env, "HTTP_TCP_KEEPALIVE", &f.tcp_keepalive, d.tcp_keepalive)?,
        max_connections: count(
            env,
            "HTTP_MAX_CONNECTIONS",
            f.max_connections,
            d.max_connections,
        )?,
        max_connections_per_addr: limit(
            env,
            "HTTP_MAX_CONNECTIONS_PER_ADDR",
            f.max_connections_per_addr,
            d.max_connections_per_addr.min(u32::MAX as usize) as u32,
        )? as usize,
        drain_timeout: duration(env, "HTTP_DRAIN_TIMEOUT", &f.drain_timeout, d.drain_timeout)?,
    })
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn duration(
    env: &impl Fn(&str) -> Option<String>,
    key: &str,
    file: &Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match env(key).or_else(|| file.clone()) {
        None => Ok(default),
        Some(value) => parse_duration(&value)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                invalid(
                    key,
                    &value,
                    "expected a positive duration such as 25s, 500ms, 2m or 1h",
                )
            }),
    }
}

/// `25s`, `500ms`, `2m`, `1h`, or a plain number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let number: f64 = number.trim().parse().ok()?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    (number.is_finite() && number >= 0.0).then(|| Duration::from_secs_f64(number * scale))
}

fn count(
    env: &impl Fn(&str) -> Option<String>,
    key: &str,
    file: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    match env(key) {
        Some(value) => value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid(key, &value, "expected a positive whole number")),
        None => Ok(file.unwrap_or(default)),
    }
}

/// Like [`count`], but 0 is allowed (it means "no limit").
fn limit(
    env: &impl Fn(&str) -> Option<String>,
    key: &str,
    file: Option<usize>,
    default: u32,
) -> Result<u32, ConfigError> {
    match env(key) {
        Some(value) => value
            .trim()
            .parse::<u32>()
            .map_err(|_| invalid(key, &value, "expected a whole number (0: no limit)")),
        None => Ok(file.map_or(default, |n| n.min(u32::MAX as usize) as u32)),
    }
}

/// A list of addresses or networks (`10.0.0.0/8, ::1`): comma-separated
/// in the environment, an array in the file.
fn networks(
    env: &impl Fn(&str) -> Option<String>,
    key: &str,
    file: &Option<Vec<String>>,
) -> Result<Vec<crate::peer::Cidr>, ConfigError> {
    let items: Vec<String> = match env(key) {
        Some(value) => value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
        None => file.clone().unwrap_or_default(),
    };
    items
        .iter()
        .map(|item| {
            crate::peer::Cidr::parse(item).ok_or_else(|| {
                invalid(
                    key,
                    item,
                    "expected IP addresses or networks such as 10.0.0.0/8, separated by commas",
                )
            })
        })
        .collect()
}

fn flag(
    env: &impl Fn(&str) -> Option<String>,
    key: &str,
    file: Option<bool>,
    default: bool,
) -> Result<bool, ConfigError> {
    match env(key).as_deref().map(str::trim) {
        Some("1" | "true" | "yes") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(other) => Err(invalid(key, other, "expected true or false")),
        None => Ok(file.unwrap_or(default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_without_file_or_env() {
        let config = Config::from_sources(None, "none", env_of(&[])).unwrap();
        assert_eq!(config.comet.connection_timeout, Duration::from_secs(25));
        assert_eq!(config.comet.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.chat.max_message_chars, 2000);
    }

    #[test]
    fn env_overrides_file() {
        let file = "[comet]\npoll_timeout = \"10s\"\nidle_timeout = \"40s\"\n[chat]\nhistory = 7\n";
        let config =
            Config::from_sources(Some(file), "x", env_of(&[("COMET_POLL_TIMEOUT", "2s")])).unwrap();
        assert_eq!(config.comet.connection_timeout, Duration::from_secs(2));
        assert_eq!(config.comet.idle_timeout, Duration::from_secs(40));
        assert_eq!(config.chat.history, 7);
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let err =
            Config::from_sources(None, "x", env_of(&[("COMET_POLL_TIMEOUT", "abc")])).unwrap_err();
        assert!(err.to_string().contains("COMET_POLL_TIMEOUT"), "{err}");
        let err = Config::from_sources(None, "x", env_of(&[("CHAT_HISTORY", "-1")])).unwrap_err();
        assert!(err.to_string().contains("CHAT_HISTORY"), "{err}");
        let err = Config::from_sources(Some("[comet]\nbogus = 1\n"), "Leptos.toml", env_of(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn provider_timeout_comes_from_env_or_file_and_is_validated() {
        let config = Config::from_sources(None, "x", env_of(&[])).unwrap();
        assert!(config.comet.provider_timeout <= Duration::from_secs(1));
        let file = "[comet]\nprovider_timeout = \"300ms\"\n";
        let config = Config::from_sources(Some(file), "x", env_of(&[])).unwrap();
        assert_eq!(config.comet.provider_timeout, Duration::from_millis(300));
        let env = env_of(&[("COMET_PROVIDER_TIMEOUT", "2s")]);
        let config = Config::from_sources(Some(file), "x", env).unwrap();
        assert_eq!(config.comet.provider_timeout, Duration::from_secs(2));
        let err = Config::from_sources(None, "x", env_of(&[("COMET_PROVIDER_TIMEOUT", "0")]))
            .unwrap_err();
        assert!(err.to_string().contains("COMET_PROVIDER_TIMEOUT"), "{err}");
        let err = Config::from_sources(None, "x", env_of(&[("COMET_PROVIDER_TIMEOUT", "soon")]))
            .unwrap_err();
        assert!(err.to_string().contains("COMET_PROVIDER_TIMEOUT"), "{err}");
    }

    #[test]
    fn the_shipped_file_sets_the_address_limits_and_may_list_proxies() {
        let shipped = include_str!("../Leptos.toml");
        let config = Config::from_sources(Some(shipped), "Leptos.toml", env_of(&[])).unwrap();
        assert_eq!((config.chat.login_rate, config.chat.login_burst), (10, 20));
        assert!(config.chat.trusted_proxies.is_empty());
        let uncommented = shipped.replace("# trusted_proxies", "trusted_proxies");
        let config = Config::from_sources(Some(&uncommented), "Leptos.toml", env_of(&[])).unwrap();
        assert_eq!(config.chat.trusted_proxies.len(), 2);
    }

    #[test]
    fn trusted_proxies_parse_and_a_bad_one_is_named() {
        let env = env_of(&[("CHAT_TRUSTED_PROXIES", "10.0.0.0/8, ::1")]);
        let config = Config::from_sources(None, "x", env).unwrap();
        assert_eq!(config.chat.trusted_proxies.len(), 2);
        let file = "[chat]\ntrusted_proxies = [\"192.168.0.0/16\"]\n";
        let config = Config::from_sources(Some(file), "x", env_of(&[])).unwrap();
        assert_eq!(config.chat.trusted_proxies.len(), 1);
        let env = env_of(&[("CHAT_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")]);
        let err = Config::from_sources(None, "x", env).unwrap_err();
        assert!(err.to_string().contains("CHAT_TRUSTED_PROXIES"), "{err}");
        assert!(err.to_string().contains("proxy.local"), "{err}");
        let err =
            Config::from_sources(None, "x", env_of(&[("CHAT_LOGIN_BURST", "0")])).unwrap_err();
        assert!(err.to_string().contains("CHAT_LOGIN_BURST"), "{err}");
    }

    #[test]
    fn idle_timeout_must_exceed_poll_timeout() {
        let env = env_of(&[("COMET_POLL_TIMEOUT", "30s"), ("COMET_IDLE_TIMEOUT", "30s")]);
        assert!(Config::from_sources(None, "x", env).is_err());
    }

    #[test]
    fn http_limits_come_from_env_or_file_and_bad_ones_are_named() {
        let file = "[http]\nhead_timeout = \"3s\"\nmax_connections = 7\n";
        let env = env_of(&[
            ("HTTP_WRITE_TIMEOUT", "2s"),
            ("HTTP_MAX_CONNECTIONS_PER_ADDR", "4"),
        ]);
        let http = Config::from_sources(Some(file), "x", env).unwrap().http;
        assert_eq!(http.head_timeout, Duration::from_secs(3));
        assert_eq!(http.write_timeout, Duration::from_secs(2));
        assert_eq!(http.max_connections, 7);
        assert_eq!(http.max_connections_per_addr, 4);
        assert_eq!(
            http.keepalive_timeout,
            crate::serve::Limits::default().keepalive_timeout
        );
        for key in [
            "HTTP_HEAD_TIMEOUT",
            "HTTP_MIN_BODY_RATE",
            "HTTP_MAX_CONNECTIONS",
            "HTTP_MAX_CONNECTIONS_PER_ADDR",
            "HTTP_DRAIN_TIMEOUT",
        ] {
            let env = move |k: &str| (k == key).then(|| "-3".to_owned());
            let err = Config::from_sources(None, "x", env).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn durations_parse_in_several_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
