//! Soak mode end to end: a 5 s soak of a tiny hardened scenario against noida-db runs its
//! periodic checks, passes every invariant at the end and leaves no topics (skipped, with a
//! line saying so, without noida-db); and a stop flag raised mid-soak (what Ctrl-C does)
//! ends the workload early and still reports, on librdkafka's mock cluster.

mod common;

use marlow_kafka::runtime::Judged;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use marlow_kafka::broker::{noida_or_skip, BrokerUnderTest};
use marlow_kafka::client::base_config;
use marlow_kafka::deadline::Stopwatch;
use marlow_kafka::runtime::{run_soak, RealOptions, RunHistory, SoakOptions, SoakProgress};
use marlow_kafka::topics::RunNamespace;
use marlow_scenarios::Scenario;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use common::TINY;

fn options(run_id: &str) -> RealOptions {
    RealOptions {
        seed: 11,
        run_id: run_id.into(),
        keep_topics: false,
        client_settings: Vec::new(),
        max_safety_ms: None,
        fault_hooks: Vec::new(),
        app_program: None,
    }
}

#[test]
fn a_five_second_soak_checks_periodically_passes_and_leaves_no_topics() {
    let Some(noida) = noida_or_skip("five_second_soak").expect("noida-db") else {
        return;
    };
    let scenario = Scenario::from_toml_str(TINY, "inline").expect("valid scenario");
    let soak = SoakOptions {
        duration_ms: 5_000,
        check_every_ms: 1_000,
        history_file: None,
    };
    let stop = AtomicBool::new(false);
    let lines = Mutex::new(Vec::new());
    let progress = |p: &SoakProgress| lines.lock().expect("lines").push(p.clone());
    let watch = Stopwatch::start();
    let report = run_soak(
        &scenario,
        &noida.under_test(),
        &options("test-soak"),
        &soak,
        &stop,
        &progress,
    )
    .expect("soak");
    let lines = lines.into_inner().expect("lines");
    println!(
        "soak: {} ms; phases {:?}",
        watch.elapsed_ms(),
        report.real.phase_ms
    );
    println!("last progress: {}", report.progress.line());
    for violation in &report.real.violations {
        println!("{violation}");
    }
    assert!(
        report.real.passed(),
        "violations: {}",
        report.real.violations.len()
    );
    assert!(report.real.instances.iter().all(|i| i.error.is_none()));
    assert!(!report.interrupted);
    assert!(
        (5_000..10_000).contains(&report.ran_ms),
        "ran {} ms",
        report.ran_ms
    );
    assert!(report.checks_run >= 1, "no periodic check ran");
    assert!(report.mid_run_violations.is_empty());
    // A passing soak nobody asked to keep the history of leaves no file behind.
    assert!(
        matches!(report.real.history, RunHistory::Removed { entries } if entries > 0),
        "{:?}",
        report.real.history
    );
    assert!(report.progress.commands_sent > 0);
    // Progress came at least once a second while the workload ran.
    assert!(lines.len() >= 5, "{} progress reports", lines.len());
    assert!(lines.last().is_some_and(|p| p.finishing));
    assert_eq!(
        report.real.topics_deleted.len(),
        // Every topic a scenario may name, and the hardened task's changelog: the
        // simulator's topology (`marlow_harness::topology`).
        marlow_scenarios::TOPICS.len() + 1,
        "{:?}",
        report.real.topics_deleted
    );
    let admin: AdminClient<DefaultClientContext> = base_config(&noida.bootstrap_servers())
        .create()
        .expect("admin");
    let ns = RunNamespace::new("test-soak").expect("run id");
    assert_eq!(ns.list(&admin).expect("list"), Vec::<String>::new());
}

/// The stop flag Ctrl-C raises, raised by the progress callback 1 s into a 60 s soak: the
/// clients stop, in-flight commands are answered, and the report still comes, passing.
#[test]
fn a_stop_flag_ends_the_soak_early_and_still_reports() {
    let scenario = Scenario::from_toml_str(TINY, "inline").expect("valid scenario");
    let broker = BrokerUnderTest::mock().expect("mock cluster");
    let kept = std::env::temp_dir().join(format!("marlow-soak-stop-{}.jsonl", std::process::id()));
    let soak = SoakOptions {
        duration_ms: 60_000,
        check_every_ms: 500,
        history_file: Some(kept.clone()),
    };
    let stop = AtomicBool::new(false);
    let progress = |p: &SoakProgress| {
        if p.elapsed_ms >= 1_500 {
            stop.store(true, Ordering::SeqCst);
        }
    };
    let watch = Stopwatch::start();
    let report = run_soak(
        &scenario,
        &broker,
        &options("test-soak-stop"),
        &soak,
        &stop,
        &progress,
    )
    .expect("soak");
    println!(
        "stopped soak: {} ms; {}",
        watch.elapsed_ms(),
        report.progress.line()
    );
    for violation in &report.real.violations {
        println!("{violation}");
    }
    assert!(report.interrupted);
    assert!(report.ran_ms < 10_000, "ran {} ms", report.ran_ms);
    // The history asked for is the file, whole: header first, `End` last, every entry.
    assert_eq!(report.real.history.file(), Some(kept.as_path()));
    let text = std::fs::read_to_string(&kept).expect("the history file is kept");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, report.real.history.len());
    assert!(lines[0].contains("\"header\""), "{}", lines[0]);
    assert!(
        lines[lines.len() - 1].contains("\"end\""),
        "{}",
        lines[lines.len() - 1]
    );
    std::fs::remove_file(&kept).expect("removed");
    assert!(watch.elapsed_ms() < 40_000);
    assert!(
        report.real.passed(),
        "violations: {}",
        report.real.violations.len()
    );
    assert!(report.checks_run >= 1);
    assert!(report.real.counters.client_outcomes > 0);
}
