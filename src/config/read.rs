//! How one setting is read: the environment variable if set, else the
//! settings file's key, else the default; and the one validation both pass.
//!
//! Why one path for both sources: a check written twice drifts. Before
//! this reader a count of `0` in `Leptos.toml` was accepted where the same
//! value in the environment was refused, and a duration too large for
//! [`Duration`] panicked instead of naming its variable. Here every value,
//! whatever its source, becomes a [`toml::Value`] first (an environment
//! value is a string), is parsed by the same function and checked against
//! the same bounds; an error names where the value came from
//! (`COMET_MAX_POLLS` or `comet.max_polls in Leptos.toml`).
//!
//! Every setting has an upper bound as well as a lower one: a poll timeout
//! of a thousand years is not a choice anyone makes on purpose, and a
//! number that large is where arithmetic on it (deadlines, `Instant + d`)
//! would overflow and panic much later, far from its cause.

use super::ConfigError;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::time::Duration;
use toml::Value;

/// The shortest duration any setting accepts: below it a timer would
/// spin rather than wait.
const SHORTEST: Duration = Duration::from_millis(1);

/// Reads settings from an environment lookup and a parsed settings file,
/// remembering which file keys it read so the rest can be refused as
/// unknown (a typo in a key must not be silently ignored).
pub(super) struct Reader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: toml::Table,
    path: &'a str,
    read: BTreeSet<String>,
}

/// A value found for a setting, with the name an error should give it.
pub(super) struct Found {
    /// `COMET_POLL_TIMEOUT`, or `comet.poll_timeout in Leptos.toml`.
    pub name: String,
    pub value: Value,
}

impl Found {
    pub fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        self.invalid_showing(shown(&self.value), reason)
    }

    /// As [`invalid`](Self::invalid), showing `value` instead of the value
    /// read (a secret's redacted form).
    pub fn invalid_showing(&self, value: String, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: self.name.clone(),
            value,
            reason: reason.into(),
        }
    }
}

impl<'a> Reader<'a> {
    /// `file` is the settings file's text (none: no file), `path` its name
    /// for errors.
    pub fn new(
        env: &'a dyn Fn(&str) -> Option<String>,
        file: Option<&str>,
        path: &'a str,
    ) -> Result<Self, ConfigError> {
        let file = match file {
            Some(text) => text
                .parse::<toml::Table>()
                .map_err(|source| ConfigError::Parse {
                    path: path.into(),
                    source: Box::new(source),
                })?,
            None => toml::Table::new(),
        };
        Ok(Self {
            env,
            file,
            path,
            read: BTreeSet::new(),
        })
    }

    /// The raw value of a setting: `env_key` in the environment, else
    /// `file_key` (`section.key`) in the file.
    pub fn find(&mut self, env_key: &str, file_key: &str) -> Option<Found> {
        self.read.insert(file_key.to_owned());
        if let Some(text) = (self.env)(env_key) {
            return Some(Found {
                name: env_key.to_owned(),
                value: Value::String(text),
            });
        }
        let (section, key) = file_key.split_once('.')?;
        let value = self.file.get(section)?.as_table()?.get(key)?.clone();
        Some(Found {
            name: format!("{file_key} in {}", self.path),
            value,
        })
    }

    /// A duration between 1 ms and `max`: `25s`, `500ms`, `2m`, `1h`, or
    /// a number of seconds (a string in the environment, a string or a
    /// number in the file).
    pub fn duration(
        &mut self,
        env_key: &str,
        file_key: &str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(found) = self.find(env_key, file_key) else {
            return Ok(default);
        };
        let parsed = match &found.value {
            Value::String(text) => parse_duration(text),
            Value::Integer(n) => u64::try_from(*n).ok().map(Duration::from_secs),
            Value::Float(x) => seconds(*x, 1.0),
            _ => None,
        };
        parsed
            .filter(|d| (SHORTEST..=max).contains(d))
            .ok_or_else(|| {
                found.invalid(format!(
                    "expected a duration from 1ms to {} such as 25s, 500ms, 2m or 1h",
                    human(max)
                ))
            })
    }

    /// A whole number within `range`, as `T` (the range fits in `T`).
    pub fn count<T: TryFrom<u64>>(
        &mut self,
        env_key: &str,
        file_key: &str,
        default: T,
        range: RangeInclusive<u64>,
    ) -> Result<T, ConfigError> {
        let Some(found) = self.find(env_key, file_key) else {
            return Ok(default);
        };
        let parsed = match &found.value {
            Value::String(text) => text.trim().parse::<u64>().ok(),
            Value::Integer(n) => u64::try_from(*n).ok(),
            _ => None,
        };
        let reason = match range.start() {
            0 => format!(
                "expected a whole number up to {} (0: no limit)",
                range.end()
            ),
            low => format!("expected a whole number from {low} to {}", range.end()),
        };
        parsed
            .filter(|n| range.contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| found.invalid(reason))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no` in the environment).
    pub fn flag(
        &mut self,
        env_key: &str,
        file_key: &str,
        default: bool,
    ) -> Result<bool, ConfigError> {
        let Some(found) = self.find(env_key, file_key) else {
            return Ok(default);
        };
        match &found.value {
            Value::Boolean(b) => Ok(*b),
            Value::String(text) => match text.trim() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" => Ok(false),
                _ => Err(found.invalid("expected true or false")),
            },
            _ => Err(found.invalid("expected true or false")),
        }
    }

    /// Refuses any file key no setting read: a misspelt key would
    /// otherwise leave its setting at the default without a word.
    pub fn finish(self) -> Result<(), ConfigError> {
        for (section, table) in &self.file {
            let Some(table) = table.as_table() else {
                return Err(self.unknown(section));
            };
            for key in table.keys() {
                let full = format!("{section}.{key}");
                if !self.read.contains(&full) {
                    return Err(self.unknown(&full));
                }
            }
        }
        Ok(())
    }

    fn unknown(&self, key: &str) -> ConfigError {
        ConfigError::Unknown {
            key: key.into(),
            path: self.path.into(),
        }
    }
}

/// `25s`, `500ms`, `2m`, `1h`, or a plain number of seconds (`1.5`); `None`
/// for anything else, including a number too large for a [`Duration`].
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
    seconds(number, scale)
}

/// `number × scale` seconds, or `None` if negative, not finite, or beyond
/// what a [`Duration`] holds (`from_secs_f64` would panic there).
fn seconds(number: f64, scale: f64) -> Option<Duration> {
    if number < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(number * scale).ok()
}

/// A bound as the operator would write it (`1h`, `10m`, `30s`).
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// A value as it appears in an error: strings quoted, numbers bare.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}
