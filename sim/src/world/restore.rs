//! Restoring an instance's task stores when it is assigned partitions: from
//! each task's changelog, or under at-least-once from the task's own outputs
//! when it supports that; each restore is recorded in the history (S4).

use super::{World, APP_GROUP};
use crate::cluster::{AutoOffsetReset, FetchLimits, TopicPartition};
use marlow_model::task::InputRecord;
use marlow_model::Mark;

impl World {
    /// Makes sure every assigned partition has its task stores and a position.
    /// False if the coordinator could not say where to start.
    pub(super) fn ensure_restored(&mut self, i: usize) -> bool {
        let assignment = self.instances[i].assignment().to_vec();
        let missing: Vec<TopicPartition> = assignment
            .iter()
            .filter(|tp| !self.instances[i].positions.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            return true;
        }
        let Ok(committed) = self.cluster.committed_offsets(APP_GROUP, &missing, true) else {
            return false;
        };
        for (tp, offset) in committed {
            let start = match offset {
                Some(offset) => offset,
                None => self
                    .cluster
                    .reset_offset(
                        &tp.topic,
                        tp.partition,
                        AutoOffsetReset::Earliest,
                        self.isolation(),
                    )
                    .unwrap_or(0),
            };
            self.instances[i].positions.insert(tp.clone(), start);
            self.instances[i].committed.insert(tp.clone(), start);
            for task_index in self.instances[i].host.tasks_reading(&tp.topic) {
                let slot = (task_index, tp.partition);
                if !self.instances[i].host.has_store(slot) {
                    self.restore(i, slot);
                    let store = self.instances[i].host.store(slot);
                    let store = store.expect("a restore installs its store");
                    let mid_stream = self.restored_mid_stream(&tp, start, store);
                    self.mark_if(mid_stream, Mark::RestoreMidStream);
                }
            }
        }
        true
    }

    /// Rebuilds a task's store for a partition from the sources the host names
    /// (its changelog, or under at-least-once its own outputs when it can) and
    /// records the restore in the history (S4).
    fn restore(&mut self, i: usize, slot: (usize, u32)) {
        let (_, partition) = slot;
        let host = &self.instances[i].host;
        let mut restore = host.begin_restore(slot);
        for topic in host.restore_sources(slot.0) {
            let Some(log) = self.cluster.log(&topic, partition) else {
                continue;
            };
            let response = log.read(
                log.log_start_offset(),
                FetchLimits {
                    max_records: usize::MAX,
                    max_bytes: usize::MAX,
                },
                self.isolation(),
            );
            for record in &response.records {
                let input = InputRecord {
                    topic: &topic,
                    partition,
                    offset: record.offset,
                    key: record.key.as_deref(),
                    value: record.value.as_deref(),
                };
                host.restore_record(&mut restore, &input);
            }
        }
        let instance = self.instances[i].index;
        let step = self.instances[i].host.finish_restore(restore, instance);
        self.push_history(step);
    }
}
