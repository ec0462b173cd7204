//! `MinMax`: an inclusive range of one quantity, written `{ min = 1, max = 5 }`.
//! The unit is in the name of the field that holds it (`think_time_us`).

use crate::validate::{join, Validator};
use serde::{Deserialize, Serialize};
use std::fmt::Display;

/// An inclusive range `min..=max`; a simulator draws uniformly from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinMax<T> {
    pub min: T,
    pub max: T,
}

impl<T: Copy> MinMax<T> {
    /// A range of exactly one value.
    pub const fn exactly(value: T) -> MinMax<T> {
        MinMax {
            min: value,
            max: value,
        }
    }

    pub const fn new(min: T, max: T) -> MinMax<T> {
        MinMax { min, max }
    }
}

impl<T> MinMax<T>
where
    T: PartialOrd + Display + Copy,
{
    /// Both ends within `lo..=hi`, and `min <= max` (reported on `max`).
    pub(crate) fn validate(&self, v: &mut Validator, field: &str, lo: T, hi: T) {
        v.int_in(&join(field, "min"), self.min, lo, hi);
        v.int_in(&join(field, "max"), self.max, lo, hi);
        if self.min > self.max {
            v.fail(
                join(field, "max"),
                format!("a value at least min ({})", self.min),
                self.max,
            );
        }
    }
}
