//! What a staging operator asks of a run with faults, read from its history in one pass:
//! each fault with its time and the time from it to the first answer a client got after
//! it (its recovery time), those times' min, median and max, the answers per second
//! before, during and after the faults, and the answers of every second, for a plot.
//!
//! Answers are `ClientOutcome` steps: their times are when a client learned the answer,
//! which real mode observes (a committed record read back after the run is not). Faults
//! are the `Fault` steps of the safety phase (the heal's restarts are not faults).

use crate::history::{HistoryEntry, Step};

/// Answers are counted per tenth of a second, for the phases' rates.
const TENTH_US: u64 = 100_000;
/// Bound on the tenths kept (a 24-hour soak).
const MAX_TENTHS: usize = 24 * 3600 * 10;
/// Bound on the faults kept (the rest are counted).
const MAX_FAULTS: usize = 10_000;

/// One fault and how long the clients went without an answer after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecovery {
    pub at_us: u64,
    pub fault: String,
    /// From the fault to the first answer after it; `None` if none came.
    pub recovery_us: Option<u64>,
}

/// Answers per second over one stretch of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub answers: u64,
    pub duration_us: u64,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        match self.duration_us {
            0 => 0.0,
            us => self.answers as f64 * 1e6 / us as f64,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecoveryReport {
    pub faults: Vec<FaultRecovery>,
    /// Faults past `MAX_FAULTS`, counted only.
    pub faults_not_kept: u64,
    /// Answers in each tenth of a second since the run's first entry.
    answers_per_tenth: Vec<u32>,
    /// When the safety phase ended (`Heal`), if it did.
    pub heal_at_us: Option<u64>,
    pub first_at_us: u64,
    pub last_at_us: u64,
    /// The first entry's time, once seen.
    first: Option<u64>,
    /// Faults before this index have their recovery.
    waiting_from: usize,
}

impl RecoveryReport {
    /// Reads the history once, in order.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a HistoryEntry>) -> Self {
        let mut report = RecoveryReport::default();
        entries.into_iter().for_each(|entry| report.observe(entry));
        report
    }

    /// Takes the history's next entry (in order).
    pub fn observe(&mut self, entry: &HistoryEntry) {
        let start = *self.first.get_or_insert(entry.at_us);
        self.first_at_us = start;
        self.last_at_us = self.last_at_us.max(entry.at_us);
        match &entry.step {
            Step::Heal => {
                self.heal_at_us.get_or_insert(entry.at_us);
            }
            Step::Fault { fault } if self.heal_at_us.is_none() => {
                if self.faults.len() < MAX_FAULTS {
                    self.faults.push(FaultRecovery {
                        at_us: entry.at_us,
                        fault: fault.clone(),
                        recovery_us: None,
                    });
                } else {
                    self.faults_not_kept += 1;
                }
            }
            Step::ClientOutcome { .. } => {
                for fault in &mut self.faults[self.waiting_from..] {
                    fault.recovery_us = Some(entry.at_us.saturating_sub(fault.at_us));
                }
                self.waiting_from = self.faults.len();
                let tenth = (entry.at_us.saturating_sub(start) / TENTH_US) as usize;
                if tenth < MAX_TENTHS {
                    if self.answers_per_tenth.len() <= tenth {
                        self.answers_per_tenth.resize(tenth + 1, 0);
                    }
                    self.answers_per_tenth[tenth] += 1;
                }
            }
            _ => {}
        }
        assert!(self.waiting_from <= self.faults.len());
    }

    /// The recovery times' (min, median, max), over the faults that recovered.
    pub fn recovery_summary_us(&self) -> Option<(u64, u64, u64)> {
        let mut times: Vec<u64> = self.faults.iter().filter_map(|f| f.recovery_us).collect();
        times.sort_unstable();
        let median = *times.get(times.len() / 2)?;
        Some((times[0], median, times[times.len() - 1]))
    }

    /// Answers per second before the first fault, from it to the last fault's recovery
    /// (or the heal), and after that up to the heal; `None` without faults.
    pub fn phases(&self) -> Option<(Rate, Rate, Rate)> {
        let first_fault = self.faults.first()?.at_us;
        let last = self.faults.last()?;
        let end = self.heal_at_us.unwrap_or(self.last_at_us);
        let recovered = last
            .at_us
            .saturating_add(last.recovery_us.unwrap_or(u64::MAX - last.at_us))
            .min(end);
        let rate = |from: u64, to: u64| Rate {
            answers: self.answers_between(from, to),
            duration_us: to.saturating_sub(from),
        };
        Some((
            rate(self.first_at_us, first_fault),
            rate(first_fault, recovered),
            rate(recovered, end),
        ))
    }

    /// The answers of each whole second since the run's first entry, for a plot.
    pub fn answers_per_second(&self) -> Vec<u64> {
        self.answers_per_tenth
            .chunks(10)
            .map(|tenths| tenths.iter().map(|&n| u64::from(n)).sum())
            .collect()
    }

    /// Answers counted in the tenths of a second that start in [from, to).
    fn answers_between(&self, from_us: u64, to_us: u64) -> u64 {
        let tenth = |us: u64| (us.saturating_sub(self.first_at_us) / TENTH_US) as usize;
        let (from, to) = (tenth(from_us), tenth(to_us));
        let to = to.min(self.answers_per_tenth.len());
        self.answers_per_tenth
            .get(from.min(to)..to)
            .map_or(0, |tenths| tenths.iter().map(|&n| u64::from(n)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;

    /// Two answers a second for 4 s, a fault at 4 s, nothing for 2 s, then answers again.
    fn story() -> RecoveryReport {
        let mut story = Story::new();
        let open = story.open_command(0, 1, 1, 100);
        let answer = Story::accepted(&open, 1);
        for second in 0..10u64 {
            if second == 4 {
                story.push(Step::Fault {
                    fault: "crash instance 0".into(),
                });
            }
            if !(4..6).contains(&second) {
                story.tell(&answer);
                story.wait_us(400_000);
                story.tell(&answer);
                story.wait_us(590_000);
            } else {
                story.wait_us(1_000_000);
            }
        }
        story.push(Step::Heal);
        RecoveryReport::from_entries(story.entries())
    }

    #[test]
    fn a_fault_recovers_at_the_first_answer_after_it_and_the_phases_show_the_dip() {
        let report = story();
        assert_eq!(report.faults.len(), 1);
        let recovery = report.faults[0].recovery_us.expect("answers came back");
        assert!((1_900_000..2_100_000).contains(&recovery), "{recovery}");
        let (min, median, max) = report.recovery_summary_us().expect("one fault");
        assert_eq!((min, median, max), (recovery, recovery, recovery));
        let (before, during, after) = report.phases().expect("a fault");
        assert!((1.7..2.3).contains(&before.per_second()), "{before:?}");
        assert!(during.per_second() < 0.6, "{during:?}");
        assert!((1.7..2.3).contains(&after.per_second()), "{after:?}");
        assert_eq!(
            report.answers_per_second()[4],
            0,
            "the second after the fault"
        );
    }

    #[test]
    fn no_faults_means_no_recovery_to_report() {
        let mut story = Story::new();
        story.push(Step::Heal);
        let report = RecoveryReport::from_entries(story.entries());
        assert_eq!(report.recovery_summary_us(), None);
        assert!(report.phases().is_none());
    }
}
