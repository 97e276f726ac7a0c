//! Rendering the effective settings with secrets redacted.

use serde_json::{Value, json};

use crate::Loaded;
use crate::load::{API_KEY_ENV, LIVE_TRADING_ENV};

/// Hides the password of a `scheme://user:password@host` URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// The effective configuration as JSON, secrets redacted, with where it
/// came from.
pub fn effective_json(loaded: &Loaded) -> Value {
    let mut settings = serde_json::to_value(&loaded.settings).unwrap_or(Value::Null);
    if let Some(url) = settings.pointer_mut("/database/url")
        && let Some(s) = url.as_str()
    {
        *url = Value::String(redact_url(s));
    }
    json!({
        "source": {
            "file": loaded.path.display().to_string(),
            "file_found": loaded.file_found,
            "environment_overrides": loaded.env_overrides,
        },
        "secrets": {
            API_KEY_ENV: if loaded.api_key_present { "set (redacted)" } else { "not set" },
            LIVE_TRADING_ENV: if loaded.settings.broker.trading_mode == "live" { "enabled" } else { "not needed (paper)" },
        },
        "settings": settings,
    })
}

/// The effective configuration as TOML, secrets redacted, headed by
/// comments saying where it came from.
pub fn effective_toml(loaded: &Loaded) -> String {
    let full = effective_json(loaded);
    let mut out = String::new();
    out.push_str(&format!(
        "# effective configuration\n# file: {} ({})\n",
        loaded.path.display(),
        if loaded.file_found {
            "found"
        } else {
            "not found: defaults"
        }
    ));
    if loaded.env_overrides.is_empty() {
        out.push_str("# environment overrides: none\n");
    } else {
        out.push_str(&format!(
            "# environment overrides: {}\n",
            loaded.env_overrides.join(", ")
        ));
    }
    out.push_str(&format!(
        "# {API_KEY_ENV}: {}\n\n",
        if loaded.api_key_present {
            "set (redacted)"
        } else {
            "not set"
        }
    ));
    let body = full
        .get("settings")
        .and_then(|s| toml::to_string_pretty(s).ok())
        .unwrap_or_default();
    out.push_str(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_url_password_is_redacted() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db/trader"),
            "postgres://bob:***@db/trader"
        );
        assert_eq!(
            redact_url("sqlite://data/trader.db"),
            "sqlite://data/trader.db"
        );
    }
}
