//! Reads what became visible on the output topics (read_committed, as any
//! downstream consumer would) into the history. Which record answers a waiting
//! client is the harness's rule (`observe::client_answer`: in the seed design,
//! which has no outcome records, a command's first event); handing the answer
//! over is the clients' side (`atm.rs`, `deliver_outcome`).

use super::World;
use crate::cluster::{FetchLimits, Isolation};
use crate::history::{CommittedRecord, Step};
use marlow_harness::observe::{client_answer, observe};
use std::collections::{BTreeMap, BTreeSet};

const FETCH_LIMITS: FetchLimits = FetchLimits {
    max_records: 10_000,
    max_bytes: 64 << 20,
};

pub struct Observer {
    /// The topics whose records enter the history: the design's own list.
    topics: &'static [&'static str],
    /// Next offset to read per output partition.
    cursors: BTreeMap<(&'static str, u32), u64>,
    /// Partitions that may have new visible records.
    dirty: BTreeSet<(&'static str, u32)>,
}

impl Observer {
    pub fn new(design: &marlow_model::DesignConfig) -> Observer {
        Observer {
            topics: design.observed_topics(),
            cursors: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn mark(&mut self, topic: &str, partition: u32) {
        if let Some(name) = self.topics.iter().find(|name| **name == topic) {
            self.dirty.insert((name, partition));
        }
    }
}

impl World {
    /// Reads every output partition (after aborts, faults, and at the end).
    pub(crate) fn observe_all(&mut self) {
        for topic in self.observer.topics {
            let partitions = self.cluster.partition_count(topic).unwrap_or(0);
            (0..partitions).for_each(|partition| self.observer.mark(topic, partition));
        }
        self.observe_dirty();
    }

    pub(crate) fn observe_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.observer.dirty);
        for (topic, partition) in dirty {
            self.observe_partition(topic, partition);
        }
    }

    fn observe_partition(&mut self, topic: &'static str, partition: u32) {
        let mut offset = *self.observer.cursors.get(&(topic, partition)).unwrap_or(&0);
        loop {
            let Some(log) = self.cluster.log(topic, partition) else {
                return;
            };
            // The observer audits the log itself, so a broker outage does not hide records.
            let response = log.read(offset, FETCH_LIMITS, Isolation::ReadCommitted);
            let aborted: Vec<(u64, CommittedRecord)> = log
                .aborted_records_in(offset, response.next_offset)
                .into_iter()
                .filter_map(|record| {
                    observe(topic, record.value.as_deref()).map(|kind| (record.offset, kind))
                })
                .collect();
            if response.records.is_empty() {
                aborted
                    .into_iter()
                    .for_each(|(at, kind)| self.record_aborted(topic, partition, at, kind));
                offset = offset.max(response.next_offset);
                break;
            }
            let mut aborted = aborted.into_iter().peekable();
            for record in &response.records {
                while let Some((at, kind)) = aborted.next_if(|(at, _)| *at < record.offset) {
                    self.record_aborted(topic, partition, at, kind);
                }
                let value = record.value.as_deref();
                if let Some(committed) = observe(topic, value) {
                    self.record_committed(topic, partition, record.offset, committed);
                }
            }
            aborted.for_each(|(at, kind)| self.record_aborted(topic, partition, at, kind));
            offset = response.next_offset;
        }
        self.observer.cursors.insert((topic, partition), offset);
    }

    fn record_committed(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
        record: CommittedRecord,
    ) {
        let answer = client_answer(&self.design, &record);
        self.push_history(Step::Committed {
            topic: topic.to_string(),
            partition,
            offset,
            record,
        });
        if let Some(outcome) = answer {
            self.deliver_outcome(outcome);
        }
    }

    fn record_aborted(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
        record: CommittedRecord,
    ) {
        self.push_history(Step::Aborted {
            topic: topic.to_string(),
            partition,
            offset,
            record,
        });
    }
}
