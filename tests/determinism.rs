//! Determinism: the same (scenario, seed, build) gives the same trace hash,
//! twice in one process and in two separate processes, and the same steps one
//! by one; different seeds give different schedules.

use marlow_tests::{run_seed, scenario};
use std::process::Command;

const CHILD_ENV: &str = "MARLOW_DETERMINISM_CHILD";

fn hash_of(name: &str, seed: u64) -> String {
    run_seed(&scenario(name, None), seed).trace_hash.to_string()
}

#[test]
fn same_seed_same_hash_in_one_process() {
    for (name, seed) in [
        ("chaos", 7),
        ("w3-check-then-act", 1),
        ("w2-first-event", 3),
        ("hunt", 5),
    ] {
        assert_eq!(
            hash_of(name, seed),
            hash_of(name, seed),
            "{name} seed {seed}"
        );
    }
}

/// The step-by-step self-check (`sweep --check-determinism`) on a sample of
/// chaos and hunt seeds: every step of each run, produced contents included,
/// the same twice.
#[test]
fn chaos_and_hunt_seeds_run_the_same_step_by_step() {
    use marlow_sim::determinism::check_determinism;
    use marlow_sim::run::RunOptions;
    for (name, seeds) in [("chaos", 0..6), ("hunt", 0..6)] {
        let scenario = scenario(name, None);
        for seed in seeds {
            let options = RunOptions {
                seed,
                ..RunOptions::default()
            };
            match check_determinism(&scenario, &options) {
                Ok(Ok(report)) => assert!(report.trace_steps > 0),
                Ok(Err(divergence)) => panic!("{name}: {divergence}"),
                Err(failure) => panic!("{name} seed {seed}: {failure}"),
            }
        }
    }
}

#[test]
fn different_seeds_give_different_schedules() {
    let hashes: std::collections::BTreeSet<String> =
        (0..6).map(|seed| hash_of("chaos", seed)).collect();
    assert_eq!(hashes.len(), 6);
}

/// The child half of the two-process test: prints the hash and exits.
#[test]
fn child_prints_hash() {
    if std::env::var(CHILD_ENV).is_ok() {
        println!("trace_hash={}", hash_of("chaos", 11));
    }
}

/// Runs this test binary again as a separate process (a fresh address space,
/// so a fresh HashMap seed and allocator layout) and compares its hash.
#[test]
fn same_seed_same_hash_in_two_processes() {
    let output = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "child_prints_hash",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let child = stdout
        .lines()
        .find_map(|line| line.split("trace_hash=").nth(1))
        .map(str::trim)
        .unwrap_or_else(|| panic!("child printed no hash: {stdout}"));
    assert_eq!(child, hash_of("chaos", 11));
}
