//! `marlow shrink`: from a failing (scenario, seed), search for a smaller
//! scenario that fails the same invariant. A run is a pure function of the
//! scenario and the seed, so every candidate is judged by running it; the
//! search is greedy over the moves in `moves.rs` (fewer clients, operations,
//! accounts, a shorter safety phase, fewer faults, a smaller topology, weak
//! points switched off, simpler amounts), repeated until a whole round finds
//! nothing smaller. A candidate may fail at a nearby seed instead of the
//! original one: a smaller scenario draws differently, and the repro names
//! the seed it fails at.

pub mod moves;

use crate::run::{run_catching, RunOptions, RunReport};
use crate::swarm;
use marlow_harness::verdict::headline;
use marlow_scenarios::{Invariant, Scenario};
use moves::{Change, PASSES};
use std::fmt;

/// Rounds over every pass at most; each accepted candidate lowers a field,
/// so the search ends anyway, but a bound keeps its cost predictable.
pub const MAX_ROUNDS: u32 = 20;

#[derive(Clone, Debug)]
pub struct ShrinkOptions {
    /// Candidate runs at most, over the whole search.
    pub max_runs: u64,
    /// Seeds tried per candidate: the current seed, then the ones after it.
    pub seeds_per_candidate: u32,
    /// The invariant to keep failing: one of the original run's violations.
    /// `None`: its headline (the first safety violation, else the first
    /// liveness one), the one `marlow run` prints first.
    pub invariant: Option<Invariant>,
    /// The options of every run (its budgets); the seed is the shrinker's.
    pub run: RunOptions,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions {
            max_runs: 20_000,
            seeds_per_candidate: 8,
            invariant: None,
            run: RunOptions::default(),
        }
    }
}

/// How big a failing run is, as the summary prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    /// Commands sent (first attempts: the setup's and the clients').
    pub commands: u64,
    pub resubmissions: u64,
    pub garbage_records: u64,
    pub clients: u32,
    pub accounts: u32,
    pub partitions: u32,
    pub app_instances: u32,
    /// Timeline entries plus fault kinds with a rate above 0.
    pub faults: usize,
    pub safety_duration_ms: u64,
}

impl Size {
    fn of(scenario: &Scenario, report: &RunReport) -> Size {
        let rates = scenario.faults.rates();
        Size {
            commands: report.counters.commands_sent,
            resubmissions: report.counters.resubmissions,
            garbage_records: report.counters.garbage_sent,
            clients: scenario.workload.clients,
            accounts: scenario.workload.accounts,
            partitions: scenario.cluster.partitions,
            app_instances: scenario.cluster.app_instances,
            faults: scenario.faults.timeline.len()
                + rates.iter().filter(|(_, rate)| *rate > 0.0).count(),
            safety_duration_ms: scenario.phases.safety_duration_ms,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} commands ({} resubmissions, {} garbage records), {} clients, {} accounts, \
             {} partitions, {} app instances, {} faults, {} ms safety phase",
            self.commands,
            self.resubmissions,
            self.garbage_records,
            self.clients,
            self.accounts,
            self.partitions,
            self.app_instances,
            self.faults,
            self.safety_duration_ms
        )
    }
}

/// Where the search stands, for a progress bar.
pub struct Progress<'a> {
    pub runs: u64,
    pub accepted: u32,
    pub best_commands: u64,
    pub pass: &'a str,
}

/// Why the search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A whole round of moves found nothing smaller.
    Minimal,
    RunBudget,
    /// The caller's progress callback said stop (e.g. a time budget).
    Asked,
    Rounds,
}

pub struct Shrunk {
    /// Concrete (no `[hunt]`), ready for `marlow run` with `seed`.
    pub scenario: Scenario,
    pub seed: u64,
    pub invariant: Invariant,
    pub before: Size,
    pub after: Size,
    pub runs: u64,
    /// The moves that were kept, in order; consecutive moves of one field
    /// are merged into one (from the first's value to the last's).
    pub changes: Vec<Change>,
    /// The seed each kept move failed at is the result's seed in the end.
    pub moves_kept: u32,
    pub stop: Stop,
    /// The failing run of the result (its headline is `invariant`).
    pub report: RunReport,
}

#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("seed {seed} of {scenario} passes: there is no failure to shrink")]
    Passes { scenario: String, seed: u64 },
    #[error("seed {seed} of {scenario} panics ({message}): shrink works on invariant violations; replay it with `marlow repro`")]
    Panics {
        scenario: String,
        seed: u64,
        message: String,
    },
    #[error("--invariant: seed {seed} of {scenario} does not violate {invariant} (it violates {violated})")]
    NotViolated {
        scenario: String,
        seed: u64,
        invariant: Invariant,
        violated: String,
    },
    #[error("seed {seed} of {scenario} fails {original}, but its drawn concrete scenario fails {concrete:?}: the draw is not reproducible, which is a bug")]
    DrawDiffers {
        scenario: String,
        seed: u64,
        original: Invariant,
        concrete: Option<Invariant>,
    },
}

struct Best {
    scenario: Scenario,
    seed: u64,
    report: RunReport,
    size: Size,
}

/// The most operations any client started in `report`'s run: the start of
/// the operations ladder when the scenario sets no limit.
fn most_operations_per_client(report: &RunReport, clients: u32) -> u32 {
    let client_commands = report.counters.commands_sent + report.counters.garbage_sent;
    u32::try_from(client_commands / u64::from(clients.max(1)))
        .unwrap_or(u32::MAX / 2)
        .saturating_mul(2)
        .max(1)
}

fn run_seed(scenario: &Scenario, seed: u64, template: &RunOptions) -> Option<RunReport> {
    let options = RunOptions {
        seed,
        ..template.clone()
    };
    run_catching(scenario, &options).ok()
}

/// Whether the run violates `invariant`: as its headline when that is the
/// target, else anywhere among its violations.
fn fails_with(report: &RunReport, invariant: Invariant, as_headline: bool) -> bool {
    if as_headline {
        headline(&report.violations).is_some_and(|violation| violation.invariant == invariant)
    } else {
        report
            .violations
            .iter()
            .any(|violation| violation.invariant == invariant)
    }
}

/// Shrinks the failure of `seed` on `scenario`. `progress` is called after
/// every candidate run; returning `false` stops the search with what it has.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    options: &ShrinkOptions,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<Shrunk, ShrinkError> {
    let original = run_catching(
        scenario,
        &RunOptions {
            seed,
            ..options.run.clone()
        },
    )
    .map_err(|failure| ShrinkError::Panics {
        scenario: scenario.name.clone(),
        seed,
        message: failure.to_string(),
    })?;
    let Some(first) = headline(&original.violations).map(|v| v.invariant) else {
        return Err(ShrinkError::Passes {
            scenario: scenario.name.clone(),
            seed,
        });
    };
    let invariant = options.invariant.unwrap_or(first);
    let as_headline = options.invariant.is_none();
    if !fails_with(&original, invariant, false) {
        return Err(ShrinkError::NotViolated {
            scenario: scenario.name.clone(),
            seed,
            invariant,
            violated: original
                .violations
                .iter()
                .map(|v| v.invariant.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let fails = |report: &RunReport| fails_with(report, invariant, as_headline);
    // The moves work on the concrete scenario this seed drew (a `[hunt]`
    // range or a swarm fault mix becomes the values it drew); the same seed
    // must fail it the same way.
    let start = as_repro(swarm::draw(scenario, seed).scenario, scenario);
    let report = run_seed(&start, seed, &options.run);
    let Some(report) = report.filter(|report| fails(report)) else {
        return Err(ShrinkError::DrawDiffers {
            scenario: scenario.name.clone(),
            seed,
            original: invariant,
            concrete: run_seed(&start, seed, &options.run)
                .and_then(|r| headline(&r.violations).map(|v| v.invariant)),
        });
    };
    let before = Size::of(&start, &report);
    let mut best = Best {
        size: before.clone(),
        scenario: start,
        seed,
        report,
    };
    let mut runs = 2_u64;
    let mut changes = Vec::new();
    let mut moves_kept = 0_u32;
    let mut stop = Stop::Rounds;
    'rounds: for _round in 0..MAX_ROUNDS {
        let mut improved = false;
        for (pass, moves) in PASSES {
            // Re-derive the moves after every accepted candidate: the next
            // step starts from the new, smaller scenario.
            loop {
                let seen = most_operations_per_client(&best.report, best.scenario.workload.clients);
                let mut accepted = false;
                for candidate in moves(&best.scenario, seen) {
                    if candidate.scenario.validate().is_err() {
                        continue;
                    }
                    for offset in 0..u64::from(options.seeds_per_candidate.max(1)) {
                        if runs >= options.max_runs {
                            stop = Stop::RunBudget;
                            break 'rounds;
                        }
                        let candidate_seed = best.seed.wrapping_add(offset);
                        runs += 1;
                        let report = run_seed(&candidate.scenario, candidate_seed, &options.run);
                        let keep = report.filter(|report| {
                            fails(report) && report.counters.commands_sent <= best.size.commands
                        });
                        let on = Progress {
                            runs,
                            accepted: moves_kept,
                            best_commands: best.size.commands,
                            pass,
                        };
                        // A candidate that fails is kept even when the
                        // caller then says stop: it ran, and it is smaller.
                        let go_on = progress(&on);
                        if let Some(report) = keep {
                            best = Best {
                                size: Size::of(&candidate.scenario, &report),
                                scenario: candidate.scenario.clone(),
                                seed: candidate_seed,
                                report,
                            };
                            keep_change(&mut changes, candidate.change.clone());
                            moves_kept += 1;
                            accepted = true;
                        }
                        if !go_on {
                            stop = Stop::Asked;
                            break 'rounds;
                        }
                        if accepted {
                            break;
                        }
                    }
                    if accepted {
                        break;
                    }
                }
                if !accepted {
                    break;
                }
                improved = true;
            }
        }
        if !improved {
            stop = Stop::Minimal;
            break;
        }
    }
    assert!(fails(&best.report));
    assert!(best.size.commands <= before.commands);
    Ok(Shrunk {
        scenario: best.scenario,
        seed: best.seed,
        invariant,
        before,
        after: best.size,
        runs,
        changes,
        moves_kept,
        stop,
        report: best.report,
    })
}

/// Appends `change`, merged into the last one when it moves the same field.
fn keep_change(changes: &mut Vec<Change>, change: Change) {
    match changes.last_mut() {
        Some(last) if last.field == change.field => last.to = change.to,
        _ => changes.push(change),
    }
}

/// The drawn scenario as a repro file: named after the original, with no
/// coverage requirements (a minimal repro need not reach every mark the
/// original scenario promises; the run's verdict does not depend on them).
fn as_repro(mut drawn: Scenario, original: &Scenario) -> Scenario {
    let mut name = format!("{}-shrunk", original.name);
    name.truncate(64);
    drawn.name = name;
    drawn.description = format!(
        "{} shrunk by marlow shrink: a smaller run that fails the same invariant",
        original.name
    );
    drawn.check.required_marks.clear();
    debug_assert!(drawn.hunt.is_none());
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_seed_is_refused() {
        let scenario = Scenario::load_named("baseline").expect("shipped");
        let mut small = scenario.clone();
        small.workload.clients = 2;
        small.phases.safety_duration_ms = 200;
        let error = shrink(&small, 0, &ShrinkOptions::default(), &mut |_| true)
            .err()
            .expect("baseline passes");
        assert!(matches!(error, ShrinkError::Passes { .. }), "{error}");
    }

    #[test]
    fn a_w4_failure_shrinks_to_a_few_commands_that_still_fail() {
        let scenario = Scenario::load_named("w4-resubmission").expect("shipped");
        let shrunk = shrink(&scenario, 0, &ShrinkOptions::default(), &mut |_| true).expect("fails");
        assert!(shrunk.after.commands < shrunk.before.commands);
        assert!(shrunk.after.commands <= 10, "{}", shrunk.after);
        // The file round-trips and fails again at the printed seed.
        let text = shrunk.scenario.to_toml_string().expect("serialises");
        let again = Scenario::from_toml_str(&text, "shrunk").expect("valid");
        assert_eq!(again, shrunk.scenario);
        let report = run_seed(&again, shrunk.seed, &RunOptions::default()).expect("no panic");
        assert!(fails_with(&report, shrunk.invariant, true));
    }
}
