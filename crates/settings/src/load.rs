//! Loading: the TOML file, then `.env`, then the environment, then checks.
//!
//! Validation reports **every** problem at once, each with its key path and
//! where the value came from: unknown keys, values of the wrong type, and
//! values out of range. A value of the wrong type is reported and replaced by
//! its default (a bad entry of a list is left out), so that the range checks
//! of every other key still run.
//!
//! The steps: the file and the environment are merged into one JSON tree;
//! a walk against the defaults' tree reports unknown keys and scalars of the
//! wrong kind; then the tree is deserialized, and each error serde finds
//! (a negative number for an unsigned key, a bad list entry, an unknown
//! `kind`) is reported with its path and repaired, until it deserializes;
//! last come the range checks of [`validate`].

use std::collections::{BTreeMap, BTreeSet};
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
        "config file {p} not found; run `trader-cli init --config {p}` to write a commented one",
        p = .path.display()
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

    /// For a command line's `--config` (or `TRADER_CONFIG`): a file named
    /// there must exist; without one, [`crate::DEFAULT_CONFIG_PATH`] is read
    /// if it exists and the defaults apply if not.
    pub fn for_config_arg(explicit: Option<&Path>) -> Self {
        let explicit = explicit.filter(|p| !p.as_os_str().is_empty());
        Self::from_process(config_path(explicit), explicit.is_some())
    }
}

/// The configuration file a command line means: the path it named, else
/// [`crate::DEFAULT_CONFIG_PATH`].
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    explicit.filter(|p| !p.as_os_str().is_empty()).map_or_else(
        || PathBuf::from(crate::DEFAULT_CONFIG_PATH),
        Path::to_path_buf,
    )
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
    let mut tree = if file_found {
        let text = std::fs::read_to_string(&opts.path).map_err(|e| ConfigError::Read {
            path: opts.path.clone(),
            message: e.to_string(),
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: opts.path.clone(),
            message: e.to_string(),
        })?;
        toml_to_json(toml::Value::Table(table))
    } else {
        Value::Object(Default::default())
    };

    let defaults = serde_json::to_value(Settings::default()).map_err(|e| ConfigError::Parse {
        path: opts.path.clone(),
        message: e.to_string(),
    })?;
    let mut issues = Vec::new();
    let (env_tree, env_overrides) = environment_tree(&opts.env, &defaults, &mut issues)?;
    merge(&mut tree, env_tree);

    let origin = |key: &str| -> Option<String> {
        // The variable of the key itself, or of the list or table holding it.
        let mut k = key.split('[').next().unwrap_or(key);
        loop {
            let var = env_var_for(k);
            if opts.env.contains_key(&var) {
                return Some(format!("environment variable {var}"));
            }
            match k.rsplit_once('.') {
                Some((parent, _)) => k = parent,
                None => break,
            }
        }
        file_found.then(|| opts.path.display().to_string())
    };
    let mut effective = defaults.clone();
    check_tree("", &tree, &defaults, &mut effective, &mut issues, &origin);
    let repaired = deserialize_repairing(effective, &defaults, &origin);
    issues.extend(repaired.issues.iter().cloned());
    for mut issue in validate(&repaired.settings, &opts.env) {
        issue.key = repaired.original_key(&issue.key);
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
        settings: repaired.settings,
        path: opts.path.clone(),
        file_found,
        env_overrides,
        api_key_present: api_key.is_some(),
        api_key,
    })
}

/// Single-key tables standing for TOML values JSON has no kind for; the
/// walk then reports them by what they are.
const TOML_DATETIME: &str = "\u{0}toml datetime";
const TOML_NON_FINITE: &str = "\u{0}toml non-finite float";

fn marker(key: &str, text: String) -> Value {
    Value::Object(
        [(key.to_string(), Value::String(text))]
            .into_iter()
            .collect(),
    )
}

/// A TOML value as JSON; dates, times and `nan`/`inf` become markers.
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map_or_else(|| marker(TOML_NON_FINITE, f.to_string()), Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => marker(TOML_DATETIME, d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// The `TRADER__…` variables as a tree, and their names. The `config` crate
/// reads them (its naming rules: `__` between levels, any case); each value
/// is then typed by its key's default: text keys keep the variable's exact
/// text (`0123` stays "0123"), numbers and `true`/`false` are parsed, a list
/// of text is split at commas (`AAPL,MSFT`; empty: no entries). A list of
/// tables (`planted_edges`) cannot be written in one variable: an issue.
fn environment_tree(
    env: &BTreeMap<String, String>,
    defaults: &Value,
    issues: &mut Vec<ConfigIssue>,
) -> Result<(Value, Vec<String>), ConfigError> {
    let prefix = format!("{ENV_PREFIX}__");
    let prefixed: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let names: Vec<String> = prefixed.keys().cloned().collect();
    let mut tree = config::Config::builder()
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(prefixed.clone())),
        )
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| ConfigError::Parse {
            path: PathBuf::from("environment"),
            message: e.to_string(),
        })?;
    for (var, raw) in &prefixed {
        let key = var[prefix.len()..].to_ascii_lowercase().replace("__", ".");
        let path: Vec<Seg> = key.split('.').map(|k| Seg::Key(k.to_string())).collect();
        // Unknown keys and tables are left as parsed: the walk reports them.
        let typed = match get(defaults, &path) {
            Some(Value::String(_)) => Value::String(raw.clone()),
            Some(Value::Bool(_)) => raw
                .trim()
                .to_ascii_lowercase()
                .parse::<bool>()
                .map_or_else(|_| Value::String(raw.clone()), Value::Bool),
            Some(Value::Number(_)) => {
                parse_number(raw.trim()).unwrap_or_else(|| Value::String(raw.clone()))
            }
            Some(Value::Array(_)) if is_text_list(defaults, &path) => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            Some(Value::Array(_)) => {
                remove(&mut tree, &path);
                let name = key.rsplit('.').next().unwrap_or(&key);
                issues.push(ConfigIssue {
                    message: format!(
                        "a list of tables cannot be set from the environment; set {name} in the file"
                    ),
                    key,
                    origin: Some(format!("environment variable {var}")),
                });
                continue;
            }
            _ => continue,
        };
        set(&mut tree, &path, typed);
    }
    Ok((tree, names))
}

fn parse_number(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Some(Value::from(u));
    }
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// Whether the list at `path` holds text (rather than tables).
fn is_text_list(defaults: &Value, path: &[Seg]) -> bool {
    let mut probe = defaults.clone();
    set(
        &mut probe,
        path,
        Value::Array(vec![Value::String("x".into())]),
    );
    serde_json::from_value::<Settings>(probe).is_ok()
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

/// One step of a path into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `broker.sim.chain.planted_edges[0].scope`
fn dotted(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn get<'a>(tree: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

fn get_mut<'a>(tree: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(tree, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Index(i) => v.get_mut(*i),
    })
}

/// Puts `value` at `path`, creating tables on the way (never list entries).
fn set(tree: &mut Value, path: &[Seg], value: Value) {
    let mut node = tree;
    for seg in path {
        node = match seg {
            Seg::Key(k) => {
                if !node.is_object() {
                    *node = Value::Object(Default::default());
                }
                let Value::Object(map) = node else { return };
                map.entry(k.clone()).or_insert(Value::Null)
            }
            Seg::Index(i) => match node.get_mut(*i) {
                Some(n) => n,
                None => return,
            },
        };
    }
    *node = value;
}

fn remove(tree: &mut Value, path: &[Seg]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    match (last, get_mut(tree, parents)?) {
        (Seg::Key(k), Value::Object(map)) => map.remove(k),
        (Seg::Index(i), Value::Array(items)) if *i < items.len() => Some(items.remove(*i)),
        _ => None,
    }
}

/// Walks the user's tree against the defaults: unknown keys and wrong types
/// become issues; values of the right type are written into `effective`.
/// Lists are only checked to be lists here; their entries are checked when
/// the tree is deserialized.
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
            let user_map = match user {
                Value::Object(m) if !is_marker(user) => m,
                _ => {
                    issues.push(ConfigIssue {
                        key: path.to_string(),
                        message: format!("expected a table of keys, got {}", describe(user)),
                        origin: origin(path),
                    });
                    return;
                }
            };
            for (k, v) in user_map {
                let key = join(path, k);
                match (def_map.get(k), effective.get_mut(k)) {
                    (Some(d), Some(slot)) => check_tree(&key, v, d, slot, issues, origin),
                    _ => {
                        let known: Vec<&str> = def_map.keys().map(String::as_str).collect();
                        issues.push(ConfigIssue {
                            message: unknown_key_message(path, k, &known),
                            origin: origin(&key),
                            key,
                        });
                    }
                }
            }
        }
        Value::Array(_) => match user {
            Value::Array(_) => *effective = user.clone(),
            _ => {
                let mut message = format!("expected a list [...], got {}", describe(user));
                let from_env = origin(path).is_some_and(|o| o.starts_with("environment"));
                if user.is_object() && !is_marker(user) && !from_env {
                    message.push_str(&format!("; write each entry under [[{path}]]"));
                }
                issues.push(ConfigIssue {
                    key: path.to_string(),
                    message,
                    origin: origin(path),
                });
            }
        },
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
/// for floats.
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
            _ => Err("text (in quotes)"),
        },
        _ => Ok(user.clone()),
    }
}

/// The text of a marker made by [`toml_to_json`], with its marker key.
fn marker_text(v: &Value) -> Option<(&str, &str)> {
    let Value::Object(m) = v else { return None };
    if m.len() != 1 {
        return None;
    }
    let (k, text) = m.iter().next()?;
    let text = text.as_str()?;
    [TOML_DATETIME, TOML_NON_FINITE]
        .into_iter()
        .find(|key| k == key)
        .map(|key| (key, text))
}

fn is_marker(v: &Value) -> bool {
    marker_text(v).is_some()
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => match marker_text(v) {
            Some((TOML_NON_FINITE, text)) => format!("{text}, which is not a finite number"),
            Some((_, text)) => match (text.contains('-'), text.contains(':')) {
                (true, false) => {
                    format!("a date ({text}) without quotes; write it as text: \"{text}\"")
                }
                (true, true) => format!("a date-time ({text}) without quotes; put it in quotes"),
                _ => format!("a time ({text}) without quotes; put it in quotes"),
            },
            None => "a table".into(),
        },
    }
}

fn unknown_key_message(section: &str, key: &str, known: &[&str]) -> String {
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
        msg.push_str(&format!("; known keys here: {}", known.join(", ")));
    }
    msg
}

/// Most repairs of one deserialization; each removes a value or puts a
/// default in its place, so a real configuration needs far fewer.
const MAX_REPAIRS: usize = 512;

/// Settings deserialized from a tree, and the problems found on the way.
struct Repaired {
    settings: Settings,
    issues: Vec<ConfigIssue>,
    /// For each list that lost entries (by its key path), the original
    /// position of every entry kept, so keys name the user's positions.
    kept: BTreeMap<String, Vec<usize>>,
}

/// Deserializes `tree`; each error is reported with its key path, then the
/// value is repaired (the default put in its place; a bad field of a list
/// entry taken out, then the entry) and deserialization tried again, so that
/// every problem is reported and the range checks run on all the rest.
fn deserialize_repairing(
    mut tree: Value,
    defaults: &Value,
    origin: &dyn Fn(&str) -> Option<String>,
) -> Repaired {
    let mut out = Repaired {
        settings: Settings::default(),
        issues: Vec::new(),
        kept: BTreeMap::new(),
    };
    // Fields taken out of list entries by a repair: that serde then misses
    // them is no news.
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    for _ in 0..MAX_REPAIRS {
        let (path, message) = match try_settings(&tree) {
            Ok(settings) => {
                out.settings = settings;
                return out;
            }
            Err(e) => e,
        };
        let (path, missing) = locate(&tree, path, &message);
        let key = dotted(&path);
        if !(missing && dropped.contains(&key)) {
            let message = if missing {
                missing_message(&tree, &path)
            } else {
                let section = path
                    .split_last()
                    .map_or_else(String::new, |(_, p)| out.original_key(&dotted(p)));
                explain(&message, &section, get(&tree, &path))
            };
            let shown = out.original_key(&key);
            out.issues.push(ConfigIssue {
                origin: origin(&shown),
                key: shown,
                message,
            });
        }
        if !out.repair(&mut tree, defaults, &path, missing, &mut dropped) {
            break;
        }
    }
    // Not repairable: the range checks run on the defaults.
    out
}

/// The settings in `tree`, or the first error with its path (as far as
/// serde tracks it) and serde's message.
fn try_settings(tree: &Value) -> Result<Settings, (Vec<Seg>, String)> {
    let err = match serde_path_to_error::deserialize::<_, Settings>(tree) {
        Ok(settings) => return Ok(settings),
        Err(err) => err,
    };
    let mut path = Vec::new();
    for seg in err.path().iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => path.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => path.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                break;
            }
        }
    }
    Err((path, err.inner().to_string()))
}

/// The key an error is about, and whether it is a missing field. Inside a
/// table with a `kind` (an internally tagged enum) serde's path stops at the
/// table; the field is then found from the message.
fn locate(tree: &Value, mut path: Vec<Seg>, message: &str) -> (Vec<Seg>, bool) {
    if let Some(rest) = message.strip_prefix("missing field ") {
        if let Some(field) = ticked(rest).first() {
            path.push(Seg::Key((*field).to_string()));
        }
        return (path, true);
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        if let Some(field) = ticked(rest).first()
            && path.last() != Some(&Seg::Key((*field).to_string()))
        {
            path.push(Seg::Key((*field).to_string()));
        }
        return (path, false);
    }
    if let Some((got, _)) = invalid(message)
        && let Some(table @ Value::Object(fields)) = get(tree, &path)
        && !is_marker(table)
    {
        let mut matching = fields.iter().filter(|(_, v)| unexpected(v) == got);
        if let (Some((field, _)), None) = (matching.next(), matching.next()) {
            path.push(Seg::Key(field.clone()));
        }
    }
    (path, false)
}

/// The backticked words of a serde message: "`a`, `b`" → a, b.
fn ticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// (what was found, what was expected) of an "invalid type/value" message.
fn invalid(message: &str) -> Option<(&str, &str)> {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    rest.rsplit_once(", expected ")
}

/// How serde names a value it did not expect (`serde::de::Unexpected`).
fn unexpected(v: &Value) -> String {
    match v {
        Value::Null => "unit value".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            let text = f.to_string();
            if text.contains('.') {
                format!("floating point `{text}`")
            } else {
                format!("floating point `{text}.0`")
            }
        }
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

/// serde's name of an expected type, in the words of the template.
fn expected_text(expected: &str) -> String {
    let max = match expected {
        "u8" => Some(u64::from(u8::MAX)),
        "u16" => Some(u64::from(u16::MAX)),
        "u32" => Some(u64::from(u32::MAX)),
        "u64" | "usize" => None,
        "i8" | "i16" | "i32" | "i64" | "isize" => return "a whole number".into(),
        "f32" | "f64" => return "a number".into(),
        "a string" => return "text (in quotes)".into(),
        "a sequence" => return "a list [...]".into(),
        "a boolean" => return "true or false".into(),
        e if e.starts_with("struct ") || e.contains("enum ") || e == "a map" => {
            return "a table of keys".into();
        }
        e => return e.to_string(),
    };
    match max {
        Some(max) => format!("a whole number from 0 to {max}"),
        None => "a whole number ≥ 0".into(),
    }
}

/// serde's message in the words of the template.
/// `section`: the key path of the table holding the key.
fn explain(message: &str, section: &str, actual: Option<&Value>) -> String {
    if let Some((got, expected)) = invalid(message) {
        let got = actual.map_or_else(|| got.to_string(), describe);
        return format!("expected {}, got {got}", expected_text(expected));
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let words = ticked(rest);
        if let Some((field, known)) = words.split_first() {
            return unknown_key_message(section, field, known);
        }
    }
    message.to_string()
}

/// What to say of a missing field: what it must hold, found by putting an
/// empty text (then a number) there and reading serde's complaint.
fn missing_message(tree: &Value, path: &[Seg]) -> String {
    for stand_in in [Value::String(String::new()), Value::from(0)] {
        let mut probe = tree.clone();
        set(&mut probe, path, stand_in);
        if let Err((at, message)) = try_settings(&probe) {
            let (at, _) = locate(&probe, at, &message);
            if at == path {
                if let Some(rest) = message.strip_prefix("unknown variant ``, ") {
                    return format!("missing; {rest}");
                }
                if let Some((_, expected)) = invalid(&message) {
                    return format!("missing; expected {}", expected_text(expected));
                }
            }
        }
    }
    "missing; this entry needs it".into()
}

impl Repaired {
    /// `key` with each list position as the user wrote it (before any
    /// entry was left out).
    fn original_key(&self, key: &str) -> String {
        let mut out = String::new();
        let mut done = 0;
        while let Some(open) = key[done..].find('[').map(|o| o + done) {
            let Some(close) = key[open..].find(']').map(|c| c + open) else {
                break;
            };
            out.push_str(&key[done..open]);
            match key[open + 1..close].parse::<usize>() {
                Ok(j) => {
                    let orig = self
                        .kept
                        .get(&key[..open])
                        .and_then(|kept| kept.get(j))
                        .copied()
                        .unwrap_or(j);
                    out.push_str(&format!("[{orig}]"));
                }
                Err(_) => out.push_str(&key[open..=close]),
            }
            done = close + 1;
        }
        out.push_str(&key[done..]);
        out
    }

    /// Changes `tree` so that the error at `path` goes away; false if it
    /// cannot.
    fn repair(
        &mut self,
        tree: &mut Value,
        defaults: &Value,
        path: &[Seg],
        missing: bool,
        dropped: &mut BTreeSet<String>,
    ) -> bool {
        let Some(at) = path.iter().rposition(|s| matches!(s, Seg::Index(_))) else {
            // Outside lists every key has a default.
            if path.is_empty() {
                return false;
            }
            return match get(defaults, path) {
                Some(d) if get(tree, path) == Some(d) => false,
                Some(d) => {
                    set(tree, path, d.clone());
                    true
                }
                None => remove(tree, path).is_some(),
            };
        };
        // In a list entry: a bad field is taken out first so that the
        // entry's other fields are still checked; serde then misses it and
        // the entry is left out (taking out an unknown key leaves a good one).
        if !missing && path.len() > at + 1 && remove(tree, path).is_some() {
            dropped.insert(dotted(path));
            return true;
        }
        let (list, Seg::Index(j)) = (&path[..at], &path[at]) else {
            return false;
        };
        let Some(Value::Array(items)) = get_mut(tree, list) else {
            return false;
        };
        if *j >= items.len() {
            return false;
        }
        let len = items.len();
        items.remove(*j);
        let kept = self
            .kept
            .entry(dotted(list))
            .or_insert_with(|| (0..len).collect());
        if *j < kept.len() {
            kept.remove(*j);
        }
        let entry = dotted(&path[..=at]);
        dropped.retain(|k| !(k == &entry || k.starts_with(&format!("{entry}."))));
        true
    }
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

    fn keys(found: &[ConfigIssue]) -> Vec<&str> {
        found.iter().map(|i| i.key.as_str()).collect()
    }

    fn issue<'a>(found: &'a [ConfigIssue], key: &str) -> &'a ConfigIssue {
        found
            .iter()
            .find(|i| i.key == key)
            .unwrap_or_else(|| panic!("no issue at {key} in {found:?}"))
    }

    #[test]
    fn test_bad_planted_edge_kind_is_reported_with_its_path_and_other_checks_still_run() {
        let text = r#"
[risk]
max_daily_loss = 0.5

[[broker.sim.chain.planted_edges]]
scope = { kind = "bogus" }
extra_vol = 0.05
"#;
        let found = issues(load_text(text, &[]));
        assert_eq!(
            keys(&found),
            [
                "broker.sim.chain.planted_edges[0].scope.kind",
                "risk.max_daily_loss"
            ],
            "{found:?}"
        );
        assert_eq!(
            found[0].message,
            "unknown variant `bogus`, expected one of `sector`, `otm_bucket`, `weekday`"
        );
        assert!(found[0].origin.as_deref().unwrap().ends_with("trader.toml"));
    }

    #[test]
    fn test_negative_unsigned_value_does_not_hide_the_other_mistakes() {
        let text = r#"
[broker.sim.exchange]
seed = -1
starting_cash = -5.0
checkpoint_minutes = 0

[broker.sim.chain]
min_vol = -1.0
weeklies_from = "2011-13-01"
"#;
        let found = issues(load_text(text, &[]));
        assert_eq!(found.len(), 5, "{found:?}");
        assert_eq!(
            issue(&found, "broker.sim.exchange.seed").message,
            "expected a whole number ≥ 0, got the number -1"
        );
        for key in [
            "broker.sim.exchange.starting_cash",
            "broker.sim.exchange.checkpoint_minutes",
            "broker.sim.chain.min_vol",
            "broker.sim.chain.weeklies_from",
        ] {
            issue(&found, key);
        }
        let found = issues(load_text(
            "[broker.sim.exchange]\ncheckpoint_minutes = 5000000000\n",
            &[("TRADER__BROKER__SIM__EXCHANGE__SEED", "-3")],
        ));
        assert_eq!(
            issue(&found, "broker.sim.exchange.checkpoint_minutes").message,
            "expected a whole number from 0 to 4294967295, got the number 5000000000"
        );
        assert_eq!(
            issue(&found, "broker.sim.exchange.seed").origin.as_deref(),
            Some("environment variable TRADER__BROKER__SIM__EXCHANGE__SEED")
        );
    }

    #[test]
    fn test_every_bad_list_entry_is_reported_at_its_position() {
        let text = r#"
[broker.sim.chain]
penny_everywhere = ["SPY", 5]
planted_edges = [
  { scope = { kind = "otm_bucket", min = "x", max = 0.2 }, extra_vol = 0.05 },
  { scope = { kind = "otm_bucket", min = 0.3, max = 0.2 }, extra_vol = -5.0 },
  { scope = { kind = "weekday", day = "Sat" }, extra_vol = 0.01, colour = 1 },
  { scope = { min = 0.1, max = 0.2 }, extra_vol = 0.01 },
  { scope = { kind = "sector", sector = "" }, extra_vol = 0.01 },
  "x",
  { scope = { kind = "sector", sector = "Energy" }, extra_vol = 0.05 },
]
"#;
        let found = issues(load_text(text, &[]));
        let mut k = keys(&found);
        k.sort_unstable();
        let p = "broker.sim.chain.planted_edges";
        assert_eq!(
            k,
            [
                "broker.sim.chain.penny_everywhere[1]".to_string(),
                format!("{p}[0].scope.min"),
                format!("{p}[1].extra_vol"),
                format!("{p}[1].scope.min"),
                format!("{p}[2].colour"),
                format!("{p}[2].scope.day"),
                format!("{p}[3].scope.kind"),
                format!("{p}[4].scope.sector"),
                format!("{p}[5]"),
            ],
            "{found:?}"
        );
        let msg = |key: &str| issue(&found, key).message.clone();
        assert_eq!(
            msg("broker.sim.chain.penny_everywhere[1]"),
            "expected text (in quotes), got the number 5"
        );
        assert_eq!(
            msg(&format!("{p}[0].scope.min")),
            "expected a number, got the text \"x\""
        );
        assert!(msg(&format!("{p}[1].scope.min")).contains("must not exceed"));
        assert!(msg(&format!("{p}[1].extra_vol")).contains("-1..=1"));
        assert!(msg(&format!("{p}[2].colour")).starts_with("unknown key"));
        assert!(msg(&format!("{p}[2].scope.day")).contains("\"Mon\""));
        assert_eq!(
            msg(&format!("{p}[3].scope.kind")),
            "missing; expected one of `sector`, `otm_bucket`, `weekday`"
        );
        assert!(msg(&format!("{p}[4].scope.sector")).contains("must name a sector"));
        assert_eq!(
            msg(&format!("{p}[5]")),
            "expected a table of keys, got the text \"x\""
        );
    }

    #[test]
    fn test_a_list_must_be_a_list() {
        let found = issues(load_text(
            "[broker.sim.chain]\npenny_everywhere = \"SPY\"\n[broker.sim.chain.planted_edges]\nextra_vol = 1\n",
            &[],
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            issue(&found, "broker.sim.chain.penny_everywhere").message,
            "expected a list [...], got the text \"SPY\""
        );
        assert!(
            issue(&found, "broker.sim.chain.planted_edges")
                .message
                .contains("[[broker.sim.chain.planted_edges]]")
        );
    }

    #[test]
    fn test_unquoted_date_time_and_nan_say_what_they_are() {
        let text = "[broker.sim.chain]\nweeklies_from = 2011-01-01\nmax_vol = nan\n[schedule]\nmarket_open = 09:30\n";
        let found = issues(load_text(text, &[]));
        assert_eq!(found.len(), 3, "{found:?}");
        let date = issue(&found, "broker.sim.chain.weeklies_from");
        assert!(
            date.message
                .starts_with("expected text (in quotes), got a date (2011-01-01)"),
            "{date}"
        );
        assert!(date.message.contains("\"2011-01-01\""), "{date}");
        let time = &issue(&found, "schedule.market_open").message;
        assert!(time.contains("got a time"), "{time}");
        let nan = &issue(&found, "broker.sim.chain.max_vol").message;
        assert!(nan.contains("not a finite number"), "{nan}");
    }

    #[test]
    fn test_text_lists_come_from_the_environment_split_at_commas() {
        let var = "TRADER__BROKER__SIM__CHAIN__PENNY_EVERYWHERE";
        for (value, expected) in [
            ("AAPL,MSFT", vec!["AAPL", "MSFT"]),
            (" SPY , QQQ ,", vec!["SPY", "QQQ"]),
            ("SPY", vec!["SPY"]),
            ("1234", vec!["1234"]),
            ("", vec![]),
        ] {
            let loaded = load_text(
                "[broker.sim.chain]\npenny_everywhere = [\"X\"]\n",
                &[(var, value)],
            )
            .unwrap();
            assert_eq!(
                loaded.settings.broker.sim.chain.penny_everywhere, expected,
                "{value:?}"
            );
        }
    }

    #[test]
    fn test_planted_edges_from_the_environment_say_to_use_the_file() {
        let var = "TRADER__BROKER__SIM__CHAIN__PLANTED_EDGES";
        let found = issues(load_text("", &[(var, "otm_bucket")]));
        assert_eq!(keys(&found), ["broker.sim.chain.planted_edges"]);
        assert!(
            found[0].message.contains("set planted_edges in the file"),
            "{}",
            found[0]
        );
        assert_eq!(
            found[0].origin.as_deref(),
            Some(format!("environment variable {var}").as_str())
        );
    }

    #[test]
    fn test_environment_text_keeps_its_text_and_types_are_checked() {
        let loaded = load_text(
            "",
            &[
                ("TRADER__BROKER__IBKR__ACCOUNT", "0123"),
                ("TRADER__STRATEGY__NAME", "true"),
                ("TRADER__LOGGING__JSON", "TRUE"),
                ("TRADER__RISK__MAX_POSITIONS_PER_DAY", " 7 "),
            ],
        )
        .unwrap();
        assert_eq!(loaded.settings.broker.ibkr.account, "0123");
        assert_eq!(loaded.settings.strategy.name, "true");
        assert!(loaded.settings.logging.json);
        assert_eq!(loaded.settings.risk.max_positions_per_day, 7);
        let found = issues(load_text(
            "",
            &[
                ("TRADER__RISK__MAX_DAILY_LOSS", "nan"),
                ("TRADER__LOGGING__JSON", "yes"),
            ],
        ));
        assert_eq!(
            issue(&found, "risk.max_daily_loss").message,
            "expected a number, got the text \"nan\""
        );
        assert_eq!(
            issue(&found, "logging.json").message,
            "expected true or false, got the text \"yes\""
        );
    }

    #[test]
    fn test_text_key_refuses_a_number_in_the_file() {
        let found = issues(load_text("[broker.ibkr]\naccount = 123\n", &[]));
        assert_eq!(
            found[0].to_string().split(" (from").next(),
            Some("broker.ibkr.account: expected text (in quotes), got the number 123")
        );
    }

    #[test]
    fn test_a_named_config_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prod.toml");
        let opts = LoadOptions::for_config_arg(Some(&path));
        assert!(opts.require_file);
        let err = load(&opts).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "config file {p} not found; run `trader-cli init --config {p}` to write a commented one",
                p = path.display()
            )
        );
        let opts = LoadOptions::for_config_arg(None);
        assert!(!opts.require_file);
        assert_eq!(opts.path, PathBuf::from(crate::DEFAULT_CONFIG_PATH));
        assert!(!LoadOptions::for_config_arg(Some(Path::new(""))).require_file);
    }

    #[test]
    fn test_misspelt_key_in_a_list_entry_gets_a_suggestion_at_its_position() {
        let text = r#"
[broker.sim.chain]
planted_edges = [
  "x",
  { scope = { kind = "weekday", day = "Tue" }, extra_voll = 0.05 },
]
"#;
        let found = issues(load_text(text, &[]));
        let p = "broker.sim.chain.planted_edges";
        assert_eq!(
            keys(&found),
            [
                format!("{p}[0]"),
                format!("{p}[1].extra_voll"),
                format!("{p}[1].extra_vol"),
            ],
            "{found:?}"
        );
        assert_eq!(
            found[1].message,
            format!("unknown key; did you mean `{p}[1].extra_vol`?")
        );
        assert_eq!(found[2].message, "missing; expected a number");
    }
}
