//! The searched parameters: named dimensions with bounds and an optional
//! decimal grid, and the map between parameter sets and the unit cube the
//! search moves in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::{OptimizerError, OptimizerResult};

/// A point of the parameter space: parameter name → value.
///
/// A plain map so that any layer (the command line, an experiment, a
/// report) can carry it without knowing the strategy's parameter type.
pub type ParameterSet = BTreeMap<String, f64>;

/// The names of the naked-put dimensions of [`ParameterSpace::naked_put`]
/// and how they map onto `strategy_naked_put::NakedPutParams`.
///
/// Ranges are searched as a lower end and a width so that every point of
/// the box is a valid range (`max ≥ min`) without a constraint:
///
/// | name | `NakedPutParams` |
/// |---|---|
/// | `otm_min`, `otm_width` | `otm_min`, `otm_max = otm_min + otm_width` |
/// | `premium_min`, `premium_width` | `premium_min`, `premium_max = premium_min + premium_width` |
/// | `dte_min`, `dte_width` | `dte_min`, `dte_max = dte_min + dte_width` (whole days) |
/// | `profit_target` | `profit_target` |
/// | `stop_loss` | `stop_loss` (negative: −2.0 closes at 3× the premium) |
pub mod names {
    /// Smallest OTM fraction (S − K) / S.
    pub const OTM_MIN: &str = "otm_min";
    /// `otm_max − otm_min`.
    pub const OTM_WIDTH: &str = "otm_width";
    /// Smallest premium per share at the bid, dollars.
    pub const PREMIUM_MIN: &str = "premium_min";
    /// `premium_max − premium_min`, dollars.
    pub const PREMIUM_WIDTH: &str = "premium_width";
    /// Fewest calendar days to expiry.
    pub const DTE_MIN: &str = "dte_min";
    /// `dte_max − dte_min`, days.
    pub const DTE_WIDTH: &str = "dte_width";
    /// Profit target as a fraction of the premium.
    pub const PROFIT_TARGET: &str = "profit_target";
    /// Stop loss as a (negative) multiple of the premium.
    pub const STOP_LOSS: &str = "stop_loss";
}

/// Most decimals a dimension's grid may have.
pub const MAX_DECIMALS: u32 = 9;

/// One searched parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    /// The parameter's name (the key in a [`ParameterSet`]).
    pub name: String,
    /// Smallest value searched (inclusive).
    pub lower: f64,
    /// Largest value searched (inclusive); greater than `lower`.
    pub upper: f64,
    /// `Some(d)`: values are rounded to `d` decimals before they are
    /// evaluated (`Some(0)` = whole numbers, e.g. days to expiry; `Some(2)` =
    /// cents). `None`: continuous. Both bounds must lie on the grid.
    pub decimals: Option<u32>,
}

impl Dimension {
    /// A continuous dimension over `[lower, upper]`.
    pub fn continuous(name: impl Into<String>, lower: f64, upper: f64) -> Self {
        Dimension {
            name: name.into(),
            lower,
            upper,
            decimals: None,
        }
    }

    /// A whole-number dimension over `[lower, upper]` (days to expiry).
    pub fn integer(name: impl Into<String>, lower: f64, upper: f64) -> Self {
        Self::with_decimals(name, lower, upper, 0)
    }

    /// A dimension over `[lower, upper]` on a grid of `decimals` decimals.
    pub fn with_decimals(name: impl Into<String>, lower: f64, upper: f64, decimals: u32) -> Self {
        Dimension {
            name: name.into(),
            lower,
            upper,
            decimals: Some(decimals),
        }
    }

    fn scale(&self) -> Option<f64> {
        self.decimals.map(|d| 10f64.powi(d as i32))
    }

    /// `value` rounded to the grid (correctly rounded: `k / 10^d`, so 0.15
    /// stays the double nearest 0.15) and clamped to the bounds.
    fn snap(&self, value: f64) -> f64 {
        let snapped = match self.scale() {
            Some(scale) => (value * scale).round() / scale,
            None => value,
        };
        snapped.clamp(self.lower, self.upper)
    }

    fn on_grid(&self, value: f64) -> bool {
        match self.scale() {
            Some(scale) => {
                let scaled = value * scale;
                (scaled - scaled.round()).abs() <= 1e-9 * scaled.abs().max(1.0)
            }
            None => true,
        }
    }

    fn check(&self) -> OptimizerResult<()> {
        let invalid = |what: String, fix| Err(OptimizerError::InvalidSpace { what, fix });
        if self.name.is_empty() {
            return invalid(
                "a dimension has an empty name".into(),
                "name it after the parameter it searches",
            );
        }
        if !self.lower.is_finite() || !self.upper.is_finite() || self.lower >= self.upper {
            return invalid(
                format!(
                    "dimension `{}` has bounds [{}, {}]",
                    self.name, self.lower, self.upper
                ),
                "give finite bounds with lower < upper (leave a fixed parameter out of the space)",
            );
        }
        if let Some(decimals) = self.decimals {
            if decimals > MAX_DECIMALS {
                return invalid(
                    format!("dimension `{}` has {decimals} decimals", self.name),
                    "use at most 9 decimals, or none for a continuous dimension",
                );
            }
            if !self.on_grid(self.lower) || !self.on_grid(self.upper) {
                return invalid(
                    format!(
                        "dimension `{}` has bounds [{}, {}] off its grid of {decimals} decimal(s)",
                        self.name, self.lower, self.upper
                    ),
                    "round the bounds to the grid or give the dimension more decimals",
                );
            }
        }
        Ok(())
    }
}

/// The box the optimizer searches: one [`Dimension`] per parameter.
///
/// Parameters of the strategy that are not in the space are not searched;
/// the caller keeps them at their configured values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterSpace {
    dimensions: Vec<Dimension>,
}

impl ParameterSpace {
    /// A space of `dimensions`: at least one, names unique and non-empty,
    /// finite bounds with `lower < upper`, bounds on the grid.
    pub fn new(dimensions: Vec<Dimension>) -> OptimizerResult<Self> {
        if dimensions.is_empty() {
            return Err(OptimizerError::InvalidSpace {
                what: "it has no dimension".into(),
                fix: "add at least one parameter to search",
            });
        }
        let mut seen = BTreeSet::new();
        for dimension in &dimensions {
            dimension.check()?;
            if !seen.insert(dimension.name.as_str()) {
                return Err(OptimizerError::InvalidSpace {
                    what: format!("dimension `{}` appears twice", dimension.name),
                    fix: "give each parameter one dimension",
                });
            }
        }
        Ok(ParameterSpace { dimensions })
    }

    /// The naked-put space (see [`names`] for the mapping onto the
    /// strategy's parameters), wide around the defaults:
    ///
    /// | name | bounds | grid |
    /// |---|---|---|
    /// | `otm_min` | 0.05 – 0.30 | 0.0001 (0.01%) |
    /// | `otm_width` | 0.01 – 0.15 | 0.0001 |
    /// | `premium_min` | $0.05 – $1.00 | $0.01 |
    /// | `premium_width` | $0.05 – $1.00 | $0.01 |
    /// | `dte_min` | 4 – 30 days | 1 day |
    /// | `dte_width` | 0 – 14 days | 1 day |
    /// | `profit_target` | 0.20 – 0.90 | 0.01 |
    /// | `stop_loss` | −4.00 – −0.50 | 0.01 |
    ///
    /// `dte_min` starts at 4 because the default time exit closes at 3
    /// days to expiry.
    pub fn naked_put() -> Self {
        ParameterSpace {
            dimensions: vec![
                Dimension::with_decimals(names::OTM_MIN, 0.05, 0.30, 4),
                Dimension::with_decimals(names::OTM_WIDTH, 0.01, 0.15, 4),
                Dimension::with_decimals(names::PREMIUM_MIN, 0.05, 1.00, 2),
                Dimension::with_decimals(names::PREMIUM_WIDTH, 0.05, 1.00, 2),
                Dimension::integer(names::DTE_MIN, 4.0, 30.0),
                Dimension::integer(names::DTE_WIDTH, 0.0, 14.0),
                Dimension::with_decimals(names::PROFIT_TARGET, 0.20, 0.90, 2),
                Dimension::with_decimals(names::STOP_LOSS, -4.00, -0.50, 2),
            ],
        }
    }

    /// The defaults of `strategy_naked_put::NakedPutParams` as a point of
    /// [`ParameterSpace::naked_put`]: OTM 15–20%, premium $0.30–$0.50,
    /// 7–14 days, profit target 0.50, stop −2.0.
    pub fn naked_put_defaults() -> ParameterSet {
        [
            (names::OTM_MIN, 0.15),
            (names::OTM_WIDTH, 0.05),
            (names::PREMIUM_MIN, 0.30),
            (names::PREMIUM_WIDTH, 0.20),
            (names::DTE_MIN, 7.0),
            (names::DTE_WIDTH, 7.0),
            (names::PROFIT_TARGET, 0.50),
            (names::STOP_LOSS, -2.0),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// The dimensions, in search order.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// Number of dimensions (never 0).
    pub fn len(&self) -> usize {
        self.dimensions.len()
    }

    /// Always `false`: a space has at least one dimension.
    pub fn is_empty(&self) -> bool {
        self.dimensions.is_empty()
    }

    /// Checks that `set` (named `input` in errors) has exactly the space's
    /// parameters, each finite, within its bounds and on its grid.
    pub fn check(&self, input: &'static str, set: &ParameterSet) -> OptimizerResult<()> {
        let invalid = |what: String, fix| OptimizerError::InvalidParameterSet { input, what, fix };
        for name in set.keys() {
            if !self.dimensions.iter().any(|d| &d.name == name) {
                return Err(invalid(
                    format!("`{name}` is not a dimension of the space"),
                    "remove it, or add a dimension for it",
                ));
            }
        }
        for dimension in &self.dimensions {
            let Some(&value) = set.get(&dimension.name) else {
                return Err(invalid(
                    format!("`{}` is missing", dimension.name),
                    "give a value for every dimension of the space",
                ));
            };
            if !value.is_finite() || value < dimension.lower || value > dimension.upper {
                return Err(invalid(
                    format!(
                        "`{}` = {value} is outside [{}, {}]",
                        dimension.name, dimension.lower, dimension.upper
                    ),
                    "widen the dimension's bounds to include it",
                ));
            }
            if !dimension.on_grid(value) {
                return Err(invalid(
                    format!(
                        "`{}` = {value} is off the grid of {} decimal(s)",
                        dimension.name,
                        dimension.decimals.unwrap_or(0)
                    ),
                    "round it, or give the dimension more decimals",
                ));
            }
        }
        Ok(())
    }

    /// The unit-cube coordinates of a checked `set`: `(x − lower) / (upper − lower)`.
    pub(crate) fn to_unit(&self, set: &ParameterSet) -> Vec<f64> {
        self.dimensions
            .iter()
            .map(|d| {
                let value = set.get(&d.name).copied().unwrap_or(d.lower);
                (value - d.lower) / (d.upper - d.lower)
            })
            .collect()
    }

    /// The parameter set a unit-cube point stands for — every coordinate
    /// clamped to [0, 1], mapped to its bounds and snapped to its grid —
    /// and the squared Euclidean distance (in unit coordinates) from the
    /// point to the cube, 0 inside.
    pub(crate) fn at_unit(&self, unit: &[f64]) -> (ParameterSet, f64) {
        let mut outside = 0.0;
        let set = self
            .dimensions
            .iter()
            .zip(unit)
            .map(|(d, &u)| {
                let clamped = if u.is_nan() { 0.5 } else { u.clamp(0.0, 1.0) };
                outside += (u - clamped) * (u - clamped);
                let value = d.snap(d.lower + clamped * (d.upper - d.lower));
                (d.name.clone(), value)
            })
            .collect();
        (set, outside)
    }

    /// The cache key of a set of this space: its values' bits in dimension
    /// order (−0 as +0).
    pub(crate) fn key(&self, set: &ParameterSet) -> Vec<u64> {
        self.dimensions
            .iter()
            .map(|d| {
                let value = set.get(&d.name).copied().unwrap_or(f64::NAN);
                if value == 0.0 { 0u64 } else { value.to_bits() }
            })
            .collect()
    }

    /// The smallest unit-cube step that moves dimension `index` by one
    /// grid step (0 for continuous dimensions).
    pub(crate) fn unit_resolution(&self, index: usize) -> f64 {
        self.dimensions
            .get(index)
            .and_then(|d| d.scale().map(|scale| 1.0 / (scale * (d.upper - d.lower))))
            .unwrap_or(0.0)
    }
}

/// `name=value, …` for error messages and the reasoning text.
pub(crate) fn render(set: &ParameterSet) -> String {
    set.iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naked_put_space_is_valid_and_holds_the_defaults() {
        let space = ParameterSpace::naked_put();
        let checked = ParameterSpace::new(space.dimensions().to_vec()).unwrap();
        assert_eq!(checked, space);
        space
            .check("defaults", &ParameterSpace::naked_put_defaults())
            .unwrap();
    }

    #[test]
    fn unit_round_trip_is_exact_on_the_grid() {
        let space = ParameterSpace::naked_put();
        let defaults = ParameterSpace::naked_put_defaults();
        let (back, outside) = space.at_unit(&space.to_unit(&defaults));
        assert_eq!(back, defaults);
        assert_eq!(outside, 0.0);
    }

    #[test]
    fn outside_points_are_clamped_and_measured() {
        let space = ParameterSpace::new(vec![
            Dimension::continuous("a", 0.0, 10.0),
            Dimension::integer("b", 1.0, 5.0),
        ])
        .unwrap();
        let (set, outside) = space.at_unit(&[1.5, -0.2]);
        assert_eq!(set["a"], 10.0);
        assert_eq!(set["b"], 1.0);
        assert!((outside - (0.25 + 0.04)).abs() < 1e-12);
        let (set, _) = space.at_unit(&[0.5, 0.55]);
        assert_eq!(set["b"], 3.0);
    }

    #[test]
    fn bad_spaces_and_sets_are_refused_with_the_name() {
        let twice = ParameterSpace::new(vec![
            Dimension::continuous("a", 0.0, 1.0),
            Dimension::continuous("a", 0.0, 2.0),
        ]);
        assert!(twice.unwrap_err().to_string().contains("`a` appears twice"));
        let flat = ParameterSpace::new(vec![Dimension::continuous("a", 1.0, 1.0)]);
        assert!(flat.unwrap_err().to_string().contains("lower < upper"));
        let off_grid = ParameterSpace::new(vec![Dimension::integer("d", 0.5, 3.0)]);
        assert!(off_grid.unwrap_err().to_string().contains("grid"));

        let space = ParameterSpace::naked_put();
        let mut set = ParameterSpace::naked_put_defaults();
        set.insert(names::DTE_MIN.into(), 7.5);
        let err = space.check("current", &set).unwrap_err().to_string();
        assert!(
            err.contains("`current`") && err.contains("dte_min"),
            "{err}"
        );
        set.insert(names::DTE_MIN.into(), 40.0);
        assert!(space.check("current", &set).is_err());
        set.remove(names::DTE_MIN);
        assert!(
            space
                .check("current", &set)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }
}
