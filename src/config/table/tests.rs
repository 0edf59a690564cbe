//! The table against everything that repeats it: the reader, the `comet`
//! crate's defaults, the README's "Configuration" table and `Leptos.toml`.

use super::{Kind, SETTINGS};
use crate::config::read::Reader;
use crate::config::{Config, MetricsAt};
use std::collections::BTreeSet;

/// Variables in the README's table that are not settings of this reader:
/// Leptos reads the address, `Config::load` the file's name, `tracing` the
/// log filter.
const READ_ELSEWHERE: [&str; 3] = ["LEPTOS_SITE_ADDR", "COMET_CONFIG", "RUST_LOG"];

/// The configuration from `file` and `env`, as `Debug` shows it (every
/// field, the Redis password hidden).
fn config_from(file: Option<&str>, env: &[(&str, &str)]) -> String {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    match Config::from_sources(file, "Leptos.toml", lookup) {
        Ok(config) => format!("{config:?}"),
        Err(err) => panic!("{file:?} {env:?}: {err}"),
    }
}

/// `[section]\nkey = value`, for a file setting only `key` to `value`.
fn file_setting(key: &str, value: &str) -> String {
    let (section, key) = key.split_once('.').unwrap();
    format!("[{section}]\n{key} = {value}\n")
}

#[test]
fn every_row_is_read_and_nothing_else_is() {
    let env = |_: &str| None;
    let mut r = Reader::new(&env, None, "x").unwrap();
    Config::read(&mut r).unwrap();
    let rows: BTreeSet<&str> = SETTINGS.iter().map(|s| s.key).collect();
    assert_eq!(rows.len(), SETTINGS.len(), "a key has two rows");
    // A key read without a row fails the build (`setting!`); a row no
    // reader asks for shows here.
    let dead: Vec<_> = rows.difference(r.read()).collect();
    assert!(dead.is_empty(), "rows never read: {dead:?}");
    assert_eq!(r.read(), &rows);
}

#[test]
fn each_variable_is_its_key_in_capitals() {
    for s in SETTINGS {
        assert_eq!(s.var, s.key.to_uppercase().replace('.', "_"), "{s:?}");
        assert!(!s.meaning.is_empty() && !s.meaning.contains('\n'), "{s:?}");
    }
}

#[test]
fn the_defaults_are_the_comet_crates_own() {
    let config = Config::from_sources(None, "x", |_| None).unwrap();
    assert_eq!(
        format!("{:?}", config.comet),
        format!("{:?}", comet::Settings::default())
    );
    assert_eq!(config.retention, comet::Retention::default());
    assert_eq!(config.http, comet::serve::Limits::default());
    assert_eq!(config.metrics, MetricsAt::Same);
    assert!(config.redis_url.is_none());
    assert!(config.chat.trusted_proxies.is_empty());
}

/// Each row's default, set in the environment or in the file, gives
/// the configuration nothing set gives: the text parses, within its
/// bounds, to the value used.
#[test]
fn setting_a_value_to_its_default_changes_nothing() {
    let unset = config_from(None, &[]);
    for s in SETTINGS {
        assert_eq!(config_from(None, &[(s.var, s.default)]), unset, "{s:?}");
        let value = match s.kind {
            Kind::Count { .. } | Kind::Flag => s.default.to_owned(),
            _ => format!("{:?}", s.default),
        };
        let file = file_setting(s.key, &value);
        assert_eq!(config_from(Some(&file), &[]), unset, "{file}");
    }
}

/// The first `code` span of a README cell (`` `0` (off) ``: `0`).
fn code(cell: &str) -> Option<&str> {
    let (_, rest) = cell.split_once('`')?;
    Some(rest.split_once('`')?.0)
}

/// The README's configuration tables: (variable, key cell, default cell).
fn readme_rows() -> Vec<(String, String, String)> {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("\n## Configuration\n")
        .expect("README: ## Configuration");
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let var = code(cells[1]).unwrap().to_owned();
            (var, cells[2].to_owned(), cells[3].to_owned())
        })
        .collect()
}

#[test]
fn the_readme_lists_every_setting_with_its_key_and_default() {
    let rows = readme_rows();
    for s in SETTINGS {
        let Some((_, key, default)) = rows.iter().find(|(var, _, _)| var == s.var) else {
            panic!("README's Configuration table has no row for {}", s.var);
        };
        assert_eq!(code(key), Some(s.key), "README, {}: key", s.var);
        // A default in words (unset, empty) is no value.
        assert_eq!(
            code(default).unwrap_or(""),
            s.default,
            "README, {}: default",
            s.var
        );
    }
    for (var, _, _) in &rows {
        assert!(
            SETTINGS.iter().any(|s| s.var == var) || READ_ELSEWHERE.contains(&var.as_str()),
            "README lists {var}, which no row in SETTINGS has"
        );
    }
}

/// `Leptos.toml`'s keys, set or shown in a comment (`# key = value`):
/// (`section.key`, value, commented).
fn leptos_toml_keys() -> Vec<(String, String, bool)> {
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in include_str!("../../../Leptos.toml").lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (text, commented) = match line.strip_prefix("# ") {
            Some(text) => (text, true),
            None => (line, false),
        };
        let Some((key, value)) = text.split_once(" = ") else {
            continue;
        };
        if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.push((format!("{section}.{key}"), value.to_owned(), commented));
        }
    }
    keys
}

#[test]
fn every_key_in_leptos_toml_has_a_row_and_a_shown_default_is_the_default() {
    let keys = leptos_toml_keys();
    assert!(keys.len() >= 20, "{keys:?}");
    let unset = config_from(None, &[]);
    for (key, value, commented) in keys {
        let Some(s) = SETTINGS.iter().find(|s| s.key == key) else {
            panic!("Leptos.toml has {key}, which no row in SETTINGS has");
        };
        let file = file_setting(&key, &value);
        let read = config_from(Some(&file), &[]);
        // A commented-out key shows its default; one without a default
        // (Redis, proxies) shows an example.
        if commented && !s.default.is_empty() {
            assert_eq!(read, unset, "Leptos.toml: {key} = {value}");
        }
    }
}

/// A count's bounds are what the reader takes: both ends accepted (so
/// each fits its field's type), one past either end refused by name.
#[test]
fn a_count_takes_its_bounds_and_nothing_past_them() {
    for s in SETTINGS {
        let Kind::Count { min, max } = s.kind else {
            continue;
        };
        let with = |n: u64| {
            let value = n.to_string();
            Config::from_sources(None, "x", |key| (key == s.var).then(|| value.clone()))
        };
        assert!(with(min).is_ok(), "{s:?}: {min}");
        assert!(with(max).is_ok(), "{s:?}: {max}");
        let past = [min.checked_sub(1), max.checked_add(1)];
        for n in past.into_iter().flatten() {
            let err = with(n).unwrap_err().to_string();
            assert!(err.contains(s.var), "{s:?}: {n}: {err}");
        }
    }
}
