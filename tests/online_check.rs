//! Online checking: a simulated run feeds its checkers as its history grows and
//! stops at its first safety violation. Its verdict must be the one the checkers
//! give the finished history, and stopping early must only cut the run short,
//! never change what happened before the stop.

use marlow_scenarios::{DesignKind, Scenario};
use marlow_sim::check::check_history;
use marlow_sim::run::{check_config, run, Judged, RunOptions, RunReport};
use marlow_tests::scenario;

fn run_with(scenario: &Scenario, seed: u64, run_to_end: bool) -> RunReport {
    let options = RunOptions {
        seed,
        run_to_end,
        ..RunOptions::default()
    };
    run(scenario, &options)
}

/// Run to its end, the online verdict equals the offline one over the whole
/// history, for passing and failing seeds alike.
#[test]
fn the_online_verdict_of_a_full_run_is_the_offline_verdict_of_its_history() {
    let cases = [
        ("baseline", Some(DesignKind::Hardened), 0),
        ("w3-check-then-act", None, 0),
        ("w3-check-then-act", None, 1),
        ("w6-retention", None, 0),
        ("w8-alarms", None, 2),
        ("chaos", Some(DesignKind::Hardened), 3),
    ];
    let mut failing = 0;
    for (name, design, seed) in cases {
        let scenario = scenario(name, design);
        let report = run_with(&scenario, seed, true);
        assert!(
            !report.stopped_early,
            "{name}/{seed} was told to run to its end"
        );
        let entries = report.history.entries().len() as u64;
        assert_eq!(
            report.entries_checked, entries,
            "{name} seed {seed}: every entry is checked"
        );
        let offline = check_history(report.history.entries(), &check_config(&scenario));
        assert_eq!(report.violations, offline, "{name} seed {seed}");
        failing += usize::from(!report.passed());
    }
    assert!(
        failing >= 3,
        "the cases must include failing runs, {failing} failed"
    );
}

/// Stopped at its first safety violation, a run's history is a prefix of the
/// same seed run to its end, and what it reports is a safety violation the
/// offline check of that prefix also finds.
#[test]
fn stopping_at_the_first_safety_violation_only_cuts_the_run_short() {
    let scenario = scenario("w3-check-then-act", None);
    for seed in 0..3 {
        let stopped = run_with(&scenario, seed, false);
        let full = run_with(&scenario, seed, true);
        assert!(stopped.stopped_early, "seed {seed} breaks safety");
        let prefix = stopped.history.entries();
        assert!(prefix.len() < full.history.entries().len(), "seed {seed}");
        assert_eq!(
            prefix,
            &full.history.entries()[..prefix.len()],
            "seed {seed}"
        );
        let headline = stopped.headline().expect("a violation");
        assert!(
            !headline.invariant.is_liveness(),
            "seed {seed}: {headline:?}"
        );
        let offline = check_history(prefix, &check_config(&scenario));
        assert!(
            offline.contains(headline),
            "seed {seed}: {headline:?} not in {offline:?}"
        );
        assert_eq!(stopped.exit_code(), 3);
        assert_eq!(stopped.entries_checked, prefix.len() as u64, "seed {seed}");
    }
}
