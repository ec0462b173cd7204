//! Named regression tests: each pins a seed that once exposed a bug, with the
//! bug described, so it can never come back unnoticed.

use marlow_model::AccountId;
use marlow_scenarios::{DesignKind, Invariant, Scenario};
use marlow_sim::run::Judged;
use marlow_tests::{repro, run_seed, scenario};

/// A Flush/CommitTxn timer left over from an abandoned batch (after a
/// rebalance) committed a newer batch that had not been produced yet, so the
/// store ran ahead of the log and the next event skipped a version (S3).
/// Fixed by batch ids on those timers. Seen failing (S3 at account 493) with
/// the batch-id check in `processing.rs` disabled.
#[test]
fn stale_commit_timer_does_not_commit_an_unproduced_batch() {
    let scenario = scenario("baseline", Some(DesignKind::Hardened));
    let report = run_seed(&scenario, 2);
    assert!(
        report.passed(),
        "{:?}\n{}",
        report.violations,
        repro("baseline", &report)
    );
}

/// An instance whose join the coordinator forgot (its member expired while
/// the join was parked) stayed in Joining forever: the whole group stalled and
/// every command was pending at the end (L1). Fixed by resending a join left
/// unanswered for twice the rebalance timeout. Seen failing (L1) on this seed
/// with that resend disabled in `membership.rs`.
#[test]
fn a_forgotten_join_is_sent_again() {
    let scenario = scenario("chaos", None);
    let report = run_seed(&scenario, 116);
    assert!(
        report.passed(),
        "{:?}\n{}",
        report.violations,
        repro("chaos", &report)
    );
}

/// A long at-least-once run with pauses past the session timeout: instance 1
/// is paused with a batch in flight, its partitions move, another instance
/// rebuilds the store from the outputs and re-applies the batch's commands,
/// and at 40.973 s instance 1 resumes and writes its batch anyway (a plain
/// producer is not fenced). The events log then holds a version twice, and the
/// next at-least-once restore folded it and panicked in `apply` ("event
/// version must advance the account version by one", left 361, right 378):
/// the sweep died with exit 101 and no repro line. The rebuild now follows the
/// first-written chain, and the duplicate is what the checkers report (S2 on
/// cmd 2/69 of account 8; cmd 14/247 of account 11 before the simulator's
/// at-least-once flush went out per partition and in waves and `bad_amount`
/// drew the exact amount limit, which moved this trace): a zombie under at-least-once is a real safety
/// violation that no processor design can prevent without transactions.
#[test]
fn a_zombie_under_at_least_once_is_reported_not_a_panic() {
    let scenario = Scenario::from_toml_str(ZOMBIE_AT_LEAST_ONCE, "zombie-at-least-once")
        .unwrap_or_else(|error| panic!("{error}"));
    let report = run_seed(&scenario, 3);
    let headline = report
        .headline()
        .expect("the zombie's duplicate is reported");
    // S2 today; S3 names the same duplicate if a checker runs before S2's.
    assert!(
        matches!(headline.invariant, Invariant::S2 | Invariant::S3),
        "{headline:?}"
    );
    assert_eq!(headline.account, Some(AccountId(8)), "{headline:?}");
}

/// `alo-lean`, the scenario that reproduced the restore panic: the shipped
/// `at-least-once` scenario with pauses up to 4 s (past the 1.5 s session) and
/// a 60 s safety phase.
const ZOMBIE_AT_LEAST_ONCE: &str = r#"
name = "zombie-at-least-once"
description = "hardened at-least-once with pauses past the session timeout: zombies"

[workload]
clients = 60
accounts = 30
owners_per_account = 2
initial_deposit_minor = { min = 2_000, max = 200_000 }
amount_minor = { min = 100, max = 10_000 }
think_time_us = { min = 50_000, max = 200_000 }
client_timeout_us = 1_000_000
resubmit = "same_id"
max_resubmits = 3
duplicate_send_fraction = 0.05

[workload.mix]
deposit = 40
withdraw = 45
add_owner = 5
remove_owner = 5
bad_amount = 5

[design]
design = "hardened"

[cluster]
partitions = 6
app_instances = 3
max_app_instances = 6
processing_guarantee = "at_least_once"
broker_latency_us = { min = 500, max = 3_000 }
session_timeout_ms = 1_500
commit_interval_ms = 100
max_poll_records = 100

[faults]
swarm = true
instance_crash_per_s = 0.2
instance_restart_delay_ms = { min = 100, max = 1_000 }
instance_pause_per_s = 0.2
instance_pause_ms = { min = 100, max = 4_000 }
producer_duplicate_probability = 0.02

[phases]
safety_duration_ms = 60_000
liveness_bound_ms = 10_000
max_simulated_ms = 90_000
"#;

/// A long at-least-once run with zombies (pauses just past the session) and a
/// command retention shorter than the stall: the zombie and the new owner
/// reset to different log starts and forked one account's log with different
/// commands, the new owner's branch carrying on past the zombie's with the
/// next version numbers. The rebuild folded the zombie's events and then the
/// new owner's later ones, a state with a balance of -9257 that neither
/// writer validated, and the next deposit tripped `process`'s assertion
/// ("decide let an overdraft through"): exit 1 in the middle of a run-to-end
/// sweep, and in real mode a crashed instance. Seen panicking at seed 398
/// before the rebuild learnt to skip an event that breaks the rules; the fork
/// itself is what the checkers report.
#[test]
fn a_forked_log_under_at_least_once_is_reported_not_a_panic() {
    let scenario = Scenario::from_toml_str(FORK_AT_LEAST_ONCE, "alo-fork-merge")
        .unwrap_or_else(|error| panic!("{error}"));
    let report = marlow_tests::run_seed_to_end(&scenario, 398);
    let headline = report.headline().expect("the fork is reported");
    assert!(
        !headline.invariant.is_liveness(),
        "a zombie's fork is a safety violation: {headline:?}"
    );
}

/// Found by a search over long at-least-once runs: one hot account near zero,
/// pauses past the 1 s session, a 200 ms command retention.
const FORK_AT_LEAST_ONCE: &str = r#"
name = "alo-fork-merge"
description = "hardened at-least-once: a zombie and the new owner fork an account after retention resets"

[workload]
clients = 30
accounts = 1

[workload.mix]
deposit = 40
withdraw = 60
add_owner = 0
remove_owner = 0

[design]
design = "hardened"

[cluster]
partitions = 1
processing_guarantee = "at_least_once"
session_timeout_ms = 1000
commands_retention_ms = 200

[faults]
instance_pause_per_s = 1.0
instance_pause_ms = { min = 1000, max = 1200 }

[phases]
safety_duration_ms = 60000
liveness_bound_ms = 10000
max_simulated_ms = 80000
"#;
