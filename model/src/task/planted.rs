//! Bugs that can be planted in the `hardened` design, one at a time, to show
//! that the harness catches each (`tests/planted.rs`). They are the mistakes an
//! engineer could plausibly make in a single-writer, idempotent, OCC-checking
//! processor: each changes one decision of `hardened.rs` and is off unless a
//! scenario names it (`[design] planted_bug = "..."`). The seed design's weak
//! points (W1-W8) play the same part for the original topology.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlantedBug {
    /// Answering a command again (a resubmission, a duplicate send, a replay)
    /// publishes its alarm again, without asking the store whether it was.
    AlarmOnEveryAnswer,
    /// Rebuilding the store from the outputs (at least once) skips the alarms
    /// topic, so the markers of published alarms are forgotten.
    RebuildForgetsAlarms,
    /// No lookup of the command id: a resubmission or a duplicate send is
    /// decided and applied again.
    NoDedup,
    /// A command seen before is decided again against the current state and
    /// answered with that, instead of with the answer it was given.
    DedupRedecides,
    /// A rejected command's answer is not remembered, so its resubmission is
    /// decided again (and may now be accepted).
    RejectionsNotRemembered,
    /// The expected version of a conditional command is not checked.
    OccIgnored,
    /// A conditional command is refused only when it is behind the account
    /// (`expected < version`), so one ahead of it is applied.
    OccOnlyRefusesStale,
    /// The alarm names the balance before the crossing command.
    AlarmReportsBalanceBefore,
    /// Every command that leaves the balance below the threshold alarms, not
    /// only the one that crossed it.
    AlarmBelowNotAcross,
    /// A balance landing exactly on the threshold counts as below it.
    AlarmAtThreshold,
    /// A change of owners is applied to the events but not to the stored
    /// account state.
    OwnerChangesNotStored,
    /// An accepted command's outcome names the version before it.
    OutcomeVersionBefore,
    /// A record whose key names another account than its command is
    /// processed on this partition instead of dead-lettered.
    KeyMismatchProcessed,
    /// Undecodable input is dropped without a dead letter.
    UndecodableDropped,
    /// Rebuilding the store from the outputs (at least once) remembers an
    /// accepted command without its alarm, so an alarm lost in a crash between
    /// the event and the alarm is never published by the replay.
    RebuildForgetsPendingAlarm,
    /// A withdrawal is checked against the balance the account had before its
    /// previous command (a stale read of the store: a cache one write behind).
    WithdrawalChecksStaleBalance,
    /// At least once, the events are sent with the answers instead of being
    /// flushed first, so a crash mid-flush can leave a client told
    /// "accepted" of a command whose events never reach the log.
    AnswersBeforeFacts,
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 17] = [
        PlantedBug::AlarmOnEveryAnswer,
        PlantedBug::RebuildForgetsAlarms,
        PlantedBug::NoDedup,
        PlantedBug::DedupRedecides,
        PlantedBug::RejectionsNotRemembered,
        PlantedBug::OccIgnored,
        PlantedBug::OccOnlyRefusesStale,
        PlantedBug::AlarmReportsBalanceBefore,
        PlantedBug::AlarmBelowNotAcross,
        PlantedBug::AlarmAtThreshold,
        PlantedBug::OwnerChangesNotStored,
        PlantedBug::OutcomeVersionBefore,
        PlantedBug::KeyMismatchProcessed,
        PlantedBug::UndecodableDropped,
        PlantedBug::RebuildForgetsPendingAlarm,
        PlantedBug::WithdrawalChecksStaleBalance,
        PlantedBug::AnswersBeforeFacts,
    ];

    /// The name a scenario file uses.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::AlarmOnEveryAnswer => "alarm_on_every_answer",
            PlantedBug::RebuildForgetsAlarms => "rebuild_forgets_alarms",
            PlantedBug::NoDedup => "no_dedup",
            PlantedBug::DedupRedecides => "dedup_redecides",
            PlantedBug::RejectionsNotRemembered => "rejections_not_remembered",
            PlantedBug::OccIgnored => "occ_ignored",
            PlantedBug::OccOnlyRefusesStale => "occ_only_refuses_stale",
            PlantedBug::AlarmReportsBalanceBefore => "alarm_reports_balance_before",
            PlantedBug::AlarmBelowNotAcross => "alarm_below_not_across",
            PlantedBug::AlarmAtThreshold => "alarm_at_threshold",
            PlantedBug::OwnerChangesNotStored => "owner_changes_not_stored",
            PlantedBug::OutcomeVersionBefore => "outcome_version_before",
            PlantedBug::KeyMismatchProcessed => "key_mismatch_processed",
            PlantedBug::UndecodableDropped => "undecodable_dropped",
            PlantedBug::RebuildForgetsPendingAlarm => "rebuild_forgets_pending_alarm",
            PlantedBug::WithdrawalChecksStaleBalance => "withdrawal_checks_stale_balance",
            PlantedBug::AnswersBeforeFacts => "answers_before_facts",
        }
    }
}

impl fmt::Display for PlantedBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_through_serde() {
        for bug in PlantedBug::ALL {
            let text = serde_json::to_string(&bug).expect("serializes");
            assert_eq!(text, format!("\"{}\"", bug.name()));
            let back: PlantedBug = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, bug);
        }
        let mut names: Vec<_> = PlantedBug::ALL.iter().map(|bug| bug.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PlantedBug::ALL.len(), "two bugs share a name");
    }
}
