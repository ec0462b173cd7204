//! One seed's result as one JSON line (`sweep --format json`), the unit that
//! sweeps, shards and `marlow merge` exchange. A line carries what its table
//! needs (verdict, invariants, marks, required marks, repro), so that shards
//! merged make the same table as one sweep.

use crate::commands::EXIT_DETERMINISM;
use crate::report::repro_line;
use marlow_model::Mark;
use marlow_sim::determinism::Divergence;
use marlow_sim::panics::InternalFailure;
use marlow_sim::run::{Judged, RunReport, EXIT_INTERNAL, EXIT_LIVENESS, EXIT_PASS, EXIT_SAFETY};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedLine {
    pub scenario: String,
    pub design: String,
    pub seed: u64,
    /// `pass`, `safety`, `liveness` or `internal` (the run panicked).
    pub verdict: String,
    pub exit_code: i32,
    /// The headline violation's code (`S2`), if any.
    pub invariant: Option<String>,
    /// The headline violation's message, or the panic's.
    pub message: Option<String>,
    /// Every invariant violated, by code, in history order.
    pub invariants: Vec<String>,
    /// Absent for a run that panicked.
    pub trace_hash: Option<String>,
    pub trace_steps: u64,
    pub simulated_us: u64,
    /// The run stopped at its first safety violation (marks not judged).
    pub stopped_early: bool,
    pub marks: BTreeMap<Mark, u64>,
    /// The scenario's `check.required_marks`, judged over the whole sweep.
    pub required_marks: Vec<Mark>,
    /// The options this seed drew (swarm testing), as name and value.
    pub options: BTreeMap<String, String>,
    pub repro: String,
    /// Host time of the run: the one field that differs between two runs of a seed.
    pub wall_ms: u64,
}

/// What the sweep knows of the scenario when it turns a run into a line.
pub struct LineContext<'a> {
    pub scenario_arg: &'a str,
    pub scenario_name: &'a str,
    pub design: &'a str,
    pub required_marks: Vec<Mark>,
}

impl SeedLine {
    pub fn of_run(context: &LineContext<'_>, report: &RunReport, wall_ms: u64) -> SeedLine {
        let exit_code = report.exit_code();
        let verdict = match exit_code {
            EXIT_PASS => "pass",
            EXIT_SAFETY => "safety",
            EXIT_LIVENESS => "liveness",
            _ => "internal",
        };
        let headline = report.headline();
        SeedLine {
            scenario: context.scenario_name.to_string(),
            design: context.design.to_string(),
            seed: report.seed,
            verdict: verdict.to_string(),
            exit_code,
            invariant: headline.map(|v| v.invariant.code().to_string()),
            message: headline.map(|v| v.message.clone()),
            invariants: report
                .violations
                .iter()
                .map(|v| v.invariant.code().to_string())
                .collect(),
            trace_hash: Some(report.trace_hash.to_string()),
            trace_steps: report.trace_steps,
            simulated_us: report.simulated_us,
            stopped_early: report.stopped_early,
            marks: report.marks.iter().collect(),
            required_marks: context.required_marks.clone(),
            options: report.options.iter().cloned().collect(),
            repro: repro_line(context.scenario_arg, report.seed, context.design),
            wall_ms,
        }
    }

    pub fn of_panic(
        context: &LineContext<'_>,
        seed: u64,
        failure: &InternalFailure,
        wall_ms: u64,
    ) -> SeedLine {
        let message = failure.to_string();
        SeedLine::without_run(
            context,
            seed,
            ("internal", EXIT_INTERNAL),
            message,
            None,
            wall_ms,
        )
    }

    /// A seed that ran differently twice (`--check-determinism`): exit 5.
    pub fn of_divergence(
        context: &LineContext<'_>,
        divergence: &Divergence,
        wall_ms: u64,
    ) -> SeedLine {
        let hash = divergence.hashes.0.map(|hash| hash.to_string());
        let (seed, message) = (divergence.seed, divergence.to_string());
        SeedLine::without_run(
            context,
            seed,
            ("determinism", EXIT_DETERMINISM),
            message,
            hash,
            wall_ms,
        )
    }

    /// A seed with no run report to show (it panicked, or ran two ways):
    /// its verdict and exit code, and what went wrong.
    fn without_run(
        context: &LineContext<'_>,
        seed: u64,
        (verdict, exit_code): (&str, i32),
        message: String,
        trace_hash: Option<String>,
        wall_ms: u64,
    ) -> SeedLine {
        SeedLine {
            scenario: context.scenario_name.to_string(),
            design: context.design.to_string(),
            seed,
            verdict: verdict.to_string(),
            exit_code,
            invariant: None,
            message: Some(message),
            invariants: Vec::new(),
            trace_hash,
            trace_steps: 0,
            simulated_us: 0,
            stopped_early: false,
            marks: BTreeMap::new(),
            required_marks: context.required_marks.clone(),
            options: BTreeMap::new(),
            repro: repro_line(context.scenario_arg, seed, context.design),
            wall_ms,
        }
    }

    pub fn passed(&self) -> bool {
        self.exit_code == EXIT_PASS
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a seed line is plain data")
    }
}
