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
use marlow_scenarios::Scenario;

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
/// events topic, so a restored snapshot may lag the log.
pub fn check_config(scenario: &Scenario) -> CheckConfig {
    let bound_us = scenario.phases.liveness_bound_ms * 1000;
    let enabled = scenario.check.invariants.iter().copied().collect();
    CheckConfig {
        alarm_threshold_minor: scenario.check.alarm_threshold_minor,
        outcome_bound_us: bound_us,
        alarm_bound_us: bound_us,
        reenqueue_drain_bound_us: bound_us,
        restore_may_lag_log: design_name(scenario) == "seed",
        enabled,
    }
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
