//! One simulated run, start to finish: build the world from (scenario, seed),
//! run it through the safety and liveness phases, check the history against
//! every enabled invariant, and report. This is the API the CLI and the tests
//! use; it never reads the wall clock (the caller times it if it wants to).

use crate::check::Violation;
use crate::history::History;
use crate::marks::MarkCounts;
use crate::panics::{catch, InternalFailure};
use crate::trace::{TraceHash, TraceLine};
use crate::world::{Counters, World};
use marlow_scenarios::Scenario;

pub use marlow_harness::verdict::{
    answer_time_floor_us, check_config, timeliness_settle_us, Judged, EXIT_INTERNAL, EXIT_LIVENESS,
    EXIT_PASS, EXIT_SAFETY,
};

/// The design's name, as reports print it.
pub fn design_name(scenario: &Scenario) -> &'static str {
    scenario.design_config().name()
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub seed: u64,
    /// Keep this many readable trace lines (0: hash only, the fast default).
    pub readable_trace_lines: usize,
    /// Keep readable lines only up to this simulated time (the violation's,
    /// when replaying one); `None` keeps the last lines of the run.
    pub trace_until_us: Option<u64>,
    /// Run on past the first safety violation to the scenario's end (to see
    /// what follows it, or to judge coverage marks); by default a run stops
    /// there.
    pub run_to_end: bool,
    /// Overrides the scenario's step budget (`world/budget.rs`).
    pub max_steps: Option<u64>,
    /// Overrides the memory budget, in estimated bytes (`world/budget.rs`).
    pub max_memory_bytes: Option<u64>,
    /// Overrides the largest store value a task may write (`world/budget.rs`).
    pub max_store_value_bytes: Option<usize>,
    /// Tests only: plant a determinism bug from this trace step on (see
    /// `world/content.rs`), to show `check_determinism` naming the step.
    #[cfg(test)]
    pub plant_unordered_content_from_step: Option<u64>,
    /// Tests only: keep stores through a revocation that abandoned a batch
    /// (see `world/membership.rs`), to show the checkers catching it.
    #[cfg(test)]
    pub plant_keep_unsettled_stores: bool,
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
    /// The run stopped at its first safety violation, before its `End`: its
    /// liveness and end-of-run judgements were not made.
    pub stopped_early: bool,
    /// How many history entries the checkers were fed as the run went (all of
    /// them: online checking skips none).
    pub entries_checked: u64,
    pub history: History,
    pub trace_lines: Vec<TraceLine>,
}

impl Judged for RunReport {
    fn violations(&self) -> &[Violation] {
        &self.violations
    }
}

pub fn run(scenario: &Scenario, options: &RunOptions) -> RunReport {
    let until = options.trace_until_us.unwrap_or(u64::MAX);
    let mut world = World::new(scenario, options.seed, options.readable_trace_lines, until);
    world.stop_at_first_safety_violation = !options.run_to_end;
    #[cfg(test)]
    {
        world.plant_unordered_content_from_step = options.plant_unordered_content_from_step;
        world.plant_keep_unsettled_stores = options.plant_keep_unsettled_stores;
    }
    if let Some(max_steps) = options.max_steps {
        world.budget.max_steps = max_steps;
    }
    if let Some(max_memory_bytes) = options.max_memory_bytes {
        world.budget.max_memory_bytes = max_memory_bytes;
    }
    if let Some(bytes) = options.max_store_value_bytes {
        world.budget.max_store_value_bytes = bytes;
    }
    let simulated_us = world.run();
    let stopped_early = !world.ended;
    // Checked online as the run went, against the drawn scenario (a `[hunt]`
    // seed's bounds are its own); a run stops at its first safety violation.
    let entries_checked = world.suite.entries_observed();
    let mut violations = world.take_violations();
    violations.extend(world.budget_stop.take());
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
        stopped_early,
        entries_checked,
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
