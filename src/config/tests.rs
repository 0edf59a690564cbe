//! The settings' parsing and validation.

use super::*;
use std::time::Duration;

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
    let err =
        Config::from_sources(Some("[comet]\nbogus = 1\n"), "Leptos.toml", env_of(&[])).unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
}

#[test]
fn idle_timeout_must_exceed_poll_timeout() {
    let env = env_of(&[("COMET_POLL_TIMEOUT", "30s"), ("COMET_IDLE_TIMEOUT", "30s")]);
    assert!(Config::from_sources(None, "x", env).is_err());
}

#[test]
fn the_shipped_leptos_toml_is_valid() {
    let file = include_str!("../../Leptos.toml");
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
    let err = Config::from_sources(None, "x", env_of(&[("COMET_POLL_TIMEOUT", "2h")])).unwrap_err();
    assert!(err.to_string().contains("1h"), "{err}");
    let err =
        Config::from_sources(None, "x", env_of(&[("COMET_REAP_INTERVAL", "0.1ms")])).unwrap_err();
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
    let err =
        Config::from_sources(None, "x", env_of(&[("COMET_PROVIDER_TIMEOUT", "0")])).unwrap_err();
    assert!(err.to_string().contains("COMET_PROVIDER_TIMEOUT"), "{err}");
    let err =
        Config::from_sources(None, "x", env_of(&[("COMET_PROVIDER_TIMEOUT", "soon")])).unwrap_err();
    assert!(err.to_string().contains("COMET_PROVIDER_TIMEOUT"), "{err}");
}

#[test]
fn the_shipped_file_sets_the_address_limits_and_may_list_proxies() {
    let shipped = include_str!("../../Leptos.toml");
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
    let err = Config::from_sources(None, "x", env_of(&[("CHAT_LOGIN_BURST", "0")])).unwrap_err();
    assert!(err.to_string().contains("CHAT_LOGIN_BURST"), "{err}");
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
        comet::serve::Limits::default().keepalive_timeout
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
fn presence_window_comes_from_env_or_file_and_is_validated() {
    let config = Config::from_sources(None, "x", env_of(&[])).unwrap();
    assert_eq!(config.comet.presence_window, Duration::from_millis(250));
    let file = "[comet]\npresence_window = \"100ms\"\n";
    let config = Config::from_sources(Some(file), "x", env_of(&[])).unwrap();
    assert_eq!(config.comet.presence_window, Duration::from_millis(100));
    let env = env_of(&[("COMET_PRESENCE_WINDOW", "1s")]);
    let config = Config::from_sources(Some(file), "x", env).unwrap();
    assert_eq!(config.comet.presence_window, Duration::from_secs(1));
    const BAD: [&[(&str, &str)]; 3] = [
        &[("COMET_PRESENCE_WINDOW", "0")],
        &[("COMET_PRESENCE_WINDOW", "soon")],
        &[("COMET_PRESENCE_WINDOW", "1h")],
    ];
    for bad in BAD {
        let err = Config::from_sources(None, "x", env_of(bad)).unwrap_err();
        assert!(
            err.to_string().contains("COMET_PRESENCE_WINDOW"),
            "{bad:?}: {err}"
        );
    }
}
