//! The verdict of a run, the same in both modes: which violation is its
//! headline, which exit code it ends with, and how the checkers are configured
//! for a scenario (`check_config`).

use crate::check::{CheckConfig, Violation};
use marlow_scenarios::{ProcessingGuarantee, Scenario};

/// Exit codes of `marlow` (docs/design.md, "Exit codes").
pub const EXIT_PASS: i32 = 0;
/// A run panicked: an internal assertion, reported per seed.
pub const EXIT_INTERNAL: i32 = 1;
/// A user mistake: a bad flag or scenario field (clap's own code).
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_SAFETY: i32 = 3;
pub const EXIT_LIVENESS: i32 = 4;

/// A finished run of either mode, judged by its violations: the simulator's
/// `RunReport` and real mode's `RealReport` answer the same way.
pub trait Judged {
    /// The first violation of each invariant, in history order.
    fn violations(&self) -> &[Violation];

    fn passed(&self) -> bool {
        self.violations().is_empty()
    }

    /// The violation to show: the first safety one, else the first liveness one.
    fn headline(&self) -> Option<&Violation> {
        headline(self.violations())
    }

    fn exit_code(&self) -> i32 {
        exit_code(self.violations())
    }
}

/// The violation to show: the first safety one, else the first liveness one.
pub fn headline(violations: &[Violation]) -> Option<&Violation> {
    violations
        .iter()
        .find(|violation| !violation.invariant.is_liveness())
        .or_else(|| violations.first())
}

/// The exit code of a run with these violations.
pub fn exit_code(violations: &[Violation]) -> i32 {
    match headline(violations) {
        None => EXIT_PASS,
        Some(violation) if violation.invariant.is_liveness() => EXIT_LIVENESS,
        Some(_) => EXIT_SAFETY,
    }
}

/// The checkers' configuration for a scenario: its threshold, its liveness
/// bound, its chosen invariants. The seed design's aggregator consumes the
/// events topic, so a restored snapshot may lag the log; it commits no
/// outcomes. At least once, an identical alarm may be written twice (S7).
pub fn check_config(scenario: &Scenario) -> CheckConfig {
    let bound_us = scenario.phases.liveness_bound_ms * 1000;
    let enabled = scenario.check.invariants.iter().copied().collect();
    let seed = !scenario.design_config().has_outcomes();
    CheckConfig {
        alarm_threshold_minor: scenario.check.alarm_threshold_minor,
        outcome_bound_us: bound_us,
        alarm_bound_us: bound_us,
        // Half the liveness bound: the run ends at the full bound, so a bound
        // equal to it could never see a late re-enqueue (L3 would be dead).
        reenqueue_drain_bound_us: bound_us / 2,
        restore_may_lag_log: seed,
        at_least_once: scenario.cluster.processing_guarantee == ProcessingGuarantee::AtLeastOnce,
        answers_every_command: !seed,
        answer_slack_us: 0,
        timely_from_start: scenario.faults.is_quiet(),
        timeliness_settle_us: timeliness_settle_us(scenario),
        answer_time_floor_us: answer_time_floor_us(scenario),
        enabled,
    }
}

/// L4: how long a design may take to answer without faults: a commit
/// interval (an answer becomes visible when its transaction commits) plus
/// twenty broker round trips at the slowest latency (produce, commit, fetch,
/// and the client's own poll, with room for a queue). A client timeout below
/// it is the workload's impatience, not the design's lateness.
pub fn answer_time_floor_us(scenario: &Scenario) -> u64 {
    let cluster = &scenario.cluster;
    let commit_us = cluster.commit_interval_ms.saturating_mul(1000);
    commit_us.saturating_add(cluster.broker_latency_us.max.saturating_mul(20))
}

/// L4: how long after healing the system may still be recovering, so that a
/// client timeout is excused. Each term is a wait the faults can leave behind:
/// a crashed or paused member is dropped only after its session timeout, and a
/// rebalance follows; an open transaction of a dead producer blocks
/// read_committed readers until it times out; an instance restarted at the
/// heal comes back after its restart delay; and the backlog of the fault phase
/// is commands whose clients resubmit up to `max_resubmits` times, one client
/// timeout apart, so after that many timeouts (plus one) no command of the
/// fault phase is still being sent.
pub fn timeliness_settle_us(scenario: &Scenario) -> u64 {
    let cluster = &scenario.cluster;
    let workload = &scenario.workload;
    let group_us = cluster.session_timeout_ms.saturating_mul(1000);
    let transaction_us = cluster.transaction_timeout_ms.saturating_mul(1000);
    let restart_us = scenario
        .faults
        .instance_restart_delay_ms
        .max
        .saturating_mul(1000);
    let backlog_us = workload
        .client_timeout_us
        .saturating_mul(u64::from(workload.max_resubmits) + 1);
    group_us
        .saturating_add(transaction_us)
        .saturating_add(restart_us)
        .saturating_add(backlog_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_scenarios::DesignKind;

    fn named(name: &str) -> Scenario {
        Scenario::load_named(name).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn the_check_config_follows_the_scenario() {
        let baseline = check_config(&named("baseline"));
        assert!(baseline.answers_every_command && baseline.timely_from_start);
        assert!(!baseline.at_least_once);
        assert_eq!(baseline.answer_slack_us, 0);
        // commit interval 100 ms + 20 x 2 ms broker latency
        assert_eq!(baseline.answer_time_floor_us, 140_000);

        let chaos = check_config(&named("chaos"));
        assert!(!chaos.timely_from_start);
        // session 1.5 s + transaction 5 s + restart 1 s + 4 client timeouts of 1 s
        assert_eq!(chaos.timeliness_settle_us, 11_500_000);

        let w3 = named("w3-check-then-act");
        assert!(check_config(&w3).at_least_once);
        assert!(!check_config(&w3).answers_every_command);
        let hardened = check_config(&w3.with_design(DesignKind::Hardened));
        assert!(hardened.at_least_once && hardened.answers_every_command);
    }
}
