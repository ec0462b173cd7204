//! Helpers shared by the workspace integration tests: run a scenario over a
//! seed range and say which invariants each seed violated.

use marlow_scenarios::{DesignKind, Scenario};
use marlow_sim::check::Invariant;
use marlow_sim::run::{run, RunOptions, RunReport};

/// Loads a shipped scenario, optionally forcing the design.
pub fn scenario(name: &str, design: Option<DesignKind>) -> Scenario {
    let scenario = Scenario::load_named(name).unwrap_or_else(|error| panic!("{error}"));
    match design {
        Some(design) => scenario.with_design(design),
        None => scenario,
    }
}

pub fn run_seed(scenario: &Scenario, seed: u64) -> RunReport {
    run(
        scenario,
        &RunOptions {
            seed,
            ..RunOptions::default()
        },
    )
}

/// `run_seed`, on past the first safety violation to the scenario's end (what
/// coverage marks are judged on).
pub fn run_seed_to_end(scenario: &Scenario, seed: u64) -> RunReport {
    run(
        scenario,
        &RunOptions {
            seed,
            run_to_end: true,
            ..RunOptions::default()
        },
    )
}

/// The invariants a run violated, in docs/design.md order.
pub fn violated(report: &RunReport) -> Vec<Invariant> {
    let mut invariants: Vec<Invariant> = report.violations.iter().map(|v| v.invariant).collect();
    invariants.sort();
    invariants.dedup();
    invariants
}

/// The command that replays a seed, for failure messages.
pub fn repro(scenario: &str, report: &RunReport) -> String {
    format!(
        "cargo run --release -p marlow-cli -- repro {scenario} --seed {} --design {} --trace",
        report.seed, report.design
    )
}

/// Measures wall time for the self-test's report; simulated runs never read
/// the clock themselves.
#[allow(clippy::disallowed_methods)]
pub fn timed<T>(work: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let started = std::time::Instant::now();
    let value = work();
    (value, started.elapsed())
}
