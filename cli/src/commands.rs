//! The subcommands: argument types and what each does. Scenario and argument
//! problems are reported as one clear line and exit code 2, never a panic.

use crate::report::{print_internal, print_summary, print_violation, repro_line, SweepTable};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use marlow_scenarios::{DesignKind, Scenario};
use marlow_sim::panics::InternalFailure;
use marlow_sim::run::Judged;
use marlow_sim::run::{design_name, run_catching, RunOptions, RunReport};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub const EXIT_INTERNAL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_DETERMINISM: i32 = 5;

#[derive(Args)]
pub struct ScenarioArgs {
    /// A shipped scenario name (see `marlow list`) or a path to a .toml file.
    pub scenario: String,
    /// Override the scenario's processor design: `seed` or `hardened`.
    #[arg(long)]
    pub design: Option<DesignKind>,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the run's history as JSON lines to FILE (schema: docs/history.md).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Run past the first safety violation to the scenario's end (by default a
    /// run stops there).
    #[arg(long)]
    pub run_to_end: bool,
}

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Seeds to run, as A..B (B excluded), e.g. 0..1000.
    #[arg(long, value_parser = parse_seed_range)]
    pub seeds: std::ops::Range<u64>,
    /// Parallel runs (default: the number of cores). Each run is single-threaded.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run every seed past its first safety violation to the scenario's end
    /// (slower; judges the scenario's required marks on failing seeds too).
    #[arg(long)]
    pub run_to_end: bool,
}

#[derive(Args)]
pub struct ReproArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[arg(long)]
    pub seed: u64,
    /// Write the run's history as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Print the readable event trace leading to the violation.
    #[arg(long)]
    pub trace: bool,
    /// How many trace lines to keep and print with --trace.
    #[arg(long, default_value_t = 60)]
    pub trace_lines: usize,
}

fn parse_seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("expected a range like 0..1000, found {text:?}"))?;
    let parse = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("expected a non-negative integer, found {part:?}"))
    };
    let range = parse(start)?..parse(end)?;
    if range.is_empty() {
        return Err(format!("the range {text} holds no seed"));
    }
    Ok(range)
}

/// Loads and validates the scenario, applying `--design`. Prints the error
/// (naming the file and field) and returns None on a bad scenario.
fn load(args: &ScenarioArgs) -> Option<Scenario> {
    match Scenario::resolve(&args.scenario) {
        Ok(scenario) => Some(match args.design {
            Some(design) => scenario.with_design(design),
            None => scenario,
        }),
        Err(error) => {
            eprintln!("error: {error}");
            None
        }
    }
}

pub fn list() -> i32 {
    let shipped = marlow_scenarios::shipped();
    let width = shipped
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    for (name, description) in shipped {
        out!("{name:<width$}  {description}");
    }
    0
}

/// Measures wall time around a run. The simulation itself never reads the
/// clock; the report just says how long the host took.
#[allow(clippy::disallowed_methods)]
fn timed<T>(work: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let started = std::time::Instant::now();
    let value = work();
    (value, started.elapsed())
}

fn write_history(report: &RunReport, path: &PathBuf) -> Result<(), i32> {
    let file = std::fs::File::create(path).map_err(|error| {
        eprintln!("error: cannot write history to {}: {error}", path.display());
        EXIT_USAGE
    })?;
    let mut writer = std::io::BufWriter::new(file);
    report.history.write_jsonl(&mut writer).map_err(|error| {
        eprintln!("error: writing history to {}: {error}", path.display());
        EXIT_INTERNAL
    })?;
    eprintln!(
        "history: {} entries written to {}",
        report.history.len(),
        path.display()
    );
    Ok(())
}

pub fn run(args: RunArgs) -> i32 {
    let Some(scenario) = load(&args.scenario) else {
        return EXIT_USAGE;
    };
    let options = RunOptions {
        seed: args.seed,
        run_to_end: args.run_to_end,
        ..RunOptions::default()
    };
    let (report, wall) = timed(|| run_catching(&scenario, &options));
    let report = match report {
        Ok(report) => report,
        Err(failure) => {
            return internal_failure(&args.scenario.scenario, &scenario, args.seed, &failure)
        }
    };
    print_summary(&report, wall);
    if let Some(path) = &args.history {
        if let Err(code) = write_history(&report, path) {
            return code;
        }
    }
    if let Some(violation) = report.headline() {
        print_violation(&report, violation, &[]);
        out!(
            "\nreproduce with:\n  {}",
            repro_line(&args.scenario.scenario, report.seed, report.design)
        );
    }
    report.exit_code()
}

/// A run that panicked: its verdict, the line that replays it, exit 1.
fn internal_failure(
    scenario_arg: &str,
    scenario: &Scenario,
    seed: u64,
    failure: &InternalFailure,
) -> i32 {
    print_internal(scenario, seed, failure);
    out!(
        "\nreproduce with:\n  {}",
        repro_line(scenario_arg, seed, design_name(scenario))
    );
    EXIT_INTERNAL
}

pub fn repro(args: ReproArgs) -> i32 {
    let Some(scenario) = load(&args.scenario) else {
        return EXIT_USAGE;
    };
    let first_options = RunOptions {
        seed: args.seed,
        ..RunOptions::default()
    };
    let (first, wall) = timed(|| run_catching(&scenario, &first_options));
    let first = match first {
        Ok(first) => first,
        Err(failure) => {
            return internal_failure(&args.scenario.scenario, &scenario, args.seed, &failure)
        }
    };
    // Replay once more, keeping the readable trace up to the violation, and
    // compare: a repro that does not reproduce is a bug.
    let lines = if args.trace {
        args.trace_lines.max(1)
    } else {
        0
    };
    let options = RunOptions {
        seed: args.seed,
        readable_trace_lines: lines,
        trace_until_us: first.headline().map(|violation| violation.at_us),
        ..first_options
    };
    let report = match run_catching(&scenario, &options) {
        Ok(report) => report,
        Err(failure) => {
            // It passed once and panicked on replay: not deterministic.
            eprintln!(
                "determinism violation: seed {} panicked only on replay: {failure}",
                args.seed
            );
            return EXIT_DETERMINISM;
        }
    };
    print_summary(&report, wall);
    if let Some(path) = &args.history {
        if let Err(code) = write_history(&report, path) {
            return code;
        }
    }
    if first.trace_hash != report.trace_hash {
        eprintln!(
            "determinism violation: seed {} gave trace hash {} then {}",
            args.seed, first.trace_hash, report.trace_hash
        );
        return EXIT_DETERMINISM;
    }
    out!("replayed twice: same trace hash {}", report.trace_hash);
    match report.headline() {
        Some(violation) => {
            let trace = if args.trace {
                report.trace_lines.as_slice()
            } else {
                &[]
            };
            print_violation(&report, violation, trace);
        }
        None if args.trace => {
            out!("\nlast {} trace lines:", report.trace_lines.len());
            report.trace_lines.iter().for_each(|line| out!("  {line}"));
        }
        None => {}
    }
    report.exit_code()
}

pub fn sweep(args: SweepArgs) -> i32 {
    let Some(scenario) = load(&args.scenario) else {
        return EXIT_USAGE;
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let seeds = args.seeds.clone();
    let bar = ProgressBar::new(seeds.end - seeds.start);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {msg}  [{elapsed_precise}, eta {eta}]",
        )
        .expect("valid progress template"),
    );
    let run_seed = |seed| {
        let options = RunOptions {
            seed,
            run_to_end: args.run_to_end,
            ..RunOptions::default()
        };
        run_catching(&scenario, &options)
    };
    let (table, wall) = timed(|| {
        sweep_seeds(seeds, jobs, &run_seed, |table| {
            bar.set_message(table.progress_message());
            bar.inc(1);
        })
    });
    bar.finish_and_clear();
    table.print(&args.scenario.scenario, &scenario, wall);
    table.exit_code(&scenario.check.required_marks)
}

/// Runs every seed of `seeds` on `jobs` threads (parallel across seeds, never
/// within one) and gathers the results. A seed whose run panicked is a failed
/// seed like any other; the sweep goes on.
fn sweep_seeds(
    seeds: std::ops::Range<u64>,
    jobs: usize,
    run_seed: &(dyn Fn(u64) -> Result<RunReport, InternalFailure> + Sync),
    progress: impl Fn(&SweepTable) + Sync,
) -> SweepTable {
    let next = AtomicU64::new(seeds.start);
    let table = Mutex::new(SweepTable::default());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let result = run_seed(seed);
                let mut table = table
                    .lock()
                    .expect("no thread panics while holding the table");
                match &result {
                    Ok(report) => table.add(report),
                    Err(failure) => table.add_internal(seed, failure),
                }
                progress(&table);
            });
        }
    });
    table.into_inner().expect("threads are done")
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_sim::panics::catch;
    use marlow_sim::run::{EXIT_INTERNAL, EXIT_PASS};

    /// A small, fault-free scenario: a few clients for a short safety phase.
    fn small_scenario() -> Scenario {
        let mut scenario = Scenario::load_named("baseline").expect("baseline is shipped");
        scenario.workload.clients = 10;
        scenario.workload.accounts = 5;
        scenario.phases.safety_duration_ms = 300;
        scenario
    }

    #[test]
    fn a_panicking_seed_fails_alone_and_the_sweep_goes_on() {
        let scenario = small_scenario();
        let run_seed = |seed: u64| {
            catch(|| {
                // An internal assertion that breaks on one seed only.
                assert_ne!(seed, 2, "planted assertion on seed {seed}");
                marlow_sim::run::run(
                    &scenario,
                    &RunOptions {
                        seed,
                        ..RunOptions::default()
                    },
                )
            })
        };
        let table = sweep_seeds(0..4, 2, &run_seed, |_| {});
        assert_eq!(table.progress_message(), "3 passed, 1 failed");
        assert_eq!(table.exit_code(&[]), EXIT_INTERNAL);
        let (line, code) = table.failure(2).expect("seed 2 is listed");
        assert_eq!(code, EXIT_INTERNAL);
        assert!(
            line.starts_with("internal assertion: ")
                && line.contains("planted assertion on seed 2"),
            "{line}"
        );
        assert!(
            line.contains("commands.rs:"),
            "the location is named: {line}"
        );
        // The same sweep without the planted assertion passes.
        let clean = sweep_seeds(
            0..4,
            2,
            &|seed| {
                run_catching(
                    &scenario,
                    &RunOptions {
                        seed,
                        ..RunOptions::default()
                    },
                )
            },
            |_| {},
        );
        assert_eq!(clean.exit_code(&[]), EXIT_PASS);
    }
}
