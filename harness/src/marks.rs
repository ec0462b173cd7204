//! Counting coverage marks: `MarkCounts` for one run (the world bumps it where
//! a mark is hit, and adds the marks its tasks report), `MarkTally` across the
//! seeds of a sweep (per mark, how often and on how many seeds), and which of a
//! scenario's required marks a sweep never reached. Counting touches no rng
//! and no trace, so marks never move a trace hash.

use marlow_model::Mark;
use std::collections::BTreeMap;

/// How often each mark was hit in one run. Marks never hit are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkCounts {
    counts: BTreeMap<Mark, u64>,
}

impl MarkCounts {
    pub fn hit(&mut self, mark: Mark) {
        self.hit_n(mark, 1);
    }

    /// Counts `times` hits at once (a tick that timed out several transactions).
    pub fn hit_n(&mut self, mark: Mark, times: u64) {
        if times > 0 {
            let count = self.counts.entry(mark).or_default();
            *count = count.saturating_add(times);
        }
    }

    pub fn count(&self, mark: Mark) -> u64 {
        self.counts.get(&mark).copied().unwrap_or(0)
    }

    /// The marks hit, with their counts, in `Mark` order.
    pub fn iter(&self) -> impl Iterator<Item = (Mark, u64)> + '_ {
        self.counts.iter().map(|(mark, count)| (*mark, *count))
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// One line, `name=count` for each mark hit, for a run's summary.
    pub fn compact(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .map(|(mark, count)| format!("{mark}={count}"))
            .collect();
        parts.join(" ")
    }
}

/// Per mark, across the seeds of a sweep: the total count and the seeds that hit it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkTally {
    by_mark: BTreeMap<Mark, MarkTotal>,
    runs: u64,
    /// Runs that reached their end; a run stopped at its first safety
    /// violation may not have come to the marks it would have reached.
    full_runs: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarkTotal {
    pub count: u64,
    pub seeds: u64,
}

impl MarkTally {
    /// Adds one run's marks; `ran_to_end` unless it stopped at a violation.
    pub fn add(&mut self, run: &MarkCounts, ran_to_end: bool) {
        self.runs += 1;
        self.full_runs += u64::from(ran_to_end);
        for (mark, count) in run.iter() {
            let total = self.by_mark.entry(mark).or_default();
            total.count = total.count.saturating_add(count);
            total.seeds += 1;
        }
    }

    pub fn runs(&self) -> u64 {
        self.runs
    }

    pub fn total(&self, mark: Mark) -> MarkTotal {
        self.by_mark.get(&mark).copied().unwrap_or_default()
    }

    /// The marks hit by at least one seed, in `Mark` order.
    pub fn iter(&self) -> impl Iterator<Item = (Mark, MarkTotal)> + '_ {
        self.by_mark.iter().map(|(mark, total)| (*mark, *total))
    }

    /// Whether a missing mark says anything: some run went to its end.
    pub fn judged(&self) -> bool {
        self.full_runs > 0
    }

    /// The required marks no seed reached, in the order given; none when every
    /// run stopped early (unjudged, see `judged`).
    pub fn missing(&self, required: &[Mark]) -> Vec<Mark> {
        if !self.judged() {
            return Vec::new();
        }
        required
            .iter()
            .copied()
            .filter(|mark| self.total(*mark).seeds == 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_hits_and_seeds_and_names_what_is_missing() {
        let mut first = MarkCounts::default();
        first.hit(Mark::DedupHit);
        first.hit_n(Mark::DedupHit, 2);
        first.hit_n(Mark::Reenqueue, 0);
        let mut second = MarkCounts::default();
        second.hit(Mark::DedupHit);
        second.hit(Mark::ZombieFenced);
        assert_eq!(first.count(Mark::DedupHit), 3);
        assert_eq!(first.compact(), "dedup_hit=3");
        let mut tally = MarkTally::default();
        tally.add(&first, true);
        tally.add(&second, true);
        tally.add(&MarkCounts::default(), true);
        assert_eq!(tally.runs(), 3);
        assert_eq!(
            tally.total(Mark::DedupHit),
            MarkTotal { count: 4, seeds: 2 }
        );
        assert_eq!(
            tally.total(Mark::ZombieFenced),
            MarkTotal { count: 1, seeds: 1 }
        );
        let required = [Mark::Reenqueue, Mark::ZombieFenced, Mark::AbortSurvived];
        assert_eq!(
            tally.missing(&required),
            vec![Mark::Reenqueue, Mark::AbortSurvived]
        );
    }

    #[test]
    fn runs_that_all_stopped_early_leave_required_marks_unjudged() {
        let mut tally = MarkTally::default();
        tally.add(&MarkCounts::default(), false);
        assert!(!tally.judged());
        assert!(tally.missing(&[Mark::Reenqueue]).is_empty());
        tally.add(&MarkCounts::default(), true);
        assert_eq!(tally.missing(&[Mark::Reenqueue]), vec![Mark::Reenqueue]);
    }
}
