//! The parameters an experiment may change, as named numbers.
//!
//! `learning` does not depend on the strategy crate (the dependency graph
//! would allow it, but the learning engine stays usable on its own and
//! knows no strategy's types), so a strategy's parameters are seen here as
//! a [`ParameterSet`]: names → numbers, the names being the fields of
//! `strategy_naked_put::NakedPutParams` listed in [`PARAMETERS`]. The
//! caller converts with [`ParameterSet::from_json`] and
//! [`ParameterSet::write_json`] over the serde form of its parameters, and
//! the strategy's own range checks still run on the result (a test of this
//! crate checks the names and defaults against `NakedPutParams`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{ExperimentError, ExperimentResult};

/// Tolerance of comparisons between parameter values and of the shift
/// limit (values are fractions, dollars or days).
pub const VALUE_TOLERANCE: f64 = 1e-9;

/// One parameter an experiment may change: its name, whether it counts
/// days, and the range the strategy accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParameterSpec {
    /// The field name in `NakedPutParams`.
    pub name: &'static str,
    /// Whole numbers only (days); changes are rounded toward the current
    /// value so that they never exceed the shift limit.
    pub integer: bool,
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// Whether `min` and `max` themselves are accepted.
    pub inclusive: bool,
    /// What it means, for reasoning texts.
    pub meaning: &'static str,
}

impl ParameterSpec {
    /// Whether `value` lies in the accepted range (and is whole, if needed).
    #[must_use]
    pub fn accepts(&self, value: f64) -> bool {
        let in_range = if self.inclusive {
            value >= self.min && value <= self.max
        } else {
            value > self.min && value < self.max
        };
        value.is_finite() && in_range && (!self.integer || value.fract() == 0.0)
    }

    /// The accepted range in words.
    #[must_use]
    pub fn requirement(&self) -> String {
        let (open, close) = if self.inclusive {
            ('[', ']')
        } else {
            ('(', ')')
        };
        let whole = if self.integer {
            "a whole number in "
        } else {
            ""
        };
        format!(
            "{} must be {whole}{open}{}, {}{close}",
            self.name, self.min, self.max
        )
    }

    /// The value as it is stored in an experiment (`7`, `0.15`).
    #[must_use]
    pub fn format(&self, value: f64) -> String {
        format_value(value, self.integer)
    }
}

/// Every parameter an experiment may change, with the ranges the
/// configuration check of `settings` accepts. Pairs (`otm_min` ≤
/// `otm_max`, `premium_min` ≤ `premium_max`, `dte_min` ≤ `dte_max`) and
/// `time_exit_dte` < `dte_min` are checked by
/// [`ParameterSet::check_consistency`].
pub const PARAMETERS: [ParameterSpec; 9] = [
    ParameterSpec {
        name: "otm_min",
        integer: false,
        min: 0.0,
        max: 1.0,
        inclusive: false,
        meaning: "the least out-of-the-money fraction an entry may have",
    },
    ParameterSpec {
        name: "otm_max",
        integer: false,
        min: 0.0,
        max: 1.0,
        inclusive: false,
        meaning: "the most out-of-the-money fraction an entry may have",
    },
    ParameterSpec {
        name: "premium_min",
        integer: false,
        min: 0.0,
        max: 1_000.0,
        inclusive: false,
        meaning: "the smallest bid per share an entry may have",
    },
    ParameterSpec {
        name: "premium_max",
        integer: false,
        min: 0.0,
        max: 1_000.0,
        inclusive: false,
        meaning: "the largest bid per share an entry may have",
    },
    ParameterSpec {
        name: "dte_min",
        integer: true,
        min: 1.0,
        max: 365.0,
        inclusive: true,
        meaning: "the fewest calendar days to expiry at entry",
    },
    ParameterSpec {
        name: "dte_max",
        integer: true,
        min: 1.0,
        max: 365.0,
        inclusive: true,
        meaning: "the most calendar days to expiry at entry",
    },
    ParameterSpec {
        name: "profit_target",
        integer: false,
        min: 0.0,
        max: 1.0,
        inclusive: false,
        meaning: "the fraction of the premium captured before closing",
    },
    ParameterSpec {
        name: "stop_loss",
        integer: false,
        min: -100.0,
        max: 0.0,
        inclusive: false,
        meaning: "the loss, as a multiple of the premium, that closes a position",
    },
    ParameterSpec {
        name: "time_exit_dte",
        integer: true,
        min: 0.0,
        max: 365.0,
        inclusive: true,
        meaning: "the days to expiry at which a position is closed",
    },
];

/// The spec of a parameter by name.
///
/// # Errors
/// [`ExperimentError::UnknownParameter`] for a name not in [`PARAMETERS`].
pub fn parameter_spec(name: &str) -> ExperimentResult<&'static ParameterSpec> {
    PARAMETERS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ExperimentError::UnknownParameter {
            name: name.to_owned(),
            known: PARAMETERS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A value as text: whole numbers without a fraction, others in their
/// shortest exact form (`0.15`, not `0.15000000000000002`; values are
/// rounded to 1e-10 first).
#[must_use]
pub fn format_value(value: f64, integer: bool) -> String {
    if integer {
        format!("{}", value.round() as i64)
    } else {
        let rounded = (value * 1e10).round() / 1e10;
        format!("{rounded}")
    }
}

/// A strategy's changeable parameters by name (the fields of
/// `NakedPutParams` in [`PARAMETERS`]); days are stored as whole `f64`s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParameterSet(BTreeMap<String, f64>);

impl ParameterSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The defaults of `NakedPutParams` (checked against it by a test):
    /// OTM 15–20%, premium $0.30–0.50, 7–14 days, target 50%, stop −200%,
    /// time exit at 3 days.
    #[must_use]
    pub fn naked_put_defaults() -> Self {
        [
            ("otm_min", 0.15),
            ("otm_max", 0.20),
            ("premium_min", 0.30),
            ("premium_max", 0.50),
            ("dte_min", 7.0),
            ("dte_max", 14.0),
            ("profit_target", 0.50),
            ("stop_loss", -2.0),
            ("time_exit_dte", 3.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The parameters of [`PARAMETERS`] found as numbers in a JSON object
    /// (the `serde_json::to_value` of the strategy's parameters); other
    /// fields are ignored.
    ///
    /// # Errors
    /// [`ExperimentError::Json`] when `value` is not an object, or when a
    /// known parameter in it is not a number.
    pub fn from_json(value: &serde_json::Value) -> ExperimentResult<Self> {
        let object = value.as_object().ok_or_else(|| ExperimentError::Json {
            what: format!("expected an object, got {value}"),
        })?;
        let mut set = Self::new();
        for spec in &PARAMETERS {
            if let Some(v) = object.get(spec.name) {
                let number = v.as_f64().ok_or_else(|| ExperimentError::Json {
                    what: format!("`{}` is {v}, not a number", spec.name),
                })?;
                set.0.insert(spec.name.to_owned(), number);
            }
        }
        Ok(set)
    }

    /// Writes every value of the set into a JSON object (the serde form of
    /// the strategy's parameters): whole-number parameters as integers.
    /// Read the strategy's parameters back with `serde_json::from_value`.
    ///
    /// # Errors
    /// [`ExperimentError::Json`] when `value` is not an object, and
    /// [`ExperimentError::InvalidValue`] for a non-finite value or a
    /// fractional number of days.
    pub fn write_json(&self, value: &mut serde_json::Value) -> ExperimentResult<()> {
        let object = value.as_object_mut().ok_or_else(|| ExperimentError::Json {
            what: "expected an object to write the parameters into".into(),
        })?;
        for (name, &v) in &self.0 {
            let spec = parameter_spec(name)?;
            let invalid = |requirement: &str| ExperimentError::InvalidValue {
                name: name.clone(),
                value: v.to_string(),
                requirement: requirement.to_owned(),
            };
            let json = if spec.integer {
                if v.fract() != 0.0 || !v.is_finite() {
                    return Err(invalid("days must be a whole number"));
                }
                serde_json::Value::from(v as i64)
            } else {
                serde_json::Number::from_f64(v)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| invalid("must be a finite number"))?
            };
            object.insert(name.clone(), json);
        }
        Ok(())
    }

    /// The value of a parameter, if the set has it.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    /// The value of a parameter the step needs.
    ///
    /// # Errors
    /// [`ExperimentError::MissingParameter`] when the set lacks it.
    pub fn require(&self, name: &str) -> ExperimentResult<f64> {
        self.get(name)
            .ok_or_else(|| ExperimentError::MissingParameter {
                name: name.to_owned(),
            })
    }

    /// Sets a parameter (any name; [`Self::check`] validates).
    pub fn set(&mut self, name: impl Into<String>, value: f64) {
        self.0.insert(name.into(), value);
    }

    /// The set with one value replaced.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: f64) -> Self {
        self.set(name, value);
        self
    }

    /// The parameters in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// Checks every value against its [`ParameterSpec`] and the pairs
    /// against each other ([`Self::check_consistency`]).
    ///
    /// # Errors
    /// The first problem found: an unknown name, a value out of range, or
    /// an inconsistent pair.
    pub fn check(&self) -> ExperimentResult<()> {
        for (name, &value) in &self.0 {
            let spec = parameter_spec(name)?;
            if !spec.accepts(value) {
                return Err(ExperimentError::InvalidValue {
                    name: name.clone(),
                    value: spec.format(value),
                    requirement: spec.requirement(),
                });
            }
        }
        self.check_consistency()
    }

    /// Checks that each range stays a range (`otm_min` ≤ `otm_max`,
    /// `premium_min` ≤ `premium_max`, `dte_min` ≤ `dte_max`) and that
    /// `time_exit_dte` < `dte_min` (else every entry would exit at once);
    /// pairs with a missing member are skipped.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidValue`] naming the pair.
    pub fn check_consistency(&self) -> ExperimentResult<()> {
        for (lo, hi) in [
            ("otm_min", "otm_max"),
            ("premium_min", "premium_max"),
            ("dte_min", "dte_max"),
        ] {
            if let (Some(a), Some(b)) = (self.get(lo), self.get(hi))
                && a > b + VALUE_TOLERANCE
            {
                return Err(ExperimentError::InvalidValue {
                    name: lo.to_owned(),
                    value: format!("{a}"),
                    requirement: format!("must not exceed {hi} ({b})"),
                });
            }
        }
        if let (Some(exit), Some(dte_min)) = (self.get("time_exit_dte"), self.get("dte_min"))
            && exit >= dte_min
        {
            return Err(ExperimentError::InvalidValue {
                name: "time_exit_dte".into(),
                value: format!("{exit}"),
                requirement: format!(
                    "must stay below dte_min ({dte_min}), or every entry would exit at once"
                ),
            });
        }
        Ok(())
    }
}

impl FromIterator<(String, f64)> for ParameterSet {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// A change of one parameter, made by an adoption or undone by a rollback.
/// Apply it to the strategy's parameters (through [`Self::apply`] on a
/// [`ParameterSet`]); nothing in `learning` applies it by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterChange {
    /// The experiment that justified it.
    pub experiment_id: String,
    /// The parameter.
    pub parameter: String,
    /// The value it replaces.
    pub from: f64,
    /// The new value.
    pub to: f64,
}

impl ParameterChange {
    /// Sets the new value in `set`, which must still hold the old one.
    ///
    /// # Errors
    /// [`ExperimentError::MissingParameter`] when `set` lacks the
    /// parameter, [`ExperimentError::StaleChange`] when its value is not
    /// `from` (the change was decided against another value).
    pub fn apply(&self, set: &mut ParameterSet) -> ExperimentResult<()> {
        let current = set.require(&self.parameter)?;
        if (current - self.from).abs() > VALUE_TOLERANCE {
            return Err(ExperimentError::StaleChange {
                parameter: self.parameter.clone(),
                from: self.from,
                to: self.to,
                current,
            });
        }
        set.set(self.parameter.clone(), self.to);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_consistent_and_formatted_plainly() {
        let set = ParameterSet::naked_put_defaults();
        set.check().unwrap();
        assert_eq!(format_value(0.15 * 1.2, false), "0.18");
        assert_eq!(format_value(7.0, true), "7");
    }

    #[test]
    fn inconsistent_pairs_and_unknown_names_are_refused() {
        let set = ParameterSet::naked_put_defaults().with("otm_min", 0.25);
        assert!(set.check().unwrap_err().to_string().contains("otm_max"));
        let set = ParameterSet::naked_put_defaults().with("time_exit_dte", 7.0);
        assert!(set.check().unwrap_err().to_string().contains("dte_min"));
        let set = ParameterSet::new().with("contracts", 5.0);
        assert!(set.check().unwrap_err().to_string().contains("otm_min"));
    }

    #[test]
    fn json_round_trip_keeps_days_whole_and_ignores_other_fields() {
        let mut json =
            serde_json::json!({"name": "x", "otm_min": 0.15, "dte_min": 7, "contracts": 5});
        let set = ParameterSet::from_json(&json).unwrap();
        assert_eq!(set.get("dte_min"), Some(7.0));
        assert_eq!(set.get("contracts"), None);
        set.clone()
            .with("dte_min", 8.0)
            .write_json(&mut json)
            .unwrap();
        assert_eq!(json["dte_min"], serde_json::json!(8));
        assert_eq!(json["name"], serde_json::json!("x"));
    }

    #[test]
    fn a_change_applies_only_to_the_value_it_was_decided_against() {
        let change = ParameterChange {
            experiment_id: "E".into(),
            parameter: "otm_min".into(),
            from: 0.15,
            to: 0.18,
        };
        let mut set = ParameterSet::naked_put_defaults();
        change.apply(&mut set).unwrap();
        assert_eq!(set.get("otm_min"), Some(0.18));
        let err = change.apply(&mut set).unwrap_err();
        assert!(matches!(err, ExperimentError::StaleChange { .. }), "{err}");
    }
}
