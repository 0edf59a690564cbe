//! Runtime settings: `Leptos.toml` (or the file named by `COMET_CONFIG`),
//! then environment variables, then the built-in defaults for anything
//! neither sets. A bad value stops start-up with a message naming it: a
//! server that silently ignores `COMET_POLL_TIMEOUT=abc` is worse than one
//! that does not start.

mod read;
mod redis_url;

pub use read::parse_duration;
pub use redis_url::{redact, RedisUrl};

use crate::comet::{Retention, Settings};
use read::Reader;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub comet: Settings,
    pub retention: Retention,
    pub chat: ChatSettings,
    /// Keep clients and messages in this Redis (several nodes, one chat);
    /// in-process when unset. Its password never shows in `Debug`.
    pub redis_url: Option<RedisUrl>,
    /// Where `/metrics` is served (`COMET_METRICS`).
    pub metrics: MetricsAt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatSettings {
    pub max_name_chars: usize,
    pub max_message_chars: usize,
    /// Messages shown when the chat page opens.
    pub history: usize,
    /// Add `Secure` to the token cookie (serve over HTTPS).
    pub cookie_secure: bool,
    /// Sends per second one client may keep up (per node); 0: no limit.
    pub send_rate: u32,
    /// Sends one client may make in a burst before the rate applies.
    pub send_burst: u32,
}

/// Where `/metrics` is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsAt {
    /// On the public port with the app: fine for a dev run, but anyone who
    /// can reach the site can read it.
    Same,
    /// Nowhere.
    Off,
    /// On its own listener (say `127.0.0.1:9100`), and not on the public port.
    Separate(SocketAddr),
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
    /// `key` names where the value came from: `COMET_MAX_POLLS`, or
    /// `comet.max_polls in Leptos.toml`.
    #[error("{key} = {value}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("unknown setting {key} in {path}")]
    Unknown { key: String, path: String },
}

/// Upper bounds (see `read.rs` for why every setting has one).
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

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

    /// From a settings file's text and an environment lookup. Each setting:
    /// its environment variable, else its file key, else the default; both
    /// sources pass the same validation ([`Reader`]).
    pub fn from_sources(
        file: Option<&str>,
        path: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut r = Reader::new(&env, file, path)?;
        let defaults = Settings::default();
        let retention = Retention::default();
        let comet = Settings {
            connection_timeout: r.duration(
                "COMET_POLL_TIMEOUT",
                "comet.poll_timeout",
                defaults.connection_timeout,
                HOUR,
            )?,
            idle_timeout: r.duration(
                "COMET_IDLE_TIMEOUT",
                "comet.idle_timeout",
                defaults.idle_timeout,
                DAY,
            )?,
            reap_interval: r.duration(
                "COMET_REAP_INTERVAL",
                "comet.reap_interval",
                defaults.reap_interval,
                HOUR,
            )?,
            max_polls_per_client: r.count(
                "COMET_MAX_POLLS_PER_CLIENT",
                "comet.max_polls_per_client",
                defaults.max_polls_per_client,
                1..=1_000,
            )?,
            max_polls: r.count(
                "COMET_MAX_POLLS",
                "comet.max_polls",
                defaults.max_polls,
                1..=10_000_000,
            )?,
            max_clients: r.count(
                "COMET_MAX_CLIENTS",
                "comet.max_clients",
                defaults.max_clients,
                1..=100_000_000,
            )?,
            batch_limit: r.count(
                "COMET_BATCH_LIMIT",
                "comet.batch_limit",
                defaults.batch_limit,
                1..=100_000,
            )?,
            max_body_bytes: r.count(
                "COMET_MAX_BODY_BYTES",
                "comet.max_body_bytes",
                defaults.max_body_bytes,
                1..=1 << 20,
            )?,
            max_display_name_chars: r.count(
                "CHAT_MAX_NAME_CHARS",
                "chat.max_name_chars",
                defaults.max_display_name_chars,
                1..=1_000,
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
            max_messages: r.count(
                "COMET_RETENTION_MESSAGES",
                "comet.retention_messages",
                retention.max_messages,
                1..=10_000_000,
            )?,
            max_age: r.duration(
                "COMET_RETENTION_AGE",
                "comet.retention_age",
                retention.max_age,
                365 * DAY,
            )?,
        };
        let chat = ChatSettings {
            max_name_chars: comet.max_display_name_chars,
            max_message_chars: r.count(
                "CHAT_MAX_MESSAGE_CHARS",
                "chat.max_message_chars",
                2000,
                1..=100_000,
            )?,
            history: r.count("CHAT_HISTORY", "chat.history", 50, 1..=10_000)?,
            cookie_secure: r.flag("CHAT_COOKIE_SECURE", "chat.cookie_secure", false)?,
            send_rate: r.count("CHAT_SEND_RATE", "chat.send_rate", 10, 0..=1_000_000)?,
            send_burst: r.count("CHAT_SEND_BURST", "chat.send_burst", 50, 1..=1_000_000)?,
        };
        let redis_url = match r.find("COMET_REDIS_URL", "comet.redis_url") {
            None => None,
            Some(found) => match found.value.as_str().map(str::trim) {
                Some("") => None,
                Some(url) => Some(RedisUrl::new(url.to_owned()).map_err(|reason| {
                    found.invalid_showing(format!("{:?}", redact(url)), reason)
                })?),
                None => return Err(found.invalid("expected a redis:// URL")),
            },
        };
        let metrics = match r.find("COMET_METRICS", "comet.metrics") {
            None => MetricsAt::Same,
            Some(found) => match found.value.as_str().map(str::trim) {
                Some("same") => MetricsAt::Same,
                Some("off") => MetricsAt::Off,
                Some(addr) => MetricsAt::Separate(addr.parse().map_err(|_| {
                    found.invalid("expected same, off, or an address such as 127.0.0.1:9100")
                })?),
                None => {
                    return Err(
                        found.invalid("expected same, off, or an address such as 127.0.0.1:9100")
                    )
                }
            },
        };
        r.finish()?;
        Ok(Config {
            comet,
            retention,
            chat,
            redis_url,
            metrics,
        })
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
    fn idle_timeout_must_exceed_poll_timeout() {
        let env = env_of(&[("COMET_POLL_TIMEOUT", "30s"), ("COMET_IDLE_TIMEOUT", "30s")]);
        assert!(Config::from_sources(None, "x", env).is_err());
    }

    #[test]
    fn the_shipped_leptos_toml_is_valid() {
        let file = include_str!("../Leptos.toml");
        Config::from_sources(Some(file), "Leptos.toml", env_of(&[])).unwrap();
    }

    #[test]
    fn huge_durations_name_their_variable_instead_of_panicking() {
        for huge in ["1e300", "99999999999999999999h", "inf", "NaN"] {
            let env = move |key: &str| (key == "COMET_POLL_TIMEOUT").then(|| huge.to_owned());
            let err = Config::from_sources(None, "x", env).unwrap_err();
            assert!(
                err.to_string().contains("COMET_POLL_TIMEOUT"),
                "{huge}: {err}"
            );
        }
    }

    #[test]
    fn durations_beyond_their_bound_are_refused() {
        let err =
            Config::from_sources(None, "x", env_of(&[("COMET_POLL_TIMEOUT", "2h")])).unwrap_err();
        assert!(err.to_string().contains("1h"), "{err}");
        let err = Config::from_sources(None, "x", env_of(&[("COMET_REAP_INTERVAL", "0.1ms")]))
            .unwrap_err();
        assert!(err.to_string().contains("COMET_REAP_INTERVAL"), "{err}");
    }

    #[test]
    fn file_values_pass_the_same_validation_and_name_their_key() {
        for (file, key) in [
            ("[comet]\nmax_polls = 0\n", "comet.max_polls in Leptos.toml"),
            (
                "[comet]\npoll_timeout = \"1e300\"\n",
                "comet.poll_timeout in Leptos.toml",
            ),
            (
                "[comet]\nretention_age = 0\n",
                "comet.retention_age in Leptos.toml",
            ),
            ("[chat]\nhistory = -1\n", "chat.history in Leptos.toml"),
            ("[chat]\nsend_burst = 0\n", "chat.send_burst in Leptos.toml"),
            (
                "[chat]\nsend_rate = 99999999999\n",
                "chat.send_rate in Leptos.toml",
            ),
            (
                "[chat]\ncookie_secure = \"maybe\"\n",
                "chat.cookie_secure in Leptos.toml",
            ),
        ] {
            let err = Config::from_sources(Some(file), "Leptos.toml", env_of(&[])).unwrap_err();
            assert!(err.to_string().contains(key), "{file}: {err}");
        }
    }

    #[test]
    fn file_values_in_range_are_read_as_numbers_or_strings() {
        let file = "[comet]\npoll_timeout = 3\nidle_timeout = \"9s\"\nmax_polls = \"7\"\n";
        let config = Config::from_sources(Some(file), "x", env_of(&[])).unwrap();
        assert_eq!(config.comet.connection_timeout, Duration::from_secs(3));
        assert_eq!(config.comet.idle_timeout, Duration::from_secs(9));
        assert_eq!(config.comet.max_polls, 7);
    }

    #[test]
    fn unknown_file_keys_are_named() {
        let err = Config::from_sources(Some("[chat]\nhistroy = 5\n"), "Leptos.toml", env_of(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("chat.histroy"), "{err}");
        let err =
            Config::from_sources(Some("[extra]\nx = 1\n"), "Leptos.toml", env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn a_bad_redis_url_is_refused_without_its_password() {
        let err = Config::from_sources(
            None,
            "x",
            env_of(&[("COMET_REDIS_URL", "http://:secret@host:6379")]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("COMET_REDIS_URL"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains(":***@host"), "{text}");
    }

    #[test]
    fn the_configuration_never_prints_the_redis_password() {
        let env = env_of(&[("COMET_REDIS_URL", "redis://:secret@127.0.0.1:6379")]);
        let config = Config::from_sources(None, "x", env).unwrap();
        assert!(!format!("{config:?}").contains("secret"));
        let url = config.redis_url.unwrap();
        assert_eq!(url.expose(), "redis://:secret@127.0.0.1:6379");
    }

    #[test]
    fn metrics_are_served_with_the_app_unless_told_otherwise() {
        let metrics = |value: &'static str| {
            let env = move |key: &str| (key == "COMET_METRICS").then(|| value.to_owned());
            Config::from_sources(None, "x", env).map(|c| c.metrics)
        };
        let default = Config::from_sources(None, "x", env_of(&[])).unwrap();
        assert_eq!(default.metrics, MetricsAt::Same);
        assert_eq!(metrics("same").unwrap(), MetricsAt::Same);
        assert_eq!(metrics("off").unwrap(), MetricsAt::Off);
        assert_eq!(
            metrics("127.0.0.1:9100").unwrap(),
            MetricsAt::Separate("127.0.0.1:9100".parse().unwrap())
        );
        let err = metrics("elsewhere").unwrap_err();
        assert!(err.to_string().contains("COMET_METRICS"), "{err}");
    }

    #[test]
    fn durations_parse_in_several_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("1e300"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
