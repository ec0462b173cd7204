//! The invariants of docs/design.md as a closed set: S1-S9 (safety, judged at every
//! step) and L1-L4 (liveness: L1-L3 judged against bounds counted from `Heal`,
//! L4 against the client timeout in a phase without faults).
//! Shared by scenario files (`[check]`), the checkers and the reports.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One invariant of docs/design.md. Serialised as its code ("S1" ... "L4").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Invariant {
    S1,
    S2,
    S3,
    S4,
    S5,
    S6,
    S7,
    S8,
    S9,
    L1,
    L2,
    L3,
    L4,
}

impl Invariant {
    /// Every invariant, safety first, in docs/design.md order.
    pub const ALL: [Invariant; 13] = [
        Invariant::S1,
        Invariant::S2,
        Invariant::S3,
        Invariant::S4,
        Invariant::S5,
        Invariant::S6,
        Invariant::S7,
        Invariant::S8,
        Invariant::S9,
        Invariant::L1,
        Invariant::L2,
        Invariant::L3,
        Invariant::L4,
    ];

    /// The short code used in docs/design.md, scenario files and reports: "S1".
    pub fn code(self) -> &'static str {
        match self {
            Invariant::S1 => "S1",
            Invariant::S2 => "S2",
            Invariant::S3 => "S3",
            Invariant::S4 => "S4",
            Invariant::S5 => "S5",
            Invariant::S6 => "S6",
            Invariant::S7 => "S7",
            Invariant::S8 => "S8",
            Invariant::S9 => "S9",
            Invariant::L1 => "L1",
            Invariant::L2 => "L2",
            Invariant::L3 => "L3",
            Invariant::L4 => "L4",
        }
    }

    /// A few words naming the property.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::S1 => "no overdraft",
            Invariant::S2 => "exactly-once application",
            Invariant::S3 => "gap-free versions",
            Invariant::S4 => "state = fold(events)",
            Invariant::S5 => "conservation",
            Invariant::S6 => "nothing lost",
            Invariant::S7 => "one alarm per crossing",
            Invariant::S8 => "OCC honoured",
            Invariant::S9 => "every answer is right",
            Invariant::L1 => "every command resolved",
            Invariant::L2 => "every crossing alarmed",
            Invariant::L3 => "retries drain",
            Invariant::L4 => "answered in time",
        }
    }

    /// One line saying what the checker expects.
    pub fn description(self) -> &'static str {
        match self {
            Invariant::S1 => "no account's balance is below 0 after any prefix of its event log",
            Invariant::S2 => "a command's events are committed at most once, and a command id has one effect and one answer",
            Invariant::S3 => "per account, committed event versions are 1, 2, 3, ... with no gap and no repeat",
            Invariant::S4 => "a store restored after a crash equals the fold of the committed events",
            Invariant::S5 => "every moved amount is one a client asked for, and every withdrawal in the log is one its client was told succeeded",
            Invariant::S6 => "every command is accepted, rejected, dead-lettered or still pending, and no committed record is rewritten",
            Invariant::S7 => "exactly one alarm record per downward crossing of the threshold, none spurious",
            Invariant::S8 => "a command with an expected version is applied only at exactly that version, and refused as a conflict only when the account was not at it",
            Invariant::S9 => "every answer (accepted with its events, or rejected with its reason) is what an independent oracle of the account rules gives, and clients are told what was committed",
            Invariant::L1 => "after healing, every command gets an outcome (or a dead letter) within the bound",
            Invariant::L2 => "after healing, every downward crossing is alarmed within the bound",
            Invariant::L3 => "after healing, re-enqueue traffic stops within the bound",
            Invariant::L4 => "in a phase without faults, no command needs a client timeout to be answered",
        }
    }

    /// The name of the checker that watches this invariant (its file name).
    pub fn checker_name(self) -> &'static str {
        match self {
            Invariant::S1 => "always_balance_non_negative",
            Invariant::S2 => "always_applied_once",
            Invariant::S3 => "always_versions_gap_free",
            Invariant::S4 => "always_restored_state_matches_log",
            Invariant::S5 => "always_money_conserved",
            Invariant::S6 => "always_nothing_lost",
            Invariant::S7 => "always_one_alarm_per_crossing",
            Invariant::S8 => "always_occ_honoured",
            Invariant::S9 => "always_every_answer_right",
            Invariant::L1 => "eventually_every_command_resolved",
            Invariant::L2 => "eventually_every_crossing_alarmed",
            Invariant::L3 => "eventually_retries_drain",
            Invariant::L4 => "always_answered_before_timeout",
        }
    }

    pub fn is_liveness(self) -> bool {
        matches!(
            self,
            Invariant::L1 | Invariant::L2 | Invariant::L3 | Invariant::L4
        )
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

/// Parses a code ("S1", "l2") or a checker name ("always_balance_non_negative").
impl FromStr for Invariant {
    type Err = String;

    fn from_str(text: &str) -> Result<Invariant, String> {
        let text = text.trim();
        Invariant::ALL
            .into_iter()
            .find(|invariant| {
                invariant.code().eq_ignore_ascii_case(text) || invariant.checker_name() == text
            })
            .ok_or_else(|| format!("unknown invariant {text:?}: expected one of S1-S9, L1-L4"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_checker_names_parse_back() {
        for invariant in Invariant::ALL {
            assert_eq!(invariant.code().parse::<Invariant>(), Ok(invariant));
            assert_eq!(invariant.checker_name().parse::<Invariant>(), Ok(invariant));
            assert_eq!(invariant.is_liveness(), invariant.code().starts_with('L'));
        }
        assert!("S10".parse::<Invariant>().is_err());
        assert!("L5".parse::<Invariant>().is_err());
    }
}
