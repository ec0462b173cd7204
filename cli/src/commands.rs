//! The subcommands: argument types and what each does. Scenario and argument
//! problems are reported as one clear line and exit code 2, never a panic.

use crate::report::{print_internal, print_summary, print_violation, repro_line};
use clap::Args;
use marlow_scenarios::{DesignKind, Scenario};
use marlow_sim::determinism::check_determinism;
use marlow_sim::panics::InternalFailure;
use marlow_sim::run::Judged;
use marlow_sim::run::{design_name, run_catching, RunOptions, RunReport};
use std::path::PathBuf;

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
    /// The run's seed: with the scenario and the build, it fixes the whole run
    /// (every draw, delay, fault and interleaving).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the run's history as JSON lines to FILE (schema: docs/history.md).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Run past the first safety violation to the scenario's end (by default a
    /// run stops there).
    #[arg(long)]
    pub run_to_end: bool,
    #[command(flatten)]
    pub budgets: BudgetArgs,
}

#[derive(Args)]
pub struct ReproArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// The seed to replay, as a failure printed it.
    #[arg(long)]
    pub seed: u64,
    /// Write the run's history as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Print the readable event trace leading to the violation.
    #[arg(long)]
    pub trace: bool,
    /// Write the run as one self-contained HTML page (swimlanes per account and
    /// app instance on the simulated-time axis, the violation and its proof
    /// highlighted; zoom, pan, hover) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// How many trace lines to keep and print with --trace.
    #[arg(long, default_value_t = 60)]
    pub trace_lines: usize,
    #[command(flatten)]
    pub budgets: BudgetArgs,
}

/// The run budgets a user may override (`sim/src/world/budget.rs`).
#[derive(Args)]
pub struct BudgetArgs {
    /// Stop the run after N steps with a liveness verdict that names what ran
    /// away (default: a budget derived from the scenario's size and length).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_steps: Option<u64>,
    /// Stop the run when its simulated logs and history come to more than MIB
    /// mebibytes (estimated), with a verdict that names what ran away
    /// (default: 512 plus 1/64 per client and simulated second).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_memory_mib: Option<u64>,
    /// Stop the run when a task writes a store value (one account's state) of
    /// more than KIB kibibytes (default 64).
    #[arg(long, value_name = "KIB", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_state_kib: Option<u64>,
}

impl BudgetArgs {
    /// The run options these flags set (the rest at their defaults).
    pub fn run_options(&self, seed: u64) -> RunOptions {
        RunOptions {
            seed,
            max_steps: self.max_steps,
            max_memory_bytes: self.max_memory_mib.map(|mib| mib * 1024 * 1024),
            max_store_value_bytes: self
                .max_state_kib
                .map(|kib| usize::try_from(kib * 1024).unwrap_or(usize::MAX)),
            ..RunOptions::default()
        }
    }
}

/// Loads and validates the scenario, applying `--design`. Prints the error
/// (naming the file and field) and returns None on a bad scenario.
pub fn load(args: &ScenarioArgs) -> Option<Scenario> {
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
pub fn timed<T>(work: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let started = std::time::Instant::now();
    let value = work();
    (value, started.elapsed())
}

/// Opens an output file (`--history`, `--html`, `bench --out`) before the work, so that a
/// path that cannot be written is a usage error up front, not after a long run.
pub fn open_output<'a>(
    flag: &str,
    path: Option<&'a PathBuf>,
) -> Result<Option<(std::fs::File, &'a PathBuf)>, i32> {
    let Some(path) = path else {
        return Ok(None);
    };
    match std::fs::File::create(path) {
        Ok(file) => Ok(Some((file, path))),
        Err(error) => {
            eprintln!("error: {flag}: cannot create {}: {error}", path.display());
            Err(EXIT_USAGE)
        }
    }
}

/// Writes the run's timeline page after the verdict was printed; like the
/// history, a failed write is reported and the verdict stands.
fn write_html(report: &RunReport, scenario_arg: &str, target: Option<(std::fs::File, &PathBuf)>) {
    let Some((mut file, path)) = target else {
        return;
    };
    let facts = crate::timeline::RunFacts {
        scenario: &report.scenario,
        design: report.design,
        seed: report.seed,
        trace_hash: report.trace_hash.to_string(),
        simulated_us: report.simulated_us,
        repro: repro_line(scenario_arg, report.seed, report.design),
    };
    let page = crate::timeline::render(&facts, report.history.entries(), &report.violations);
    match std::io::Write::write_all(&mut file, page.as_bytes()) {
        Ok(()) => eprintln!(
            "timeline: written to {} (open it in a browser)",
            path.display()
        ),
        Err(error) => eprintln!(
            "error: --html: writing {} failed: {error} (the verdict above stands)",
            path.display()
        ),
    }
}

/// Writes the history after the verdict was printed; a failure is reported
/// but does not change the run's exit code (the verdict stands).
fn write_history(report: &RunReport, target: Option<(std::fs::File, &PathBuf)>) {
    let Some((file, path)) = target else {
        return;
    };
    let mut writer = std::io::BufWriter::new(file);
    let written = report
        .history
        .write_jsonl(&mut writer)
        .and_then(|()| std::io::Write::flush(&mut writer));
    match written {
        Ok(()) => eprintln!(
            "history: {} entries written to {}",
            report.history.len(),
            path.display()
        ),
        Err(error) => eprintln!(
            "error: --history: writing {} failed: {error} (the verdict above stands)",
            path.display()
        ),
    }
}

pub fn run(args: RunArgs) -> i32 {
    let Some(scenario) = load(&args.scenario) else {
        return EXIT_USAGE;
    };
    let options = RunOptions {
        run_to_end: args.run_to_end,
        ..args.budgets.run_options(args.seed)
    };
    let history = match open_output("--history", args.history.as_ref()) {
        Ok(history) => history,
        Err(code) => return code,
    };
    let (report, wall) = timed(|| run_catching(&scenario, &options));
    let report = match report {
        Ok(report) => report,
        Err(failure) => {
            return internal_failure(&args.scenario.scenario, &scenario, args.seed, &failure)
        }
    };
    print_summary(&report, wall);
    if let Some(violation) = report.headline() {
        print_violation(&report, violation, &[]);
        out!(
            "\nreproduce with:\n  {}",
            repro_line(&args.scenario.scenario, report.seed, report.design)
        );
    }
    write_history(&report, history);
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
    let first_options = args.budgets.run_options(args.seed);
    let history = match open_output("--history", args.history.as_ref()) {
        Ok(history) => history,
        Err(code) => return code,
    };
    let html = match open_output("--html", args.html.as_ref()) {
        Ok(html) => html,
        Err(code) => return code,
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
    if first.trace_hash != report.trace_hash {
        eprintln!(
            "determinism violation: seed {} gave trace hash {} then {}",
            args.seed, first.trace_hash, report.trace_hash
        );
        // Two more runs, compared step by step, name where they part.
        if let Ok(Err(divergence)) = check_determinism(&scenario, &first_options) {
            eprintln!("{divergence}");
        }
        write_history(&report, history);
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
    write_history(&report, history);
    write_html(&report, &args.scenario.scenario, html);
    report.exit_code()
}
