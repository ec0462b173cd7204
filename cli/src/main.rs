//! The `marlow` command line: list, run, sweep and repro over the simulator; real, soak
//! and check against a real cluster.
//! Exit codes follow docs/design.md: 0 pass, 1 internal error, 2 bad arguments or
//! scenario, 3 safety violation, 4 liveness violation, 5 determinism violation.

/// Prints a line to stdout, ignoring a closed pipe (`marlow run x | head`):
/// the exit code must still reflect the run, not a failed write.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod app;
mod bench;
mod check;
mod commands;
mod merge;
mod plot;
mod properties;
mod real;
mod report;
mod seed_line;
mod seeds;
mod shrink;
mod soak;
mod sweep;
mod timeline;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a simulated run allocates and
/// frees every record's buffers, and the allocator was about a third of its
/// profile (BENCHMARKS.md has the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "marlow",
    version,
    about = "Deterministic simulation harness for event-sourced accounts on Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the shipped scenarios with a one-line description.
    List,
    /// Run one seed of a scenario and print a summary.
    Run(commands::RunArgs),
    /// Run a range of seeds in parallel (across seeds) and summarise.
    Sweep(sweep::SweepArgs),
    /// Join the `sweep --format json` outputs of several shards (or sweeps) of one
    /// scenario into one table.
    Merge(merge::MergeArgs),
    /// Replay one seed exactly; optionally export its history or print its trace.
    Repro(commands::ReproArgs),
    /// Search for a smaller scenario that fails a seed's invariant, and write it
    /// as a scenario file `marlow run` accepts.
    Shrink(shrink::ShrinkArgs),
    /// Run a scenario against a real Kafka-protocol cluster (or `--brokers mock`).
    Real(real::RealArgs),
    /// Keep a scenario's workload running against a real cluster, with live progress and
    /// periodic checks; Ctrl-C stops cleanly and still reports.
    Soak(soak::SoakArgs),
    /// Run one app instance of a real run or soak as its own process (what
    /// `--processes` starts per instance; also for running a processor by hand next to a
    /// soak). SIGTERM leaves the group cleanly.
    App(app::AppArgs),
    /// Audit, offline, the topics of a run kept with `real --keep` or `soak --keep`.
    ///
    /// Reads them back read_committed, merges the client history the run stored in
    /// `marlow.<run id>.history`, and runs the checkers. The scenario comes from that
    /// topic's header unless `--scenario` names one. Exit codes as `marlow real`.
    Check(check::CheckArgs),
    /// Measure the simulator per CPU-second (release builds): the raw log, end-to-end
    /// runs, sweeps, each weak point's first violation, and a group workload next to
    /// real brokers.
    Bench(bench::BenchArgs),
    /// One measurement of `marlow bench`, in its own process.
    #[command(hide = true)]
    BenchChild(bench::BenchChildArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // clap uses 0 for --help/--version and 2 for usage errors, as we do.
            return ExitCode::from(error.exit_code() as u8);
        }
    };
    let code = match cli.command {
        Command::List => commands::list(),
        Command::Run(args) => commands::run(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Merge(args) => merge::merge(args),
        Command::Repro(args) => commands::repro(args),
        Command::Shrink(args) => shrink::shrink(args),
        Command::Real(args) => real::real(args),
        Command::Soak(args) => soak::soak(args),
        Command::Check(args) => check::check(args),
        Command::App(args) => app::app(args),
        Command::Bench(args) => bench::bench(args),
        Command::BenchChild(args) => bench::child(args),
    };
    ExitCode::from(code as u8)
}
