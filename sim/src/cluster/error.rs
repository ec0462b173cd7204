//! The simulated cluster's typed errors: one variant per Kafka protocol error code that the
//! simulation produces, so a driver can react exactly as a real client would (retry, rejoin,
//! give up) and real mode can map librdkafka's codes onto the same enum.

use super::producer::ProducerId;

/// A broker-side error, as a Kafka client would receive it in a response.
///
/// A duplicate sequence (Kafka's `DUPLICATE_SEQUENCE_NUMBER`) is deliberately not an error
/// here: like the broker, the cluster acknowledges it with the original offsets and
/// `ProduceAck::duplicate` set, and appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The partition leader is down (broker restarting): produce, fetch and list-offsets.
    #[error("leader not available: the broker is restarting (retriable)")]
    LeaderNotAvailable,
    /// The group or transaction coordinator is down (broker restarting).
    #[error("coordinator not available: the broker is restarting (retriable)")]
    CoordinatorNotAvailable,
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition { topic: String, partition: u32 },
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    #[error("invalid partition count for topic {topic}: {reason}")]
    InvalidPartitions { topic: String, reason: &'static str },
    /// The broker refused a record or batch (for example a null key on a compacted topic).
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    #[error(
        "offset {offset} out of range [{log_start_offset}, {high_watermark}] \
         for {topic}-{partition}"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        log_start_offset: u64,
        high_watermark: u64,
    },
    /// A newer producer with the same transactional id exists, or the coordinator bumped the
    /// epoch when it timed the transaction out: this producer is a zombie and must close.
    #[error("producer {producer_id} fenced: epoch {epoch} is older than {current_epoch}")]
    ProducerFenced {
        producer_id: ProducerId,
        epoch: u16,
        current_epoch: u16,
    },
    /// A partition already saw a newer epoch of this producer id.
    #[error("invalid producer epoch {epoch} for {producer_id} (partition has {current_epoch})")]
    InvalidProducerEpoch {
        producer_id: ProducerId,
        epoch: u16,
        current_epoch: u16,
    },
    #[error("unknown producer id {0}")]
    UnknownProducerId(ProducerId),
    /// The producer id is not the one currently assigned to the transactional id.
    #[error("producer id {0} is not mapped to this transactional id")]
    InvalidProducerIdMapping(ProducerId),
    #[error("out of order sequence for {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: ProducerId,
        expected: u32,
        got: u32,
    },
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(&'static str),
    #[error("invalid transaction timeout {timeout_ms} ms (broker maximum {max_ms} ms)")]
    InvalidTransactionTimeout { timeout_ms: u64, max_ms: u64 },
    /// The member's generation is not the group's current one: a zombie from an older
    /// generation, or a member that missed a rebalance.
    #[error("illegal generation {generation_id} for group {group} (current {current})")]
    IllegalGeneration {
        group: String,
        generation_id: i32,
        current: i32,
    },
    /// The coordinator does not know this member (never joined, left, or expired).
    #[error("unknown member {member_id} in group {group}")]
    UnknownMemberId { group: String, member_id: String },
    /// The group is rebalancing: the member must rejoin.
    #[error("rebalance in progress in group {group}")]
    RebalanceInProgress { group: String },
    #[error("inconsistent group protocol in group {group}: members disagree on the assignor")]
    InconsistentGroupProtocol { group: String },
    #[error("invalid session timeout {timeout_ms} ms (allowed {min_ms}..={max_ms} ms)")]
    InvalidSessionTimeout {
        timeout_ms: u64,
        min_ms: u64,
        max_ms: u64,
    },
    /// A transaction holds uncommitted offsets for a requested partition (retriable).
    #[error("unstable offset commit in group {group}: a transaction holds pending offsets")]
    UnstableOffsetCommit { group: String },
    /// The transaction cannot complete but the producer is healthy (Kafka's
    /// TRANSACTION_ABORTABLE): abort it and go on with the same producer.
    #[error("transaction abortable: {0}")]
    TransactionAbortable(&'static str),
}

impl ClusterError {
    /// Kafka's numeric protocol error code for this error.
    pub fn kafka_code(&self) -> i16 {
        match self {
            ClusterError::OffsetOutOfRange { .. } => 1,
            ClusterError::UnknownTopicOrPartition { .. } => 3,
            ClusterError::LeaderNotAvailable => 5,
            ClusterError::CoordinatorNotAvailable => 15,
            ClusterError::IllegalGeneration { .. } => 22,
            ClusterError::InconsistentGroupProtocol { .. } => 23,
            ClusterError::UnknownMemberId { .. } => 25,
            ClusterError::InvalidSessionTimeout { .. } => 26,
            ClusterError::RebalanceInProgress { .. } => 27,
            ClusterError::TopicAlreadyExists(_) => 36,
            ClusterError::InvalidPartitions { .. } => 37,
            ClusterError::OutOfOrderSequence { .. } => 45,
            ClusterError::InvalidProducerEpoch { .. } => 47,
            ClusterError::InvalidTxnState(_) => 48,
            ClusterError::InvalidProducerIdMapping(_) => 49,
            ClusterError::InvalidTransactionTimeout { .. } => 50,
            ClusterError::UnknownProducerId(_) => 59,
            ClusterError::InvalidRecord(_) => 87,
            ClusterError::UnstableOffsetCommit { .. } => 88,
            ClusterError::ProducerFenced { .. } => 90,
            ClusterError::TransactionAbortable(_) => 120,
        }
    }

    /// Whether a client may simply retry the same request later. Rebalance errors are not
    /// retriable in this sense: the member must rejoin first.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ClusterError::LeaderNotAvailable
                | ClusterError::CoordinatorNotAvailable
                | ClusterError::UnstableOffsetCommit { .. }
        )
    }
}
