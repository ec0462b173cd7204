//! The harness against bugs planted in the hardened design: each bug of
//! `marlow_model::task::planted::PlantedBug` is switched on in a shipped
//! scenario (run with the hardened design, as `tests/sweeps.rs` runs it) and
//! must be caught by one of the invariants stated here within the seeds stated
//! here, on a seed the unmodified design passes (checked for each catch), so
//! each catch is the bug's. A bug no shipped scenario catches is a hole in the
//! harness: a checker to sharpen or a workload to widen, never a row to drop.
//! Each test prints the seed that caught it and its repro line.

use marlow_model::task::planted::PlantedBug;
use marlow_scenarios::{DesignKind, Invariant, TimelineAction};
use marlow_sim::run::Judged;
use marlow_tests::{run_seed, scenario, violated};

/// Where a planted bug is caught: the shipped scenario, how many seeds from 0
/// it may take, and the invariants that may name it.
struct Catch {
    bug: PlantedBug,
    scenario: &'static str,
    within_seeds: u64,
    by: &'static [Invariant],
}

use Invariant::*;
use PlantedBug::*;

/// One row per planted bug, `PlantedBug::ALL` order. The seed counts are a
/// few times what the release build measured (the seed that first catches
/// it is printed), so a weakening checker shows up as a growing count first.
const CATCHES: [Catch; 17] = [
    catch(AlarmOnEveryAnswer, "edges", 4, &[S7]),
    catch(RebuildForgetsAlarms, "edges", 4, &[S7]),
    catch(NoDedup, "baseline", 2, &[S2, S5, S9]),
    catch(DedupRedecides, "baseline", 2, &[S2, S9]),
    catch(RejectionsNotRemembered, "chaos", 4, &[S2, S9]),
    catch(OccIgnored, "edges", 4, &[S8, S9]),
    catch(OccOnlyRefusesStale, "edges", 8, &[S8, S9]),
    catch(AlarmReportsBalanceBefore, "edges", 2, &[S7]),
    catch(AlarmBelowNotAcross, "edges", 4, &[S7]),
    catch(AlarmAtThreshold, "edges", 4, &[S7]),
    catch(OwnerChangesNotStored, "baseline", 2, &[S4, S9]),
    catch(OutcomeVersionBefore, "baseline", 2, &[S8, S9]),
    catch(KeyMismatchProcessed, "w3-check-then-act", 4, &[S2, S3, S9]),
    catch(UndecodableDropped, "chaos", 4, &[S6, L1]),
    catch(RebuildForgetsPendingAlarm, "edges", 16, &[L2]),
    catch(WithdrawalChecksStaleBalance, "baseline", 2, &[S1, S9]),
    catch(AnswersBeforeFacts, "edges", 4, &[S5, S8, S9]),
];

const fn catch(
    bug: PlantedBug,
    scenario: &'static str,
    within_seeds: u64,
    by: &'static [Invariant],
) -> Catch {
    Catch {
        bug,
        scenario,
        within_seeds,
        by,
    }
}

fn caught(row: &Catch) {
    let mut planted = scenario(row.scenario, Some(DesignKind::Hardened));
    // As tests/sweeps.rs runs the hardened design: without repartitioning,
    // which makes it halt on purpose.
    planted
        .faults
        .timeline
        .retain(|entry| !matches!(entry.action, TimelineAction::AddPartitions { .. }));
    planted.design.planted_bug = Some(row.bug);
    let mut seen = Vec::new();
    for seed in 0..row.within_seeds {
        let report = run_seed(&planted, seed);
        let found = violated(&report);
        if let Some(by) = found.iter().find(|invariant| row.by.contains(invariant)) {
            // The catch is the bug's only if the same seed passes without it.
            let mut unplanted = planted.clone();
            unplanted.design.planted_bug = None;
            let clean = run_seed(&unplanted, seed);
            assert!(
                clean.headline().is_none(),
                "{} seed {seed} fails without the planted bug too: {:?}",
                row.scenario,
                clean.headline()
            );
            println!(
                "{:<32} caught by {by} on {} at seed {seed} (of {})\n  cargo run --release -p marlow-cli -- repro FILE --seed {seed}  (FILE: {} with [design] planted_bug = \"{}\")",
                row.bug.name(),
                row.scenario,
                row.within_seeds,
                row.scenario,
                row.bug.name()
            );
            return;
        }
        seen.push((seed, found));
    }
    panic!(
        "planted bug {} passed {} seeds of {} (expected one of {:?}); violations per seed: {seen:?}",
        row.bug.name(),
        row.within_seeds,
        row.scenario,
        row.by
    );
}

#[test]
fn every_planted_bug_has_a_row() {
    let rows: Vec<PlantedBug> = CATCHES.iter().map(|row| row.bug).collect();
    assert_eq!(rows, PlantedBug::ALL.to_vec());
}

#[test]
fn every_planted_bug_is_caught() {
    let mut escaped = Vec::new();
    for row in &CATCHES {
        if let Err(panic) = std::panic::catch_unwind(|| caught(row)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "a panic".to_string());
            escaped.push(message);
        }
    }
    assert!(escaped.is_empty(), "escaped:\n{}", escaped.join("\n"));
}

/// A scenario file cannot plant a bug in the seed design: its weak points are
/// its switches.
#[test]
fn a_planted_bug_needs_the_hardened_design() {
    let text = r#"
name = "planted-seed"
description = "a planted bug on the seed design"
[design]
design = "seed"
planted_bug = "no_dedup"
"#;
    let error =
        marlow_scenarios::Scenario::from_toml_str(text, "planted-seed").expect_err("refused");
    assert!(error.to_string().contains("design.planted_bug"), "{error}");
}
