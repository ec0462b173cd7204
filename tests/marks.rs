//! Coverage marks in real runs: every shipped scenario reaches the marks it
//! requires (the reason it exists) within the seeds CI sweeps, in its own
//! design; a few marks are shown counted where they must be, and absent where they
//! cannot be; marks are as deterministic as the run.

use marlow_model::Mark;
use marlow_scenarios::{shipped_names, DesignKind, Scenario};
use marlow_sim::marks::MarkTally;
use marlow_tests::{run_seed, run_seed_to_end, scenario};

/// The seeds CI sweeps per scenario (tests/sweeps.rs).
fn ci_seeds(name: &str) -> std::ops::Range<u64> {
    match name {
        "baseline" => 0..2,
        "chaos" => 0..24,
        _ => 0..4,
    }
}

/// Runs seeds in order until every required mark is reached (or the range
/// ends); the tally and the marks still missing.
fn sweep_until_reached(scenario: &Scenario, seeds: std::ops::Range<u64>) -> (MarkTally, Vec<Mark>) {
    let required = &scenario.check.required_marks;
    let mut tally = MarkTally::default();
    for seed in seeds {
        tally.add(&run_seed_to_end(scenario, seed).marks, true);
        if tally.missing(required).is_empty() {
            break;
        }
    }
    let missing = tally.missing(required);
    (tally, missing)
}

#[test]
fn every_shipped_scenario_requires_marks_and_reaches_them_in_its_ci_seeds() {
    let mut failures = Vec::new();
    for name in shipped_names() {
        let own = scenario(name, None);
        assert!(
            !own.check.required_marks.is_empty(),
            "{name} lists no required marks: say what it exists to reach"
        );
        let (tally, missing) = sweep_until_reached(&own, ci_seeds(name));
        println!(
            "{name:<20} {} seeds run for required marks {:?}",
            tally.runs(),
            own.check.required_marks
        );
        if !missing.is_empty() {
            failures.push(format!(
                "{name}: never reached {missing:?} in seeds {:?}",
                ci_seeds(name)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Duplicate sends and timeouts in a hardened run reach the dedup path; the
/// seed design with W4 on has no dedup path, so the same load never marks it.
#[test]
fn dedup_hits_are_counted_only_where_a_dedup_happens() {
    let hardened = scenario("w4-resubmission", Some(DesignKind::Hardened));
    let report = run_seed(&hardened, 0);
    assert!(report.counters.resubmissions > 0);
    assert!(
        report.marks.count(Mark::DedupHit) > 0,
        "resubmitted ids must hit the hardened dedup: {}",
        report.marks.compact()
    );
    assert_eq!(
        report.marks.count(Mark::Resubmission),
        report.counters.resubmissions
    );
    let seed = run_seed(&scenario("w4-resubmission", None), 0);
    assert!(seed.marks.count(Mark::Resubmission) > 0);
    assert_eq!(
        seed.marks.count(Mark::DedupHit),
        0,
        "W4 on: no dedup at all"
    );
}

/// The seed design's retry storm re-enqueues; the hardened design never does.
#[test]
fn reenqueues_are_counted_in_the_seed_design_only() {
    let seed = run_seed(&scenario("w5-retry-storm", None), 0);
    assert!(
        seed.marks.count(Mark::Reenqueue) > 100,
        "{}",
        seed.marks.compact()
    );
    let hardened = run_seed(&scenario("w5-retry-storm", Some(DesignKind::Hardened)), 0);
    assert_eq!(hardened.marks.count(Mark::Reenqueue), 0);
}

/// Marks are part of the run's outcome: the same seed gives the same counts,
/// and counting them leaves the trace hash as the run made it.
#[test]
fn marks_are_deterministic() {
    let chaos = scenario("chaos", None);
    let first = run_seed(&chaos, 3);
    let second = run_seed(&chaos, 3);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.marks, second.marks);
    assert!(!first.marks.is_empty());
}

/// Every mark is documented in the scenario schema, with its design.
#[test]
fn every_mark_is_documented() {
    let readme = include_str!("../scenarios/README.md");
    for mark in Mark::ALL {
        assert!(
            readme.contains(&format!("| `{}` |", mark.name())),
            "scenarios/README.md has no row for mark {mark}"
        );
    }
}

/// Retention is what removes unread commands: the same pause without it
/// never reaches the mark (and nothing is lost).
#[test]
fn command_removed_by_retention_needs_retention() {
    let mut kept = scenario("w6-retention", None);
    let with = run_seed(&kept, 0);
    assert!(with.marks.count(Mark::CommandRemovedByRetention) > 0);
    kept.cluster.commands_retention_ms = 0;
    let without = run_seed(&kept, 0);
    assert_eq!(without.marks.count(Mark::CommandRemovedByRetention), 0);
}
