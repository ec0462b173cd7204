//! `--processes` end to end on noida-db: a soak whose app instances are `marlow app`
//! processes survives three SIGKILLs of them (each restarted as a new process under the
//! same static member name) with every safety invariant holding, and a parent killed
//! with SIGKILL leaves no app process behind. Skipped, with a line saying so, without noida-db.

mod runner;
use runner::marlow;

#[path = "../../kafka/tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::TINY;
use marlow_kafka::broker::noida_or_skip;
use marlow_kafka::deadline::Deadline;

/// TINY over a 30 s safety phase, with instance 0, then 1, then 0 again killed and
/// restarted two seconds later.
fn with_three_kills() -> String {
    let mut toml = TINY
        .replace("safety_duration_ms = 2_000", "safety_duration_ms = 30_000")
        .replace("max_simulated_ms = 20_000", "max_simulated_ms = 60_000");
    for (at_ms, action, instance) in [
        (3_000, "crash_instance", 0),
        (5_000, "restart_instance", 0),
        (9_000, "crash_instance", 1),
        (11_000, "restart_instance", 1),
        (15_000, "crash_instance", 0),
        (17_000, "restart_instance", 0),
    ] {
        toml.push_str(&format!(
            "\n[[faults.timeline]]\nat_ms = {at_ms}\naction = \"{action}\"\ninstance = {instance}\n"
        ));
    }
    toml
}

/// `with_three_kills` written to a scratch file of `test`'s own; its path.
fn kills_scenario_file(test: &str) -> String {
    let dir = std::env::temp_dir().join(format!("marlow-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let scenario = dir.join("kills.toml");
    std::fs::write(&scenario, with_three_kills()).expect("scenario");
    scenario.to_str().expect("utf-8 path").to_owned()
}

/// The pids of `marlow app` processes of run `run_id`, from /proc.
fn app_processes(run_id: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_app = args.contains(&b"app".as_slice()) && args.contains(&run_id.as_bytes());
            is_app.then_some(pid)
        })
        .collect()
}

#[test]
fn a_soak_of_app_processes_survives_three_sigkills_with_every_safety_invariant_holding() {
    let Some(noida) = noida_or_skip("processes_soak").expect("noida-db") else {
        return;
    };
    let scenario = &kills_scenario_file("processes-soak");
    let bootstrap = noida.bootstrap_servers();
    let run_id = "proc-soak";
    let ran = marlow(&[
        "soak",
        scenario,
        "--brokers",
        &bootstrap,
        "--processes",
        "--duration",
        "22s",
        "--check-every",
        "5s",
        "--run-id",
        run_id,
    ]);
    let crashed = ran
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("app-") && l.ends_with("; CRASHED"))
        .count();
    assert_eq!(
        crashed, 3,
        "three incarnations were killed:\n{}",
        ran.stdout
    );
    for incarnation in ["app-0.2", "app-1.1"] {
        assert!(
            ran.stdout.contains(&format!("  {incarnation} ")),
            "{incarnation} was started after a kill"
        );
    }
    assert!(!ran.stdout.contains("FAILED"), "no instance failed");
    assert!(
        app_processes(run_id).is_empty(),
        "every app process ended with the soak"
    );
    // Nothing lost, nothing applied twice, every answer right: no safety violation
    // through the kills. On noida-db a long-lived read_committed reader skips a record
    // committed after a killed producer's open transaction (`kafka/examples/
    // killed_transaction.rs`, CI.md "App instances as processes"), so a partition's
    // answers can stop reaching the clients: L1, a liveness verdict about the broker,
    // reported and tolerated here.
    match ran.code {
        0 => assert!(ran.stdout.contains("every enabled invariant held")),
        4 => {
            let found = ran
                .stdout
                .lines()
                .find(|l| l.contains("violations found:"))
                .expect("a verdict line");
            assert!(
                found.trim_end().ends_with("violations found: L1")
                    || found.contains("violations found: L1 ("),
                "only L1: {found}"
            );
            println!("KNOWN noida-db stall after a kill (L1 only): {found}");
        }
        code => panic!(
            "exit {code}: a safety violation or an error\n{}",
            ran.stderr
        ),
    }
}

#[test]
fn a_parent_killed_with_sigkill_leaves_no_app_process() {
    let Some(noida) = noida_or_skip("processes_orphans").expect("noida-db") else {
        return;
    };
    let scenario = kills_scenario_file("processes-orphans");
    let run_id = format!("orphans-{}", std::process::id());
    let mut parent = Command::new(env!("CARGO_BIN_EXE_marlow"))
        .args(["soak", &scenario])
        .args(["--brokers", &noida.bootstrap_servers(), "--processes"])
        .args(["--duration", "60s", "--run-id", &run_id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("marlow soak starts");
    let deadline = Deadline::after_ms(30_000);
    while app_processes(&run_id).len() < 2 && !deadline.passed() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let children = app_processes(&run_id);
    assert_eq!(children.len(), 2, "both app processes started");
    parent.kill().expect("SIGKILL the parent");
    parent.wait().expect("the parent is reaped");
    let deadline = Deadline::after_ms(10_000);
    while !app_processes(&run_id).is_empty() && !deadline.passed() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        app_processes(&run_id),
        Vec::<u32>::new(),
        "no app process outlived its parent (they were {children:?})"
    );
}
