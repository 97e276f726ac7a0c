//! Loading: the TOML file, then `.env`, then the environment, then checks.
//!
//! Validation reports **every** problem at once, each with its key path and
//! where the value came from: unknown keys, values of the wrong type, and
//! values out of range. A value of the wrong type is reported and replaced by
//! its default, so that the range checks of every other key still run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Settings;
use crate::validate::validate;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "TRADER";
/// The environment variable that must be `enabled` for live trading.
pub const LIVE_TRADING_ENV: &str = "TRADER_LIVE_TRADING";
/// The environment variable holding the Anthropic API key.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, e.g. `risk.max_daily_loss`.
    pub key: String,
    pub message: String,
    /// Where the offending value came from (a file, an environment variable).
    pub origin: Option<String>,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)?;
        if let Some(o) = &self.origin {
            write!(f, " (from {o})")?;
        }
        Ok(())
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {path} not found; run `trader-cli init` to write a commented one, or pass --config"
    )]
    NotFound { path: PathBuf },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), list(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where to look for configuration.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub path: PathBuf,
    /// When false, a missing file means "all defaults" (the main job runs
    /// with no setup); when true it is an error.
    pub require_file: bool,
    /// Environment variables (the process environment merged with `.env`).
    pub env: BTreeMap<String, String>,
}

impl LoadOptions {
    /// The process environment, plus a `.env` file in the working directory
    /// for variables the environment does not set.
    pub fn from_process(path: impl Into<PathBuf>, require_file: bool) -> Self {
        LoadOptions {
            path: path.into(),
            require_file,
            env: process_env_with_dotenv(Path::new(".env")),
        }
    }
}

/// The process environment merged with a `.env` file; real variables win.
/// A malformed `.env` line is skipped with a warning, never fatal.
pub fn process_env_with_dotenv(dotenv: &Path) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    if dotenv.exists() {
        match dotenvy::from_path_iter(dotenv) {
            Ok(iter) => {
                for item in iter {
                    match item {
                        Ok((k, v)) => {
                            env.insert(k, v);
                        }
                        Err(e) => tracing::warn!("{}: skipped a line: {e}", dotenv.display()),
                    }
                }
            }
            Err(e) => tracing::warn!("{}: not read: {e}", dotenv.display()),
        }
    }
    for (k, v) in std::env::vars_os() {
        if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
            env.insert(k.to_string(), v.to_string());
        }
    }
    env
}

/// Settings that passed every check, and where they came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub path: PathBuf,
    pub file_found: bool,
    /// Names of the environment variables that overrode a key.
    pub env_overrides: Vec<String>,
    /// Whether an Anthropic API key is present (its value is never kept here).
    pub api_key_present: bool,
    /// The API key itself, for the agent only. Never printed.
    api_key: Option<String>,
}

impl Loaded {
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }
}

/// The environment variable that overrides `key` (`risk.max_daily_loss` →
/// `TRADER__RISK__MAX_DAILY_LOSS`).
pub fn env_var_for(key: &str) -> String {
    format!(
        "{ENV_PREFIX}__{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// Loads, merges and validates.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let file_found = opts.path.exists();
    if !file_found && opts.require_file {
        return Err(ConfigError::NotFound {
            path: opts.path.clone(),
        });
    }
    let mut file_tree = if file_found {
        let text = std::fs::read_to_string(&opts.path).map_err(|e| ConfigError::Read {
            path: opts.path.clone(),
            message: e.to_string(),
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: opts.path.clone(),
            message: e.to_string(),
        })?;
        serde_json::to_value(table).map_err(|e| ConfigError::Parse {
            path: opts.path.clone(),
            message: e.to_string(),
        })?
    } else {
        Value::Object(Default::default())
    };

    // Environment overrides, through the `config` crate so that the naming
    // and parsing rules are the usual ones.
    let prefixed: config::Map<String, String> = opts
        .env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let env_overrides: Vec<String> = prefixed.keys().cloned().collect();
    let env_cfg = config::Config::builder()
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(prefixed)),
        )
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| ConfigError::Parse {
            path: PathBuf::from("environment"),
            message: e.to_string(),
        })?;
    merge(&mut file_tree, env_cfg);

    let defaults = serde_json::to_value(Settings::default()).map_err(|e| ConfigError::Parse {
        path: opts.path.clone(),
        message: e.to_string(),
    })?;
    let origin = |key: &str| -> Option<String> {
        let var = env_var_for(key);
        if opts.env.contains_key(&var) {
            Some(format!("environment variable {var}"))
        } else if file_found {
            Some(opts.path.display().to_string())
        } else {
            None
        }
    };
    let mut issues = Vec::new();
    let mut effective = defaults.clone();
    check_tree(
        "",
        &file_tree,
        &defaults,
        &mut effective,
        &mut issues,
        &origin,
    );

    let settings: Settings = match serde_json::from_value(effective) {
        Ok(s) => s,
        Err(e) => {
            issues.push(ConfigIssue {
                key: "(configuration)".into(),
                message: e.to_string(),
                origin: None,
            });
            Settings::default()
        }
    };
    for mut issue in validate(&settings, &opts.env) {
        if issue.origin.is_none() {
            issue.origin = origin(&issue.key);
        }
        issues.push(issue);
    }
    if !issues.is_empty() {
        return Err(ConfigError::Invalid(issues));
    }
    let api_key = opts
        .env
        .get(API_KEY_ENV)
        .filter(|k| !k.trim().is_empty())
        .cloned();
    Ok(Loaded {
        settings,
        path: opts.path.clone(),
        file_found,
        env_overrides,
        api_key_present: api_key.is_some(),
        api_key,
    })
}

/// Deep-merges `over` into `base`: tables merge, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Walks the user's tree against the defaults: unknown keys and wrong types
/// become issues; values of the right type are written into `effective`.
fn check_tree(
    path: &str,
    user: &Value,
    default: &Value,
    effective: &mut Value,
    issues: &mut Vec<ConfigIssue>,
    origin: &dyn Fn(&str) -> Option<String>,
) {
    match default {
        Value::Object(def_map) => {
            let Value::Object(user_map) = user else {
                issues.push(ConfigIssue {
                    key: path.to_string(),
                    message: format!("expected a table of keys, got {}", describe(user)),
                    origin: origin(path),
                });
                return;
            };
            for (k, v) in user_map {
                let key = join(path, k);
                match (def_map.get(k), effective.get_mut(k)) {
                    (Some(d), Some(slot)) => check_tree(&key, v, d, slot, issues, origin),
                    _ => {
                        let known: Vec<&String> = def_map.keys().collect();
                        issues.push(ConfigIssue {
                            message: unknown_key_message(path, k, &known),
                            key,
                            origin: origin(&join(path, k)),
                        });
                    }
                }
            }
        }
        _ => match coerce(user, default) {
            Ok(v) => *effective = v,
            Err(expected) => issues.push(ConfigIssue {
                key: path.to_string(),
                message: format!("expected {expected}, got {}", describe(user)),
                origin: origin(path),
            }),
        },
    }
}

/// Accepts `user` where `default` has the same kind; integers are accepted
/// for floats, and (from the environment) numbers and booleans for text.
fn coerce(user: &Value, default: &Value) -> Result<Value, &'static str> {
    match default {
        Value::Bool(_) => match user {
            Value::Bool(_) => Ok(user.clone()),
            _ => Err("true or false"),
        },
        Value::Number(n) if n.is_f64() => match user {
            Value::Number(_) => Ok(user.clone()),
            _ => Err("a number"),
        },
        Value::Number(_) => match user {
            Value::Number(u) if u.is_i64() || u.is_u64() => Ok(user.clone()),
            _ => Err("a whole number"),
        },
        Value::String(_) => match user {
            Value::String(_) => Ok(user.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            _ => Err("text (in quotes)"),
        },
        _ => Ok(user.clone()),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a table".into(),
    }
}

fn unknown_key_message(section: &str, key: &str, known: &[&String]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut msg = "unknown key".to_string();
    if key.contains("api_key") || key.contains("secret") || key.contains("password") {
        msg.push_str(&format!(
            "; secrets are never read from the file: set the {API_KEY_ENV} environment variable"
        ));
    } else if let Some((_, k)) = best {
        msg.push_str(&format!("; did you mean `{}`?", join(section, k)));
    } else {
        let names: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
        msg.push_str(&format!("; known keys here: {}", names.join(", ")));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trader.toml");
        std::fs::write(&path, text).unwrap();
        load(&LoadOptions {
            path,
            require_file: true,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    fn issues(r: Result<Loaded, ConfigError>) -> Vec<ConfigIssue> {
        match r {
            Err(ConfigError::Invalid(i)) => i,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("expected issues"),
        }
    }

    #[test]
    fn test_template_parses_to_the_defaults() {
        let loaded = load_text(crate::TEMPLATE, &[]).unwrap();
        assert_eq!(loaded.settings, Settings::default());
    }

    #[test]
    fn test_empty_file_gives_defaults() {
        assert_eq!(load_text("", &[]).unwrap().settings, Settings::default());
    }

    #[test]
    fn test_missing_default_file_gives_defaults_but_required_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let opts = LoadOptions {
            path: path.clone(),
            require_file: false,
            env: BTreeMap::new(),
        };
        assert!(!load(&opts).unwrap().file_found);
        let opts = LoadOptions {
            require_file: true,
            ..opts
        };
        assert!(matches!(load(&opts), Err(ConfigError::NotFound { .. })));
    }

    #[test]
    fn test_three_mistakes_are_all_reported_with_key_paths() {
        let text = r#"
[strategy]
position_size = "five"
[risk]
max_daily_loss = 0.02
max_corelation = 0.5
"#;
        let found = issues(load_text(text, &[]));
        let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(keys.contains(&"strategy.position_size"));
        assert!(keys.contains(&"risk.max_daily_loss"));
        assert!(keys.contains(&"risk.max_corelation"));
        let unknown = found
            .iter()
            .find(|i| i.key == "risk.max_corelation")
            .unwrap();
        assert!(
            unknown.message.contains("risk.max_correlation"),
            "{unknown}"
        );
    }

    #[test]
    fn test_environment_overrides_the_file_and_is_named_in_errors() {
        let loaded = load_text(
            "[risk]\nmax_daily_loss = -0.03\n",
            &[
                ("TRADER__RISK__MAX_DAILY_LOSS", "-0.01"),
                ("TRADER__STRATEGY__OTM_RANGE__MIN", "0.16"),
            ],
        )
        .unwrap();
        assert_eq!(loaded.settings.risk.max_daily_loss, -0.01);
        assert_eq!(loaded.settings.strategy.otm_range.min, 0.16);
        let found = issues(load_text(
            "",
            &[("TRADER__RISK__MAX_POSITIONS_PER_DAY", "lots")],
        ));
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].origin.as_deref(),
            Some("environment variable TRADER__RISK__MAX_POSITIONS_PER_DAY")
        );
    }

    #[test]
    fn test_api_key_in_file_is_refused_and_points_to_the_environment() {
        let found = issues(load_text("[agent]\napi_key = \"sk-123\"\n", &[]));
        assert_eq!(found[0].key, "agent.api_key");
        assert!(found[0].message.contains(API_KEY_ENV));
    }

    #[test]
    fn test_api_key_comes_from_the_environment_only() {
        let loaded = load_text("", &[(API_KEY_ENV, "sk-test")]).unwrap();
        assert!(loaded.api_key_present);
        assert_eq!(loaded.api_key(), Some("sk-test"));
    }

    #[test]
    fn test_malformed_toml_names_the_file() {
        let r = load_text("[risk\nmax = ", &[]);
        assert!(matches!(r, Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn test_integer_key_refuses_a_fraction() {
        let found = issues(load_text("[strategy]\nposition_size = 5.5\n", &[]));
        assert_eq!(found[0].key, "strategy.position_size");
        assert!(found[0].message.contains("whole number"));
    }
}
