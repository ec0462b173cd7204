//! Failing closed. The hardened design must never give a wrong answer: when
//! its input topic is repartitioned under it, keys move to partitions whose
//! stores never held their accounts, so it would validate commands against
//! empty state. Its host notices that the input's partition count differs
//! from the one its stores were built for and stops processing for good
//! (nothing more is committed), recording why; the run then ends with a
//! liveness verdict that names the cause. The seed design keeps going (W3).

use super::World;
use crate::history::Step;

impl World {
    /// Whether instance `i` must not process: it halted before, or it halts
    /// now because an input topic was repartitioned under its design.
    pub(super) fn halts(&mut self, i: usize) -> bool {
        if self.instances[i].halted.is_some() {
            return true;
        }
        if !self.design.fails_closed_on_repartition() {
            return false;
        }
        let Some(reason) = self.repartitioned_input() else {
            return false;
        };
        assert!(
            self.instances[i].in_flight.is_none(),
            "an instance halts between batches, never with one in flight"
        );
        self.instances[i].halted = Some(reason.clone());
        let instance = self.instances[i].index;
        self.push_history(Step::Halted { instance, reason });
        true
    }

    /// The first input topic whose partition count is not the one the task
    /// stores were built for, described.
    fn repartitioned_input(&self) -> Option<String> {
        self.input_partitions.iter().find_map(|(topic, built_for)| {
            let now = self.cluster.partition_count(topic)?;
            (now != *built_for).then(|| {
                format!(
                    "{topic} grew from {built_for} to {now} partitions; the processor halted \
                     rather than answer commands from stores built for {built_for} partitions"
                )
            })
        })
    }
}
