//! The seed design in real mode against noida-db: the W3 check-then-act scenario, with the
//! partitions it adds mid-run and without its crashes, must show W3's expected invariant
//! (S1 overdraft or S3 duplicate versions) on a real broker, as it does in the simulator.
//! Skipped (with a line saying so) without noida-db. How often the other variants show it
//! is evidence, not a check: `cargo run --release -p marlow-kafka --example w3_evidence`.

mod common;

use marlow_kafka::broker::{noida_or_skip, BrokerUnderTest};
use marlow_kafka::deadline::Stopwatch;
use marlow_kafka::runtime::{run_real, InstanceEnd, RealOptions};
use marlow_scenarios::{Invariant, ProcessingGuarantee, Scenario};

/// The shipped W3 scenario without its crashes (noida-db never drops a crashed member, so
/// they stall the group) but with its `add_partitions`: the commands topic gains two
/// partitions at 1.5 s, moved keys start a fresh position counter, and two withdrawals with
/// one position pass against one snapshot. By hand on noida-db, exactly-once: 9 of
/// 10 seeds showed S1 or S3. The other variants are measured by `examples/w3_evidence.rs`.
fn w3_growing(guarantee: ProcessingGuarantee) -> Scenario {
    let mut scenario = Scenario::load_named("w3-check-then-act").expect("shipped scenario");
    scenario.faults.instance_crash_per_s = 0.0;
    scenario.cluster.processing_guarantee = guarantee;
    // Patient: a command waits for the snapshot's round trip through three topics instead
    // of being dead-lettered after 50 re-enqueues, which real transactions outlast.
    scenario.design.max_reenqueues = Some(100_000);
    scenario
}

/// Runs the scenario on one broker for each seed in turn until a run shows W3's expected
/// invariant; returns every run's shown invariants (the last one showed it, unless none did).
fn runs_until_w3(test: &str, scenario: &Scenario, seeds: &[u64]) -> Option<Vec<Vec<Invariant>>> {
    let noida = noida_or_skip(test).expect("noida-db")?;
    let expected = scenario
        .check
        .expect
        .clone()
        .expect("W3 names its expectation")
        .invariants;
    let mut runs = Vec::new();
    for &seed in seeds {
        let options = RealOptions {
            seed,
            run_id: format!("{test}-{seed}").replace('_', "-"),
            keep_topics: false,
            client_settings: Vec::new(),
            max_safety_ms: Some(3_000),
            fault_hooks: Vec::new(),
            app_program: None,
        };
        let watch = Stopwatch::start();
        let report = run_real(scenario, &noida.under_test(), &options).expect("real run");
        assert_eq!(report.design, "seed");
        for instance in &report.instances {
            assert!(instance.error.is_none(), "instance failed: {instance:?}");
        }
        let shown: Vec<Invariant> = report.violations.iter().map(|v| v.invariant).collect();
        println!(
            "{test}: seed {seed}, {} ms, {:?}; shown {shown:?}",
            watch.elapsed_ms(),
            report.counters
        );
        if let Some(v) = report
            .violations
            .iter()
            .find(|v| expected.contains(&v.invariant))
        {
            println!("{v}");
        }
        let found = shown.iter().any(|i| expected.contains(i));
        runs.push(shown);
        if found {
            break;
        }
    }
    Some(runs)
}

/// The real interleaving decides whether two withdrawals meet one snapshot, so a test tries
/// seeds (about 6 s each) until one shows it. Five were too few: on 2026-12-07 all five of
/// one CI-load run showed only [S6, S5, L1], and two reruns showed S3 at the third seed
/// and S1 at the first; with ten, a miss of every seed is rare if each shows W3 about half
/// the time.
const EOS_SEEDS: [u64; 10] = [1, 4, 2, 3, 5, 6, 7, 8, 9, 10];

fn assert_some_run_shows_w3(runs: &[Vec<Invariant>]) {
    let expected = w3_growing(ProcessingGuarantee::ExactlyOnce)
        .check
        .expect
        .expect("W3 names its expectation")
        .invariants;
    assert!(
        runs.last()
            .is_some_and(|shown| shown.iter().any(|i| expected.contains(i))),
        "no run of {} showed one of {expected:?}: {runs:?}",
        runs.len()
    );
}

/// The CI check: W3 with its added partitions, exactly-once.
#[test]
fn seed_design_shows_w3_in_real_mode_when_partitions_are_added() {
    let scenario = w3_growing(ProcessingGuarantee::ExactlyOnce);
    if let Some(runs) = runs_until_w3("seed_w3_grow", &scenario, &EOS_SEEDS) {
        assert_some_run_shows_w3(&runs);
    }
}

/// At-least-once in real mode, on the mock cluster (it drops a crashed member, so the
/// group moves on): instance 0 crashes at 1 s, its uncommitted batches are processed again
/// by whoever takes its partitions, and the hardened design (which rebuilds its store from
/// its events and outcomes and de-duplicates on command ids) keeps every safety invariant.
#[test]
fn hardened_at_least_once_stays_safe_through_a_crash_on_the_mock_cluster() {
    let mock = BrokerUnderTest::mock().expect("mock cluster");
    let toml = common::TINY
        .replace(
            "processing_guarantee = \"exactly_once\"",
            "processing_guarantee = \"at_least_once\"",
        )
        .replace(
            "[phases]",
            "[[faults.timeline]]\nat_ms = 1_000\naction = \"crash_instance\"\ninstance = 0\n\n[phases]",
        );
    let scenario = Scenario::from_toml_str(&toml, "inline").expect("valid scenario");
    let options = RealOptions {
        seed: 3,
        run_id: "alo-crash-mock".into(),
        keep_topics: false,
        client_settings: Vec::new(),
        max_safety_ms: Some(2_000),
        fault_hooks: Vec::new(),
        app_program: None,
    };
    let watch = Stopwatch::start();
    let report = run_real(&scenario, &mock, &options).expect("real run");
    println!("alo crash on mock: {} ms", watch.elapsed_ms());
    for instance in &report.instances {
        println!("instance {instance:?}");
        assert!(instance.error.is_none(), "instance failed: {instance:?}");
    }
    for violation in &report.violations {
        println!("{violation}");
    }
    // Safety must hold. Liveness is not asserted: with the other tests of this file on the
    // same two cores, the mock sometimes takes longer than TINY's 10 s bound to hand the
    // crashed member's partitions over (the restart then processes nothing: L1).
    assert!(
        report.violations.iter().all(|v| v.invariant.is_liveness()),
        "safety violations: {}",
        report.violations.len()
    );
    assert!(report
        .instances
        .iter()
        .any(|i| i.index == 0 && i.end == InstanceEnd::Crashed));
    assert!(
        report.counters.client_outcomes >= 4,
        "{:?}",
        report.counters
    );
}
