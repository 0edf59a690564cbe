//! How one setting is read: the environment variable if set, else the
//! settings file's key, else the default; and the one validation all three
//! pass. Which variable, key, default and bounds: the setting's row in
//! [`SETTINGS`](super::table::SETTINGS).
//!
//! Why one path for every source: a check written twice drifts. Before
//! this reader a count of `0` in `Leptos.toml` was accepted where the same
//! value in the environment was refused, and a duration too large for
//! [`Duration`] panicked instead of naming its variable. Here every value,
//! whatever its source, becomes a [`toml::Value`] first (an environment
//! value and a default are strings), is parsed by the same function and
//! checked against the same bounds; an error names where the value came
//! from (`COMET_MAX_POLLS` or `comet.max_polls in Leptos.toml`).

use super::table::{Kind, Setting};
use super::ConfigError;
use std::collections::BTreeSet;
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
    read: BTreeSet<&'static str>,
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

    /// The value of `setting`: its variable if set, else its key in the
    /// file, else its default (read as if it had been set to it).
    fn value(&mut self, setting: &'static Setting) -> Found {
        self.read.insert(setting.key);
        if let Some(text) = (self.env)(setting.var) {
            return Found {
                name: setting.var.to_owned(),
                value: Value::String(text),
            };
        }
        if let Some(value) = self.in_file(setting.key) {
            return Found {
                name: format!("{} in {}", setting.key, self.path),
                value,
            };
        }
        Found {
            name: format!("the default of {}", setting.var),
            value: Value::String(setting.default.to_owned()),
        }
    }

    /// As [`value`](Self::value), for a setting of `kind` whose parser
    /// lives beside its type.
    pub fn other(&mut self, setting: &'static Setting, kind: Kind) -> Found {
        assert_eq!(setting.kind, kind, "{} in SETTINGS", setting.key);
        self.value(setting)
    }

    fn in_file(&self, key: &str) -> Option<Value> {
        let (section, key) = key.split_once('.')?;
        self.file.get(section)?.as_table()?.get(key).cloned()
    }

    /// A [`Kind::Duration`]: between 1 ms and its `max`; a string in the
    /// environment, a string or a number of seconds in the file.
    pub fn duration(&mut self, setting: &'static Setting) -> Result<Duration, ConfigError> {
        let Kind::Duration { max } = setting.kind else {
            panic!("{} is not a duration in SETTINGS", setting.key);
        };
        let found = self.value(setting);
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

    /// A [`Kind::Count`]: a whole number within its bounds, as `T` (the
    /// bounds fit in `T`).
    pub fn count<T: TryFrom<u64>>(&mut self, setting: &'static Setting) -> Result<T, ConfigError> {
        let Kind::Count { min, max } = setting.kind else {
            panic!("{} is not a count in SETTINGS", setting.key);
        };
        let found = self.value(setting);
        let parsed = match &found.value {
            Value::String(text) => text.trim().parse::<u64>().ok(),
            Value::Integer(n) => u64::try_from(*n).ok(),
            _ => None,
        };
        let reason = match min {
            0 => format!("expected a whole number up to {max} (0: no limit)"),
            low => format!("expected a whole number from {low} to {max}"),
        };
        parsed
            .filter(|n| (min..=max).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| found.invalid(reason))
    }

    /// A [`Kind::Flag`]: `true`/`false` (also `1`/`0`, `yes`/`no` as a string).
    pub fn flag(&mut self, setting: &'static Setting) -> Result<bool, ConfigError> {
        let found = self.other(setting, Kind::Flag);
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

    /// The keys read so far.
    #[cfg(test)]
    pub fn read(&self) -> &BTreeSet<&'static str> {
        &self.read
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
                if !self.read.contains(full.as_str()) {
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
