//! Real mode end to end against noida-db: a tiny hardened scenario runs exactly-once over
//! rdkafka with two app instances, every invariant is checked on the captured history, and
//! the run leaves no topics behind. Skipped (with a line saying so) without noida-db.

mod common;

use marlow_kafka::broker::{noida_or_skip, BrokerUnderTest};
use marlow_kafka::client::base_config;
use marlow_kafka::deadline::Stopwatch;
use marlow_kafka::runtime::Judged;
use marlow_kafka::runtime::{run_real, RealOptions, RealReport};
use marlow_kafka::topics::RunNamespace;
use marlow_scenarios::Scenario;
use marlow_sim::history::Step;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use common::TINY;

fn run_on_noida(test: &str, toml: &str, run_id: &str) -> Option<RealReport> {
    let noida = noida_or_skip(test).expect("noida-db")?;
    let scenario = Scenario::from_toml_str(toml, "inline").expect("valid scenario");
    let options = RealOptions {
        seed: 7,
        run_id: run_id.into(),
        keep_topics: false,
        client_settings: Vec::new(),
        max_safety_ms: Some(10_000),
        fault_hooks: Vec::new(),
        app_program: None,
    };
    let watch = Stopwatch::start();
    let report = run_real(&scenario, &noida.under_test(), &options).expect("real run");
    println!(
        "{test}: {} ms; phases {:?}",
        watch.elapsed_ms(),
        report.phase_ms
    );
    println!("counters {:?}", report.counters);
    for instance in &report.instances {
        println!("instance {instance:?}");
        assert!(instance.error.is_none(), "instance failed: {instance:?}");
    }
    for violation in &report.violations {
        println!("{violation}");
    }
    assert!(report.passed(), "violations: {}", report.violations.len());
    assert!(report.unrealized_faults.is_empty());
    let steps = report
        .history
        .in_memory()
        .expect("a real run keeps its history");
    let outcomes = count(&report, |s| matches!(s, Step::ClientOutcome { .. }));
    let committed = count(&report, |s| matches!(s, Step::Committed { .. }));
    assert!(outcomes >= 12, "only {outcomes} client outcomes");
    assert!(committed > outcomes, "{committed} committed records");
    assert_eq!(count(&report, |s| matches!(s, Step::Heal)), 1);
    assert!(matches!(steps.last().map(|e| &e.step), Some(Step::End)));
    assert_eq!(
        report.topics_deleted.len(),
        // Every topic a scenario may name, and the hardened task's changelog: the
        // simulator's topology (`marlow_harness::topology`).
        marlow_scenarios::TOPICS.len() + 1,
        "{:?}",
        report.topics_deleted
    );
    let admin: AdminClient<DefaultClientContext> = base_config(&noida.bootstrap_servers())
        .create()
        .expect("admin");
    let ns = RunNamespace::new(run_id).expect("run id");
    assert_eq!(ns.list(&admin).expect("list"), Vec::<String>::new());
    Some(report)
}

fn count(report: &RealReport, f: fn(&Step) -> bool) -> usize {
    report
        .history
        .in_memory()
        .expect("a real run keeps its history")
        .iter()
        .filter(|e| f(&e.step))
        .count()
}

#[test]
fn tiny_hardened_run_passes_every_invariant_and_leaves_no_topics() {
    let Some(report) = run_on_noida("tiny_hardened_run", TINY, "test-tiny") else {
        return;
    };
    assert!(count(&report, |s| matches!(s, Step::Restore { .. })) >= 2);
    // Every garbage record the clients sent is in the history, and was dead-lettered.
    let garbage = report.counters.garbage_sent;
    assert_eq!(
        count(&report, |s| matches!(s, Step::Undecodable { .. })) as u64,
        garbage
    );
    assert_eq!(report.counters.dead_letters, garbage);
}

/// Instance 1 stops cleanly at 1 s: it commits, leaves the group, and instance 0 takes its
/// partition over, restoring the store from the changelog that instance 1 wrote.
#[test]
fn a_clean_instance_stop_mid_run_still_passes() {
    let toml = format!(
        "{TINY}\n[[faults.timeline]]\nat_ms = 1000\naction = \"stop_instance\"\ninstance = 1\n"
    );
    let Some(report) = run_on_noida("clean_instance_stop", &toml, "test-stop") else {
        return;
    };
    assert_eq!(count(&report, |s| matches!(s, Step::Fault { .. })), 1);
    let survivor = &report.instances[0];
    assert!(survivor.rebalances >= 2, "{survivor:?}");
    assert!(survivor.records_restored > 0, "{survivor:?}");
    let replayed = report
        .history
        .in_memory()
        .expect("a real run keeps its history")
        .iter()
        .any(|e| {
            matches!(&e.step, Step::Restore { instance: 0, records_replayed, accounts, .. }
            if *records_replayed > 0 && !accounts.is_empty())
        });
    assert!(replayed, "no restore of a written store by instance 0");
}

/// The same tiny run on librdkafka's in-process mock cluster, which needs no server (its
/// first group join alone waits 3 s). Its topics go away with the cluster.
#[test]
fn tiny_hardened_run_passes_on_the_mock_cluster() {
    let scenario = Scenario::from_toml_str(TINY, "inline").expect("valid scenario");
    let broker = BrokerUnderTest::mock().expect("mock cluster");
    let options = RealOptions {
        seed: 7,
        run_id: "test-mock".into(),
        keep_topics: false,
        client_settings: vec![("client.rack".into(), "marlow-test".into())],
        max_safety_ms: Some(10_000),
        fault_hooks: Vec::new(),
        app_program: None,
    };
    let watch = Stopwatch::start();
    let report = run_real(&scenario, &broker, &options).expect("real run");
    println!(
        "mock: {} ms; phases {:?}",
        watch.elapsed_ms(),
        report.phase_ms
    );
    for violation in &report.violations {
        println!("{violation}");
    }
    assert!(report.passed(), "violations: {}", report.violations.len());
    assert!(report.instances.iter().all(|i| i.error.is_none()));
    assert!(count(&report, |s| matches!(s, Step::ClientOutcome { .. })) >= 12);
}
