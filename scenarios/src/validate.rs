//! The validation helper: each section checks its ranges and relations through a
//! `Validator`, which collects every problem (with its field path) instead of
//! stopping at the first, so one run of `marlow` reports everything to fix.

use crate::error::Problem;
use std::fmt::Display;

/// The largest rate of a random fault, per simulated second. Rates above this
/// make a run all faults and no progress, which is never what a scenario means.
pub const MAX_RATE_PER_S: f64 = 100.0;

#[derive(Debug, Default)]
pub(crate) struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    pub(crate) fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    pub(crate) fn fail(
        &mut self,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Display,
    ) {
        self.problems.push(Problem {
            field: field.into(),
            expected: expected.into(),
            found: found.to_string(),
        });
    }

    /// An integer within `lo..=hi`.
    pub(crate) fn int_in<T>(&mut self, field: &str, value: T, lo: T, hi: T)
    where
        T: PartialOrd + Display + Copy,
    {
        if value < lo || value > hi {
            self.fail(field, format!("an integer from {lo} to {hi}"), value);
        }
    }

    /// A probability or fraction within `0..=1` (NaN is out of range).
    pub(crate) fn fraction(&mut self, field: &str, value: f64) {
        if !(0.0..=1.0).contains(&value) {
            self.fail(field, "a number from 0 to 1", value);
        }
    }

    /// A finite number within `lo..=hi`.
    pub(crate) fn number_in(&mut self, field: &str, value: f64, lo: f64, hi: f64) {
        if !(lo..=hi).contains(&value) {
            self.fail(field, format!("a number from {lo} to {hi}"), value);
        }
    }

    /// A rate of random events per simulated second.
    pub(crate) fn rate(&mut self, field: &str, value: f64) {
        if !(0.0..=MAX_RATE_PER_S).contains(&value) {
            self.fail(
                field,
                format!("a rate from 0 to {MAX_RATE_PER_S} per simulated second"),
                value,
            );
        }
    }
}

/// Joins a field path: `join("workload", "clients")` is `workload.clients`.
pub(crate) fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}
