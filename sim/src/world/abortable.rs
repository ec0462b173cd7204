//! An abortable transaction error that the instance survives (Kafka's
//! TRANSACTION_ABORTABLE): a produce, the offsets or the commit of a batch
//! fails while the producer and the group membership stay healthy. The host
//! aborts the transaction, undoes the batch's store writes so every task store
//! is back at its committed state, and polls again from its committed
//! positions, in the same generation, with the same producer. Without this
//! fault every abort was followed by a crash, fence or restore, so a host that
//! kept an aborted batch's store writes passed every scenario.

use super::events::{AbortStage, Choice, SimEvent};
use super::instance::PendingBatch;
use super::membership::RETRY_US;
use super::World;
use crate::history::Step;
use crate::rng::{chance, uniform_inclusive};

impl World {
    /// Whether this instance's next transaction (of `records` records) fails
    /// with an abortable error, and where. Only while faults are on.
    pub(super) fn draw_abortable(&mut self, i: usize, records: usize) -> Option<AbortStage> {
        let p = self.faults.transaction_abortable_probability;
        if self.healed || !chance(&mut self.abortable_rng, p) {
            return None;
        }
        // Each request of the transaction is equally likely to fail.
        let requests = records as u64 + 2;
        let pick = uniform_inclusive(&mut self.abortable_rng, 0, requests - 1) as usize;
        let stage = match pick {
            record if record < records => AbortStage::Produce { record },
            record if record == records => AbortStage::Offsets,
            _ => AbortStage::Commit,
        };
        let instance = self.instances[i].index;
        self.draw(Choice::AbortableError { instance, stage });
        Some(stage)
    }

    /// Aborts the batch's transaction and rolls the instance back to its last
    /// commit, keeping its membership and producer.
    pub(super) fn survive_abort(&mut self, i: usize, batch: PendingBatch) {
        let Some((identity, _)) = self.instances[i].producer.clone() else {
            return;
        };
        let tid = self.instances[i].transactional_id();
        let now = self.scheduler.now_us();
        let aborted = self.cluster.abort_transaction(&tid, identity, now);
        self.counters.aborted_transactions += 1;
        self.push_history(Step::Fault {
            fault: format!(
                "abortable transaction error on instance {}: aborted, stores rolled back to the last commit",
                self.instances[i].index
            ),
        });
        self.observe_all();
        self.roll_back(i, batch);
        if let Err(error) = aborted {
            // The abort itself failed (the transaction timed out, or the broker
            // went down meanwhile): the ordinary failure path takes over.
            return self.transaction_failed(i, error);
        }
        self.marks.hit(marlow_model::Mark::AbortSurvived);
        let incarnation = self.instances[i].incarnation;
        self.retry(
            RETRY_US,
            SimEvent::Poll {
                instance: i as u32,
                incarnation,
            },
        );
    }

    /// Undoes a batch's store writes, newest first (`Recovery::Survive`). Positions
    /// need no rewind: they advance only when a transaction commits.
    fn roll_back(&mut self, i: usize, mut pending: PendingBatch) {
        let keep_stores = !planted::skips_rollback();
        pending
            .batch
            .aborted(&mut self.instances[i].host, keep_stores);
        for tp in pending.batch.next_offsets().keys() {
            assert!(
                self.instances[i].positions.get(tp) == self.instances[i].committed.get(tp),
                "an uncommitted batch must not have moved the position of {tp:?}"
            );
        }
    }
}

/// The self-test's planted bug: a host that keeps an aborted batch's store
/// writes. Compiled only into this crate's unit tests.
mod planted {
    #[cfg(test)]
    thread_local! {
        pub static SKIP_ROLLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[cfg(test)]
    pub fn skips_rollback() -> bool {
        SKIP_ROLLBACK.with(std::cell::Cell::get)
    }

    #[cfg(not(test))]
    pub fn skips_rollback() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::planted::SKIP_ROLLBACK;
    use crate::history::Step;
    use crate::run::{run, Judged, RunOptions};
    use marlow_scenarios::{Faults, Scenario};

    /// Chaos' workload and cluster with abortable transaction errors only.
    fn aborts_only() -> Scenario {
        let mut scenario = Scenario::load_named("chaos").expect("chaos is shipped");
        scenario.faults = Faults {
            transaction_abortable_probability: 0.2,
            ..Faults::default()
        };
        scenario
    }

    fn count(report: &crate::run::RunReport, wanted: fn(&Step) -> bool) -> usize {
        report
            .history
            .entries()
            .iter()
            .filter(|e| wanted(&e.step))
            .count()
    }

    #[test]
    fn an_abortable_error_is_survived_without_rejoin_or_restore() {
        let scenario = aborts_only();
        let quiet = Scenario {
            faults: Faults::default(),
            ..scenario.clone()
        };
        let options = RunOptions::default();
        let report = run(&scenario, &options);
        let baseline = run(&quiet, &options);
        assert!(report.passed(), "{:?}", report.violations);
        let aborts = count(
            &report,
            |step| matches!(step, Step::Fault { fault } if fault.starts_with("abortable transaction error")),
        );
        assert!(aborts >= 10, "the fault fires often: {aborts}");
        assert_eq!(report.counters.aborted_transactions, aborts as u64);
        // Survived: no more restores or rebalances than the same run without it.
        let restores = |step: &Step| matches!(step, Step::Restore { .. });
        let rebalances = |step: &Step| matches!(step, Step::Rebalance { .. });
        // (Fewer is possible: a store is kept through a rebalance only when
        // nothing uncommitted is in it, and the aborts move when that is.)
        assert!(count(&report, restores) <= count(&baseline, restores));
        assert_eq!(count(&report, rebalances), count(&baseline, rebalances));
    }

    #[test]
    fn a_host_that_keeps_aborted_store_writes_is_caught() {
        let scenario = aborts_only();
        SKIP_ROLLBACK.with(|skip| skip.set(true));
        let caught = (0..5).find_map(|seed| {
            let report = run(
                &scenario,
                &RunOptions {
                    seed,
                    ..RunOptions::default()
                },
            );
            report
                .headline()
                .map(|violation| (seed, violation.invariant))
        });
        SKIP_ROLLBACK.with(|skip| skip.set(false));
        let (seed, invariant) = caught.expect("the planted bug fails within 5 seeds");
        assert!(
            !invariant.is_liveness(),
            "seed {seed}: a safety invariant catches it, not {invariant}"
        );
        println!("planted rollback skip caught at seed {seed} by {invariant}");
    }
}
