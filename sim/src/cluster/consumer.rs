//! The consumer side of the broker: fetch with read_uncommitted / read_committed isolation
//! and size limits, ListOffsets, and the `auto.offset.reset` helper. A consumer's position
//! (and `seek`) is client state: the driver keeps it and passes it to `fetch`.

use super::error::ClusterError;
use super::log::{is_aborted, PartitionLog, Record};
use super::Cluster;

/// The consumer's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the high watermark, including records of open and aborted transactions.
    ReadUncommitted,
    /// Up to the last stable offset, without records of aborted transactions.
    ReadCommitted,
}

/// Fetch size limits. As in Kafka, one record is returned even if it alone exceeds
/// `max_bytes`, so a consumer always makes progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    pub max_records: usize,
    pub max_bytes: usize,
}

impl Default for FetchLimits {
    /// Kafka's `max.poll.records` (500) and `max.partition.fetch.bytes` (1 MiB).
    fn default() -> Self {
        FetchLimits {
            max_records: 500,
            max_bytes: 1 << 20,
        }
    }
}

/// What a fetch returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// Data records only: control markers (and, for read_committed, aborted records) are
    /// skipped, as the Java consumer skips them.
    pub records: Vec<Record>,
    /// Where the consumer's position goes next. It advances past skipped records, markers
    /// and compaction gaps, so it can be beyond the last returned record.
    pub next_offset: u64,
    pub high_watermark: u64,
    pub last_stable_offset: u64,
    pub log_start_offset: u64,
}

/// Which offset ListOffsets returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    /// The high watermark (what read_uncommitted consumers see as the end).
    Latest,
    /// The last stable offset (what read_committed consumers see as the end).
    LastStable,
}

/// The consumer's `auto.offset.reset` when its position is out of range or it has no
/// committed offset. (`none` is the driver surfacing the error instead.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
}

/// A partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub last_stable_offset: u64,
}

impl PartitionLog {
    /// Reads from `offset` up to the isolation's limit (HW or LSO).
    pub fn read(&self, offset: u64, limits: FetchLimits, isolation: Isolation) -> FetchResponse {
        let lso = self.last_stable_offset();
        let limit = match isolation {
            Isolation::ReadUncommitted => self.next_offset,
            Isolation::ReadCommitted => lso,
        };
        if offset >= limit {
            // Nothing visible past the position, the common poll: no search and
            // no allocation.
            return FetchResponse {
                records: Vec::new(),
                next_offset: offset,
                high_watermark: self.next_offset,
                last_stable_offset: lso,
                log_start_offset: self.log_start_offset,
            };
        }
        let aborted = match isolation {
            Isolation::ReadUncommitted => Vec::new(),
            Isolation::ReadCommitted => self.aborted_overlapping(offset, limit),
        };
        // At most one stored record per offset below the limit.
        let visible_at_most = usize::try_from(limit - offset).unwrap_or(usize::MAX);
        let mut records = Vec::with_capacity(
            limits
                .max_records
                .min(self.records.len())
                .min(visible_at_most),
        );
        let mut bytes = 0usize;
        let mut next_offset = offset;
        let mut exhausted = true;
        for record in self.records.iter_from(offset) {
            if record.offset >= limit {
                break;
            }
            if records.len() >= limits.max_records {
                exhausted = false;
                break;
            }
            if !record.is_control() && !is_aborted(&aborted, record) {
                let size = record.size_bytes();
                if !records.is_empty() && bytes.saturating_add(size) > limits.max_bytes {
                    exhausted = false;
                    break;
                }
                bytes += size;
                records.push(record.clone());
            }
            next_offset = record.offset + 1;
        }
        if exhausted {
            // Everything below the limit was scanned; any gap up to it holds nothing.
            next_offset = next_offset.max(limit);
        }
        assert!(
            next_offset >= offset,
            "a fetch never moves the position backwards"
        );
        FetchResponse {
            records,
            next_offset,
            high_watermark: self.next_offset,
            last_stable_offset: lso,
            log_start_offset: self.log_start_offset,
        }
    }

    pub fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets {
            log_start_offset: self.log_start_offset,
            high_watermark: self.next_offset,
            last_stable_offset: self.last_stable_offset(),
        }
    }
}

impl Cluster {
    /// Fetches from `offset`. `OffsetOutOfRange` if `offset` is below the log start offset
    /// (deleted by retention) or above the high watermark; the driver then applies its
    /// `auto.offset.reset` with `reset_offset`.
    pub fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        limits: FetchLimits,
        isolation: Isolation,
    ) -> Result<FetchResponse, ClusterError> {
        self.ensure_leader_up()?;
        let log = self.log_ref(topic, partition)?;
        if offset < log.log_start_offset || offset > log.next_offset {
            return Err(ClusterError::OffsetOutOfRange {
                topic: topic.to_owned(),
                partition,
                offset,
                log_start_offset: log.log_start_offset,
                high_watermark: log.next_offset,
            });
        }
        Ok(log.read(offset, limits, isolation))
    }

    /// ListOffsets.
    pub fn list_offset(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64, ClusterError> {
        let offsets = self.partition_offsets(topic, partition)?;
        Ok(match spec {
            OffsetSpec::Earliest => offsets.log_start_offset,
            OffsetSpec::Latest => offsets.high_watermark,
            OffsetSpec::LastStable => offsets.last_stable_offset,
        })
    }

    pub fn partition_offsets(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<PartitionOffsets, ClusterError> {
        self.ensure_leader_up()?;
        Ok(self.log_ref(topic, partition)?.offsets())
    }

    /// The position `auto.offset.reset` gives: the log start, or the end as the consumer's
    /// isolation sees it (HW for read_uncommitted, LSO for read_committed, as Kafka's
    /// ListOffsets with an isolation level returns).
    pub fn reset_offset(
        &self,
        topic: &str,
        partition: u32,
        policy: AutoOffsetReset,
        isolation: Isolation,
    ) -> Result<u64, ClusterError> {
        let spec = match (policy, isolation) {
            (AutoOffsetReset::Earliest, _) => OffsetSpec::Earliest,
            (AutoOffsetReset::Latest, Isolation::ReadUncommitted) => OffsetSpec::Latest,
            (AutoOffsetReset::Latest, Isolation::ReadCommitted) => OffsetSpec::LastStable,
        };
        self.list_offset(topic, partition, spec)
    }
}
