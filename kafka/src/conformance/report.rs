//! Comparing a broker's observations with the simulator's, step by step, and printing the
//! verdicts as a table.

use std::fmt::Write as _;

use super::{ExpectedDifference, Observation, Step};

/// How one step of a broker compares with the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// Differs, and the difference is in the broker's documented list.
    Expected(&'static str),
    /// Matches although the list says it differs: the list is out of date.
    ListedButMatched(&'static str),
    /// Differs and is not listed: a simulator bug or a broker bug. Fails the suite.
    Unexpected,
}

impl Verdict {
    fn label(&self) -> String {
        match self {
            Verdict::Match => "match".to_owned(),
            Verdict::Expected(why) => format!("expected difference: {why}"),
            Verdict::ListedButMatched(_) => "match (listed difference absent)".to_owned(),
            Verdict::Unexpected => "UNEXPECTED DIFFERENCE".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub step: Step,
    pub sim: Observation,
    pub broker: Observation,
    pub verdict: Verdict,
}

/// The suite's result for one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteReport {
    pub broker: String,
    pub steps: Vec<StepReport>,
}

impl SuiteReport {
    pub fn unexpected(&self) -> Vec<&StepReport> {
        let bad = |s: &&StepReport| s.verdict == Verdict::Unexpected;
        self.steps.iter().filter(bad).collect()
    }

    /// A plain-text table: step | sim | broker | verdict.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .steps
            .iter()
            .map(|s| {
                [
                    s.step.name().to_owned(),
                    s.sim.to_string(),
                    s.broker.to_string(),
                    s.verdict.label(),
                ]
            })
            .collect();
        let header = [
            "step".to_owned(),
            "sim".to_owned(),
            self.broker.clone(),
            "verdict".to_owned(),
        ];
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count()).min(60);
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{:<w$}", truncate(cell, 60)))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }
}

fn truncate(cell: &str, max_chars: usize) -> String {
    match cell.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &cell[..i.saturating_sub(1)]),
        None => cell.to_owned(),
    }
}

/// Compares step by step. A step missing on either side (a run that ended early) is an
/// unexpected difference.
pub fn compare(
    broker: &str,
    sim: &[(Step, Observation)],
    real: &[(Step, Observation)],
    expected: &[ExpectedDifference],
) -> SuiteReport {
    let mut steps = Vec::new();
    for (step, sim_obs) in sim {
        let broker_obs = real
            .iter()
            .find(|(s, _)| s == step)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| Observation::Error("step did not run".to_owned()));
        let listed = expected.iter().find(|d| d.step == *step).map(|d| d.why);
        let verdict = match (sim_obs.agrees_with(&broker_obs), listed) {
            (true, None) => Verdict::Match,
            (true, Some(why)) => Verdict::ListedButMatched(why),
            (false, Some(why)) if !matches!(broker_obs, Observation::Error(_)) => {
                Verdict::Expected(why)
            }
            (false, _) => Verdict::Unexpected,
        };
        steps.push(StepReport {
            step: *step,
            sim: sim_obs.clone(),
            broker: broker_obs,
            verdict,
        });
    }
    SuiteReport {
        broker: broker.to_owned(),
        steps,
    }
}
