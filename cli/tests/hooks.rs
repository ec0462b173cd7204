//! `--fault-hook` end to end on librdkafka's mock cluster: a scenario's broker restart is
//! run through the user's command at its time, with the fault in the command's environment,
//! and its exit code and duration land in the history and the report; without a hook the
//! restart is listed as not realized; the fault's recovery is summarised and plotted; a
//! hook for a fault no hook can make, or an unwritable plot, is a usage error.

mod runner;
use runner::marlow;

#[path = "../../kafka/tests/common/mod.rs"]
mod common;

use common::TINY;

/// TINY with a broker restart 500 ms into its 2 s safety phase.
fn with_broker_restart() -> String {
    format!("{TINY}\n[[faults.timeline]]\nat_ms = 500\naction = \"broker_restart\"\ndowntime_ms = 250\n")
}

fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("marlow-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn a_broker_restart_runs_the_hook_with_its_fault_and_reports_the_exit_code() {
    let dir = scratch("hooks");
    let scenario = dir.join("restart.toml");
    std::fs::write(&scenario, with_broker_restart()).expect("scenario");
    let seen = dir.join("seen.txt");
    let history = dir.join("history.jsonl");
    let plot = dir.join("plot.svg");
    let hook = format!(
        "broker_restart=echo \"$MARLOW_FAULT $MARLOW_DOWNTIME_MS $MARLOW_RUN_ID $MARLOW_BROKERS\" > {}",
        seen.display()
    );
    let scenario = scenario.to_str().expect("utf-8 path");
    let ran = marlow(&[
        "real",
        scenario,
        "--brokers",
        "mock",
        "--run-id",
        "hooked",
        "--fault-hook",
        &hook,
        "--history",
        history.to_str().expect("utf-8 path"),
        "--plot",
        plot.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let seen = std::fs::read_to_string(&seen).expect("the hook ran");
    assert!(
        seen.starts_with("broker_restart 250 hooked 127.0.0.1:"),
        "the hook saw its fault: {seen}"
    );
    assert!(
        ran.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("hook")
                && l.contains("broker_restart by hook at")
                && l.contains("exit 0")),
        "{}",
        ran.stdout
    );
    assert!(
        !ran.stdout.contains("BrokerRestart"),
        "realized: {}",
        ran.stdout
    );
    let history = std::fs::read_to_string(&history).expect("history written");
    assert!(
        history
            .lines()
            .any(|l| l.contains("\"fault\"") && l.contains("broker_restart by hook")),
        "the hook's run is in the history"
    );

    // Without the hook the same restart is reported as not realized.
    let plain = marlow(&[
        "real",
        scenario,
        "--brokers",
        "mock",
        "--run-id",
        "unhooked",
    ]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let unrealized =
        plain.stdout.contains("not realized") && plain.stdout.contains("BrokerRestart");
    assert!(unrealized, "{}", plain.stdout);
    // The fault's recovery is summarised and plotted.
    assert!(
        ran.stdout
            .contains("recovery      1 faults; fault to first answer after it: min"),
        "{}",
        ran.stdout
    );
    let svg = std::fs::read_to_string(&plot).expect("the plot is written");
    assert!(
        svg.starts_with("<svg") && svg.contains("broker_restart by hook"),
        "{svg}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A usage mistake on `real --brokers mock`: exit 2, the flag and `wanted` named.
fn refused(flag: &str, value: &str, wanted: &str) {
    let ran = marlow(&["real", "baseline", "--brokers", "mock", flag, value]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let named = ran.stderr.contains(flag) && ran.stderr.contains(wanted);
    assert!(named && !ran.stderr.contains("panicked"), "{}", ran.stderr);
}

#[test]
fn a_hook_for_a_fault_no_hook_makes_or_an_unwritable_plot_is_refused_naming_the_flag() {
    refused(
        "--fault-hook",
        "latency=tc qdisc add dev lo root netem delay 50ms",
        "broker_restart",
    );
    refused("--plot", "/nonexistent/dir/plot.svg", "/nonexistent/dir");
}

/// `--brokers noida`: Marlow starts noida-db and makes the scenario's broker restart itself
/// (SIGKILL, then a start on the same data), and the run is judged. The verdict is not
/// asserted: noida-db 0.2.3 can lose or duplicate acknowledged records across a restart,
/// and the clients may get no answer after it (CI.md).
#[test]
fn a_noida_marlow_starts_has_its_broker_restarts_made_by_marlow() {
    let installed = marlow_kafka::broker::find_noida(&marlow_kafka::broker::workspace_root());
    if !matches!(installed, Ok(Some(_))) {
        println!(
            "noida_restart: skipped: noida-db not installed (run .ci/kafka-broker.sh install)"
        );
        return;
    }
    let dir = scratch("noida-restart");
    let scenario = dir.join("restart.toml");
    std::fs::write(&scenario, with_broker_restart()).expect("scenario");
    let ran = marlow(&[
        "real",
        scenario.to_str().expect("utf-8 path"),
        "--brokers",
        "noida",
        "--run-id",
        "noida-restart",
    ]);
    let made = "broker_restart by Marlow (SIGKILL noida-db, start it on the same data) at";
    assert!(ran.stdout.contains(made), "{}\n{}", ran.stdout, ran.stderr);
    assert!(!ran.stdout.contains("not realized"), "{}", ran.stdout);
    assert!(
        [0, 3, 4].contains(&ran.code),
        "judged: {}\n{}",
        ran.stdout,
        ran.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}
