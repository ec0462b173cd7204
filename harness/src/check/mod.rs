//! The invariant checkers: one observer per invariant of docs/design.md (S1-S9,
//! L1-L4), each fed the history one entry at a time, each pure and
//! deterministic. A checker reports its first violation; `check_history` runs
//! them all over a finished history, `CheckSuite` does the same as a run goes.
//!
//! Judgements "at the end of the run" (liveness, and the end-of-run parts of
//! S5 and S6) are made by `Checker::finish`, which the suite calls when it sees
//! the `End` entry. The bounds of L1-L3 count from the first `Heal` entry; a
//! history without `Heal` is never judged for them, so a simulator must push
//! `Heal` even in a run without faults. L4 judges client timeouts as they come,
//! in the phases it knows to be free of faults.
//!
//! S8 and S9 are oracles apart from the code they judge: `rules_oracle` holds
//! the account rules written a second time, with its own state and fold.

mod answer_window;
mod commands;
mod deadlines;
mod id_map;
mod replay;
mod rules_oracle;
pub mod testkit;
mod trace;
mod violation;

mod always_answered_before_timeout;
mod always_applied_once;
mod always_balance_non_negative;
mod always_every_answer_right;
mod always_money_conserved;
mod always_nothing_lost;
mod always_occ_honoured;
mod always_one_alarm_per_crossing;
mod always_restored_state_matches_log;
mod always_versions_gap_free;
mod eventually_every_command_resolved;
mod eventually_every_crossing_alarmed;
mod eventually_retries_drain;

pub use always_answered_before_timeout::AlwaysAnsweredBeforeTimeout;
pub use always_applied_once::AlwaysAppliedOnce;
pub use always_balance_non_negative::AlwaysBalanceNonNegative;
pub use always_every_answer_right::AlwaysEveryAnswerRight;
pub use always_money_conserved::AlwaysMoneyConserved;
pub use always_nothing_lost::AlwaysNothingLost;
pub use always_occ_honoured::AlwaysOccHonoured;
pub use always_one_alarm_per_crossing::AlwaysOneAlarmPerCrossing;
pub use always_restored_state_matches_log::AlwaysRestoredStateMatchesLog;
pub use always_versions_gap_free::AlwaysVersionsGapFree;
pub use eventually_every_command_resolved::EventuallyEveryCommandResolved;
pub use eventually_every_crossing_alarmed::EventuallyEveryCrossingAlarmed;
pub use eventually_retries_drain::EventuallyRetriesDrain;
pub use marlow_scenarios::Invariant;
pub use trace::{concerns_violation, related_entries, related_entries_streamed, trace_slice};
pub use violation::{format_us, RecordRef, Violation};

use crate::history::{HistoryEntry, Step};
use marlow_model::alarm::DEFAULT_ALARM_THRESHOLD_MINOR;
use std::collections::BTreeSet;

/// An observer of one invariant.
pub trait Checker {
    fn invariant(&self) -> Invariant;

    /// Looks at the next entry; returns a violation the moment it sees one.
    /// After reporting, a checker may be fed further entries but need not
    /// report again.
    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation>;

    /// Judges what is left when the run ends at `end_at_us` (after `End` has
    /// been observed): liveness, and end-of-run accounting.
    fn finish(&mut self, end_at_us: u64) -> Option<Violation>;

    /// Forgets what it keeps per command about the commands first answered
    /// before `answered_before_us`, so that a check that runs for hours keeps
    /// bounded state (a soak's mid-run check). Forgetting can only miss a
    /// violation, never invent one: what a later entry shows about a forgotten
    /// command (a late second application) is left to the final check, which
    /// reads the whole history. Checkers whose state is per account keep it.
    fn forget_answered_before(&mut self, _answered_before_us: u64) {}
}

/// What the checkers need to know about a run. Every bound is in simulated
/// microseconds, counted from the first `Heal` entry (or from the moment the
/// thing began, if that is later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// The low-balance threshold alarms are about, in minor units.
    pub alarm_threshold_minor: i64,
    /// L1: a command must be resolved within this long.
    pub outcome_bound_us: u64,
    /// L2: a downward crossing must be alarmed within this long.
    pub alarm_bound_us: u64,
    /// L3: no re-enqueue may be committed later than this after `Heal`.
    pub reenqueue_drain_bound_us: u64,
    /// S4: whether a restored store may hold a prefix of an account's log
    /// rather than all of it. `false` (the hardened design) for a task that
    /// writes the events itself and so must hold every one it committed; `true`
    /// for a task that consumes the events topic and may lag behind it (the
    /// seed design's aggregator).
    pub restore_may_lag_log: bool,
    /// S7: whether the run is at least once, where an identical repeat of an
    /// alarm record is tolerated (a producer retry or a replay after a crash
    /// may write it twice); exactly once, it is a violation.
    pub at_least_once: bool,
    /// S9 and L4: whether the design commits an outcome for every command and
    /// tells its client from it (the hardened design). The seed design
    /// commits no outcomes: a client learns acceptance from the command's
    /// event, and is never told a rejection.
    pub answers_every_command: bool,
    /// S8 and S9: how long after an answer became visible the events
    /// committed with it may still appear in the history (see
    /// `answer_window`). 0 in the simulator, where one transaction's records
    /// become visible at the same instant; real mode reads its topics back one
    /// by one after the run, so there it is unbounded.
    pub answer_slack_us: u64,
    /// L4: whether a run with no `Fault` entry before `Heal` is judged from
    /// its start (a scenario that plans no fault: no random fault can act
    /// without an entry either).
    pub timely_from_start: bool,
    /// L4: otherwise commands are judged from this long after `Heal`.
    pub timeliness_settle_us: u64,
    /// L4: how long a design without faults may take to answer. A client
    /// that gives up sooner is impatient (w4-resubmission sets a 3 ms timeout
    /// on purpose) and its timeout is not judged.
    pub answer_time_floor_us: u64,
    /// The invariants to check; all by default.
    pub enabled: BTreeSet<Invariant>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            alarm_threshold_minor: DEFAULT_ALARM_THRESHOLD_MINOR,
            outcome_bound_us: 30_000_000,
            alarm_bound_us: 30_000_000,
            reenqueue_drain_bound_us: 60_000_000,
            restore_may_lag_log: false,
            at_least_once: false,
            answers_every_command: true,
            answer_slack_us: 0,
            timely_from_start: false,
            timeliness_settle_us: 10_000_000,
            answer_time_floor_us: 200_000,
            enabled: Invariant::ALL.into_iter().collect(),
        }
    }
}

impl CheckConfig {
    /// The default configuration restricted to `invariants`.
    pub fn only(invariants: &[Invariant]) -> CheckConfig {
        CheckConfig {
            enabled: invariants.iter().copied().collect(),
            ..CheckConfig::default()
        }
    }
}

/// A fresh checker for every enabled invariant, in `Invariant::ALL` order.
pub fn checkers(config: &CheckConfig) -> Vec<Box<dyn Checker>> {
    Invariant::ALL
        .into_iter()
        .filter(|invariant| config.enabled.contains(invariant))
        .map(|invariant| checker(invariant, config))
        .collect()
}

/// A fresh checker of one invariant.
pub fn checker(invariant: Invariant, config: &CheckConfig) -> Box<dyn Checker> {
    match invariant {
        Invariant::S1 => Box::new(AlwaysBalanceNonNegative::new()),
        Invariant::S2 => Box::new(AlwaysAppliedOnce::new()),
        Invariant::S3 => Box::new(AlwaysVersionsGapFree::new()),
        Invariant::S4 => Box::new(AlwaysRestoredStateMatchesLog::new(config)),
        Invariant::S5 => Box::new(AlwaysMoneyConserved::new()),
        Invariant::S6 => Box::new(AlwaysNothingLost::new()),
        Invariant::S7 => Box::new(AlwaysOneAlarmPerCrossing::new(config)),
        Invariant::S8 => Box::new(AlwaysOccHonoured::new(config)),
        Invariant::S9 => Box::new(AlwaysEveryAnswerRight::new(config)),
        Invariant::L1 => Box::new(EventuallyEveryCommandResolved::new(config)),
        Invariant::L2 => Box::new(EventuallyEveryCrossingAlarmed::new(config)),
        Invariant::L3 => Box::new(EventuallyRetriesDrain::new(config)),
        Invariant::L4 => Box::new(AlwaysAnsweredBeforeTimeout::new(config)),
    }
}

/// Runs the enabled checkers over a history as it is written: feed every entry
/// to `observe`; the suite finishes itself when it sees `End`. Each invariant
/// reports its first violation only.
pub struct CheckSuite {
    checkers: Vec<Box<dyn Checker>>,
    violations: Vec<Violation>,
    /// Whether `checkers[i]` has reported (and so is no longer fed).
    fired: Vec<bool>,
    finished: bool,
    /// Entries fed so far.
    observed: u64,
}

impl CheckSuite {
    pub fn new(config: &CheckConfig) -> CheckSuite {
        let checkers = checkers(config);
        let fired = vec![false; checkers.len()];
        CheckSuite {
            checkers,
            violations: Vec::new(),
            fired,
            finished: false,
            observed: 0,
        }
    }

    pub fn observe(&mut self, entry: &HistoryEntry) {
        assert!(
            !self.finished,
            "a finished check suite was fed another entry"
        );
        self.observed += 1;
        for (checker, fired) in self.checkers.iter_mut().zip(self.fired.iter_mut()) {
            if *fired {
                continue;
            }
            if let Some(violation) = checker.observe(entry) {
                assert_eq!(violation.invariant, checker.invariant());
                self.violations.push(violation);
                *fired = true;
            }
        }
        if matches!(entry.step, Step::End) {
            self.finish(entry.at_us);
        }
    }

    /// Judges the end of the run. Called by `observe` on `End`; call it
    /// yourself only for a history that ended without one.
    pub fn finish(&mut self, end_at_us: u64) {
        if self.finished {
            return;
        }
        self.finished = true;
        for (checker, fired) in self.checkers.iter_mut().zip(self.fired.iter_mut()) {
            if *fired {
                continue;
            }
            if let Some(violation) = checker.finish(end_at_us) {
                assert_eq!(violation.invariant, checker.invariant());
                self.violations.push(violation);
                *fired = true;
            }
        }
    }

    /// Every checker forgets the commands first answered before
    /// `answered_before_us` (see `Checker::forget_answered_before`).
    pub fn forget_answered_before(&mut self, answered_before_us: u64) {
        for checker in &mut self.checkers {
            checker.forget_answered_before(answered_before_us);
        }
    }

    /// How many entries the suite was fed.
    pub fn entries_observed(&self) -> u64 {
        self.observed
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The violations so far, in the order they were found.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The violations, at most one per invariant, in history order.
    pub fn into_violations(mut self) -> Vec<Violation> {
        self.violations
            .sort_by_key(|violation| (violation.history_seq, violation.invariant));
        self.violations
    }
}

/// Checks a whole history: the first violation of each enabled invariant, in
/// history order. End-of-run judgements are made only if the history has an
/// `End` entry.
pub fn check_history(history: &[HistoryEntry], config: &CheckConfig) -> Vec<Violation> {
    let mut suite = CheckSuite::new(config);
    for entry in history {
        suite.observe(entry);
        if suite.is_finished() {
            break;
        }
    }
    suite.into_violations()
}

/// `check_history` over a history read one entry at a time (a spilled soak's file):
/// nothing but the checkers' own state is held. The first read error ends the check.
pub fn check_history_streamed<E>(
    history: impl IntoIterator<Item = Result<HistoryEntry, E>>,
    config: &CheckConfig,
) -> Result<Vec<Violation>, E> {
    let mut suite = CheckSuite::new(config);
    for entry in history {
        suite.observe(&entry?);
        if suite.is_finished() {
            break;
        }
    }
    Ok(suite.into_violations())
}
