//! Restoring an instance's task stores when it is assigned partitions: from
//! each task's changelog, or under at-least-once from the task's own outputs
//! when it supports that; each restore is recorded in the history (S4).

use super::instance::{tasks_reading, TaskSlot};
use super::{World, APP_GROUP};
use crate::cluster::{AutoOffsetReset, FetchLimits, TopicPartition};
use crate::history::Step;
use marlow_model::task::{changelog_topic, InputRecord, KvStore};
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
            for task_index in tasks_reading(&self.tasks, &tp.topic) {
                if !self.instances[i]
                    .slots
                    .contains_key(&(task_index, tp.partition))
                {
                    let store = self.restore(i, task_index, tp.partition);
                    self.mark_if(
                        self.restored_mid_stream(&tp, start, &store),
                        Mark::RestoreMidStream,
                    );
                    let slot = TaskSlot {
                        task_index,
                        partition: tp.partition,
                        store,
                    };
                    self.instances[i]
                        .slots
                        .insert((task_index, tp.partition), slot);
                }
            }
        }
        true
    }

    /// Rebuilds a task's store for a partition: from its changelog, or under
    /// at-least-once from its own outputs when the task supports that.
    fn restore(&mut self, i: usize, task_index: usize, partition: u32) -> KvStore {
        let task = &self.tasks[task_index];
        let mut store = KvStore::new();
        let mut replayed = 0u64;
        let from_outputs = !self.exactly_once() && !task.rebuild_topics().is_empty();
        let changelog = changelog_topic(task.as_ref());
        let sources: Vec<&str> = if from_outputs {
            task.rebuild_topics().to_vec()
        } else {
            vec![changelog.as_str()]
        };
        for topic in sources {
            let Some(log) = self.cluster.log(topic, partition) else {
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
                replayed += 1;
                if from_outputs {
                    let input = InputRecord {
                        topic,
                        partition,
                        offset: record.offset,
                        key: record.key.as_deref(),
                        value: record.value.as_deref(),
                    };
                    task.rebuild_from_output(&mut store, &input);
                } else if let Some(key) = &record.key {
                    store.apply(&marlow_model::task::StoreWrite {
                        key: key.to_vec(),
                        value: record.value.as_ref().map(|value| value.to_vec()),
                    });
                }
            }
        }
        self.counters.restores += 1;
        let accounts = super::restored_accounts(&store);
        self.push_history(Step::Restore {
            instance: self.instances[i].index,
            task: task.name().to_string(),
            partition,
            records_replayed: replayed,
            accounts,
        });
        store
    }
}
