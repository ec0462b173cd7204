//! The conformance suite against the simulator alone, librdkafka's mock cluster, noida-db
//! and tansu (each skipped with a message when it is not installed; tansu is optional).

use marlow_kafka::broker::{noida_or_skip, tansu_or_skip, BrokerUnderTest};
use marlow_kafka::conformance::{
    mock_expected, noida_expected, run_against, run_suite, tansu_expected, ExpectedDifference,
    Observation, Outcome, SimBackend, Step,
};
use marlow_kafka::deadline::Stopwatch;
use marlow_kafka::topics::RunNamespace;

fn namespace(test: &str) -> RunNamespace {
    RunNamespace::new(&format!("{test}-{}", std::process::id())).expect("valid run id")
}

/// Runs the suite, prints the table, fails on an unexpected difference, and returns the
/// topics the run deleted at the end.
fn run_and_grade(
    name: &str,
    broker: &BrokerUnderTest,
    expected: &[ExpectedDifference],
) -> Vec<String> {
    let watch = Stopwatch::start();
    let report = run_against(name, broker, namespace(name), expected).expect("suite ran");
    println!(
        "conformance against {name} ({} ms):\n{}",
        watch.elapsed_ms(),
        report.table()
    );
    let unexpected = report.unexpected();
    assert!(
        unexpected.is_empty(),
        "{} unexpected difference(s) from the simulator on {name}: {:?}",
        unexpected.len(),
        unexpected.iter().map(|s| s.step.name()).collect::<Vec<_>>()
    );
    report.deleted_topics
}

/// Pins what the simulator itself observes, so the suite compares brokers with Kafka's
/// documented semantics and not with whatever the simulator happens to do.
#[test]
fn simulator_observes_kafka_semantics() {
    let observed = run_suite(&mut SimBackend::new()).expect("suite ran on the simulator");
    let get = |step: Step| {
        observed
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, o)| o.clone())
            .expect("step ran")
    };
    let values = |vs: &[&str]| Observation::Values(vs.iter().map(|v| (*v).to_owned()).collect());
    let v: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    assert_eq!(
        get(Step::IdempotentProduceExactlyOnce),
        Observation::Values(v)
    );
    assert_eq!(
        get(Step::TxnCommitVisibleReadCommitted),
        values(&["c0", "c1", "c2"])
    );
    assert_eq!(get(Step::TxnAbortHiddenReadCommitted), values(&[]));
    assert_eq!(
        get(Step::TxnAbortVisibleReadUncommitted),
        values(&["a0", "a1", "a2"])
    );
    assert_eq!(get(Step::OpenTxnHiddenReadCommitted), values(&[]));
    assert_eq!(get(Step::OpenTxnVisibleReadUncommitted), values(&["o0"]));
    let rejected = |o: Observation| matches!(o, Observation::Outcome(Outcome::Rejected(_)));
    assert!(rejected(get(Step::FencedProducerCannotCommit)));
    assert_eq!(
        get(Step::GroupJoinSplitsPartitions),
        Observation::Assignment(vec![2, 2])
    );
    assert_eq!(
        get(Step::GroupCleanLeaveRebalances),
        Observation::Assignment(vec![4])
    );
    assert_eq!(
        get(Step::TxnOffsetsStoredOnCommit),
        Observation::Committed(Some(5))
    );
    assert!(rejected(get(Step::StaleGenerationOffsetCommitRejected)));
    assert_eq!(
        get(Step::PartitionRetainsSixMib),
        Observation::Watermarks { low: 0, high: 64 }
    );
}

#[test]
fn simulator_suite_is_deterministic() {
    let first = run_suite(&mut SimBackend::new()).expect("first run");
    let second = run_suite(&mut SimBackend::new()).expect("second run");
    assert_eq!(first, second);
}

#[test]
fn conformance_mock_cluster() {
    let broker = BrokerUnderTest::mock().expect("mock cluster");
    run_and_grade("mock", &broker, mock_expected());
}

#[test]
fn conformance_noida_db() {
    let Some(noida) = noida_or_skip("conformance_noida_db").expect("noida-db starts") else {
        return;
    };
    let deleted = run_and_grade("noida-db", &noida.under_test(), noida_expected());
    // The run cleans up after itself: all five of its topics, nothing else.
    assert_eq!(deleted.len(), 5, "deleted {deleted:?}");
    let prefix = format!("marlow.noida-db-{}.", std::process::id());
    assert!(
        deleted.iter().all(|t| t.starts_with(&prefix)),
        "{deleted:?}"
    );
}

#[test]
fn conformance_tansu() {
    let watch = Stopwatch::start();
    let Some(tansu) = tansu_or_skip("conformance_tansu").expect("tansu starts") else {
        return;
    };
    println!("tansu started in {} ms", watch.elapsed_ms());
    let pid = tansu.pid();
    let deleted = run_and_grade("tansu", &tansu.under_test(), tansu_expected());
    assert_eq!(deleted.len(), 5, "deleted {deleted:?}");
    drop(tansu);
    // Dropping the handle stops and reaps the real binary: no orphan broker is left behind.
    let proc_dir = std::path::Path::new("/proc").join(pid.to_string());
    assert!(
        !proc_dir.exists(),
        "tansu pid {pid} still exists after drop"
    );
}
