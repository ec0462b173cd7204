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
            Verdict::Expected(why) => format!("expected: {why}"),
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
    /// The run's topics deleted at the end (empty on a mock cluster, which goes away whole).
    pub deleted_topics: Vec<String>,
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
        let rows: Vec<[String; 4]> = std::iter::once(header)
            .chain(rows)
            .map(|row| {
                let mut i = 0;
                row.map(|cell| {
                    i += 1;
                    truncate(&cell, COLUMN_MAX_CHARS[i - 1])
                })
            })
            .collect();
        let mut widths = [0; 4];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }
}

/// Observations can be long (error messages); the step and verdict columns are shown whole.
const COLUMN_MAX_CHARS: [usize; 4] = [usize::MAX, 44, 44, usize::MAX];

fn truncate(cell: &str, max_chars: usize) -> String {
    match cell.chars().count() > max_chars {
        true => {
            let kept: String = cell.chars().take(max_chars.saturating_sub(1)).collect();
            format!("{kept}…")
        }
        false => cell.to_owned(),
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
        deleted_topics: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::Outcome;

    fn values(vs: &[&str]) -> Observation {
        Observation::Values(vs.iter().map(|v| (*v).to_owned()).collect())
    }

    fn verdicts(real: Observation, listed: &[ExpectedDifference]) -> Verdict {
        let step = Step::TxnAbortHiddenReadCommitted;
        let report = compare("b", &[(step, values(&[]))], &[(step, real)], listed);
        report.steps[0].verdict.clone()
    }

    const LISTED: &[ExpectedDifference] = &[ExpectedDifference {
        step: Step::TxnAbortHiddenReadCommitted,
        why: "shows aborted records",
    }];

    #[test]
    fn an_unlisted_difference_is_unexpected_and_a_listed_one_is_not() {
        assert_eq!(verdicts(values(&[]), &[]), Verdict::Match);
        assert_eq!(verdicts(values(&["a0"]), &[]), Verdict::Unexpected);
        assert_eq!(
            verdicts(values(&["a0"]), LISTED),
            Verdict::Expected("shows aborted records")
        );
        assert_eq!(
            verdicts(values(&[]), LISTED),
            Verdict::ListedButMatched("shows aborted records")
        );
    }

    #[test]
    fn a_backend_error_is_unexpected_even_where_a_difference_is_listed() {
        let error = Observation::Error("timed out".to_owned());
        assert_eq!(verdicts(error.clone(), LISTED), Verdict::Unexpected);
        assert!(!error.agrees_with(&error));
        let step = Step::TxnAbortHiddenReadCommitted;
        let missing = compare("b", &[(step, values(&[]))], &[], LISTED);
        assert_eq!(missing.steps[0].verdict, Verdict::Unexpected);
        assert_eq!(missing.unexpected().len(), 1);
    }

    #[test]
    fn rejections_agree_whatever_their_reasons() {
        let a = Observation::Outcome(Outcome::Rejected("ProducerFenced".to_owned()));
        let b = Observation::Outcome(Outcome::Rejected("InvalidProducerEpoch".to_owned()));
        assert!(a.agrees_with(&b));
        assert!(!a.agrees_with(&Observation::Outcome(Outcome::Accepted)));
    }
}
