//! Runtime settings: `Leptos.toml` (or the file named by `COMET_CONFIG`),
//! then environment variables, then the built-in defaults for anything
//! neither sets. A bad value stops start-up with a message naming it: a
//! server that silently ignores `COMET_POLL_TIMEOUT=abc` is worse than one
//! that does not start.

mod http;
mod read;
mod redis_url;

pub use read::parse_duration;
pub use redis_url::{redact, RedisUrl};

use comet::{Retention, Settings};
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
            provider_timeout: r.duration(
                "COMET_PROVIDER_TIMEOUT",
                "comet.provider_timeout",
                defaults.provider_timeout,
                Duration::from_secs(60),
            )?,
            presence_window: r.duration(
                "COMET_PRESENCE_WINDOW",
                "comet.presence_window",
                defaults.presence_window,
                Duration::from_secs(10),
            )?,
            presence_cap: defaults.presence_cap,
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
            // 10 a minute after a burst of 20: a household or office behind
            // one NAT logging in together, and each retyping a taken name
            // once or twice, stays under it; a script filling the chat from
            // one address gets 20 names, then one every 6 seconds.
            login_rate: r.count("CHAT_LOGIN_RATE", "chat.login_rate", 10, 0..=1_000_000)?,
            login_burst: r.count("CHAT_LOGIN_BURST", "chat.login_burst", 20, 1..=1_000_000)?,
            trusted_proxies: trusted_proxies(&mut r)?,
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
        let http = http::limits(&mut r)?;
        r.finish()?;
        Ok(Config {
            comet,
            retention,
            chat,
            redis_url,
            metrics,
            http,
        })
    }
}

/// `CHAT_TRUSTED_PROXIES`: addresses or networks (`10.0.0.0/8, ::1`),
/// comma-separated in the environment, an array of strings in the file.
fn trusted_proxies(r: &mut Reader) -> Result<Vec<crate::peer::Cidr>, ConfigError> {
    const EXPECTED: &str =
        "expected IP addresses or networks such as 10.0.0.0/8, separated by commas";
    let Some(found) = r.find("CHAT_TRUSTED_PROXIES", "chat.trusted_proxies") else {
        return Ok(Vec::new());
    };
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
