//! Runtime settings: `Leptos.toml` (or the file named by `COMET_CONFIG`),
//! then environment variables, then the built-in defaults for anything
//! neither sets. A bad value stops start-up with a message naming it: a
//! server that silently ignores `COMET_POLL_TIMEOUT=abc` is worse than one
//! that does not start. Every setting's key, variable, default and bounds
//! are one row of [`table::SETTINGS`]; this file says which field each
//! fills.

mod http;
mod read;
mod redis_url;
pub mod table;

pub use read::parse_duration;
pub use redis_url::{redact, RedisUrl};

use comet::{Retention, Settings};
use read::Reader;
use std::net::SocketAddr;
use table::{setting, Kind};

#[derive(Clone, Debug)]
pub struct Config {
    pub comet: Settings,
    pub retention: Retention,
    pub chat: ChatSettings,
    /// Keep clients and messages in this Redis (several nodes, one chat);
    /// in-process when unset. Its password never shows in `Debug`.
    pub redis_url: Option<RedisUrl>,
    /// Replicas a send waits for (`WAIT`), and for how long at most.
    pub redis_wait_replicas: usize,
    pub redis_wait_timeout: std::time::Duration,
    /// Where `/metrics` is served (`COMET_METRICS`).
    pub metrics: MetricsAt,
    /// The HTTP front's deadlines and caps (`HTTP_*`, `[http]`).
    pub http: comet::serve::Limits,
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

    /// From a settings file's text and an environment lookup. Each setting
    /// (its row in [`table::SETTINGS`]): its environment variable, else its
    /// file key, else its default; all three pass the same validation
    /// ([`Reader`]).
    pub fn from_sources(
        file: Option<&str>,
        path: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut r = Reader::new(&env, file, path)?;
        let config = Self::read(&mut r)?;
        r.finish()?;
        Ok(config)
    }

    fn read(r: &mut Reader) -> Result<Config, ConfigError> {
        let comet = Settings {
            connection_timeout: r.duration(setting!("comet.poll_timeout"))?,
            idle_timeout: r.duration(setting!("comet.idle_timeout"))?,
            reap_interval: r.duration(setting!("comet.reap_interval"))?,
            max_polls_per_client: r.count(setting!("comet.max_polls_per_client"))?,
            max_polls: r.count(setting!("comet.max_polls"))?,
            max_clients: r.count(setting!("comet.max_clients"))?,
            batch_limit: r.count(setting!("comet.batch_limit"))?,
            max_body_bytes: r.count(setting!("comet.max_body_bytes"))?,
            max_display_name_chars: r.count(setting!("chat.max_name_chars"))?,
            provider_timeout: r.duration(setting!("comet.provider_timeout"))?,
            presence_window: r.duration(setting!("comet.presence_window"))?,
            // Not a setting: the library's choice.
            presence_cap: Settings::default().presence_cap,
        };
        if comet.idle_timeout <= comet.connection_timeout {
            return Err(ConfigError::Invalid {
                key: setting!("comet.idle_timeout").var.into(),
                value: format!("{:?}", comet.idle_timeout),
                reason: format!(
                    "must be longer than the poll timeout ({:?}), or clients holding a poll would be removed",
                    comet.connection_timeout
                ),
            });
        }
        let retention = Retention {
            max_messages: r.count(setting!("comet.retention_messages"))?,
            max_age: r.duration(setting!("comet.retention_age"))?,
        };
        let chat = ChatSettings {
            max_name_chars: comet.max_display_name_chars,
            max_message_chars: r.count(setting!("chat.max_message_chars"))?,
            history: r.count(setting!("chat.history"))?,
            cookie_secure: r.flag(setting!("chat.cookie_secure"))?,
            send_rate: r.count(setting!("chat.send_rate"))?,
            send_burst: r.count(setting!("chat.send_burst"))?,
            login_rate: r.count(setting!("chat.login_rate"))?,
            login_burst: r.count(setting!("chat.login_burst"))?,
            trusted_proxies: trusted_proxies(r)?,
        };
        Ok(Config {
            comet,
            retention,
            chat,
            redis_url: redis_url(r)?,
            redis_wait_replicas: r.count(setting!("comet.redis_wait_replicas"))?,
            redis_wait_timeout: r.duration(setting!("comet.redis_wait_timeout"))?,
            metrics: metrics(r)?,
            http: http::limits(r)?,
        })
    }
}

/// `COMET_REDIS_URL`: empty (the default) means none.
fn redis_url(r: &mut Reader) -> Result<Option<RedisUrl>, ConfigError> {
    let found = r.other(setting!("comet.redis_url"), Kind::RedisUrl);
    match found.value.as_str().map(str::trim) {
        Some("") => Ok(None),
        Some(url) => Ok(Some(RedisUrl::new(url.to_owned()).map_err(|reason| {
            found.invalid_showing(format!("{:?}", redact(url)), reason)
        })?)),
        None => Err(found.invalid("expected a redis:// URL")),
    }
}

/// `COMET_METRICS`: `same`, `off`, or an address of its own.
fn metrics(r: &mut Reader) -> Result<MetricsAt, ConfigError> {
    const EXPECTED: &str = "expected same, off, or an address such as 127.0.0.1:9100";
    let found = r.other(setting!("comet.metrics"), Kind::Metrics);
    match found.value.as_str().map(str::trim) {
        Some("same") => Ok(MetricsAt::Same),
        Some("off") => Ok(MetricsAt::Off),
        Some(addr) => Ok(MetricsAt::Separate(
            addr.parse().map_err(|_| found.invalid(EXPECTED))?,
        )),
        None => Err(found.invalid(EXPECTED)),
    }
}

/// `CHAT_TRUSTED_PROXIES`: addresses or networks (`10.0.0.0/8, ::1`),
/// comma-separated in the environment, an array of strings in the file.
fn trusted_proxies(r: &mut Reader) -> Result<Vec<crate::peer::Cidr>, ConfigError> {
    const EXPECTED: &str =
        "expected IP addresses or networks such as 10.0.0.0/8, separated by commas";
    let found = r.other(setting!("chat.trusted_proxies"), Kind::Networks);
    let items: Vec<String> = match &found.value {
        toml::Value::String(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| found.invalid(EXPECTED))?,
        _ => return Err(found.invalid(EXPECTED)),
    };
    items
        .iter()
        .map(|item| {
            crate::peer::Cidr::parse(item)
                .ok_or_else(|| found.invalid_showing(item.clone(), EXPECTED))
        })
        .collect()
}

#[cfg(test)]
mod tests;
