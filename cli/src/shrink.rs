//! `marlow shrink`: turn a failing seed into the smallest scenario file the
//! search finds that still fails the same invariant, and print how to run it.
//! The search itself is `marlow_sim::shrink`; this file owns the flags, the
//! progress bar, the time budget (wall clock, outside every simulated run)
//! and the output file.

use crate::commands::{load, timed, BudgetArgs, ScenarioArgs, EXIT_INTERNAL, EXIT_USAGE};
use crate::report::{print_violation, repro_line};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use marlow_scenarios::Invariant;
use marlow_sim::run::{design_name, Judged};
use marlow_sim::shrink::{shrink as search, ShrinkError, ShrinkOptions, Stop};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct ShrinkArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// The failing seed, as a run or a sweep printed it.
    #[arg(long)]
    pub seed: u64,
    /// Where to write the minimised scenario [default: SCENARIO-shrunk-SEED.toml
    /// in the current directory].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Stop searching after this much wall time and keep the smallest failure
    /// found so far.
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub time_budget_s: u64,
    /// Candidate runs at most.
    #[arg(long, value_name = "N", default_value_t = ShrinkOptions::default().max_runs,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_runs: u64,
    /// Seeds tried per candidate scenario (the current seed, then the next
    /// ones): a smaller scenario draws differently, so the failure may need
    /// another seed to show.
    #[arg(long, value_name = "N", default_value_t = ShrinkOptions::default().seeds_per_candidate,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub seeds_per_candidate: u32,
    /// Keep this invariant failing (one the seed violates, e.g. `L1`) instead
    /// of the headline violation the run prints first. A run stops at its first
    /// safety violation, so a liveness invariant can be kept only in runs where
    /// no safety violation comes first.
    #[arg(long, value_name = "INVARIANT", value_parser = parse_invariant)]
    pub invariant: Option<Invariant>,
    /// The budgets of every run of the search, as for `marlow run`.
    #[command(flatten)]
    pub budgets: BudgetArgs,
}

fn parse_invariant(text: &str) -> Result<Invariant, String> {
    Invariant::ALL
        .into_iter()
        .find(|invariant| invariant.code() == text.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown invariant `{text}`: expected one of S1 to S9, L1 to L4"))
}

#[allow(clippy::disallowed_methods)] // the time budget is wall time, outside the runs
fn deadline(budget_s: u64) -> impl Fn() -> bool {
    let started = std::time::Instant::now();
    move || started.elapsed().as_secs() < budget_s
}

pub fn shrink(args: ShrinkArgs) -> i32 {
    let Some(scenario) = load(&args.scenario) else {
        return EXIT_USAGE;
    };
    let out_path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-shrunk-{}.toml", scenario.name, args.seed)));
    // Opened before the search, so a bad path costs no search; not truncated
    // until there is something to write, so a failed search leaves a file that
    // was there as it was, and removes only one it created.
    let existed = out_path.exists();
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&out_path);
    let discard = || {
        if !existed {
            let _ = std::fs::remove_file(&out_path);
        }
    };
    let mut file = match opened {
        Ok(file) => file,
        Err(error) => {
            eprintln!("error: --out: cannot write {}: {error}", out_path.display());
            return EXIT_USAGE;
        }
    };
    let options = ShrinkOptions {
        max_runs: args.max_runs,
        seeds_per_candidate: args.seeds_per_candidate,
        invariant: args.invariant,
        run: args.budgets.run_options(args.seed),
    };
    eprintln!(
        "shrinking {} seed {} (design {}); budget {} s or {} runs",
        args.scenario.scenario,
        args.seed,
        design_name(&scenario),
        args.time_budget_s,
        args.max_runs
    );
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} runs  {msg}  [{elapsed_precise}]")
            .expect("valid progress template"),
    );
    let in_time = deadline(args.time_budget_s);
    let (result, wall) = timed(|| {
        search(&scenario, args.seed, &options, &mut |progress| {
            bar.set_position(progress.runs);
            bar.set_message(format!(
                "{} moves kept, {} commands, trying {}",
                progress.accepted, progress.best_commands, progress.pass
            ));
            in_time()
        })
    });
    bar.finish_and_clear();
    let shrunk = match result {
        Ok(shrunk) => shrunk,
        Err(error @ ShrinkError::Passes { .. }) => {
            eprintln!("error: --seed: {error}");
            discard();
            return EXIT_USAGE;
        }
        Err(error @ ShrinkError::NotViolated { .. }) => {
            eprintln!("error: {error}");
            discard();
            return EXIT_USAGE;
        }
        Err(error) => {
            eprintln!("error: {error}");
            discard();
            return EXIT_INTERNAL;
        }
    };
    let text = match shrunk.scenario.to_toml_string() {
        Ok(text) => text,
        Err(error) => {
            discard();
            eprintln!("error: the shrunk scenario does not serialise: {error}");
            return EXIT_INTERNAL;
        }
    };
    let header = format!(
        "# Shrunk by `marlow shrink {} --seed {}`: fails {} at seed {}.\n",
        args.scenario.scenario, args.seed, shrunk.invariant, shrunk.seed
    );
    let written = file
        .set_len(0)
        .and_then(|()| file.write_all(format!("{header}{text}").as_bytes()));
    if let Err(error) = written {
        eprintln!(
            "error: --out: writing {} failed: {error}",
            out_path.display()
        );
        return EXIT_USAGE;
    }
    let stop = match shrunk.stop {
        Stop::Minimal => "no smaller failing scenario among the moves",
        Stop::RunBudget => "run budget spent (--max-runs)",
        Stop::Asked => "time budget spent (--time-budget-s)",
        Stop::Rounds => "round limit reached",
    };
    out!(
        "shrunk: {} still fails at seed {} ({} candidate runs in {:.1} s; stopped: {stop})",
        shrunk.invariant,
        shrunk.seed,
        shrunk.runs,
        wall.as_secs_f64()
    );
    out!("  before  {}", shrunk.before);
    out!("  after   {}", shrunk.after);
    out!("  kept    {} moves:", shrunk.moves_kept);
    for change in &shrunk.changes {
        out!("            {change}");
    }
    let target = (shrunk.report.violations.iter())
        .find(|violation| violation.invariant == shrunk.invariant)
        .or_else(|| shrunk.report.headline());
    if let Some(violation) = target {
        print_violation(&shrunk.report, violation, &[]);
    }
    let path = out_path.display().to_string();
    out!("\nwrote {path}\nreproduce with:");
    out!(
        "  {}",
        repro_line(&path, shrunk.seed, design_name(&shrunk.scenario))
    );
    0
}
