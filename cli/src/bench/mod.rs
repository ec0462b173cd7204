//! `marlow bench`: the performance table, in one command, from a release
//! build. Every figure is per CPU-second of the process that did the work
//! (or a ratio of two figures measured in this one invocation), so the
//! machine's load moves it less than wall time would. End-to-end runs and
//! sweeps each run in a child process (`marlow bench-child`), so that each
//! reports its own peak memory. `--out FILE` writes the table with the
//! machine and the date (BENCHMARKS.md holds the latest).

mod measure;

use crate::commands::EXIT_USAGE;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use marlow_scenarios::Scenario;
use marlow_sim::run::{run, RunOptions};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Args)]
pub struct BenchArgs {
    /// Smaller sizes (a smoke test of the command, not figures to quote).
    #[arg(long)]
    pub quick: bool,
    /// Also write the table, with the machine and the date, to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ChildKind {
    /// The raw simulated log: `--records` keyed records over `--partitions`.
    Log,
    /// One run of the hardened baseline with `--clients` and `--safety-ms`.
    EndToEnd,
    /// `--seeds` seeds of the small scenario on `--jobs` threads.
    Sweep,
    /// The group workload (`--records`) through the simulated cluster.
    GroupSim,
    /// The group workload through librdkafka's in-process mock cluster.
    GroupMock,
    /// The group workload through a noida-db this process starts.
    GroupNoida,
}

/// One measurement in its own process (started by `marlow bench`).
#[derive(Args)]
pub struct BenchChildArgs {
    #[arg(value_enum)]
    pub kind: ChildKind,
    #[arg(long, default_value_t = 1_000)]
    pub clients: u32,
    #[arg(long, default_value_t = 2_000)]
    pub safety_ms: u64,
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    #[arg(long, default_value_t = 1)]
    pub jobs: u32,
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    #[arg(long, default_value_t = 16)]
    pub partitions: u32,
}

/// Partitions of the group workload's topic.
const GROUP_PARTITIONS: u32 = 16;

/// The group workload through `kind`'s cluster; the clock runs around the
/// workload only (a broker's start is not part of it). Returns (records read,
/// wall seconds, CPU seconds of this process).
#[allow(clippy::disallowed_methods)] // wall time around the work, outside every run
fn group_child(kind: ChildKind, records: usize) -> Result<(usize, f64, f64), String> {
    use marlow_kafka::broker::{BrokerUnderTest, NoidaBroker};
    use marlow_kafka::conformance::{group_workload, workload_keys, RdkafkaBackend, SimBackend};
    use marlow_kafka::topics::RunNamespace;
    let keys = workload_keys(records);
    let timed = |work: &mut dyn FnMut() -> Result<usize, String>| {
        let started = std::time::Instant::now();
        let cpu_before = measure::cpu_seconds().unwrap_or(0.0);
        let read = work()?;
        let cpu = measure::cpu_seconds().unwrap_or(0.0) - cpu_before;
        Ok((read, started.elapsed().as_secs_f64(), cpu))
    };
    let on_broker = |broker: &BrokerUnderTest| {
        let ns = RunNamespace::new(&format!("bench-{}", std::process::id()))
            .map_err(|error| error.to_string())?;
        let mut backend = RdkafkaBackend::new(broker, ns).map_err(|error| error.to_string())?;
        let result = timed(&mut || {
            group_workload(&mut backend, GROUP_PARTITIONS, &keys).map_err(|e| e.to_string())
        });
        let _ = backend.finish();
        result
    };
    match kind {
        ChildKind::GroupSim => timed(&mut || {
            group_workload(&mut SimBackend::new(), GROUP_PARTITIONS, &keys)
                .map_err(|error| error.to_string())
        }),
        ChildKind::GroupMock => {
            let broker = BrokerUnderTest::mock().map_err(|error| error.to_string())?;
            on_broker(&broker)
        }
        ChildKind::GroupNoida => {
            let noida = NoidaBroker::start().map_err(|error| format!("noida-db: {error}"))?;
            on_broker(&noida.under_test())
        }
        ChildKind::Log | ChildKind::EndToEnd | ChildKind::Sweep => {
            unreachable!("not a group workload")
        }
    }
}

/// What a child measured about itself, as one JSON line.
#[derive(Serialize, Deserialize)]
struct ChildReport {
    cpu_s: f64,
    wall_s: f64,
    peak_rss_kib: u64,
    commands: u64,
    simulated_us: u64,
    seeds: u64,
}

impl ChildReport {
    /// Prints the report, with this process's peak RSS, as the child's one
    /// JSON line; returns the child's exit code.
    fn print(cpu_s: f64, wall_s: f64, commands: u64, simulated_us: u64, seeds: u64) -> i32 {
        let report = ChildReport {
            cpu_s,
            wall_s,
            peak_rss_kib: measure::peak_rss_kib().unwrap_or(0),
            commands,
            simulated_us,
            seeds,
        };
        out!("{}", serde_json::to_string(&report).expect("plain data"));
        0
    }
}

/// The small scenario of the sweep figures: the hardened baseline with 100
/// clients and a 10 s safety phase.
fn small_scenario() -> Scenario {
    let mut scenario = Scenario::load_named("baseline").expect("baseline is shipped");
    scenario.workload.clients = 100;
    scenario.phases.safety_duration_ms = 10_000;
    scenario.phases.max_simulated_ms = 10_000 + scenario.phases.liveness_bound_ms;
    scenario
}

#[allow(clippy::disallowed_methods)] // wall time around the work, outside every run
pub fn child(args: BenchChildArgs) -> i32 {
    let started = std::time::Instant::now();
    let cpu_before = measure::cpu_seconds().unwrap_or(0.0);
    if matches!(
        args.kind,
        ChildKind::GroupSim | ChildKind::GroupMock | ChildKind::GroupNoida
    ) {
        return match group_child(args.kind, args.records) {
            Ok((read, wall_s, cpu_s)) => ChildReport::print(cpu_s, wall_s, read as u64, 0, 0),
            Err(error) => {
                eprintln!("{error}");
                crate::commands::EXIT_INTERNAL
            }
        };
    }
    if let ChildKind::Log = args.kind {
        if args.partitions == 0 || args.records == 0 {
            eprintln!("error: --partitions and --records must be at least 1");
            return EXIT_USAGE;
        }
        // The keys are the workload's input: the clock starts after them.
        let keys = marlow_sim::cluster::bench::keys(args.records);
        let cpu_before = measure::cpu_seconds().unwrap_or(0.0);
        let wall_before = std::time::Instant::now();
        let records =
            marlow_sim::cluster::bench::produce_then_consume(args.partitions, args.records, &keys);
        let cpu_s = measure::cpu_seconds().unwrap_or(0.0) - cpu_before;
        let wall_s = wall_before.elapsed().as_secs_f64();
        return ChildReport::print(cpu_s, wall_s, records as u64, 0, 0);
    }
    let (commands, simulated_us, seeds) = match args.kind {
        ChildKind::Log => unreachable!("handled above"),
        ChildKind::EndToEnd => {
            let mut scenario = Scenario::load_named("baseline").expect("baseline is shipped");
            scenario.workload.clients = args.clients;
            let extra = args
                .safety_ms
                .saturating_sub(scenario.phases.safety_duration_ms);
            scenario.phases.safety_duration_ms = args.safety_ms;
            scenario.phases.max_simulated_ms += extra;
            let report = run(&scenario, &RunOptions::default());
            // Throughput of a run that failed or was stopped by a budget is
            // not the figure the table promises.
            if let Some(violation) = report.violations.first() {
                eprintln!("the measured run failed: {violation}");
                return crate::commands::EXIT_INTERNAL;
            }
            (report.counters.commands_sent, report.simulated_us, 1)
        }
        ChildKind::Sweep => {
            let scenario = small_scenario();
            let next = AtomicU64::new(0);
            let commands = AtomicU64::new(0);
            std::thread::scope(|scope| {
                for _ in 0..args.jobs.max(1) {
                    scope.spawn(|| loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= args.seeds {
                            break;
                        }
                        let options = RunOptions {
                            seed,
                            ..RunOptions::default()
                        };
                        let report = run(&scenario, &options);
                        commands.fetch_add(report.counters.commands_sent, Ordering::Relaxed);
                    });
                }
            });
            (commands.into_inner(), 0, args.seeds)
        }
        ChildKind::GroupSim | ChildKind::GroupMock | ChildKind::GroupNoida => {
            unreachable!("handled above")
        }
    };
    let cpu_s = measure::cpu_seconds().unwrap_or(0.0) - cpu_before;
    ChildReport::print(
        cpu_s,
        started.elapsed().as_secs_f64(),
        commands,
        simulated_us,
        seeds,
    )
}

fn run_child(args: &[String]) -> Result<ChildReport, String> {
    let exe =
        std::env::current_exe().map_err(|error| format!("cannot find this binary: {error}"))?;
    let output = std::process::Command::new(exe)
        .arg("bench-child")
        .args(args)
        .output()
        .map_err(|error| format!("cannot start a bench child: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let report: Option<ChildReport> = serde_json::from_str(line).ok();
    match report {
        Some(report) if output.status.success() => Ok(report),
        _ => {
            // One line for a table cell: the child's first complaint, with
            // the table's separator escaped.
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("");
            Err(format!(
                "bench-child {} exited with {}: {}",
                args.join(" "),
                output.status,
                first.replace('|', "\\|")
            ))
        }
    }
}

/// Starts a section of the table: its title, then the header row of its table
/// (columns and alignment, in markdown).
fn section(table: &mut String, title: &str, header: &str) {
    let gap = if table.is_empty() { "" } else { "\n" };
    let _ = writeln!(table, "{gap}### {title}\n\n{header}");
}

/// A measured row, or the row's first cells and why the child failed;
/// returns whether it was measured.
fn write_row(table: &mut String, row: Result<String, String>, first_cells: &str) -> bool {
    let measured = row.is_ok();
    let line = row.unwrap_or_else(|error| format!("{first_cells} failed: {error} |"));
    let _ = writeln!(table, "{line}");
    measured
}

fn per_cpu_second(count: f64, cpu_s: f64) -> String {
    if cpu_s <= 0.0 {
        return "too fast to measure".to_string();
    }
    format!("{:.0}", count / cpu_s)
}

pub fn bench(args: BenchArgs) -> i32 {
    if measure::cpu_seconds().is_none() {
        eprintln!("error: marlow bench reads the process CPU clock, which this system lacks");
        return EXIT_USAGE;
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build: figures are for trying the command, not for quoting (cargo run --release)");
    }
    let out_file = match crate::commands::open_output("--out", args.out.as_ref()) {
        Ok(out_file) => out_file,
        Err(code) => return code,
    };
    let load_before = measure::load();
    let group_records = if args.quick { 10_000 } else { 100_000 };
    let (log_records, e2e, sweep_seeds) = if args.quick {
        (100_000, vec![(100, 1_000)], 4)
    } else {
        (
            1_000_000,
            vec![
                (100, 2_000),
                (100, 4_000),
                (1_000, 2_000),
                (1_000, 4_000),
                (10_000, 2_000),
                (10_000, 4_000),
            ],
            40,
        )
    };
    let shipped_w: Vec<&str> = marlow_scenarios::shipped_names()
        .into_iter()
        .filter(|name| name.starts_with('w'))
        .collect();
    let steps = 3 + e2e.len() + 2 + shipped_w.len() + 3;
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len}  {msg}  [{elapsed_precise}]")
            .expect("valid progress template"),
    );
    let mut table = String::new();
    let t = &mut table;
    let mut all_measured = true;

    section(
        t,
        "Simulated log: keyed produce, then read_committed fetch of it all, one process per row",
        "| partitions | records | records per CPU-second |\n|---:|---:|---:|",
    );
    for partitions in [1_u32, 16, 256] {
        bar.set_message(format!("simulated log, {partitions} partitions"));
        let child_args = [
            "log".to_string(),
            format!("--partitions={partitions}"),
            format!("--records={log_records}"),
        ];
        let row = run_child(&child_args).map(|report| {
            let rate = per_cpu_second(report.commands as f64, report.cpu_s);
            format!("| {partitions} | {} | {rate} |", report.commands)
        });
        all_measured &= write_row(t, row, &format!("| {partitions} | {log_records} |"));
        bar.inc(1);
    }

    section(t, "End to end: hardened `baseline`, seed 0, one process per row", "| clients | safety phase | commands | commands per CPU-second | simulated s per CPU-second | peak RSS |\n|---:|---:|---:|---:|---:|---:|");
    for (clients, safety_ms) in e2e {
        bar.set_message(format!("end to end, {clients} clients, {safety_ms} ms"));
        let child_args = [
            "end-to-end".to_string(),
            format!("--clients={clients}"),
            format!("--safety-ms={safety_ms}"),
        ];
        let row = run_child(&child_args).map(|r| {
            format!(
                "| {clients} | {safety_ms} ms | {} | {} | {:.2} | {} MB |",
                r.commands,
                per_cpu_second(r.commands as f64, r.cpu_s),
                r.simulated_us as f64 / 1e6 / r.cpu_s.max(0.01),
                r.peak_rss_kib / 1024
            )
        });
        all_measured &= write_row(t, row, &format!("| {clients} | {safety_ms} ms |"));
        bar.inc(1);
    }

    section(t, &format!("Sweep: {sweep_seeds} seeds of `baseline` with 100 clients and a 10 s safety phase, one process per row"), "| jobs | seeds per CPU-second | seeds per wall second | peak RSS |\n|---:|---:|---:|---:|");
    for jobs in [1_u32, 2] {
        bar.set_message(format!("sweep, {jobs} jobs"));
        let child_args = [
            "sweep".to_string(),
            format!("--seeds={sweep_seeds}"),
            format!("--jobs={jobs}"),
        ];
        let row = run_child(&child_args).map(|r| {
            format!(
                "| {jobs} | {} | {:.1} | {} MB |",
                per_cpu_second(r.seeds as f64, r.cpu_s),
                r.seeds as f64 / r.wall_s.max(0.001),
                r.peak_rss_kib / 1024
            )
        });
        all_measured &= write_row(t, row, &format!("| {jobs} |"));
        bar.inc(1);
    }

    section(
        t,
        "Time to the first expected violation, seeds from 0",
        "| scenario | failing seed | invariant | CPU ms to find it |\n|---|---:|---|---:|",
    );
    for name in shipped_w {
        bar.set_message(format!("first violation of {name}"));
        let scenario = Scenario::load_named(name).expect("shipped");
        let Some(expect) = scenario.check.expect.clone() else {
            bar.inc(1);
            continue;
        };
        let before = measure::cpu_seconds().unwrap_or(0.0);
        let found = (0..u64::from(expect.within_seeds)).find_map(|seed| {
            let report = run(
                &scenario,
                &RunOptions {
                    seed,
                    ..RunOptions::default()
                },
            );
            let violation = report
                .violations
                .iter()
                .find(|v| expect.accepts(v.invariant))?;
            Some((seed, violation.invariant))
        });
        let cpu_ms = (measure::cpu_seconds().unwrap_or(0.0) - before) * 1_000.0;
        let cpu_ms = format!("{cpu_ms:.1}");
        match found {
            Some((seed, invariant)) => {
                let _ = writeln!(t, "| {name} | {seed} | {invariant} | {cpu_ms} |");
            }
            None => {
                let _ = writeln!(
                    t,
                    "| {name} | none within {} | | {cpu_ms} |",
                    expect.within_seeds
                );
            }
        }
        bar.inc(1);
    }
    section(t, &format!("Group workload: produce {group_records} keyed records to {GROUP_PARTITIONS} partitions, join a group, read it all back read_committed, commit the offsets in a transaction. One process per row, the same `LogBackend` calls on each (kafka/src/conformance/workload.rs), with the keys built before the clock starts; the simulated side sends each partition's records in requests of 1,000, as librdkafka's accumulator batches them on the other sides. A broker's wall time includes the client's fixed waits (a group join, the end of each partition), so the CPU-second figure is the fairer one; noida-db's own CPU is not counted."), "| cluster | records per wall second | the simulator is faster by | records per CPU-second of the process | the simulator is faster by | peak RSS |\n|---|---:|---:|---:|---:|---:|");
    let mut sim_rates: Option<(f64, f64)> = None;
    for (kind, name) in [
        ("group-sim", "simulated cluster"),
        ("group-mock", "librdkafka mock cluster (in process)"),
        ("group-noida", "noida-db"),
    ] {
        bar.set_message(format!("group workload, {name}"));
        let child_args = [kind.to_string(), format!("--records={group_records}")];
        let row = run_child(&child_args).map(|r| {
            let wall_rate = r.commands as f64 / r.wall_s.max(0.000_001);
            let cpu_rate = r.commands as f64 / r.cpu_s.max(0.01);
            let (sim_wall, sim_cpu) = *sim_rates.get_or_insert((wall_rate, cpu_rate));
            format!(
                "| {name} | {wall_rate:.0} | {:.1}x | {cpu_rate:.0} | {:.1}x | {} MB |",
                sim_wall / wall_rate.max(0.000_001),
                sim_cpu / cpu_rate.max(0.000_001),
                r.peak_rss_kib / 1024
            )
        });
        // noida-db is optional: a machine without it gets a row that says so.
        let row = match row {
            Err(error) if kind == "group-noida" && error.contains("not installed") => Ok(format!(
                "| {name} | not installed (bash .ci/kafka-broker.sh install) | | | |"
            )),
            row => row,
        };
        all_measured &= write_row(t, row, &format!("| {name} |"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    out!("{table}");
    if let Some((mut file, path)) = out_file {
        let header = format!(
            "# Benchmarks\n\nThe output of `marlow bench` (`cargo run --release -p marlow-cli -- bench --out BENCHMARKS.md`), {}.\n\n- Build: marlow {}, {} build.\n- Machine: {}; load average {} at the start, {} at the end.\n- Figures are per CPU-second of the process that did the work (user + system time from the process CPU clock, in nanoseconds), so the machine's load moves them less than wall time; seeds per wall second and peak RSS are as measured.\n\n",
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"),
            env!("CARGO_PKG_VERSION"),
            if cfg!(debug_assertions) { "debug" } else { "release" },
            measure::machine(),
            load_before,
            measure::load()
        );
        if let Err(error) =
            std::io::Write::write_all(&mut file, format!("{header}{table}").as_bytes())
        {
            eprintln!("error: --out: writing {} failed: {error}", path.display());
            return EXIT_USAGE;
        }
        eprintln!("bench: table written to {}", path.display());
    }
    if all_measured {
        0
    } else {
        eprintln!("error: some rows were not measured (see `failed:` in the table)");
        crate::commands::EXIT_INTERNAL
    }
}
