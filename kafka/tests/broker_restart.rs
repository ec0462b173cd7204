//! A broker crash in real mode: noida-db is killed with SIGKILL mid-run and started again
//! on the same data directory and port (Marlow's in-process hook for a broker it started),
//! while the hardened design runs exactly-once; then every output topic is read back
//! read_committed and every checker runs. Skipped (with a line saying so) without noida-db.

mod common;

use std::sync::{Arc, Mutex, PoisonError};

use marlow_harness::history::Step;
use marlow_kafka::broker::{noida_or_skip, BrokerUnderTest};
use marlow_kafka::deadline::Stopwatch;
use marlow_kafka::runtime::hooks::InProcessHook;
use marlow_kafka::runtime::{run_real, FaultHook, RealOptions};
use marlow_scenarios::Scenario;

use common::TINY;

/// noida-db is killed with SIGKILL 1.5 s into the workload and started again on its data a
/// second later. Marlow makes the restart, the instances ride it out (none ends with an
/// error; a producer the restarted broker no longer knows is replaced), and the run is
/// judged to the end. The verdict itself is printed, not asserted: noida-db 0.2.3 can lose or duplicate acknowledged records across a restart,
/// depending on what is in flight at the kill, and a duplicated event can break almost any
/// invariant downstream (S4 once, a restored store against a log that holds an event
/// twice). CI.md records what was measured.
#[test]
fn a_broker_restart_on_noida_is_made_ridden_out_and_judged() {
    let Some(noida) = noida_or_skip("broker_restart").expect("noida-db") else {
        return;
    };
    let bootstrap = noida.bootstrap_servers();
    let noida = Arc::new(Mutex::new(noida));
    let restart = {
        let noida = Arc::clone(&noida);
        InProcessHook(Arc::new(move |downtime_ms| {
            let mut noida = noida.lock().unwrap_or_else(PoisonError::into_inner);
            noida
                .restart(downtime_ms, true)
                .map_err(|error| error.to_string())
        }))
    };
    let hook = FaultHook {
        fault: "broker_restart",
        command: "SIGKILL noida-db, start it on the same data".into(),
        in_process: Some(restart),
    };
    let toml = TINY.replace("safety_duration_ms = 2_000", "safety_duration_ms = 5_000");
    let timeline =
        "[[faults.timeline]]\nat_ms = 1_500\naction = \"broker_restart\"\ndowntime_ms = 1_000\n";
    let scenario =
        Scenario::from_toml_str(&format!("{toml}\n{timeline}"), "inline").expect("valid scenario");
    let options = RealOptions {
        seed: 3,
        run_id: "broker-restart".into(),
        keep_topics: false,
        client_settings: Vec::new(),
        max_safety_ms: None,
        fault_hooks: vec![hook],
        app_program: None,
    };
    let watch = Stopwatch::start();
    let report =
        run_real(&scenario, &BrokerUnderTest::External(bootstrap), &options).expect("real run");
    println!("{} ms; phases {:?}", watch.elapsed_ms(), report.phase_ms);
    for run in &report.hook_runs {
        println!("{}", run.line());
    }
    for instance in &report.instances {
        println!("instance {instance:?}");
    }
    for violation in &report.violations {
        println!("{violation}");
        for entry in report.history.related(violation, 40).unwrap_or_default() {
            let text = format!("{:?}", entry.step);
            println!("    t={} us  {}", entry.at_us, &text[..text.len().min(300)]);
        }
    }
    assert_eq!(report.hook_runs.len(), 1, "{:?}", report.hook_runs);
    assert!(report.hook_runs[0].succeeded(), "{:?}", report.hook_runs[0]);
    assert!(
        report.unrealized_faults.is_empty(),
        "{:?}",
        report.unrealized_faults
    );
    let c = &report.counters;
    assert!(c.commands_sent > 0 && c.client_outcomes > 0, "{c:?}");
    for instance in &report.instances {
        assert!(
            instance.error.is_none(),
            "rode the restart out: {instance:?}"
        );
    }
    // Whether clients got answers again after the restart is printed, not asserted: in
    // one fresh-clone CI run none did (CI.md: the clients' own producer and outcome
    // reader are not yet rebuilt when the broker forgets them).
    let steps = report
        .history
        .in_memory()
        .expect("a real run keeps its history");
    let restart_done_us = steps
        .iter()
        .find(|e| matches!(&e.step, Step::Fault { fault } if fault.starts_with("broker_restart by Marlow")))
        .map(|e| e.at_us)
        .expect("the restart is in the history");
    let answers_after = steps
        .iter()
        .filter(|e| e.at_us > restart_done_us && matches!(e.step, Step::ClientOutcome { .. }))
        .count();
    println!("{answers_after} answers after the restart");
}
