//! Coverage marks ("sometimes" properties): the closed set of named moments a
//! run can reach, such as a dedup hit or a zombie fenced. Tasks report the marks
//! of their own logic as data in `TaskOutput`; the simulator counts those and its
//! own; scenario files name the marks a sweep must reach. A mark is a counter,
//! never an input to the run: counting one changes no draw and no trace hash.

use crate::rejection::Rejection;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One named mark. Serialised as its stable snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    // Reported by tasks (the model).
    /// A command id already resolved was answered again without a second effect.
    DedupHit,
    /// The seed validator re-enqueued a command whose turn had not come.
    Reenqueue,
    /// The seed validator gave up on a command (re-enqueue limit or stale position).
    ReenqueueLimitDeadLettered,
    /// The seed validator (W2 on) validated a command whose turn had not come
    /// against the empty state, because the account had no snapshot yet.
    ValidatedWithoutSnapshot,
    /// A command carrying an expected version was rejected as a version conflict.
    ConditionalCommandRejected,
    /// A withdrawal was refused for insufficient funds.
    OverdraftRefused,
    /// The processor raised an alarm (the seed filter with W8 on: any update below).
    AlarmCrossing,
    /// An undecodable input went to the dead-letter topic with its reason.
    UndecodableDeadLettered,
    /// An undecodable input was dropped without a trace (the seed design's W7).
    UndecodableDropped,
    /// The seed validator (W7 on) accepted a deposit or withdrawal of a negative amount.
    NegativeAmountAccepted,
    // Reported by the simulator.
    /// A rebalance completed while some instance had a transaction open.
    RebalanceWithTransactionOpen,
    /// The broker refused a transaction of an instance that was fenced or had
    /// lost its generation (a zombie).
    ZombieFenced,
    /// An instance aborted a transaction and went on without crashing or rejoining.
    AbortSurvived,
    /// The transaction coordinator aborted a transaction that outlived its timeout.
    TransactionTimedOut,
    /// The broker went down while some transaction was open.
    BrokerRestartMidTransaction,
    /// An instance crashed with a batch in flight (processed, not yet committed).
    CrashMidBatch,
    /// Retention deleted commands before an instance had read them.
    CommandRemovedByRetention,
    /// A store was restored while its input partition held records after the
    /// restore point (the instance resumes mid-stream).
    RestoreMidStream,
    /// A client resubmitted a command after its timeout.
    Resubmission,
    /// A client's producer sent one command twice.
    ProducerDuplicate,
    /// The group coordinator expired a member's session.
    SessionExpired,
    /// An input topic gained partitions during the run.
    InputRepartitioned,
    /// A compaction pass removed records from the events topic.
    EventsCompacted,
    /// An instance kept a store through a rebalance that gave it the same
    /// partition back (no restore).
    StoresKeptAcrossRebalance,
}

impl Mark {
    /// Every mark, tasks' first, in declaration order.
    pub const ALL: [Mark; 24] = [
        Mark::DedupHit,
        Mark::Reenqueue,
        Mark::ReenqueueLimitDeadLettered,
        Mark::ValidatedWithoutSnapshot,
        Mark::ConditionalCommandRejected,
        Mark::OverdraftRefused,
        Mark::AlarmCrossing,
        Mark::UndecodableDeadLettered,
        Mark::UndecodableDropped,
        Mark::NegativeAmountAccepted,
        Mark::RebalanceWithTransactionOpen,
        Mark::ZombieFenced,
        Mark::AbortSurvived,
        Mark::TransactionTimedOut,
        Mark::BrokerRestartMidTransaction,
        Mark::CrashMidBatch,
        Mark::CommandRemovedByRetention,
        Mark::RestoreMidStream,
        Mark::Resubmission,
        Mark::ProducerDuplicate,
        Mark::SessionExpired,
        Mark::InputRepartitioned,
        Mark::EventsCompacted,
        Mark::StoresKeptAcrossRebalance,
    ];

    /// The stable name used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Mark::DedupHit => "dedup_hit",
            Mark::Reenqueue => "reenqueue",
            Mark::ReenqueueLimitDeadLettered => "reenqueue_limit_dead_lettered",
            Mark::ValidatedWithoutSnapshot => "validated_without_snapshot",
            Mark::ConditionalCommandRejected => "conditional_command_rejected",
            Mark::OverdraftRefused => "overdraft_refused",
            Mark::AlarmCrossing => "alarm_crossing",
            Mark::UndecodableDeadLettered => "undecodable_dead_lettered",
            Mark::UndecodableDropped => "undecodable_dropped",
            Mark::NegativeAmountAccepted => "negative_amount_accepted",
            Mark::RebalanceWithTransactionOpen => "rebalance_with_transaction_open",
            Mark::ZombieFenced => "zombie_fenced",
            Mark::AbortSurvived => "abort_survived",
            Mark::TransactionTimedOut => "transaction_timed_out",
            Mark::BrokerRestartMidTransaction => "broker_restart_mid_transaction",
            Mark::CrashMidBatch => "crash_mid_batch",
            Mark::CommandRemovedByRetention => "command_removed_by_retention",
            Mark::RestoreMidStream => "restore_mid_stream",
            Mark::Resubmission => "resubmission",
            Mark::ProducerDuplicate => "producer_duplicate",
            Mark::SessionExpired => "session_expired",
            Mark::InputRepartitioned => "input_repartitioned",
            Mark::EventsCompacted => "events_compacted",
            Mark::StoresKeptAcrossRebalance => "stores_kept_across_rebalance",
        }
    }

    /// Which designs can reach the mark at all: a scenario may not require a
    /// mark its design never reports.
    pub fn reachable_by(self, design: MarkDesign) -> bool {
        match self {
            Mark::Reenqueue
            | Mark::ReenqueueLimitDeadLettered
            | Mark::ValidatedWithoutSnapshot
            | Mark::UndecodableDropped
            | Mark::NegativeAmountAccepted => design == MarkDesign::Seed,
            // The seed validator ignores expected versions (it orders by position).
            Mark::ConditionalCommandRejected => design == MarkDesign::Hardened,
            _ => true,
        }
    }

    /// The mark a business rejection reaches, if any.
    pub fn of_rejection(rejection: &Rejection) -> Option<Mark> {
        match rejection {
            Rejection::VersionConflict { .. } => Some(Mark::ConditionalCommandRejected),
            Rejection::InsufficientFunds { .. } => Some(Mark::OverdraftRefused),
            _ => None,
        }
    }

    /// Whether the mark exists only where the broker runs transactions.
    pub fn needs_transactions(self) -> bool {
        matches!(
            self,
            Mark::RebalanceWithTransactionOpen
                | Mark::ZombieFenced
                | Mark::AbortSurvived
                | Mark::TransactionTimedOut
                | Mark::BrokerRestartMidTransaction
        )
    }
}

/// The processor design, as far as marks care (the model does not know the
/// scenario's `DesignKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkDesign {
    Seed,
    Hardened,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_match_serde() {
        for (index, mark) in Mark::ALL.iter().enumerate() {
            let name = mark.name();
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!Mark::ALL[..index].iter().any(|m| m.name() == name));
            let json = serde_json::to_string(mark).expect("a mark serialises");
            assert_eq!(json, format!("\"{name}\""));
            let back: Mark = serde_json::from_str(&json).expect("and reads back");
            assert_eq!(back, *mark);
        }
        assert!(serde_json::from_str::<Mark>("\"no_such_mark\"").is_err());
    }

    #[test]
    fn design_specific_marks_are_refused_for_the_other_design() {
        assert!(Mark::Reenqueue.reachable_by(MarkDesign::Seed));
        assert!(!Mark::Reenqueue.reachable_by(MarkDesign::Hardened));
        assert!(!Mark::ConditionalCommandRejected.reachable_by(MarkDesign::Seed));
        assert!(Mark::DedupHit.reachable_by(MarkDesign::Seed));
        assert!(Mark::DedupHit.reachable_by(MarkDesign::Hardened));
        assert!(Mark::ZombieFenced.needs_transactions());
        assert!(!Mark::DedupHit.needs_transactions());
    }
}
