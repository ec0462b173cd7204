//! `[check]`: which invariants of docs/design.md a run checks, the alarm threshold
//! (shared by the processor and the alarm checker), and, for a weak-point
//! scenario, which invariant the seed design is expected to break and within
//! how many seeds (the harness self-test reads it).

use crate::invariant::Invariant;
use crate::validate::Validator;
use marlow_model::alarm::DEFAULT_ALARM_THRESHOLD_MINOR;
use marlow_model::{Mark, MarkDesign, MAX_AMOUNT_MINOR};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Seeds an expectation may ask for at most.
pub const MAX_WITHIN_SEEDS: u32 = 100_000;

/// The weak points of the seed design (docs/design.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WeakPoint {
    W1,
    W2,
    W3,
    W4,
    W5,
    W6,
    W7,
    W8,
}

impl fmt::Display for WeakPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Check {
    /// The invariants to check; all thirteen by default.
    pub invariants: Vec<Invariant>,
    /// An alarm is due when a balance crosses below this, in minor units. The
    /// processor's alarm rule is set from it too.
    pub alarm_threshold_minor: i64,
    /// For a weak-point scenario: the seed design is expected to fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    /// Coverage marks a sweep of this scenario must reach on at least one seed
    /// (`marlow sweep` exits 4 naming any it never reached). A single run is
    /// not held to them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_marks: Vec<Mark>,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            invariants: Invariant::ALL.to_vec(),
            alarm_threshold_minor: DEFAULT_ALARM_THRESHOLD_MINOR,
            expect: None,
            required_marks: Vec::new(),
        }
    }
}

/// `expect = { weak_point = "W3", invariant = "S1", within_seeds = 50 }`: some
/// seed below `within_seeds` (counting from 0) makes the seed design violate
/// the invariant. `invariant` may also be a list, meaning any one of them (a
/// weak point can surface as several invariants, and which one a checker sees
/// first depends on the seed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weak_point: Option<WeakPoint>,
    #[serde(rename = "invariant", deserialize_with = "one_or_many")]
    pub invariants: Vec<Invariant>,
    pub within_seeds: u32,
}

impl Expectation {
    /// Whether a violation of `invariant` meets this expectation.
    pub fn accepts(&self, invariant: Invariant) -> bool {
        self.invariants.contains(&invariant)
    }
}

/// Reads `"S1"` or `["S1", "S3"]`.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Invariant>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<Invariant>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an invariant name (S1 to S9, L1 to L4) or a list of them")
        }
        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
            let one = Invariant::deserialize(serde::de::value::StrDeserializer::<E>::new(name))?;
            Ok(vec![one])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            while let Some(one) = seq.next_element::<Invariant>()? {
                all.push(one);
            }
            Ok(all)
        }
    }
    deserializer.deserialize_any(Visitor)
}

impl Check {
    /// Each required mark once, and one the design and guarantee can reach.
    pub(crate) fn validate_marks(&self, v: &mut Validator, design: MarkDesign, transactions: bool) {
        for (index, mark) in self.required_marks.iter().enumerate() {
            let field = format!("check.required_marks[{index}]");
            let design_name = match design {
                MarkDesign::Seed => "seed",
                MarkDesign::Hardened => "hardened",
            };
            if self.required_marks[..index].contains(mark) {
                v.fail(field, "each mark once", format!("{mark} again"));
            } else if !mark.reachable_by(design) {
                v.fail(
                    field,
                    format!("a mark the {design_name} design can reach"),
                    format!("{mark}, which it never reports"),
                );
            } else if mark.needs_transactions() && !transactions {
                v.fail(
                    field,
                    "a mark reachable without transactions (processing_guarantee is at_least_once)",
                    format!("{mark}, which needs exactly_once"),
                );
            }
        }
    }

    pub(crate) fn validate(&self, v: &mut Validator, seed_design: bool) {
        if self.invariants.is_empty() {
            v.fail(
                "check.invariants",
                "at least one invariant (S1 to S9, L1 to L4)",
                "an empty list",
            );
        }
        for (index, invariant) in self.invariants.iter().enumerate() {
            if self.invariants[..index].contains(invariant) {
                v.fail(
                    format!("check.invariants[{index}]"),
                    "each invariant once",
                    format!("{invariant} again"),
                );
            }
        }
        v.int_in(
            "check.alarm_threshold_minor",
            self.alarm_threshold_minor,
            0,
            MAX_AMOUNT_MINOR,
        );
        let Some(expect) = &self.expect else { return };
        if !seed_design {
            v.fail(
                "check.expect",
                "an expectation only with design = \"seed\" (the hardened design must pass every invariant)",
                "design = \"hardened\"",
            );
        }
        if expect.invariants.is_empty() {
            v.fail(
                "check.expect.invariant",
                "at least one invariant",
                "an empty list",
            );
        }
        for invariant in &expect.invariants {
            if !self.invariants.contains(invariant) {
                v.fail(
                    "check.expect.invariant",
                    "an invariant listed in check.invariants",
                    format!("{invariant}, which is not checked"),
                );
            }
        }
        v.int_in(
            "check.expect.within_seeds",
            expect.within_seeds,
            1,
            MAX_WITHIN_SEEDS,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invariant_names_parse_and_print_alike() {
        for invariant in Invariant::ALL {
            assert_eq!(invariant.code().parse::<Invariant>(), Ok(invariant));
            assert!(!invariant.name().is_empty());
        }
        assert!("S10".parse::<Invariant>().is_err());
        assert!(Invariant::L2.is_liveness() && !Invariant::S7.is_liveness());
    }
}
