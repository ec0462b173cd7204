//! One partition's log: the records (data and transaction control markers) with their
//! offsets, the log start offset, the high watermark and the last stable offset, the index of
//! aborted transactions that read_committed fetches filter with, and the per-partition
//! producer state that makes idempotent appends exactly-once.
//!
//! The log is segment-free. Retention and compaction (in `cleaner.rs`) only ever remove
//! records; offsets are assigned once, at append, and never change, so compaction leaves gaps
//! exactly as Kafka's cleaner does.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::error::ClusterError;
use super::producer::{ProducerId, ProducerStamp, ProducerStateTable, SeqCheck};

/// The kind of a transaction control record (Kafka's COMMIT and ABORT markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ControlKind {
    Commit,
    Abort,
}

/// Which producer wrote a record, as carried in Kafka's record batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerMeta {
    pub producer_id: ProducerId,
    pub epoch: u16,
    /// The record's sequence number; `None` for control markers, which Kafka writes with
    /// no sequence.
    pub sequence: Option<u32>,
    pub transactional: bool,
}

/// A record as stored in the log and handed out by fetches. Key, value and header values are
/// `Bytes`, so handing a record out clones reference counts, not data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    /// The broker's append time in virtual microseconds (LogAppendTime). Retention measures
    /// age by it, so timestamps never decrease along a partition.
    pub timestamp_us: u64,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
    /// `None` for records from a plain (non-idempotent) producer.
    pub producer: Option<ProducerMeta>,
    /// `Some` for a transaction marker; markers have no key or value and are never returned
    /// by fetches, but they occupy an offset.
    pub control: Option<ControlKind>,
}

impl Record {
    pub fn is_control(&self) -> bool {
        self.control.is_some()
    }

    /// A data record written inside a transaction.
    pub fn is_transactional_data(&self) -> bool {
        self.control.is_none() && self.producer.is_some_and(|p| p.transactional)
    }

    /// The size counted against a fetch's `max_bytes`: key, value and headers.
    pub fn size_bytes(&self) -> usize {
        let key = self.key.as_ref().map_or(0, Bytes::len);
        let value = self.value.as_ref().map_or(0, Bytes::len);
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        key + value + headers
    }
}

/// A record as a producer sends it; the broker assigns offset and timestamp.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
}

impl NewRecord {
    pub fn new(key: Option<Bytes>, value: Option<Bytes>) -> Self {
        NewRecord {
            key,
            value,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: Bytes) -> Self {
        self.headers.push((name.to_owned(), value));
        self
    }
}

/// An aborted transaction's range in one partition: data records of `producer_id` with
/// offsets in `first_offset..last_offset` are aborted; `last_offset` is the ABORT marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: ProducerId,
    pub first_offset: u64,
    pub last_offset: u64,
}

impl AbortedTxn {
    fn covers(&self, record: &Record) -> bool {
        record.is_transactional_data()
            && record
                .producer
                .is_some_and(|p| p.producer_id == self.producer_id)
            && self.first_offset <= record.offset
            && record.offset < self.last_offset
    }
}

/// Whether any of `candidates` marks `record` as aborted.
pub(super) fn is_aborted(candidates: &[AbortedTxn], record: &Record) -> bool {
    record.is_transactional_data() && candidates.iter().any(|a| a.covers(record))
}

/// The broker's answer to a produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    pub base_offset: u64,
    /// Offset of the batch's last record (inclusive).
    pub last_offset: u64,
    pub timestamp_us: u64,
    /// The batch repeated an already-appended sequence: nothing was appended and the
    /// offsets are those of the original append (Kafka's DUPLICATE_SEQUENCE_NUMBER).
    pub duplicate: bool,
}

/// One partition's log. Single broker with acks=all: the high watermark is the log end.
#[derive(Debug, Clone, Default)]
pub struct PartitionLog {
    pub(super) records: VecDeque<Record>,
    pub(super) log_start_offset: u64,
    /// The offset the next append gets: log end offset and high watermark.
    pub(super) next_offset: u64,
    pub(super) last_append_us: u64,
    /// Producer id -> first offset of its open transaction in this partition.
    pub(super) open_txns: BTreeMap<ProducerId, u64>,
    /// Aborted transactions, ordered by their marker offset (markers are appended in order).
    pub(super) aborted: VecDeque<AbortedTxn>,
    pub(super) producers: ProducerStateTable,
}

impl PartitionLog {
    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }

    /// One past the last appended offset (single replica: log end offset = high watermark).
    pub fn high_watermark(&self) -> u64 {
        self.next_offset
    }

    /// The first offset of the earliest open transaction, or the high watermark if none is
    /// open. read_committed consumers read strictly below it.
    pub fn last_stable_offset(&self) -> u64 {
        let first_open = self.open_txns.values().copied().min();
        let lso = first_open.map_or(self.next_offset, |o| o.max(self.log_start_offset));
        assert!(
            lso <= self.next_offset,
            "LSO {lso} above HW {}",
            self.next_offset
        );
        lso
    }

    /// Every stored record, data and control, in offset order (a checker's view).
    pub fn records(&self) -> impl Iterator<Item = &Record> + '_ {
        self.records.iter()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Aborted transaction ranges still relevant to the stored records.
    pub fn aborted_transactions(&self) -> impl Iterator<Item = &AbortedTxn> + '_ {
        self.aborted.iter()
    }

    /// The data records with offsets in `from..to` that an aborted transaction wrote, in
    /// offset order: what read_committed readers of that range skipped.
    pub fn aborted_records_in(&self, from: u64, to: u64) -> Vec<&Record> {
        if from >= to {
            return Vec::new();
        }
        let candidates = self.aborted_overlapping(from, to);
        if candidates.is_empty() {
            return Vec::new();
        }
        self.records
            .range(self.index_of(from)..)
            .take_while(|record| record.offset < to)
            .filter(|record| is_aborted(&candidates, record))
            .collect()
    }

    /// Producers with an open transaction here, with the first offset of each.
    pub fn open_transactions(&self) -> impl Iterator<Item = (ProducerId, u64)> + '_ {
        self.open_txns.iter().map(|(p, o)| (*p, *o))
    }

    /// Index of the first stored record with an offset at or above `offset`.
    pub(super) fn index_of(&self, offset: u64) -> usize {
        // Without compaction gaps the record sits at `offset - first`; try that first so the
        // common fetch costs no search.
        // Offsets only grow by at least one per stored record, so the record
        // sits at or before `offset - first` (transaction markers and compaction
        // take offsets without stored records): search only up to there.
        let mut bound = self.records.len();
        if let Some(first) = self.records.front() {
            if let Some(guess) = offset.checked_sub(first.offset) {
                let guess = usize::try_from(guess).unwrap_or(usize::MAX);
                if self.records.get(guess).is_some_and(|r| r.offset == offset) {
                    return guess;
                }
                bound = bound.min(guess.saturating_add(1));
            } else {
                return 0;
            }
        }
        let (front, back) = self.records.as_slices();
        let index = if back.is_empty() || bound <= front.len() {
            front[..bound.min(front.len())].partition_point(|r| r.offset < offset)
        } else {
            self.records.partition_point(|r| r.offset < offset)
        };
        debug_assert_eq!(index, self.records.partition_point(|r| r.offset < offset));
        index
    }

    /// Aborted ranges that may cover records in `from..to`.
    pub(super) fn aborted_overlapping(&self, from: u64, to: u64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset <= from);
        self.aborted
            .range(start..)
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Appends a producer's batch, enforcing idempotence when the batch carries a stamp.
    pub(super) fn append_batch(
        &mut self,
        stamp: Option<ProducerStamp>,
        records: Vec<NewRecord>,
        now_us: u64,
    ) -> Result<ProduceAck, ClusterError> {
        if records.is_empty() {
            return Err(ClusterError::InvalidRecord("empty batch"));
        }
        let count = u32::try_from(records.len())
            .map_err(|_| ClusterError::InvalidRecord("batch too large"))?;
        if let Some(stamp) = &stamp {
            if let SeqCheck::Duplicate(ack) = self.producers.check(stamp, count)? {
                return Ok(ack);
            }
        }
        self.advance_clock(now_us);
        let base_offset = self.next_offset;
        for (i, new) in records.into_iter().enumerate() {
            let producer = stamp.map(|s| ProducerMeta {
                producer_id: s.producer_id,
                epoch: s.epoch,
                sequence: Some(s.base_sequence + i as u32),
                transactional: s.transactional,
            });
            self.push(Record {
                offset: self.next_offset,
                timestamp_us: now_us,
                key: new.key,
                value: new.value,
                headers: new.headers,
                producer,
                control: None,
            });
        }
        let ack = ProduceAck {
            base_offset,
            last_offset: self.next_offset - 1,
            timestamp_us: now_us,
            duplicate: false,
        };
        if let Some(stamp) = stamp {
            self.producers.record(&stamp, count, ack);
            if stamp.transactional {
                self.open_txns
                    .entry(stamp.producer_id)
                    .or_insert(base_offset);
            }
        }
        Ok(ack)
    }

    /// Writes a COMMIT or ABORT marker for `producer_id`, closing its open transaction here.
    /// Returns the marker's offset.
    pub(super) fn append_marker(
        &mut self,
        producer_id: ProducerId,
        epoch: u16,
        kind: ControlKind,
        now_us: u64,
    ) -> u64 {
        self.advance_clock(now_us);
        let offset = self.next_offset;
        self.producers.on_marker(producer_id, epoch);
        let first = self.open_txns.remove(&producer_id);
        if let (ControlKind::Abort, Some(first_offset)) = (kind, first) {
            assert!(
                first_offset < offset,
                "a transaction's data precedes its marker"
            );
            self.aborted.push_back(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
        self.push(Record {
            offset,
            timestamp_us: now_us,
            key: None,
            value: None,
            headers: Vec::new(),
            producer: Some(ProducerMeta {
                producer_id,
                epoch,
                sequence: None,
                transactional: true,
            }),
            control: Some(kind),
        });
        offset
    }

    fn advance_clock(&mut self, now_us: u64) {
        // Retention deletes prefixes by age, which is only sound if append times never go
        // backwards; a decreasing clock is a scheduler bug, not a broker condition.
        assert!(
            now_us >= self.last_append_us,
            "virtual time went backwards: {now_us} < {}",
            self.last_append_us
        );
        self.last_append_us = now_us;
    }

    fn push(&mut self, record: Record) {
        assert_eq!(
            record.offset, self.next_offset,
            "offsets are assigned in order"
        );
        if let Some(last) = self.records.back() {
            assert!(last.offset < record.offset, "offsets strictly increase");
        }
        self.records.push_back(record);
        self.next_offset += 1;
    }
}
