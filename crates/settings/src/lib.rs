//! # settings
//!
//! **Owns:** the configuration of `traderd` and `trader-cli`: the settings
//! tree with its defaults, the self-documenting template
//! (`config/trader.example.toml`), loading (TOML file, then `.env`, then
//! `TRADER__SECTION__KEY` environment variables), validation that reports
//! every problem at once with key paths, rendering with secrets redacted, and
//! the process's `tracing` setup.
//!
//! **Must not:** hold secrets in the file (the Anthropic API key is read from
//! the environment only), know about brokers, strategies or the database
//! beyond their settings, or let an invalid configuration through: a
//! [`Loaded`] has passed every check.
//!
//! No feature flags.
#![deny(unsafe_code)]

mod cockpit;
mod load;
pub mod logging;
mod model;
mod show;
mod validate;

pub use cockpit::*;
pub use load::{
    API_KEY_ENV, ConfigError, ConfigIssue, ENV_PREFIX, LIVE_TRADING_ENV, LoadOptions, Loaded,
    config_path, env_var_for, load, process_env_with_dotenv,
};
pub use model::*;
pub use show::{effective_json, effective_toml, redact_url};
pub use validate::validate;

/// The commented configuration template that `trader-cli init` writes.
pub const TEMPLATE: &str = include_str!("../../../config/trader.example.toml");

/// The default configuration file name, in the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "trader.toml";

#[cfg(test)]
mod template_tests {
    use super::*;

    /// Every key of the settings tree appears in the template with a comment
    /// line above it (its documentation).
    #[test]
    fn test_every_key_is_documented_in_the_template() {
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        let mut leaves = Vec::new();
        collect_leaves("", &defaults, &mut leaves);
        let lines: Vec<&str> = TEMPLATE.lines().collect();
        for key in leaves {
            let (section, name) = key.rsplit_once('.').unwrap_or(("", &key));
            // Range keys are written inline as `name = { min = .., max = .. }`.
            let (section, name) = if name == "min" || name == "max" {
                section.rsplit_once('.').unwrap_or(("", section))
            } else {
                (section, name)
            };
            let header = format!("[{section}]");
            let start = lines.iter().position(|l| l.trim() == header);
            let Some(start) = start else {
                panic!("section {header} of {key} missing from the template")
            };
            let line = lines[start + 1..]
                .iter()
                .take_while(|l| !l.trim_start().starts_with('['))
                .position(|l| l.starts_with(&format!("{name} =")))
                .map(|i| i + start + 1);
            let Some(line) = line else {
                panic!("{key} missing from section {header} of the template")
            };
            assert!(
                lines[line - 1].trim_start().starts_with('#'),
                "{key} has no comment above it in the template"
            );
        }
    }

    fn collect_leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    collect_leaves(&p, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
}

#[cfg(test)]
mod params_tests {
    use super::*;

    /// The configuration's defaults and the strategy crate's defaults agree.
    #[test]
    fn test_default_settings_give_the_strategy_defaults() {
        assert_eq!(
            Settings::default().strategy_params(),
            strategy_naked_put::NakedPutParams::default()
        );
    }

    /// The configuration's defaults give the risk crate's defaults.
    #[test]
    fn test_default_settings_give_the_risk_defaults() {
        assert_eq!(
            Settings::default().risk_limits(),
            risk::RiskLimits::default()
        );
    }

    #[test]
    fn test_the_stricter_daily_loss_applies() {
        let mut s = Settings::default();
        s.risk.max_daily_loss = -0.01;
        assert_eq!(s.risk_limits().max_daily_loss, -0.01);
        s.risk.max_daily_loss = -0.05;
        assert_eq!(s.risk_limits().max_daily_loss, -0.02);
    }
}
