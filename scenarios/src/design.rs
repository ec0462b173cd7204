//! `[design]`: which processor design runs, and for `seed` which of its weak
//! points are switched on. The switches map one to one onto marlow-model's
//! `SeedConfig`; a switch left out keeps the original's behaviour (on). The
//! alarm threshold is not here but in `[check]`, so the processor and the
//! checker can never disagree about it.

use crate::validate::Validator;
use marlow_model::task::hardened::HardenedConfig;
use marlow_model::task::planted::PlantedBug;
use marlow_model::task::seed::SeedConfig;
use marlow_model::{AlarmRule, DesignConfig};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesignKind {
    /// The original topology, with each weak point a switch.
    Seed,
    /// Single writer per account; must pass every invariant.
    #[default]
    Hardened,
}

impl fmt::Display for DesignKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DesignKind::Seed => "seed",
            DesignKind::Hardened => "hardened",
        })
    }
}

impl std::str::FromStr for DesignKind {
    type Err = String;

    /// Parses `seed` or `hardened` (the CLI's `--design`).
    fn from_str(text: &str) -> Result<DesignKind, String> {
        match text {
            "seed" => Ok(DesignKind::Seed),
            "hardened" => Ok(DesignKind::Hardened),
            other => Err(format!(
                "unknown design `{other}`: expected `seed` or `hardened`"
            )),
        }
    }
}

/// The `[design]` table: `design = "seed" | "hardened"` and, for `seed`, any of
/// `SeedConfig`'s switches (unset means the original behaviour).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignSection {
    pub design: DesignKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w1_version_counts_events: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w2_no_snapshot_skips_check: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w3_index_by_raw_key: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w4_no_idempotency: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w5_unbounded_reenqueue: Option<bool>,
    /// Re-enqueues per command before it is dead-lettered, when W5 is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reenqueues: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w7_silent_drop_undecodable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w7_accept_negative_amounts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w8_alarm_every_update: Option<bool>,
    /// For `hardened` only: a bug planted on purpose, to show the harness
    /// catches it (`marlow_model::task::planted`; `tests/planted.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_bug: Option<PlantedBug>,
}

/// The largest `max_reenqueues`: a bound must be a bound.
pub const MAX_REENQUEUES: u32 = 1_000_000;

impl DesignSection {
    /// A design of this kind with every switch at its default.
    pub fn of_kind(design: DesignKind) -> DesignSection {
        DesignSection {
            design,
            ..DesignSection::default()
        }
    }

    /// The seed switches with their names, set or not, in `SeedConfig` order.
    fn switches(&self) -> [(&'static str, Option<u32>); 9] {
        let flag = |b: Option<bool>| b.map(u32::from);
        [
            (
                "w1_version_counts_events",
                flag(self.w1_version_counts_events),
            ),
            (
                "w2_no_snapshot_skips_check",
                flag(self.w2_no_snapshot_skips_check),
            ),
            ("w3_index_by_raw_key", flag(self.w3_index_by_raw_key)),
            ("w4_no_idempotency", flag(self.w4_no_idempotency)),
            ("w5_unbounded_reenqueue", flag(self.w5_unbounded_reenqueue)),
            ("max_reenqueues", self.max_reenqueues),
            (
                "w7_silent_drop_undecodable",
                flag(self.w7_silent_drop_undecodable),
            ),
            (
                "w7_accept_negative_amounts",
                flag(self.w7_accept_negative_amounts),
            ),
            ("w8_alarm_every_update", flag(self.w8_alarm_every_update)),
        ]
    }

    /// The weak-point switches with their names, to change one by index
    /// (`marlow shrink` turns them off one at a time).
    pub fn weak_point_switches_mut(&mut self) -> [(&'static str, &mut Option<bool>); 8] {
        [
            (
                "w1_version_counts_events",
                &mut self.w1_version_counts_events,
            ),
            (
                "w2_no_snapshot_skips_check",
                &mut self.w2_no_snapshot_skips_check,
            ),
            ("w3_index_by_raw_key", &mut self.w3_index_by_raw_key),
            ("w4_no_idempotency", &mut self.w4_no_idempotency),
            ("w5_unbounded_reenqueue", &mut self.w5_unbounded_reenqueue),
            (
                "w7_silent_drop_undecodable",
                &mut self.w7_silent_drop_undecodable,
            ),
            (
                "w7_accept_negative_amounts",
                &mut self.w7_accept_negative_amounts,
            ),
            ("w8_alarm_every_update", &mut self.w8_alarm_every_update),
        ]
    }

    /// The seed switches, starting from the original and applying those set.
    pub fn seed_config(&self, alarm: AlarmRule) -> SeedConfig {
        let original = SeedConfig::original();
        SeedConfig {
            w1_version_counts_events: self
                .w1_version_counts_events
                .unwrap_or(original.w1_version_counts_events),
            w2_no_snapshot_skips_check: self
                .w2_no_snapshot_skips_check
                .unwrap_or(original.w2_no_snapshot_skips_check),
            w3_index_by_raw_key: self
                .w3_index_by_raw_key
                .unwrap_or(original.w3_index_by_raw_key),
            w4_no_idempotency: self.w4_no_idempotency.unwrap_or(original.w4_no_idempotency),
            w5_unbounded_reenqueue: self
                .w5_unbounded_reenqueue
                .unwrap_or(original.w5_unbounded_reenqueue),
            max_reenqueues: self.max_reenqueues.unwrap_or(original.max_reenqueues),
            w7_silent_drop_undecodable: self
                .w7_silent_drop_undecodable
                .unwrap_or(original.w7_silent_drop_undecodable),
            w7_accept_negative_amounts: self
                .w7_accept_negative_amounts
                .unwrap_or(original.w7_accept_negative_amounts),
            w8_alarm_every_update: self
                .w8_alarm_every_update
                .unwrap_or(original.w8_alarm_every_update),
            alarm,
        }
    }

    /// The model's configuration of this design with the given alarm rule.
    pub fn config(&self, alarm: AlarmRule) -> DesignConfig {
        match self.design {
            DesignKind::Seed => DesignConfig::Seed(self.seed_config(alarm)),
            DesignKind::Hardened => DesignConfig::Hardened(HardenedConfig {
                alarm,
                planted_bug: self.planted_bug,
            }),
        }
    }

    pub(crate) fn validate(&self, v: &mut Validator) {
        if self.design == DesignKind::Hardened {
            for (name, value) in self.switches() {
                if value.is_some() {
                    v.fail(
                        format!("design.{name}"),
                        "no seed switch with design = \"hardened\" (switches belong to design = \"seed\")",
                        "one",
                    );
                }
            }
        }
        if self.design == DesignKind::Seed && self.planted_bug.is_some() {
            v.fail(
                "design.planted_bug",
                "a planted bug only with design = \"hardened\" (the seed design's weak points are its switches)",
                "one",
            );
        }
        if let Some(max) = self.max_reenqueues {
            v.int_in("design.max_reenqueues", max, 1, MAX_REENQUEUES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards against drift: a switch added to `SeedConfig` must be added here,
    /// or a scenario could not set it.
    #[test]
    fn every_seed_config_switch_can_be_set_from_the_design_table() {
        let fixed = SeedConfig::all_fixed();
        let mut table = toml::Table::try_from(&fixed).expect("SeedConfig serializes to a table");
        table.remove("alarm");
        table.insert("design".into(), "seed".into());
        let section: DesignSection = table
            .try_into()
            .expect("every SeedConfig field except alarm must be a DesignSection field");
        assert_eq!(section.seed_config(AlarmRule::default()), fixed);
    }

    #[test]
    fn design_kinds_parse_from_the_command_line() {
        assert_eq!("seed".parse::<DesignKind>(), Ok(DesignKind::Seed));
        assert_eq!("hardened".parse::<DesignKind>(), Ok(DesignKind::Hardened));
        assert!("Seed".parse::<DesignKind>().is_err());
        assert_eq!(DesignKind::Seed.to_string(), "seed");
    }

    #[test]
    fn unset_switches_are_the_original() {
        let section = DesignSection::of_kind(DesignKind::Seed);
        assert_eq!(
            section.seed_config(AlarmRule::default()),
            SeedConfig::original()
        );
        let alarm = AlarmRule { threshold_minor: 5 };
        assert_eq!(
            DesignSection::of_kind(DesignKind::Hardened).config(alarm),
            DesignConfig::Hardened(HardenedConfig {
                alarm,
                planted_bug: None
            })
        );
    }
}
