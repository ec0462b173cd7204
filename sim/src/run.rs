//! One simulated run, start to finish: build the world from (scenario, seed),
//! run it through the safety and liveness phases, check the history against
//! every enabled invariant, and report. This is the API the CLI and the tests
//! use; it never reads the wall clock (the caller times it if it wants to).

use crate::check::{check_history, CheckConfig, Violation};
use crate::history::History;
use crate::marks::MarkCounts;
use crate::panics::{catch, InternalFailure};
use crate::trace::{TraceHash, TraceLine};
use crate::world::{Counters, World};
use marlow_model::DesignConfig;
use marlow_scenarios::{ProcessingGuarantee, Scenario};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub seed: u64,
    /// Keep this many readable trace lines (0: hash only, the fast default).
    pub readable_trace_lines: usize,
    /// Keep readable lines only up to this simulated time (the violation's,
    /// when replaying one); `None` keeps the last lines of the run.
    pub trace_until_us: Option<u64>,
}

pub struct RunReport {
    pub scenario: String,
    pub design: &'static str,
    pub seed: u64,
    /// Every option this seed drew (swarm testing: a `[hunt]` section's
    /// workload and topology, then the fault mix), as (name, value).
    pub options: Vec<(String, String)>,
    pub counters: Counters,
    /// The coverage marks this run hit, with counts.
    pub marks: MarkCounts,
    pub simulated_us: u64,
    pub trace_hash: TraceHash,
    pub trace_steps: u64,
    /// The first violation of each invariant, in history order.
    pub violations: Vec<Violation>,
    pub history: History,
    pub trace_lines: Vec<TraceLine>,
}

/// Exit codes of `marlow`, as DESIGN.md fixes them.
pub const EXIT_PASS: i32 = 0;
/// A run panicked: an internal assertion, reported per seed (see `run_catching`).
pub const EXIT_INTERNAL: i32 = 1;
pub const EXIT_SAFETY: i32 = 3;
pub const EXIT_LIVENESS: i32 = 4;

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violation to show: the first safety one, else the first liveness one.
    pub fn headline(&self) -> Option<&Violation> {
        self.violations
            .iter()
            .find(|violation| !violation.invariant.is_liveness())
            .or_else(|| self.violations.first())
    }

    pub fn exit_code(&self) -> i32 {
        match self.headline() {
            None => EXIT_PASS,
            Some(violation) if violation.invariant.is_liveness() => EXIT_LIVENESS,
            Some(_) => EXIT_SAFETY,
        }
    }
}

pub fn design_name(scenario: &Scenario) -> &'static str {
    match scenario.design_config() {
        DesignConfig::Seed(_) => "seed",
        DesignConfig::Hardened(_) => "hardened",
    }
}

/// The checkers' configuration for a scenario: its threshold, its liveness
/// bound, its chosen invariants. The seed design's aggregator consumes the
/// events topic, so a restored snapshot may lag the log; it commits no
/// outcomes. At least once, an identical alarm may be written twice (S7).
pub fn check_config(scenario: &Scenario) -> CheckConfig {
    let bound_us = scenario.phases.liveness_bound_ms * 1000;
    let enabled = scenario.check.invariants.iter().copied().collect();
    let seed = design_name(scenario) == "seed";
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

pub fn run(scenario: &Scenario, options: &RunOptions) -> RunReport {
    let until = options.trace_until_us.unwrap_or(u64::MAX);
    let mut world = World::new(scenario, options.seed, options.readable_trace_lines, until);
    let simulated_us = world.run();
    // The drawn scenario: a `[hunt]` seed's bounds are its own.
    let violations = check_history(world.history.entries(), &check_config(&world.scenario));
    RunReport {
        scenario: scenario.name.clone(),
        design: design_name(scenario),
        seed: options.seed,
        options: world.drawn_options.clone(),
        counters: world.counters.clone(),
        marks: world.marks.clone(),
        simulated_us,
        trace_hash: world.trace.hash(),
        trace_steps: world.trace.steps(),
        violations,
        trace_lines: world.trace.lines().cloned().collect(),
        history: std::mem::take(&mut world.history),
    }
}

/// `run`, with a panic inside the run (a broken internal assertion) turned into
/// an `InternalFailure` for this seed, so a sweep reports it and goes on.
pub fn run_catching(
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<RunReport, InternalFailure> {
    catch(|| run(scenario, options))
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
