//! The simulated Kafka cluster: a pure, synchronous, deterministic state machine with the
//! broker-side semantics the seed design's bugs depend on (key placement, retention and
//! compaction, idempotent and transactional producers, read_committed, consumer groups with
//! generations, fencing, a broker restart). It has no clock, no randomness, no I/O and no
//! threads: every time-dependent call takes `now_us` (virtual microseconds, never
//! decreasing), and every random choice (latency, when the cleaner runs, which request is
//! duplicated, when the broker restarts) is made by the scheduler, which wraps each call in
//! simulated network latency.
//!
//! How a driver uses it (each call is one request arriving at the broker):
//! - Topics: `create_topic(name, TopicConfig, now)`, `create_partitions(name, total, now)`.
//!   Keys are placed with `partition_for_key` (the Java client's murmur2); a record with a
//!   null key goes wherever the caller picks. Growing a topic remaps keys, as in Kafka.
//! - Produce: `produce(topic, partition, ProduceBatch, now) -> ProduceAck`. Plain batches
//!   have no stamp; idempotent and transactional producers call `init_producer_id` and stamp
//!   batches with a `ProducerSession`.
//! - Transactions: `init_producer_id(Some(tid), timeout_ms, now)`, `begin_transaction`,
//!   produce (adds the partition), `send_offsets_to_transaction`, `commit_transaction` or
//!   `abort_transaction`. See `txn_coordinator.rs` for the state machine and fencing.
//! - Consume: `fetch(topic, partition, offset, FetchLimits, Isolation)`; on
//!   `OffsetOutOfRange` use `reset_offset`; `list_offset` / `partition_offsets`.
//! - Groups: `join_group(JoinRequest, now)` -> member id and completed join responses;
//!   `sync_group` -> the member's partitions; `heartbeat` (on `RebalanceInProgress`, rejoin);
//!   `commit_offsets(ConsumerGroupMetadata, ..)`; `committed_offsets`; `leave_group`. See
//!   `group.rs` for the state machine.
//! - Time: call `tick(now)` at `next_deadline_us()` (or periodically): it expires
//!   transactions and sessions, completes timed-out rebalances, and reports what it did.
//!   `run_retention(now)` and `run_cleaner(topic, partition, now)` run when the caller says.
//! - Faults: `broker_down(now)` makes every request fail with a retriable error
//!   (`LeaderNotAvailable` for data, `CoordinatorNotAvailable` for coordinators) and
//!   cancels parked joins; `broker_up(now)` restores service. All state survives (a single
//!   broker with acks=all); open transactions stay open and time out later.
//! - Checkers read everything through `log`, `group`, `all_committed_offsets`, which
//!   ignore the broker's availability.

mod assignor;
pub mod bench;
mod cleaner;
mod consumer;
mod error;
mod group;
mod group_coordinator;
mod log;
pub mod murmur2;
mod offsets;
mod producer;
mod segments;
mod topic;
mod transactions;
mod txn_coordinator;

use std::collections::BTreeMap;

pub use consumer::{
    AutoOffsetReset, FetchLimits, FetchResponse, Isolation, OffsetSpec, PartitionOffsets,
};
pub use error::ClusterError;
pub use group::{
    Assignor, ConsumerGroupMetadata, GroupState, GroupSummary, JoinCompletion, JoinOutcome,
    JoinRequest, JoinResponse, MemberId, SyncResponse,
};
pub use log::{AbortedTxn, ControlKind, NewRecord, PartitionLog, ProduceAck, ProducerMeta, Record};
pub use producer::{
    ProduceBatch, ProducerId, ProducerIdentity, ProducerSession, ProducerStamp, DEDUP_WINDOW,
};
pub use topic::{Cleanup, TopicConfig, TopicPartition};
pub use transactions::TimedOutTransaction;

use group_coordinator::GroupCoordinator;
use topic::Topic;
use txn_coordinator::TxnCoordinator;

/// Broker-wide settings (Kafka's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `transaction.max.timeout.ms`.
    pub transaction_max_timeout_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            transaction_max_timeout_ms: 900_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
        }
    }
}

/// What a `tick` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Join responses completed because members expired or a rebalance timed out.
    pub join_completions: Vec<JoinCompletion>,
    /// Members removed by session or rebalance timeout, as (group, member).
    pub expired_members: Vec<(String, MemberId)>,
    /// Transactions the coordinator aborted because they outlived their timeout.
    pub aborted_transactions: Vec<TimedOutTransaction>,
}

/// The simulated single-broker Kafka cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    config: ClusterConfig,
    topics: BTreeMap<String, Topic>,
    txns: TxnCoordinator,
    groups: GroupCoordinator,
    up: bool,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new(ClusterConfig::default())
    }
}

impl Cluster {
    pub fn new(config: ClusterConfig) -> Self {
        let groups = GroupCoordinator::new(
            config.group_min_session_timeout_ms,
            config.group_max_session_timeout_ms,
        );
        Cluster {
            config,
            topics: BTreeMap::new(),
            txns: TxnCoordinator::default(),
            groups,
            up: true,
        }
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        config: TopicConfig,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        self.ensure_leader_up()?;
        if self.topics.contains_key(name) {
            return Err(ClusterError::TopicAlreadyExists(name.to_owned()));
        }
        if config.partitions == 0 {
            return Err(ClusterError::InvalidPartitions {
                topic: name.to_owned(),
                reason: "a topic needs at least one partition",
            });
        }
        let partitions = (0..config.partitions)
            .map(|_| PartitionLog::default())
            .collect();
        self.topics
            .insert(name.to_owned(), Topic { config, partitions });
        self.groups.topic_changed(name, now_us);
        Ok(())
    }

    /// CreatePartitions: grows `name` to `total` partitions. Existing records stay where they
    /// are, but `partition_for_key` now maps many keys elsewhere, so one key's records end up
    /// split across two partitions (a seed-design bug source). Subscribed groups rebalance.
    pub fn create_partitions(
        &mut self,
        name: &str,
        total: u32,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        self.ensure_leader_up()?;
        let topic = self
            .topics
            .get_mut(name)
            .ok_or(ClusterError::UnknownTopicOrPartition {
                topic: name.to_owned(),
                partition: total,
            })?;
        if total <= topic.partition_count() {
            return Err(ClusterError::InvalidPartitions {
                topic: name.to_owned(),
                reason: "partitions can only be added",
            });
        }
        topic
            .partitions
            .resize_with(total as usize, PartitionLog::default);
        topic.config.partitions = total;
        self.groups.topic_changed(name, now_us);
        Ok(())
    }

    pub fn topic_config(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.get(name).map(|t| &t.config)
    }

    pub fn partition_count(&self, name: &str) -> Option<u32> {
        self.topics.get(name).map(Topic::partition_count)
    }

    pub fn topic_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.topics.keys().map(String::as_str)
    }

    /// The partition the Java client's default partitioner picks for `key` (metadata is
    /// client-cached in Kafka, so this works while the broker is down).
    pub fn partition_for_key(&self, topic: &str, key: &[u8]) -> Result<u32, ClusterError> {
        let count = self
            .partition_count(topic)
            .ok_or(ClusterError::UnknownTopicOrPartition {
                topic: topic.to_owned(),
                partition: 0,
            })?;
        Ok(murmur2::partition_for_key(key, count))
    }

    /// The broker stops: every request fails with a retriable error until `broker_up`.
    /// Returns the parked joins that failed.
    pub fn broker_down(&mut self, _now_us: u64) -> Vec<JoinCompletion> {
        self.up = false;
        self.groups.cancel_parked_joins()
    }

    /// The broker is back with all its state. Group members get a fresh session, as when
    /// Kafka's coordinator loads a group; transaction timeouts keep counting from each
    /// transaction's start, so ones that outlived the outage abort at the next `tick`.
    pub fn broker_up(&mut self, now_us: u64) {
        self.up = true;
        self.groups.restart_timers(now_us);
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Runs the coordinators' timers. Does nothing while the broker is down.
    pub fn tick(&mut self, now_us: u64) -> TickReport {
        let mut report = TickReport::default();
        if !self.up {
            return report;
        }
        for (timed_out, outcome) in self.txns.expire(now_us) {
            self.complete_txn(outcome, now_us);
            report.aborted_transactions.push(timed_out);
        }
        let topics = &self.topics;
        let partitions_of = |t: &str| topics.get(t).map(Topic::partition_count);
        let (completions, expired) = self.groups.expire(&partitions_of, now_us);
        report.join_completions = completions;
        report.expired_members = expired;
        report
    }

    /// The earliest virtual time at which `tick` has work (a transaction timeout, a session
    /// expiry, a rebalance timeout), so a discrete-event scheduler can sleep until then.
    pub fn next_deadline_us(&self) -> Option<u64> {
        if !self.up {
            return None;
        }
        let txn = self.txns.next_deadline();
        let group = self.groups.next_deadline();
        txn.into_iter().chain(group).min()
    }

    /// Applies `retention.ms` to every topic with the delete policy. Returns the number of
    /// records deleted. Does nothing while the broker is down.
    pub fn run_retention(&mut self, now_us: u64) -> usize {
        if !self.up {
            return 0;
        }
        let mut removed = 0;
        for topic in self.topics.values_mut() {
            let Some(retention_ms) = topic.config.retention_ms else {
                continue;
            };
            if topic.config.cleanup.deletes() {
                for log in &mut topic.partitions {
                    removed += log.apply_retention(now_us, retention_ms);
                }
            }
        }
        removed
    }

    /// One compaction pass over a compacted partition. Returns the records removed (0 for a
    /// topic that does not compact, or while the broker is down).
    pub fn run_cleaner(
        &mut self,
        topic: &str,
        partition: u32,
        now_us: u64,
    ) -> Result<usize, ClusterError> {
        if !self.up {
            return Ok(0);
        }
        let config = self.topic(topic, partition)?.config.clone();
        if !config.cleanup.compacts() {
            return Ok(0);
        }
        let log = self.log_mut(topic, partition)?;
        Ok(log.compact(now_us, config.delete_retention_ms))
    }

    /// A partition's log, for checkers and tests (ignores broker availability).
    pub fn log(&self, topic: &str, partition: u32) -> Option<&PartitionLog> {
        self.topics.get(topic)?.partitions.get(partition as usize)
    }

    fn ensure_leader_up(&self) -> Result<(), ClusterError> {
        match self.up {
            true => Ok(()),
            false => Err(ClusterError::LeaderNotAvailable),
        }
    }

    fn ensure_coordinator_up(&self) -> Result<(), ClusterError> {
        match self.up {
            true => Ok(()),
            false => Err(ClusterError::CoordinatorNotAvailable),
        }
    }

    fn unknown(topic: &str, partition: u32) -> ClusterError {
        ClusterError::UnknownTopicOrPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    /// The topic, if it has `partition`.
    fn topic(&self, topic: &str, partition: u32) -> Result<&Topic, ClusterError> {
        match self.topics.get(topic) {
            Some(t) if partition < t.partition_count() => Ok(t),
            _ => Err(Self::unknown(topic, partition)),
        }
    }

    fn log_ref(&self, topic: &str, partition: u32) -> Result<&PartitionLog, ClusterError> {
        self.log(topic, partition)
            .ok_or_else(|| Self::unknown(topic, partition))
    }

    fn log_mut(&mut self, topic: &str, partition: u32) -> Result<&mut PartitionLog, ClusterError> {
        self.topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(partition as usize))
            .ok_or_else(|| Self::unknown(topic, partition))
    }
}
