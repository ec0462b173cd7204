//! Real-mode faults end to end: an instance crash (no LeaveGroup, its transaction left open)
//! on the mock cluster, which drops the crashed member at its session timeout, and on
//! noida-db, which never does and must be reported rather than hang the run; and a pause
//! that freezes an instance inside a transaction past `max.poll.interval.ms`, with garbage
//! injected into the commands topic meanwhile. The noida-db tests are skipped (with a line
//! saying so) without noida-db.

mod common;

use marlow_kafka::broker::{noida_or_skip, BrokerUnderTest};
use marlow_kafka::deadline::Stopwatch;
use marlow_kafka::runtime::Judged;
use marlow_kafka::runtime::{run_real, InstanceEnd, RealOptions, RealReport};
use marlow_model::codec::encode_account_key;
use marlow_model::task::topics;
use marlow_scenarios::{Invariant, Scenario};
use marlow_sim::cluster::murmur2::partition_for_key;
use marlow_sim::history::Step;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use common::TINY;

/// The tiny fixture with `safety_ms` of workload, a 10 s liveness bound and `timeline`.
fn tiny_with(safety_ms: u64, timeline: &str) -> Scenario {
    let toml = TINY
        .replace(
            "safety_duration_ms = 2_000",
            &format!("safety_duration_ms = {safety_ms}"),
        )
        .replace("max_simulated_ms = 20_000", "max_simulated_ms = 60_000");
    Scenario::from_toml_str(&format!("{toml}\n{timeline}"), "inline").expect("valid scenario")
}

const CRASH_INSTANCE_0_AT_1S: &str = r#"
[[faults.timeline]]
at_ms = 1_000
action = "crash_instance"
instance = 0
"#;

fn run(test: &str, scenario: &Scenario, broker: &BrokerUnderTest, run_id: &str) -> RealReport {
    let options = RealOptions {
        seed: 1,
        run_id: run_id.into(),
        keep_topics: false,
        client_settings: Vec::new(),
        max_safety_ms: None,
        fault_hooks: Vec::new(),
        app_program: None,
    };
    let watch = Stopwatch::start();
    let report = run_real(scenario, broker, &options).expect("real run");
    println!(
        "{test}: {} ms, passed {}; phases {:?}",
        watch.elapsed_ms(),
        report.passed(),
        report.phase_ms
    );
    for instance in &report.instances {
        println!("instance {instance:?}");
    }
    for violation in &report.violations {
        println!("{violation}");
    }
    report
}

fn faults(report: &RealReport) -> Vec<String> {
    report
        .history
        .in_memory()
        .expect("a real run keeps its history")
        .iter()
        .filter_map(|e| match &e.step {
            Step::Fault { fault } => Some(fault.clone()),
            _ => None,
        })
        .collect()
}

/// The mock cluster drops the crashed member by its session timeout (measured: the group
/// stalls from about 2 s after the crash and is answered again about 12 s after it, with
/// the 6 s session timeout and the mock's own rebalance delays), before the heal at 20 s
/// restarts it; the run passes.
#[test]
fn a_crashed_instance_is_dropped_by_the_mock_cluster_and_the_run_passes() {
    let mock = BrokerUnderTest::mock().expect("mock cluster");
    let scenario = tiny_with(20_000, CRASH_INSTANCE_0_AT_1S);
    let report = run("crash on mock", &scenario, &mock, "crash-mock");
    assert!(report.passed(), "violations: {}", report.violations.len());
    let crash = report.crashes.first().expect("one crash");
    assert!(!crash.owned.is_empty(), "{crash:?}");
    let heal_us = report
        .history
        .in_memory()
        .expect("a real run keeps its history")
        .iter()
        .find(|e| matches!(e.step, Step::Heal))
        .expect("a heal")
        .at_us;
    let partitions = scenario.cluster.partitions_of(topics::COMMANDS);
    let taken_over_at_us = report
        .history
        .in_memory()
        .expect("a real run keeps its history")
        .iter()
        // Answers in flight at the crash are not evidence: skip its first 2 s.
        .filter(|e| e.at_us > crash.crashed_at_us + 2_000_000)
        .find(|e| match &e.step {
            Step::ClientOutcome { outcome, .. } => {
                let p = partition_for_key(&encode_account_key(outcome.account), partitions);
                crash.owned.contains(&i32::try_from(p).expect("small"))
            }
            _ => false,
        })
        .expect("the crashed member's partitions are answered again")
        .at_us;
    println!(
        "taken over {} ms after the crash; heal {} ms after it",
        (taken_over_at_us - crash.crashed_at_us) / 1000,
        (heal_us - crash.crashed_at_us) / 1000
    );
    assert!(
        taken_over_at_us < heal_us,
        "the crashed member's partitions {:?} were taken over before the heal",
        crash.owned
    );
    assert!(report.unrealized_faults.is_empty());
    let fired = faults(&report);
    assert!(
        fired.iter().any(|f| f.starts_with("crash instance 0 (")),
        "{fired:?}"
    );
    assert!(
        fired.iter().any(|f| f == "heal: restart instance 0"),
        "{fired:?}"
    );
    let crashed = report
        .instances
        .iter()
        .find(|i| i.index == 0 && i.incarnation == 0)
        .expect("instance 0's first incarnation");
    assert_eq!(crashed.end, InstanceEnd::Crashed);
    let restarted = report
        .instances
        .iter()
        .find(|i| i.index == 0 && i.incarnation == 1)
        .expect("instance 0 restarted");
    assert_eq!(restarted.end, InstanceEnd::Stopped, "{restarted:?}");
    assert!(report.instances.iter().all(|i| i.error.is_none()));
}

/// noida-db keeps a crashed member forever. The heal's restart sometimes lets the group
/// recover (noida then drops the dead member from the rebalance) and sometimes leaves it
/// stuck in CompletingRebalance; either way the run must end, its report must show the
/// crashed member still in the group at the heal, long past its session timeout, and a run
/// that fails must fail on liveness with the stalled group and partition named.
#[test]
fn noida_never_drops_a_crashed_member_and_the_run_names_the_stalled_group() {
    let Some(noida) = noida_or_skip("noida_never_drops_a_crashed_member").expect("noida-db") else {
        return;
    };
    // The fixture's mix sends garbage: some lands behind the stall, and must count as
    // pending (the run's `InputConsumed` steps), not as lost (S6).
    let scenario = tiny_with(8_000, CRASH_INSTANCE_0_AT_1S);
    let watch = Stopwatch::start();
    let report = run(
        "crash on noida",
        &scenario,
        &noida.under_test(),
        "crash-noida",
    );
    assert!(
        watch.elapsed_ms() < 60_000,
        "the run must end within its liveness bound, took {} ms",
        watch.elapsed_ms()
    );
    let at_heal = report
        .stall_at_heal
        .as_ref()
        .expect("a crashed member still in the group at the heal");
    println!("at the heal:\n{at_heal}");
    let crash = &at_heal.crashed[0];
    assert_eq!(crash.index, 0);
    assert!(!crash.owned.is_empty(), "it owned partitions: {crash:?}");
    let still = at_heal
        .members
        .iter()
        .find(|m| m.client_id == crash.member)
        .expect("the crashed member is listed");
    assert!(still.crashed_at_us.is_some());
    assert!(
        at_heal.taken_at_us - crash.crashed_at_us > 6_000_000,
        "the heal came after the session timeout"
    );
    let lagging: Vec<i32> = at_heal.lagging.iter().map(|l| l.partition).collect();
    assert!(
        crash.owned.iter().all(|p| lagging.contains(p)),
        "its partitions {:?} stalled, lagging {lagging:?}",
        crash.owned
    );
    assert!(at_heal.to_string().contains(&at_heal.group));
    assert!(
        report.violations.iter().all(|v| v.invariant.is_liveness()),
        "a stall may break liveness only"
    );
    if !report.passed() {
        assert_eq!(report.exit_code(), 4);
        let consumed = report
            .history
            .in_memory()
            .expect("a real run keeps its history")
            .iter()
            .filter(|e| matches!(e.step, Step::InputConsumed { .. }))
            .count();
        let stall = report.stall.as_ref().expect("a stall report");
        // Not asserted: that the group is still behind at the end. On a loaded
        // machine it can recover just after the liveness bound, so the end's
        // report shows it caught up while L1 stands (seen once in a full test
        // run); the report at the heal above shows the stall either way. Then
        // no partition is left behind at the end, and none is in the history
        // (seen once more, 2026-12-06): the history names what the end's report
        // still finds behind, and only that.
        assert_eq!(
            consumed,
            stall.lagging.len(),
            "the partitions behind at the end are in the history: {stall}"
        );
        let text = stall.to_string();
        println!("at the end:\n{text}");
        assert!(text.contains(&stall.group), "{text}");
        assert!(
            report
                .violations
                .iter()
                .any(|v| matches!(v.invariant, Invariant::L1)),
            "L1 names the unanswered commands"
        );
    }
}

/// A 9 s pause (past the 6 s `max.poll.interval.ms`) freezes instance 1 inside a
/// transaction; garbage goes into the commands topic meanwhile. Every invariant holds, the
/// garbage is dead-lettered, and the instance resumes. (No broker here checks the generation
/// of a transactional offset commit, so the resumed zombie is not fenced by it; see CI.md.)
#[test]
fn a_pause_past_the_poll_interval_freezes_mid_transaction_and_safety_holds() {
    let Some(noida) = noida_or_skip("a_pause_past_the_poll_interval").expect("noida-db") else {
        return;
    };
    let scenario = tiny_with(
        12_000,
        r#"
[[faults.timeline]]
at_ms = 1_000
action = "pause_instance"
instance = 1
duration_ms = 9_000

[[faults.timeline]]
at_ms = 2_000
action = "inject_undecodable"
topic = "commands"
count = 3
"#,
    );
    let report = run(
        "pause on noida",
        &scenario,
        &noida.under_test(),
        "pause-noida",
    );
    assert!(report.passed(), "violations: {}", report.violations.len());
    let paused = report
        .instances
        .iter()
        .find(|i| i.index == 1)
        .expect("instance 1");
    assert!(
        paused.paused_mid_transaction >= 1,
        "the pause froze it inside a transaction: {paused:?}"
    );
    let injected = report
        .history
        .in_memory()
        .expect("a real run keeps its history")
        .iter()
        .filter(|e| matches!(e.step, Step::Undecodable { .. }))
        .count();
    // The fixture's own mix sends some garbage too; the timeline adds exactly 3.
    assert!(injected >= 3, "{injected} undecodable records");
    assert!(report.counters.dead_letters >= injected as u64);
    assert!(faults(&report)
        .iter()
        .any(|f| f == "inject 3 undecodable records into commands"));
}

const ADD_2_COMMANDS_PARTITIONS_AT_500MS: &str = r#"
[[faults.timeline]]
at_ms = 500
action = "add_partitions"
topic = "commands"
count = 2
"#;

/// `add_partitions` grows the commands topic and the changelog of the task reading it on a
/// real broker (through the admin API), and is reported as not realized on the mock
/// cluster, which cannot grow a topic. The verdict is not asserted: moving accounts to new
/// partitions breaks the hardened design too (as in the simulator).
#[test]
fn partitions_are_added_on_noida_and_reported_unrealized_on_the_mock() {
    let scenario = tiny_with(2_000, ADD_2_COMMANDS_PARTITIONS_AT_500MS);
    let mock = BrokerUnderTest::mock().expect("mock cluster");
    let on_mock = run("add partitions on mock", &scenario, &mock, "grow-mock");
    assert!(
        on_mock
            .unrealized_faults
            .iter()
            .any(|f| f.contains("AddPartitions")),
        "{:?}",
        on_mock.unrealized_faults
    );
    let Some(noida) = noida_or_skip("partitions_are_added_on_noida").expect("noida-db") else {
        return;
    };
    let report = run(
        "add partitions on noida",
        &scenario,
        &noida.under_test(),
        "grow",
    );
    assert!(report.unrealized_faults.is_empty());
    let fired = faults(&report);
    assert!(
        fired.iter().any(|f| f.starts_with("add partitions: ")
            && f.contains("marlow.grow.commands to 4")
            && f.contains("marlow.grow.hardened-changelog to 4")),
        "{fired:?}"
    );
}

/// The transaction-error path: the mock cluster answers the first AddPartitionsToTxn with
/// TOPIC_AUTHORIZATION_FAILED, an abortable error. The instance that hits it aborts, undoes
/// the batch's store writes, rewinds to its committed offsets and goes on without a restore
/// (the shared recovery rule, as in the simulator); every invariant holds.
#[test]
fn an_abortable_transaction_error_is_aborted_rewound_and_the_run_passes() {
    let mock = BrokerUnderTest::mock().expect("mock cluster");
    let BrokerUnderTest::Mock(cluster) = &mock else {
        unreachable!("made as a mock");
    };
    cluster.request_errors(
        RDKafkaApiKey::AddPartitionsToTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let scenario = tiny_with(2_000, "");
    let report = run("abortable txn error on mock", &scenario, &mock, "txn-error");
    assert!(report.passed(), "violations: {}", report.violations.len());
    let aborted: u64 = report
        .instances
        .iter()
        .map(|i| i.transactions_aborted)
        .sum();
    assert_eq!(aborted, 1, "{:?}", report.instances);
    let hit = report
        .instances
        .iter()
        .find(|i| i.transactions_aborted == 1)
        .expect("the instance that hit it");
    assert!(hit.error.is_none(), "{hit:?}");
    assert_eq!(
        hit.aborts_survived, 1,
        "it survived the abort with its stores: {hit:?}"
    );
    assert!(hit.transactions_committed > 0, "and went on: {hit:?}");
}
