//! Faults that reach every path: garbage injected by the fault plan is in the
//! history (so S6 sees it vanish), an abort the instance survives rolls its
//! stores back, and the hardened design fails closed when its input topic is
//! repartitioned under it.

use marlow_scenarios::{Scenario, TimelineAction, TimelineEvent};
use marlow_sim::check::{check_history, Invariant};
use marlow_sim::history::{CommittedRecord, Step};
use marlow_sim::run::check_config;
use marlow_sim::run::Judged;
use marlow_tests::{run_seed, scenario, violated};

/// Chaos' workload and cluster with no random fault: only `timeline`.
fn chaos_with_only(timeline: Vec<TimelineEvent>) -> Scenario {
    let mut scenario = scenario("chaos", None);
    let quiet = marlow_scenarios::Faults::default();
    scenario.faults = marlow_scenarios::Faults { timeline, ..quiet };
    scenario
}

#[test]
fn garbage_from_the_fault_plan_is_in_the_history_and_s6_sees_it_vanish() {
    let scenario = chaos_with_only(vec![TimelineEvent {
        at_ms: 1_000,
        action: TimelineAction::InjectUndecodable {
            topic: "commands".into(),
            count: 5,
        },
    }]);
    let report = run_seed(&scenario, 0);
    assert!(report.passed(), "{:?}", report.violations);
    let entries = report.history.entries();
    let undecodable = entries
        .iter()
        .filter(|entry| matches!(entry.step, Step::Undecodable { .. }))
        .count();
    assert_eq!(undecodable, 5, "every injected record is recorded");
    assert_eq!(report.counters.dead_letters, 5);
    // A build that silently drops garbage commits no dead letter: S6 must fire.
    let silent: Vec<_> = entries
        .iter()
        .filter(|entry| {
            !matches!(
                &entry.step,
                Step::Committed {
                    record: CommittedRecord::DeadLetter(_),
                    ..
                }
            )
        })
        .cloned()
        .collect();
    let violations = check_history(&silent, &check_config(&scenario));
    assert!(
        violations.iter().any(|v| v.invariant == Invariant::S6),
        "S6 must see the garbage vanish: {violations:?}"
    );
    assert!(!violated(&report).contains(&Invariant::S6));
}

#[test]
fn hardened_fails_closed_when_its_input_is_repartitioned() {
    use marlow_scenarios::DesignKind;
    use marlow_sim::run::EXIT_LIVENESS;
    let hardened = scenario("w3-check-then-act", Some(DesignKind::Hardened));
    for seed in 0..3 {
        let report = run_seed(&hardened, seed);
        let headline = report.headline().expect("the halted processor leaves work");
        assert_eq!(headline.invariant, Invariant::L1, "{headline}");
        assert_eq!(report.exit_code(), EXIT_LIVENESS, "never a safety verdict");
        assert!(
            violated(&report).iter().all(|i| i.is_liveness()),
            "seed {seed}: no wrong answer before halting: {:?}",
            report.violations
        );
        assert!(
            headline
                .message
                .contains("commands grew from 2 to 4 partitions; the processor halted"),
            "{}",
            headline.message
        );
        let halted = report
            .history
            .entries()
            .iter()
            .filter(|entry| matches!(entry.step, Step::Halted { .. }))
            .count();
        assert!(
            (1..=4).contains(&halted),
            "each instance halts once: {halted}"
        );
    }
    // The seed design keeps going (W3 lives there): it never halts.
    let seed_design = scenario("w3-check-then-act", Some(DesignKind::Seed));
    let report = run_seed(&seed_design, 0);
    assert!(!report
        .history
        .entries()
        .iter()
        .any(|entry| matches!(entry.step, Step::Halted { .. })));
}

/// A pause longer than the transaction timeout but shorter than the session:
/// the coordinator aborts the open transaction and bumps the producer epoch;
/// when the instance resumes, its commit is refused as fenced. The host cannot
/// tell a timeout's bump from a newer incarnation's, so it drops its producer
/// and stores and rejoins (as Kafka Streams does on InvalidProducerEpoch); its
/// stores are restored from the committed changelog and every invariant holds.
#[test]
fn a_slow_instance_outlived_by_its_transaction_recovers() {
    let mut slow = chaos_with_only(vec![TimelineEvent {
        at_ms: 1_000,
        action: TimelineAction::PauseInstance {
            instance: 0,
            duration_ms: Some(1_500),
        },
    }]);
    slow.cluster.session_timeout_ms = 3_000;
    slow.cluster.transaction_timeout_ms = 1_000;
    let mut timed_out = 0;
    for seed in 0..8 {
        let report = run_seed(&slow, seed);
        assert!(report.passed(), "seed {seed}: {:?}", report.violations);
        let expired = report.history.entries().iter().any(|entry| {
            matches!(&entry.step, Step::Fault { fault } if fault.contains("session timeout"))
        });
        assert!(!expired, "seed {seed}: the pause is within the session");
        timed_out += usize::from(report.history.entries().iter().any(|entry| {
            matches!(&entry.step, Step::Fault { fault } if fault.starts_with("transaction timeout"))
        }));
    }
    assert!(
        timed_out >= 2,
        "the paused transaction times out on some seeds: {timed_out} of 8"
    );
}

/// A broker restart that healing ends early must not restart the coordinators
/// a second time when its own downtime runs out: that renewed every session,
/// so a member that crashed before the heal expired a whole session late.
#[test]
fn a_restart_ended_by_healing_does_not_renew_sessions_again() {
    let mut scenario = chaos_with_only(vec![
        TimelineEvent {
            at_ms: 3_700,
            action: TimelineAction::CrashInstance { instance: 0 },
        },
        TimelineEvent {
            at_ms: 3_800,
            action: TimelineAction::BrokerRestart { downtime_ms: 1_000 },
        },
    ]);
    scenario.phases.safety_duration_ms = 4_000;
    let session_us = scenario.cluster.session_timeout_ms * 1000;
    let heal_us = 4_000_000;
    let report = run_seed(&scenario, 0);
    let expired_at_us = report
        .history
        .entries()
        .iter()
        .find(|entry| {
            matches!(&entry.step, Step::Fault { fault } if fault.starts_with("session timeout"))
        })
        .map(|entry| entry.at_us)
        .expect("the crashed member expires");
    assert!(
        expired_at_us <= heal_us + session_us + 20_000,
        "expired at {expired_at_us} us, a session after the heal is {} us",
        heal_us + session_us
    );
}

/// Garbage queued behind a halted processor was never read: the simulator
/// records where the group stopped (`input_consumed`), so S6 counts it as
/// pending and the run ends on L1 (exit 4), not on S6 (exit 3).
#[test]
fn garbage_behind_a_halted_processor_is_pending_not_lost() {
    use marlow_scenarios::DesignKind;
    let mut halted = scenario("w3-check-then-act", Some(DesignKind::Hardened));
    halted.faults.timeline.push(TimelineEvent {
        at_ms: 2_000,
        action: TimelineAction::InjectUndecodable {
            topic: "commands".into(),
            count: 3,
        },
    });
    let report = run_seed(&halted, 0);
    let entries = report.history.entries();
    assert!(entries
        .iter()
        .any(|entry| matches!(entry.step, Step::InputConsumed { .. })));
    assert_eq!(
        report.headline().map(|v| v.invariant),
        Some(Invariant::L1),
        "{:?}",
        report.violations
    );
    // Without where the group stopped, the same history is judged lost (S6).
    let without: Vec<_> = entries
        .iter()
        .filter(|entry| !matches!(entry.step, Step::InputConsumed { .. }))
        .cloned()
        .collect();
    let violations = check_history(&without, &check_config(&halted));
    assert!(violations.iter().any(|v| v.invariant == Invariant::S6));
}
