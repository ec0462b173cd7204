//! Topics: the topic-partition name, `cleanup.policy`, a topic's configuration, and the
//! topic itself as the cluster stores it (its configuration and one log per partition).

use std::fmt;

use super::log::PartitionLog;

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition {
            topic: topic.to_owned(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Records older than `retention_ms` are deleted.
    Delete,
    /// The cleaner keeps the latest value per key; `retention_ms` is ignored.
    Compact,
    /// `compact,delete`: both.
    CompactDelete,
}

impl Cleanup {
    pub fn compacts(self) -> bool {
        matches!(self, Cleanup::Compact | Cleanup::CompactDelete)
    }

    pub fn deletes(self) -> bool {
        matches!(self, Cleanup::Delete | Cleanup::CompactDelete)
    }
}

/// A topic's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub partitions: u32,
    /// `retention.ms`; `None` keeps records forever.
    pub retention_ms: Option<u64>,
    pub cleanup: Cleanup,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones and transaction markers.
    pub delete_retention_ms: u64,
}

impl TopicConfig {
    /// Delete policy, infinite retention, Kafka's default 24 h tombstone retention.
    pub fn new(partitions: u32) -> Self {
        TopicConfig {
            partitions,
            retention_ms: None,
            cleanup: Cleanup::Delete,
            delete_retention_ms: 86_400_000,
        }
    }

    pub fn with_retention_ms(mut self, retention_ms: u64) -> Self {
        self.retention_ms = Some(retention_ms);
        self
    }

    pub fn with_cleanup(mut self, cleanup: Cleanup) -> Self {
        self.cleanup = cleanup;
        self
    }

    pub fn with_delete_retention_ms(mut self, delete_retention_ms: u64) -> Self {
        self.delete_retention_ms = delete_retention_ms;
        self
    }
}

#[derive(Debug, Clone)]
pub(super) struct Topic {
    pub(super) config: TopicConfig,
    pub(super) partitions: Vec<PartitionLog>,
}

impl Topic {
    pub(super) fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }
}
