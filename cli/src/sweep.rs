//! `marlow sweep`: many seeds of one scenario, in parallel across seeds (never
//! within one run), with a progress bar, `--max-failures` / `--fail-fast`,
//! `--shard K/N` for campaigns spread over machines, and `--format json` (one
//! line per seed, see `seed_line.rs`) for post-processing and `marlow merge`.

use crate::commands::{load, timed, BudgetArgs, ScenarioArgs, EXIT_USAGE};
use crate::report::SweepTable;
use crate::seed_line::{LineContext, SeedLine};
use crate::seeds::{parse_seed_range, parse_shard, SeedDealer, SeedRange, Shard};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use marlow_sim::determinism::{check_determinism, Divergence};
use marlow_sim::panics::InternalFailure;
use marlow_sim::run::{design_name, run_catching, RunOptions, RunReport};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The summary table (and the failing seeds' repro lines).
    Text,
    /// One JSON line per seed on stdout, as seeds finish; the table goes to stderr.
    Json,
}

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Seeds to run: A..B (B excluded) or A..=B (B included), e.g. 0..1000.
    #[arg(long, value_parser = parse_seed_range, value_name = "A..B")]
    pub seeds: SeedRange,
    /// Parallel runs, at least 1 (default: the number of cores). Each run is
    /// single-threaded.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// Run every seed past its first safety violation to the scenario's end
    /// (slower; judges the scenario's required marks on failing seeds too).
    #[arg(long)]
    pub run_to_end: bool,
    /// Stop at the first failing seed (the same as --max-failures 1).
    #[arg(long, conflicts_with = "max_failures")]
    pub fail_fast: bool,
    /// Stop starting seeds once N seeds have failed (runs in flight finish).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_failures: Option<u64>,
    /// Run only the K-th of N contiguous, disjoint slices of the seed range
    /// (K counts from 1), e.g. one slice per CI-matrix job; `marlow merge`
    /// joins their `--format json` outputs.
    #[arg(long, value_parser = parse_shard, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Output: `text` (the table) or `json` (one line per seed).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run every seed twice and compare the runs step by step; a seed whose
    /// runs differ fails with the first differing step (exit 5).
    #[arg(long)]
    pub check_determinism: bool,
    #[command(flatten)]
    pub budgets: BudgetArgs,
}

pub fn sweep(args: SweepArgs) -> i32 {
    let Some(scenario) = load(&args.scenario) else {
        return EXIT_USAGE;
    };
    let design = design_name(&scenario);
    let seeds = match args.shard {
        None => args.seeds,
        Some(shard) => match args.seeds.shard(shard.index, shard.count) {
            Some(slice) => slice,
            None => {
                eprintln!(
                    "shard {}/{} of the {} seeds {} holds no seed: nothing to run",
                    shard.index,
                    shard.count,
                    args.seeds.len(),
                    args.seeds
                );
                return 0;
            }
        },
    };
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |jobs| usize::try_from(jobs).expect("at most 1024"),
    );
    let max_failures = match (args.fail_fast, args.max_failures) {
        (true, _) => Some(1),
        (false, limit) => limit,
    };
    let context = LineContext {
        scenario_arg: &args.scenario.scenario,
        scenario_name: &scenario.name,
        design,
        required_marks: scenario.check.required_marks.clone(),
    };
    let bar = ProgressBar::new(seeds.len());
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {msg}  [{elapsed_precise}, eta {eta}]",
        )
        .expect("valid progress template"),
    );
    let run_seed = |seed| {
        let options = RunOptions {
            run_to_end: args.run_to_end,
            ..args.budgets.run_options(seed)
        };
        timed(|| match args.check_determinism {
            false => run_catching(&scenario, &options).map(|report| SeedRun::Ran(Box::new(report))),
            true => check_determinism(&scenario, &options).map(|checked| match checked {
                Ok(report) => SeedRun::Ran(Box::new(report)),
                Err(divergence) => SeedRun::Diverged(divergence),
            }),
        })
    };
    let json = args.format == Format::Json;
    let plan = SweepPlan {
        seeds,
        jobs,
        max_failures,
    };
    let (table, wall) = timed(|| {
        sweep_seeds(&plan, &context, &run_seed, |table, line| {
            if json {
                // Printed under the table's lock, so lines never interleave.
                bar.suspend(|| {
                    let _ = writeln!(std::io::stdout(), "{}", line.to_json());
                });
            }
            bar.set_message(table.progress_message());
            bar.inc(1);
        })
    });
    bar.finish_and_clear();
    // With json, stdout holds only the seed lines; the table goes to stderr.
    let mut target: Box<dyn std::io::Write> = match json {
        true => Box::new(std::io::stderr()),
        false => Box::new(std::io::stdout()),
    };
    let mark_design = Some(scenario.mark_design());
    table.print(&mut target, &scenario.name, design, mark_design, wall);
    table.exit_code()
}

/// Which seeds to run, on how many threads, and when to stop.
pub struct SweepPlan {
    pub seeds: SeedRange,
    pub jobs: usize,
    pub max_failures: Option<u64>,
}

/// One seed's run: a report, or with `--check-determinism` the first step
/// where its two runs differed.
pub enum SeedRun {
    Ran(Box<RunReport>),
    Diverged(Divergence),
}

type TimedSeedRun = (Result<SeedRun, InternalFailure>, std::time::Duration);

/// Runs the seeds of `plan` on `plan.jobs` threads (parallel across seeds,
/// never within one) and gathers the results. A seed whose run panicked is a
/// failed seed like any other; the sweep goes on until `max_failures`.
/// `progress` sees each seed's line as it finishes, under the table's lock.
pub fn sweep_seeds(
    plan: &SweepPlan,
    context: &LineContext<'_>,
    run_seed: &(dyn Fn(u64) -> TimedSeedRun + Sync),
    progress: impl Fn(&SweepTable, &SeedLine) + Sync,
) -> SweepTable {
    let dealer = SeedDealer::new(plan.seeds);
    let stop = AtomicBool::new(false);
    let table = Mutex::new(SweepTable::new(&context.required_marks));
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let Some(seed) = dealer.next() else {
                        break;
                    };
                    let (result, wall) = run_seed(seed);
                    let wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
                    let line = match &result {
                        Ok(SeedRun::Ran(report)) => SeedLine::of_run(context, report, wall_ms),
                        Ok(SeedRun::Diverged(divergence)) => {
                            SeedLine::of_divergence(context, divergence, wall_ms)
                        }
                        Err(failure) => SeedLine::of_panic(context, seed, failure, wall_ms),
                    };
                    let mut table = table
                        .lock()
                        .expect("no thread panics while holding the table");
                    table.add(&line);
                    if plan
                        .max_failures
                        .is_some_and(|limit| table.failed() >= limit)
                    {
                        stop.store(true, Ordering::Relaxed);
                    }
                    progress(&table, &line);
                }
            });
        }
    });
    let mut table = table.into_inner().expect("threads are done");
    table.set_skipped(plan.seeds.len() - table.runs());
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_scenarios::Scenario;
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

    fn context() -> LineContext<'static> {
        LineContext {
            scenario_arg: "baseline",
            scenario_name: "baseline",
            design: "hardened",
            required_marks: Vec::new(),
        }
    }

    fn plan(first: u64, last: u64, max_failures: Option<u64>) -> SweepPlan {
        SweepPlan {
            seeds: SeedRange { first, last },
            jobs: 2,
            max_failures,
        }
    }

    fn planted(scenario: &Scenario, seed: u64, failing: &[u64]) -> TimedSeedRun {
        timed(|| {
            catch(|| {
                // An internal assertion that breaks on some seeds only.
                assert!(!failing.contains(&seed), "planted assertion on seed {seed}");
                SeedRun::Ran(Box::new(marlow_sim::run::run(
                    scenario,
                    &RunOptions {
                        seed,
                        ..RunOptions::default()
                    },
                )))
            })
        })
    }

    #[test]
    fn a_panicking_seed_fails_alone_and_the_sweep_goes_on() {
        let scenario = small_scenario();
        let run_seed = |seed: u64| planted(&scenario, seed, &[2]);
        let table = sweep_seeds(&plan(0, 3, None), &context(), &run_seed, |_, _| {});
        assert_eq!(table.progress_message(), "3 passed, 1 failed");
        assert_eq!(table.exit_code(), EXIT_INTERNAL);
        let line = table.failure(2).expect("seed 2 is listed");
        assert!(
            line.starts_with("internal assertion: ")
                && line.contains("planted assertion on seed 2"),
            "{line}"
        );
        assert!(line.contains("sweep.rs:"), "the location is named: {line}");
        // The same sweep without the planted assertion passes.
        let clean = sweep_seeds(
            &plan(0, 3, None),
            &context(),
            &|seed| planted(&scenario, seed, &[]),
            |_, _| {},
        );
        assert_eq!(clean.exit_code(), EXIT_PASS);
    }

    #[test]
    fn max_failures_stops_starting_seeds() {
        let scenario = small_scenario();
        // Every seed fails: with a limit of 2 and 2 jobs, at most 3 seeds run
        // (the second failure may land while a third seed is in flight).
        let every: Vec<u64> = (0..40).collect();
        let table = sweep_seeds(
            &plan(0, 39, Some(2)),
            &context(),
            &|seed| planted(&scenario, seed, &every),
            |_, _| {},
        );
        assert!(table.failed() >= 2 && table.runs() <= 3, "{}", table.runs());
        assert_eq!(table.runs() + table.skipped(), 40);
    }

    #[test]
    fn a_range_at_the_top_of_u64_ends() {
        let scenario = small_scenario();
        let top = plan(u64::MAX - 1, u64::MAX, None);
        let table = sweep_seeds(
            &top,
            &context(),
            &|seed| planted(&scenario, seed, &[]),
            |_, _| {},
        );
        assert_eq!(table.runs(), 2);
        assert_eq!(table.exit_code(), EXIT_PASS);
    }
}
