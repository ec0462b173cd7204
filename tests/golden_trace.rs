//! A golden run: the readable trace and the history of one short run of a tiny
//! scenario, pinned with insta. Any change to scheduling, latency draws,
//! partitioning or the processors shows up here as a reviewable diff; accept
//! intended changes with `cargo insta review` (or INSTA_UPDATE=always).

use marlow_scenarios::Scenario;
use marlow_sim::run::Judged;
use marlow_sim::run::{run, RunOptions};

const GOLDEN: &str = r#"
name = "golden"
description = "two ATMs, two accounts, one instance, hardened, 60 ms"

[workload]
clients = 2
accounts = 2
initial_deposit_minor = { min = 1_500, max = 1_500 }
amount_minor = { min = 300, max = 700 }
think_time_us = { min = 5_000, max = 15_000 }

[workload.mix]
deposit = 1
withdraw = 2
add_owner = 0
remove_owner = 0

[design]
design = "hardened"

[cluster]
partitions = 2
app_instances = 1
broker_latency_us = { min = 500, max = 1_500 }

[phases]
safety_duration_ms = 60
liveness_bound_ms = 100
max_simulated_ms = 200
"#;

#[test]
fn golden_run_trace_is_stable() {
    let scenario = Scenario::from_toml_str(GOLDEN, "golden").expect("the golden scenario is valid");
    let report = run(
        &scenario,
        &RunOptions {
            seed: 42,
            readable_trace_lines: 10_000,
            ..RunOptions::default()
        },
    );
    assert!(
        report.passed(),
        "the golden run passes: {:?}",
        report.violations
    );
    let trace: Vec<String> = report.trace_lines.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("golden_trace", trace.join("\n"));
    let mut history = Vec::new();
    report
        .history
        .write_jsonl(&mut history)
        .expect("writes to memory");
    insta::assert_snapshot!(
        "golden_history",
        String::from_utf8(history).expect("JSON is UTF-8")
    );
    insta::assert_snapshot!("golden_trace_hash", report.trace_hash.to_string());
}
