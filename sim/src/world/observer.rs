//! Reads what became visible on the output topics (read_committed, as any
//! downstream consumer would) into the history, and routes outcomes to the
//! clients waiting for them. In the seed design, which has no outcome records,
//! a client learns of an acceptance from its command's first event.

use super::World;
use crate::cluster::{FetchLimits, Isolation};
use crate::history::{CommittedRecord, Step};
use marlow_model::codec::{decode, DecodeError};
use marlow_model::task::seed::IndexedCommand;
use marlow_model::task::topics;
use marlow_model::{Alarm, DeadLetter, Event, Outcome, OutcomeResult};
use std::collections::{BTreeMap, BTreeSet};

/// The topics whose records enter the history.
pub const OUTPUT_TOPICS: [&str; 5] = [
    topics::EVENTS,
    topics::OUTCOMES,
    topics::ALARMS,
    topics::DEAD_LETTER,
    topics::COMMANDS_INDEXED,
];

const FETCH_LIMITS: FetchLimits = FetchLimits {
    max_records: 10_000,
    max_bytes: 64 << 20,
};

#[derive(Default)]
pub struct Observer {
    /// Next offset to read per output partition.
    cursors: BTreeMap<(&'static str, u32), u64>,
    /// Partitions that may have new visible records.
    dirty: BTreeSet<(&'static str, u32)>,
}

impl Observer {
    pub fn mark(&mut self, topic: &str, partition: u32) {
        if let Some(name) = OUTPUT_TOPICS.iter().find(|name| **name == topic) {
            self.dirty.insert((name, partition));
        }
    }
}

impl World {
    /// Reads every output partition (after aborts, faults, and at the end).
    pub(crate) fn observe_all(&mut self) {
        for topic in OUTPUT_TOPICS {
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
                    classify(topic, record.value.as_deref()).map(|kind| (record.offset, kind))
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
                if let Some(committed) = classify(topic, value) {
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
        let delivery = match &record {
            CommittedRecord::Outcome(outcome) => Some(outcome.clone()),
            CommittedRecord::Event(event) if !self.design_has_outcomes() => Some(Outcome {
                command: event.command,
                account: event.account,
                result: OutcomeResult::Accepted {
                    version: event.version,
                },
            }),
            _ => None,
        };
        match &record {
            CommittedRecord::Outcome(outcome) => match outcome.result {
                OutcomeResult::Accepted { .. } => self.counters.accepted += 1,
                OutcomeResult::Rejected { .. } => self.counters.rejected += 1,
            },
            CommittedRecord::Event(_) if !self.design_has_outcomes() => self.counters.accepted += 1,
            CommittedRecord::Alarm(_) => self.counters.alarms += 1,
            CommittedRecord::DeadLetter(_) => self.counters.dead_letters += 1,
            _ => {}
        }
        self.push_history(Step::Committed {
            topic: topic.to_string(),
            partition,
            offset,
            record,
        });
        if let Some(outcome) = delivery {
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

    fn design_has_outcomes(&self) -> bool {
        matches!(
            self.scenario.design_config(),
            marlow_model::DesignConfig::Hardened(_)
        )
    }
}

/// Decodes an output record into what the history keeps; `None` for records
/// not worth an entry (a command's first indexing).
fn classify(topic: &str, value: Option<&[u8]>) -> Option<CommittedRecord> {
    let other = |error: DecodeError| CommittedRecord::Other {
        message_kind: format!("undecodable: {error}"),
    };
    let Some(bytes) = value else {
        return Some(CommittedRecord::Other {
            message_kind: "tombstone".into(),
        });
    };
    Some(match topic {
        topics::EVENTS => match decode::<Event>(bytes) {
            Ok(event) => CommittedRecord::Event(event),
            Err(DecodeError::WrongKind { found, .. }) => CommittedRecord::Other {
                message_kind: found,
            },
            Err(error) => other(error),
        },
        topics::OUTCOMES => decode::<Outcome>(bytes).map_or_else(other, CommittedRecord::Outcome),
        topics::ALARMS => decode::<Alarm>(bytes).map_or_else(other, CommittedRecord::Alarm),
        topics::DEAD_LETTER => {
            decode::<DeadLetter>(bytes).map_or_else(other, CommittedRecord::DeadLetter)
        }
        topics::COMMANDS_INDEXED => match decode::<IndexedCommand>(bytes) {
            Ok(indexed) if indexed.reenqueues > 0 => CommittedRecord::Reenqueue {
                command: indexed.command.id,
            },
            Ok(_) => return None,
            Err(error) => other(error),
        },
        _ => return None,
    })
}
