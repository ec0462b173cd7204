//! One partition's log: the records (data and transaction control markers) with their
//! offsets, the log start offset, the high watermark and the last stable offset, the index of
//! aborted transactions that read_committed fetches filter with, and the per-partition
//! producer state that makes idempotent appends exactly-once.
//!
//! The records are stored in fixed-size segments (`segments.rs`) only so that appends never
//! copy them; nothing else depends on the segments. Retention and compaction (in
//! `cleaner.rs`) only ever remove records; offsets are assigned once, at append, and never
//! change, so compaction leaves gaps exactly as Kafka's cleaner does.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use super::segments::Segments;

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
///
/// Every append and fetch moves records, and a long run stores millions, so the producer
/// fields and the control kind are packed (104 bytes in all, against 136 as plain options);
/// `producer()` and `control()` unpack them.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    /// The broker's append time in virtual microseconds (LogAppendTime). Retention measures
    /// age by it, so timestamps never decrease along a partition.
    pub timestamp_us: u64,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Boxed, and `None` when there are none (the simulator's records carry none). A boxed
    /// `Vec` is one pointer wide, where a `Vec` is three and a boxed slice two.
    #[allow(clippy::box_collection)]
    headers: Option<Box<Vec<(String, Bytes)>>>,
    /// The producer's id, sequence and epoch; zero where `flags` says there is none.
    producer_id: u64,
    sequence: u32,
    epoch: u16,
    flags: u8,
}

// Packed as the doc above says, on the 64-bit targets the simulator runs on.
const _: () = assert!(std::mem::size_of::<Record>() <= 104);

const HAS_PRODUCER: u8 = 1;
const HAS_SEQUENCE: u8 = 2;
const TRANSACTIONAL: u8 = 4;
const COMMIT_MARKER: u8 = 8;
const ABORT_MARKER: u8 = 16;

/// A record's producer fields as stored: id, sequence, epoch and flags, all zero for a
/// plain producer.
#[derive(Clone, Copy)]
struct PackedProducer {
    producer_id: u64,
    sequence: u32,
    epoch: u16,
    flags: u8,
}

impl PackedProducer {
    fn new(meta: Option<ProducerMeta>) -> PackedProducer {
        let Some(meta) = meta else {
            return PackedProducer {
                producer_id: 0,
                sequence: 0,
                epoch: 0,
                flags: 0,
            };
        };
        let transactional = if meta.transactional { TRANSACTIONAL } else { 0 };
        let sequenced = if meta.sequence.is_some() {
            HAS_SEQUENCE
        } else {
            0
        };
        PackedProducer {
            producer_id: meta.producer_id.0,
            sequence: meta.sequence.unwrap_or(0),
            epoch: meta.epoch,
            flags: HAS_PRODUCER | transactional | sequenced,
        }
    }

    /// The same producer `offset` records further on in its batch.
    fn advanced(self, offset: u32) -> PackedProducer {
        match self.flags & HAS_SEQUENCE {
            0 => self,
            _ => PackedProducer {
                sequence: self.sequence + offset,
                ..self
            },
        }
    }
}

impl Record {
    /// `producer` is `None` for a plain producer's record; `control` is `Some` for a
    /// transaction marker, which has no key, value or headers.
    pub(super) fn new(
        offset: u64,
        timestamp_us: u64,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Bytes)>,
        producer: Option<ProducerMeta>,
        control: Option<ControlKind>,
    ) -> Record {
        assert!(
            control.is_none() || (key.is_none() && value.is_none() && headers.is_empty()),
            "a transaction marker carries no data"
        );
        let marker = match control {
            None => 0,
            Some(ControlKind::Commit) => COMMIT_MARKER,
            Some(ControlKind::Abort) => ABORT_MARKER,
        };
        let packed = PackedProducer::new(producer);
        Record::packed(
            offset,
            timestamp_us,
            key,
            value,
            headers,
            PackedProducer {
                flags: packed.flags | marker,
                ..packed
            },
        )
    }

    // Inlined so that a batch's append builds each record in place, not in a
    // call's return slot then copied: measured 5% of the raw log workload.
    #[inline(always)]
    fn packed(
        offset: u64,
        timestamp_us: u64,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Bytes)>,
        producer: PackedProducer,
    ) -> Record {
        Record {
            offset,
            timestamp_us,
            key,
            value,
            headers: (!headers.is_empty()).then(|| Box::new(headers)),
            producer_id: producer.producer_id,
            sequence: producer.sequence,
            epoch: producer.epoch,
            flags: producer.flags,
        }
    }

    /// Which producer wrote the record; `None` for a plain producer.
    pub fn producer(&self) -> Option<ProducerMeta> {
        (self.flags & HAS_PRODUCER != 0).then(|| ProducerMeta {
            producer_id: ProducerId(self.producer_id),
            epoch: self.epoch,
            sequence: (self.flags & HAS_SEQUENCE != 0).then_some(self.sequence),
            transactional: self.flags & TRANSACTIONAL != 0,
        })
    }

    /// `Some` for a transaction marker; markers have no key or value and are never returned
    /// by fetches, but they occupy an offset.
    pub fn control(&self) -> Option<ControlKind> {
        match self.flags & (COMMIT_MARKER | ABORT_MARKER) {
            0 => None,
            COMMIT_MARKER => Some(ControlKind::Commit),
            _ => Some(ControlKind::Abort),
        }
    }

    pub fn is_control(&self) -> bool {
        self.flags & (COMMIT_MARKER | ABORT_MARKER) != 0
    }

    /// A data record written inside a transaction.
    pub fn is_transactional_data(&self) -> bool {
        !self.is_control() && self.flags & TRANSACTIONAL != 0
    }

    /// The record's headers, in the order the producer added them.
    pub fn headers(&self) -> &[(String, Bytes)] {
        self.headers.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The size counted against a fetch's `max_bytes`: key, value and headers.
    pub fn size_bytes(&self) -> usize {
        let key = self.key.as_ref().map_or(0, Bytes::len);
        let value = self.value.as_ref().map_or(0, Bytes::len);
        let headers: usize = self.headers().iter().map(|(k, v)| k.len() + v.len()).sum();
        key + value + headers
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("offset", &self.offset)
            .field("timestamp_us", &self.timestamp_us)
            .field("key", &self.key)
            .field("value", &self.value)
            .field("headers", &self.headers())
            .field("producer", &self.producer())
            .field("control", &self.control())
            .finish()
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
            && record.producer_id == self.producer_id.0
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
    pub(super) records: Segments,
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
            .iter_from(from)
            .take_while(|record| record.offset < to)
            .filter(|record| is_aborted(&candidates, record))
            .collect()
    }

    /// Producers with an open transaction here, with the first offset of each.
    pub fn open_transactions(&self) -> impl Iterator<Item = (ProducerId, u64)> + '_ {
        self.open_txns.iter().map(|(p, o)| (*p, *o))
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
        // Every record of the batch shares its producer fields but the sequence, so they
        // are packed once, for the first record.
        let first = PackedProducer::new(stamp.map(|s| ProducerMeta {
            producer_id: s.producer_id,
            epoch: s.epoch,
            sequence: Some(s.base_sequence),
            transactional: s.transactional,
        }));
        for (i, new) in (0u32..).zip(records) {
            let offset = self.next_offset;
            let producer = first.advanced(i);
            self.push(Record::packed(
                offset,
                now_us,
                new.key,
                new.value,
                new.headers,
                producer,
            ));
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
        let producer = ProducerMeta {
            producer_id,
            epoch,
            sequence: None,
            transactional: true,
        };
        self.push(Record::new(
            offset,
            now_us,
            None,
            None,
            Vec::new(),
            Some(producer),
            Some(kind),
        ));
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
        self.records.push_back(record);
        self.next_offset += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_records(count: usize) -> Vec<NewRecord> {
        (0..count)
            .map(|i| NewRecord::new(Some(Bytes::from(format!("k{i}"))), None))
            .collect()
    }

    #[test]
    fn a_stamped_batch_gives_each_record_its_producer_and_sequence() {
        let mut log = PartitionLog::default();
        let stamp = ProducerStamp {
            producer_id: ProducerId(7),
            epoch: 3,
            base_sequence: 0,
            transactional: true,
        };
        log.append_batch(Some(stamp), new_records(3), 10)
            .expect("a first batch at sequence 0");
        let metas: Vec<Option<ProducerMeta>> = log.records().map(Record::producer).collect();
        let expected: Vec<Option<ProducerMeta>> = (0..3)
            .map(|i| {
                Some(ProducerMeta {
                    producer_id: ProducerId(7),
                    epoch: 3,
                    sequence: Some(i),
                    transactional: true,
                })
            })
            .collect();
        assert_eq!(metas, expected);
        assert!(log.records().all(Record::is_transactional_data));
        assert!(log.records().all(|r| r.control().is_none()));
    }

    #[test]
    fn an_idempotent_batch_is_not_transactional_and_a_commit_marker_says_commit() {
        let mut log = PartitionLog::default();
        let stamp = ProducerStamp {
            producer_id: ProducerId(4),
            epoch: 0,
            base_sequence: 0,
            transactional: false,
        };
        log.append_batch(Some(stamp), new_records(2), 10)
            .expect("a first batch at sequence 0");
        let record = log.records().nth(1).expect("two records");
        let meta = record.producer().expect("an idempotent producer");
        assert!(!meta.transactional && !record.is_transactional_data());
        assert_eq!(meta.sequence, Some(1));
        let at = log.append_marker(ProducerId(4), 0, ControlKind::Commit, 11);
        let marker = log.records().last().expect("the marker");
        assert_eq!(
            (marker.offset, marker.control()),
            (at, Some(ControlKind::Commit))
        );
        assert!(log.records().take(2).all(|r| r.control().is_none()));
    }

    #[test]
    fn a_plain_batch_has_no_producer_and_a_marker_no_sequence() {
        let mut log = PartitionLog::default();
        log.append_batch(None, new_records(2), 10)
            .expect("a plain batch");
        assert!(log.records().all(|r| r.producer().is_none()));
        assert!(log.records().all(|r| !r.is_transactional_data()));
        // Equal to a plain record built field by field: nothing unpacked differs.
        let second = Record::new(1, 10, Some(Bytes::from("k1")), None, Vec::new(), None, None);
        assert_eq!(log.records().nth(1), Some(&second));
        let at = log.append_marker(ProducerId(9), 1, ControlKind::Abort, 11);
        let marker = log.records().last().expect("the marker");
        assert_eq!(marker.offset, at);
        assert_eq!(marker.control(), Some(ControlKind::Abort));
        assert!(marker.is_control() && !marker.is_transactional_data());
        assert_eq!(
            marker.producer(),
            Some(ProducerMeta {
                producer_id: ProducerId(9),
                epoch: 1,
                sequence: None,
                transactional: true,
            })
        );
    }

    #[test]
    fn headers_survive_the_append_and_count_against_the_size() {
        let mut log = PartitionLog::default();
        let record = NewRecord::new(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"vv")),
        )
        .with_header("h", Bytes::from_static(b"123"));
        log.append_batch(None, vec![record], 1).expect("appends");
        let stored = log.records().next().expect("one record");
        assert_eq!(
            stored.headers(),
            &[("h".to_string(), Bytes::from_static(b"123"))]
        );
        assert_eq!(stored.size_bytes(), 1 + 2 + 1 + 3);
    }
}
