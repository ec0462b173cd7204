//! The determinism self-check (`--check-determinism`): run a seed twice, each
//! time keeping the readable form of every trace step, and compare them step
//! by step. Same scenario, seed and build must give the same steps; the first
//! step that differs is named with both of its versions, which points at the
//! code that drew from something outside the seed (a wall clock, a thread rng,
//! a `HashMap`'s order).

use crate::panics::InternalFailure;
use crate::run::{run_catching, RunOptions, RunReport};
use crate::trace::{TraceHash, TraceLine};
use marlow_scenarios::Scenario;
use std::fmt;

/// Steps compared one by one; a longer run is compared on its last steps
/// (and by hash as a whole). Bounds the memory of the check.
pub const MAX_COMPARED_STEPS: usize = 2_000_000;

/// Where two runs of one seed first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub seed: u64,
    /// The index of the first differing step (0 is the first), when the
    /// compared window shows it.
    pub step: Option<u64>,
    /// That step in each run (or what happened instead: the run ended, it
    /// panicked).
    pub first: String,
    pub second: String,
    pub hashes: (Option<TraceHash>, Option<TraceHash>),
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = |h: Option<TraceHash>| h.map_or("none".to_string(), |h| h.to_string());
        write!(
            f,
            "determinism violation: seed {} ran twice to trace hashes {} and {}",
            self.seed,
            hash(self.hashes.0),
            hash(self.hashes.1)
        )?;
        match self.step {
            Some(step) => write!(f, "; the first step that differs is step {step}:")?,
            None => write!(
                f,
                "; the steps compared (the last {MAX_COMPARED_STEPS}) are the same, so the difference is earlier:"
            )?,
        }
        write!(
            f,
            "\n  first run:  {}\n  second run: {}",
            self.first, self.second
        )
    }
}

/// Runs the seed of `options` twice and compares the runs step by step. A run
/// that panics the same way twice is that seed's internal failure, not a
/// divergence.
pub fn check_determinism(
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<Result<RunReport, Divergence>, InternalFailure> {
    let options = RunOptions {
        readable_trace_lines: MAX_COMPARED_STEPS,
        trace_until_us: None,
        ..options.clone()
    };
    let first = run_catching(scenario, &options);
    let second = run_catching(scenario, &options);
    let divergence = |step, first: String, second: String, hashes| Divergence {
        seed: options.seed,
        step,
        first,
        second,
        hashes,
    };
    match (first, second) {
        (Ok(a), Ok(b)) => match compare(&a, &b) {
            None => Ok(Ok(a)),
            Some((step, first, second)) => Ok(Err(divergence(
                step,
                first,
                second,
                (Some(a.trace_hash), Some(b.trace_hash)),
            ))),
        },
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Err(a),
        (a, b) => {
            let describe = |run: &Result<RunReport, InternalFailure>| match run {
                Ok(report) => format!("ran to the end ({} steps)", report.trace_steps),
                Err(failure) => format!("panicked: {failure}"),
            };
            let hash = |run: &Result<RunReport, InternalFailure>| {
                run.as_ref().ok().map(|report| report.trace_hash)
            };
            Ok(Err(divergence(
                None,
                describe(&a),
                describe(&b),
                (hash(&a), hash(&b)),
            )))
        }
    }
}

/// The first differing step of two reports, as (index, first, second); None
/// when they are the same run.
fn compare(a: &RunReport, b: &RunReport) -> Option<(Option<u64>, String, String)> {
    if a.trace_hash == b.trace_hash && a.trace_steps == b.trace_steps {
        return None;
    }
    // The kept lines are each run's last steps: line 0 is step `offset`.
    let offset_a = a.trace_steps - a.trace_lines.len() as u64;
    let offset_b = b.trace_steps - b.trace_lines.len() as u64;
    let start = offset_a.max(offset_b);
    fn line_at(report: &RunReport, offset: u64, step: u64) -> Option<&TraceLine> {
        report.trace_lines.get(usize::try_from(step - offset).ok()?)
    }
    let end = a.trace_steps.max(b.trace_steps);
    for step in start..end {
        let (x, y) = (line_at(a, offset_a, step), line_at(b, offset_b, step));
        if x != y {
            let show = |line: Option<&TraceLine>| {
                line.map_or("(the run had ended)".to_string(), ToString::to_string)
            };
            let index = (start == 0 || step > start).then_some(step);
            return Some((index, show(x), show(y)));
        }
    }
    // Same kept lines, different hashes: the difference is before the window.
    Some((
        None,
        format!("{} steps", a.trace_steps),
        format!("{} steps", b.trace_steps),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Scenario {
        let mut scenario = Scenario::load_named("chaos").expect("chaos is shipped");
        scenario.workload.clients = 20;
        scenario.phases.safety_duration_ms = 400;
        scenario
    }

    #[test]
    fn a_seed_runs_the_same_twice() {
        let options = RunOptions {
            seed: 3,
            ..RunOptions::default()
        };
        let report = check_determinism(&small(), &options)
            .expect("no panic")
            .expect("the same steps twice");
        assert!(
            report.trace_steps > 100,
            "a real run: {}",
            report.trace_steps
        );
    }

    /// The planted bug makes every produce from step 200 on depend on a
    /// `HashMap`'s order; the first produce at or after step 200 must be named.
    #[test]
    fn a_planted_hash_map_order_is_named_at_the_first_step_it_shows() {
        let planted_from = 200;
        let options = RunOptions {
            seed: 3,
            plant_unordered_content_from_step: Some(planted_from),
            ..RunOptions::default()
        };
        let Err(divergence) = check_determinism(&small(), &options).expect("no panic") else {
            panic!("the planted nondeterminism was not caught");
        };
        // Where the first produce after the plant is, from a clean run's steps.
        let clean = crate::run::run(
            &small(),
            &RunOptions {
                seed: 3,
                readable_trace_lines: MAX_COMPARED_STEPS,
                ..RunOptions::default()
            },
        );
        let expected = clean
            .trace_lines
            .iter()
            .enumerate()
            .skip(planted_from as usize)
            .find(|(_, line)| line.text.starts_with("Produce"))
            .map(|(index, _)| index as u64)
            .expect("the run produces after step 200");
        assert_eq!(divergence.step, Some(expected), "{divergence}");
        assert!(divergence.first.contains("Produce") && divergence.second.contains("Produce"));
        assert_ne!(divergence.first, divergence.second);
        let text = divergence.to_string();
        assert!(text.contains(&format!("step {expected}")), "{text}");
    }
}
