//! Producers: identities (producer id + epoch), the stamp an idempotent or transactional
//! batch carries, the per-partition producer state that deduplicates retried batches and
//! rejects sequence gaps, a small client-side sequence helper for drivers, and the produce
//! path of the `Cluster`.
//!
//! Three kinds of producer, as in Kafka:
//! - plain: a batch without a stamp. A retry the network duplicated is appended twice (the
//!   caller models the retry by calling `produce` again).
//! - idempotent: `init_producer_id(None, ..)` gives a producer id at epoch 0; each batch
//!   carries per-partition sequence numbers. A repeat of one of the last five batches is
//!   acknowledged with its original offsets and not appended; a gap is
//!   `OutOfOrderSequence`.
//! - transactional: as idempotent, plus the transaction coordinator (`transactions.rs`)
//!   must have the producer's current epoch and an ongoing transaction.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use super::error::ClusterError;
use super::log::{NewRecord, ProduceAck};
use super::Cluster;

/// A broker-assigned producer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerId(pub u64);

impl fmt::Display for ProducerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "producer-{}", self.0)
    }
}

/// What `init_producer_id` returns: the id and the epoch this producer instance must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: ProducerId,
    pub epoch: u16,
}

/// The producer fields of an idempotent or transactional batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: ProducerId,
    pub epoch: u16,
    /// Sequence of the batch's first record in this partition; record `i` has
    /// `base_sequence + i`.
    pub base_sequence: u32,
    pub transactional: bool,
}

/// One produce request for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceBatch {
    /// `None` for a plain producer.
    pub stamp: Option<ProducerStamp>,
    pub records: Vec<NewRecord>,
}

impl ProduceBatch {
    /// A batch from a plain, non-idempotent producer.
    pub fn plain(records: Vec<NewRecord>) -> Self {
        ProduceBatch {
            stamp: None,
            records,
        }
    }
}

/// Client-side bookkeeping of an idempotent or transactional producer: its identity and the
/// next sequence per partition. A driver stamps each new batch with it and resends the very
/// same batch (same stamp) to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSession {
    identity: ProducerIdentity,
    transactional: bool,
    next_sequence: BTreeMap<String, Vec<u32>>,
}

impl ProducerSession {
    pub fn new(identity: ProducerIdentity, transactional: bool) -> Self {
        ProducerSession {
            identity,
            transactional,
            next_sequence: BTreeMap::new(),
        }
    }

    pub fn identity(&self) -> ProducerIdentity {
        self.identity
    }

    /// Stamps a new batch of `records` for `topic`/`partition`, reserving their sequences.
    pub fn batch(&mut self, topic: &str, partition: u32, records: Vec<NewRecord>) -> ProduceBatch {
        let count = u32::try_from(records.len()).expect("batch size fits in u32");
        let per_topic = match self.next_sequence.get_mut(topic) {
            Some(v) => v,
            None => self.next_sequence.entry(topic.to_owned()).or_default(),
        };
        let index = partition as usize;
        if per_topic.len() <= index {
            per_topic.resize(index + 1, 0);
        }
        let base_sequence = per_topic[index];
        per_topic[index] = base_sequence + count;
        ProduceBatch {
            stamp: Some(ProducerStamp {
                producer_id: self.identity.producer_id,
                epoch: self.identity.epoch,
                base_sequence,
                transactional: self.transactional,
            }),
            records,
        }
    }
}

/// How many recent batches per producer a partition remembers for deduplication: Kafka's
/// broker keeps five, matching `max.in.flight.requests.per.connection <= 5`.
pub const DEDUP_WINDOW: usize = 5;

#[derive(Debug, Clone, Copy)]
struct BatchMeta {
    first_sequence: u32,
    last_sequence: u32,
    ack: ProduceAck,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: u16,
    last_sequence: Option<u32>,
    recent: VecDeque<BatchMeta>,
}

/// The outcome of checking a stamped batch against a partition's producer state.
pub(super) enum SeqCheck {
    Append,
    Duplicate(ProduceAck),
}

/// Per-partition producer state (Kafka's `ProducerStateManager`). It survives broker
/// restarts, as Kafka's producer snapshots do.
#[derive(Debug, Clone, Default)]
pub struct ProducerStateTable {
    entries: BTreeMap<ProducerId, ProducerEntry>,
}

impl ProducerStateTable {
    pub(super) fn check(
        &self,
        stamp: &ProducerStamp,
        count: u32,
    ) -> Result<SeqCheck, ClusterError> {
        let producer_id = stamp.producer_id;
        let last = stamp
            .base_sequence
            .checked_add(count - 1)
            .ok_or(ClusterError::InvalidRecord("sequence number overflow"))?;
        let out_of_order = |expected| ClusterError::OutOfOrderSequence {
            producer_id,
            expected,
            got: stamp.base_sequence,
        };
        let Some(entry) = self.entries.get(&producer_id) else {
            // A producer new to this partition must start at sequence 0.
            return match stamp.base_sequence {
                0 => Ok(SeqCheck::Append),
                _ => Err(ClusterError::UnknownProducerId(producer_id)),
            };
        };
        if stamp.epoch < entry.epoch {
            return Err(ClusterError::InvalidProducerEpoch {
                producer_id,
                epoch: stamp.epoch,
                current_epoch: entry.epoch,
            });
        }
        if stamp.epoch > entry.epoch {
            // A new epoch restarts the sequence.
            return match stamp.base_sequence {
                0 => Ok(SeqCheck::Append),
                _ => Err(out_of_order(0)),
            };
        }
        let repeat = entry
            .recent
            .iter()
            .find(|b| b.first_sequence == stamp.base_sequence && b.last_sequence == last);
        if let Some(batch) = repeat {
            return Ok(SeqCheck::Duplicate(ProduceAck {
                duplicate: true,
                ..batch.ack
            }));
        }
        let expected = entry.last_sequence.map_or(0, |s| s + 1);
        if stamp.base_sequence != expected {
            return Err(out_of_order(expected));
        }
        Ok(SeqCheck::Append)
    }

    pub(super) fn record(&mut self, stamp: &ProducerStamp, count: u32, ack: ProduceAck) {
        let entry = self.entry(stamp.producer_id, stamp.epoch);
        assert!(
            entry.epoch <= stamp.epoch,
            "a checked batch never has an old epoch"
        );
        if stamp.epoch > entry.epoch {
            entry.epoch = stamp.epoch;
            entry.recent.clear();
        }
        let last_sequence = stamp.base_sequence + (count - 1);
        entry.last_sequence = Some(last_sequence);
        entry.recent.push_back(BatchMeta {
            first_sequence: stamp.base_sequence,
            last_sequence,
            ack,
        });
        if entry.recent.len() > DEDUP_WINDOW {
            entry.recent.pop_front();
        }
    }

    /// A transaction marker with a newer epoch (the coordinator bumped it on a timeout or a
    /// re-init) fences older epochs in this partition and restarts the sequence.
    pub(super) fn on_marker(&mut self, producer_id: ProducerId, epoch: u16) {
        let entry = self.entry(producer_id, epoch);
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.last_sequence = None;
            entry.recent.clear();
        }
    }

    fn entry(&mut self, producer_id: ProducerId, epoch: u16) -> &mut ProducerEntry {
        self.entries.entry(producer_id).or_insert(ProducerEntry {
            epoch,
            last_sequence: None,
            recent: VecDeque::new(),
        })
    }
}

impl Cluster {
    /// Appends a batch to `topic`/`partition` at virtual time `now_us` (acks=all: once this
    /// returns `Ok` the records survive a broker restart).
    ///
    /// Errors: `LeaderNotAvailable` while the broker is down; `UnknownTopicOrPartition`;
    /// `InvalidRecord` for an empty batch or a null key on a compacted topic; for stamped
    /// batches `UnknownProducerId`, `InvalidProducerEpoch`, `OutOfOrderSequence`, and for
    /// transactional ones `ProducerFenced` / `InvalidTxnState` from the coordinator. A
    /// repeated sequence returns `Ok` with `duplicate: true` and appends nothing.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: u32,
        batch: ProduceBatch,
        now_us: u64,
    ) -> Result<ProduceAck, ClusterError> {
        self.ensure_leader_up()?;
        let compacted = self.topic(topic, partition)?.config.cleanup.compacts();
        if compacted && batch.records.iter().any(|r| r.key.is_none()) {
            return Err(ClusterError::InvalidRecord("null key on a compacted topic"));
        }
        if let Some(stamp) = &batch.stamp {
            self.txns.check_produce(stamp)?;
        }
        let stamp = batch.stamp;
        let log = self.log_mut(topic, partition)?;
        let ack = log.append_batch(stamp, batch.records, now_us)?;
        if let Some(stamp) = stamp.filter(|s| s.transactional) {
            // The implicit AddPartitionsToTxn: the coordinator must write a marker here.
            self.txns.add_partition(stamp.producer_id, topic, partition);
        }
        Ok(ack)
    }
}
