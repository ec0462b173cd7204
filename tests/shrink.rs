//! `marlow shrink` on every weak point: from the first seed whose failure is
//! the one the scenario expects, the shrinker finds a scenario of at most
//! `MAX_SHRUNK_COMMANDS` commands that fails the same invariant, with the
//! scenario's own weak point still on, and whose TOML file fails again when
//! read back and run at the printed seed.

use marlow_scenarios::{Invariant, Scenario};
use marlow_sim::shrink::{shrink, ShrinkOptions};
use marlow_tests::{run_seed, scenario};

/// The target for a shrunk repro: a failure a person can read whole.
const MAX_SHRUNK_COMMANDS: u64 = 10;

/// The first seed (within the scenario's own `within_seeds`) that violates
/// an invariant the scenario expects, and that invariant.
fn first_expected_failure(scenario: &Scenario) -> (u64, Invariant) {
    let expect = scenario.check.expect.as_ref().expect("W scenarios expect");
    (0..u64::from(expect.within_seeds))
        .find_map(|seed| {
            let report = run_seed(scenario, seed);
            let violation = (report.violations.iter()).find(|v| expect.accepts(v.invariant))?;
            Some((seed, violation.invariant))
        })
        .unwrap_or_else(|| panic!("{} finds no expected failure", scenario.name))
}

fn shrinks_to_a_few_commands(name: &str) {
    let scenario = scenario(name, None);
    let (seed, invariant) = first_expected_failure(&scenario);
    let options = ShrinkOptions {
        invariant: Some(invariant),
        ..ShrinkOptions::default()
    };
    let shrunk = shrink(&scenario, seed, &options, &mut |_| true)
        .unwrap_or_else(|error| panic!("{name} seed {seed}: {error}"));
    assert_eq!(shrunk.invariant, invariant, "{name} seed {seed}");
    println!(
        "{name} seed {seed} {invariant}: {} -> {} (seed {})",
        shrunk.before, shrunk.after, shrunk.seed
    );
    assert!(
        shrunk.after.commands <= MAX_SHRUNK_COMMANDS,
        "{name} seed {seed} shrank only to {}",
        shrunk.after
    );
    // The file `marlow shrink` writes, read back the way `marlow run` reads it.
    let text = shrunk.scenario.to_toml_string().expect("serialises");
    let again = Scenario::from_toml_str(&text, "shrunk.toml").expect("valid");
    assert_eq!(again, shrunk.scenario);
    let report = run_seed(&again, shrunk.seed);
    assert!(
        report.violations.iter().any(|v| v.invariant == invariant),
        "{name}: the shrunk file at seed {} no longer fails {invariant}",
        shrunk.seed
    );
    assert_eq!(report.counters.commands_sent, shrunk.after.commands);
    // The weak point the scenario is about stays on.
    let design = &again.design;
    let weak_point_on = match name {
        "w1-livelock" => design.w1_version_counts_events != Some(false),
        "w2-first-event" => design.w2_no_snapshot_skips_check != Some(false),
        "w3-check-then-act" => design.w3_index_by_raw_key != Some(false),
        "w4-resubmission" => design.w4_no_idempotency != Some(false),
        "w5-retry-storm" => design.w5_unbounded_reenqueue != Some(false),
        "w7-bad-input" => {
            design.w7_silent_drop_undecodable != Some(false)
                || design.w7_accept_negative_amounts != Some(false)
        }
        "w8-alarms" => design.w8_alarm_every_update != Some(false),
        _ => true, // W6 is the cluster's retention, not a design switch.
    };
    assert!(
        weak_point_on,
        "{name}: the shrinker switched its weak point off"
    );
}

#[test]
fn w1_shrinks() {
    shrinks_to_a_few_commands("w1-livelock");
}

#[test]
fn w2_shrinks() {
    shrinks_to_a_few_commands("w2-first-event");
}

#[test]
fn w3_shrinks() {
    shrinks_to_a_few_commands("w3-check-then-act");
}

#[test]
fn w4_shrinks() {
    shrinks_to_a_few_commands("w4-resubmission");
}

#[test]
fn w5_shrinks() {
    shrinks_to_a_few_commands("w5-retry-storm");
}

#[test]
fn w6_shrinks() {
    shrinks_to_a_few_commands("w6-retention");
}

#[test]
fn w7_shrinks() {
    shrinks_to_a_few_commands("w7-bad-input");
}

#[test]
fn w8_shrinks() {
    shrinks_to_a_few_commands("w8-alarms");
}
