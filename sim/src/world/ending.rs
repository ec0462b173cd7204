//! The end of a run: the quiescence check that ends it once nothing is pending,
//! and `End` itself, with the input the group left behind. (Healing at the end
//! of the safety phase is the fault source's, `faults.rs`.)

use super::events::SimEvent;
use super::{World, APP_GROUP};
use crate::history::Step;

impl World {
    /// Ends the run early once nothing is pending: no client waits, every
    /// instance has read its inputs to the end, and no transaction is open.
    pub(super) fn quiescence_check(&mut self) {
        if self.is_quiescent() {
            self.end();
        } else {
            self.scheduler
                .schedule_in(50_000, SimEvent::QuiescenceCheck);
        }
    }

    pub(super) fn end(&mut self) {
        if self.ended {
            return;
        }
        self.observe_all();
        self.record_input_left_behind();
        self.push_history(Step::End);
        self.ended = true;
    }

    /// Where the group stopped consuming each input partition it left behind
    /// its end (a stall, or a processor that halted), as real mode records it:
    /// garbage queued behind it was never read, so it is pending, not lost (S6).
    fn record_input_left_behind(&mut self) {
        let committed = self.cluster.all_committed_offsets(APP_GROUP);
        let topics: Vec<String> = self.input_partitions.keys().cloned().collect();
        for topic in topics {
            let partitions = self.cluster.partition_count(&topic).unwrap_or(0);
            for partition in 0..partitions {
                let Some(log) = self.cluster.log(&topic, partition) else {
                    continue;
                };
                let end = log.high_watermark();
                let tp = crate::cluster::TopicPartition::new(&topic, partition);
                let next_offset = committed.get(&tp).copied();
                if next_offset.unwrap_or(log.log_start_offset()) < end {
                    self.push_history(Step::InputConsumed {
                        topic: topic.clone(),
                        partition,
                        next_offset,
                    });
                }
            }
        }
    }

    /// Nothing pending: no client waits, and every input partition's committed
    /// offset has reached its end (so nothing is unprocessed or uncommitted).
    pub(super) fn is_quiescent(&self) -> bool {
        if !self.clients_idle() {
            return false;
        }
        let committed = self.cluster.all_committed_offsets(APP_GROUP);
        let inputs = &self.input_topic_names;
        inputs.iter().all(|topic| {
            let partitions = self.cluster.partition_count(topic).unwrap_or(0);
            (0..partitions).all(|partition| {
                let Some(log) = self.cluster.log(topic, partition) else {
                    return true;
                };
                let end = log.high_watermark();
                let done = committed
                    .get(&crate::cluster::TopicPartition::new(topic, partition))
                    .copied()
                    .unwrap_or(log.log_start_offset());
                done >= end
            })
        })
    }
}
