//! The harness self-test: for each weak point W1-W8, its scenario run with the
//! seed design must be caught by the invariant the scenario expects, within
//! the number of seeds it states. Each test prints the seed that caught it and
//! the wall time that took, so a weakening checker shows up as a growing count.

use marlow_scenarios::Scenario;
use marlow_tests::{repro, run_seed, scenario, timed, violated};

fn caught_within_expected_seeds(name: &str) {
    let scenario: Scenario = scenario(name, None);
    let expect = scenario
        .check
        .expect
        .clone()
        .unwrap_or_else(|| panic!("{name} has no [check] expect block"));
    let mut seen = Vec::new();
    let (caught, wall) = timed(|| {
        (0..u64::from(expect.within_seeds)).find_map(|seed| {
            let report = run_seed(&scenario, seed);
            let found = violated(&report);
            let hit = found
                .iter()
                .copied()
                .find(|invariant| expect.accepts(*invariant));
            seen.push((seed, found));
            hit.map(|invariant| (seed, invariant, repro(name, &report)))
        })
    });
    let expected: Vec<String> = expect
        .invariants
        .iter()
        .map(|i| i.code().to_string())
        .collect();
    match caught {
        Some((seed, invariant, line)) => println!(
            "{name:<20} expected {:<12} caught by {invariant} at seed {seed} ({} seeds, {:.2} s wall)\n  {line}",
            expected.join("|"),
            seed + 1,
            wall.as_secs_f64()
        ),
        None => panic!(
            "{name}: the seed design was not caught by {} within {} seeds; violations per seed: {seen:?}",
            expected.join("|"),
            expect.within_seeds
        ),
    }
}

#[test]
fn w1_livelock_is_caught() {
    caught_within_expected_seeds("w1-livelock");
}

#[test]
fn w2_first_event_is_caught() {
    caught_within_expected_seeds("w2-first-event");
}

#[test]
fn w3_check_then_act_is_caught() {
    caught_within_expected_seeds("w3-check-then-act");
}

#[test]
fn w4_resubmission_is_caught() {
    caught_within_expected_seeds("w4-resubmission");
}

#[test]
fn w5_retry_storm_is_caught() {
    caught_within_expected_seeds("w5-retry-storm");
}

#[test]
fn w6_retention_is_caught() {
    caught_within_expected_seeds("w6-retention");
}

#[test]
fn w7_bad_input_is_caught() {
    caught_within_expected_seeds("w7-bad-input");
}

#[test]
fn w8_alarms_is_caught() {
    caught_within_expected_seeds("w8-alarms");
}

/// Every shipped weak-point scenario has a test above.
#[test]
fn every_weak_point_scenario_is_in_the_table() {
    let weak: Vec<&str> = marlow_scenarios::shipped_names()
        .into_iter()
        .filter(|name| name.starts_with('w'))
        .collect();
    assert_eq!(weak.len(), 8, "{weak:?}");
}
