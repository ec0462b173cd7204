//! The broker's housekeeping as the history sees it: retention and compaction
//! delete records, and each deletion becomes a `Removed` entry naming the
//! partition, the cause and the offsets, so that an offline audit can tell a
//! record the broker deleted from one the processor lost.

use super::World;
use crate::history::{RemovalCause, Step};

/// One partition's stored extent: (log start offset, stored records).
type Extent = (u64, usize);

impl World {
    /// Runs retention on every topic and records what it deleted.
    pub(super) fn run_retention_recorded(&mut self, now_us: u64) {
        let before = self.extents();
        let removed = self.cluster.run_retention(now_us);
        if removed == 0 {
            return;
        }
        let mut recorded = 0;
        for ((topic, partition), (start_before, len_before)) in before {
            let Some(log) = self.cluster.log(&topic, partition) else {
                continue;
            };
            let (start_after, len_after) = (log.log_start_offset(), log.len());
            if len_after >= len_before {
                continue;
            }
            assert!(start_after > start_before, "retention deletes a prefix");
            let records = (len_before - len_after) as u64;
            recorded += records;
            self.push_history(Step::Removed {
                topic,
                partition,
                cause: RemovalCause::Retention,
                first_offset: start_before,
                last_offset: start_after - 1,
                records,
            });
        }
        assert_eq!(recorded, removed as u64, "every deleted record is recorded");
    }

    /// Runs one compaction pass on a partition, records what it deleted and
    /// returns how many records that was.
    pub(super) fn run_cleaner_recorded(
        &mut self,
        topic: &str,
        partition: u32,
        now_us: u64,
    ) -> usize {
        let offsets_before: Vec<u64> = match self.cluster.log(topic, partition) {
            Some(log) => log.records().map(|record| record.offset).collect(),
            None => return 0,
        };
        let removed = self
            .cluster
            .run_cleaner(topic, partition, now_us)
            .unwrap_or(0);
        if removed == 0 {
            return 0;
        }
        let Some(log) = self.cluster.log(topic, partition) else {
            return removed;
        };
        let kept: std::collections::BTreeSet<u64> = log.records().map(|r| r.offset).collect();
        let gone: Vec<u64> = offsets_before
            .into_iter()
            .filter(|offset| !kept.contains(offset))
            .collect();
        assert_eq!(gone.len(), removed, "the cleaner's count matches the log");
        let (Some(first), Some(last)) = (gone.first(), gone.last()) else {
            return removed;
        };
        self.push_history(Step::Removed {
            topic: topic.to_string(),
            partition,
            cause: RemovalCause::Compaction,
            first_offset: *first,
            last_offset: *last,
            records: gone.len() as u64,
        });
        removed
    }

    /// Every partition's stored extent, for the topics with a retention limit.
    fn extents(&self) -> Vec<((String, u32), Extent)> {
        let mut out = Vec::new();
        for topic in self.cluster.topic_names() {
            let retained = self
                .cluster
                .topic_config(topic)
                .is_some_and(|config| config.retention_ms.is_some());
            if !retained {
                continue;
            }
            let partitions = self.cluster.partition_count(topic).unwrap_or(0);
            for partition in 0..partitions {
                if let Some(log) = self.cluster.log(topic, partition) {
                    out.push((
                        (topic.to_string(), partition),
                        (log.log_start_offset(), log.len()),
                    ));
                }
            }
        }
        out
    }
}
