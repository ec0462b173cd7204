//! The transactional producer API of the `Cluster`: InitProducerId, begin, add partitions,
//! send offsets, commit and abort, plus writing the markers of every ended transaction. The
//! coordinator's state machine and fencing rules are in `txn_coordinator.rs`.

use super::error::ClusterError;
use super::group::ConsumerGroupMetadata;
use super::log::ControlKind;
use super::producer::{ProducerId, ProducerIdentity};
use super::txn_coordinator::TxnOutcome;
use super::{Cluster, TopicPartition};

/// A transaction the coordinator aborted on its own in `tick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOutTransaction {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    /// The epoch after the bump; the timed-out instance holds an older one.
    pub new_epoch: u16,
}

impl Cluster {
    /// InitProducerId. `None`: a new idempotent producer at epoch 0. `Some(tid)`: the
    /// producer id of that transactional id with a bumped epoch; its previous instance is
    /// fenced and its open transaction, if any, is aborted (markers are written now).
    pub fn init_producer_id(
        &mut self,
        transactional_id: Option<&str>,
        transaction_timeout_ms: u64,
        now_us: u64,
    ) -> Result<ProducerIdentity, ClusterError> {
        self.ensure_coordinator_up()?;
        let max_ms = self.config.transaction_max_timeout_ms;
        if transactional_id.is_some() && !(1..=max_ms).contains(&transaction_timeout_ms) {
            return Err(ClusterError::InvalidTransactionTimeout {
                timeout_ms: transaction_timeout_ms,
                max_ms,
            });
        }
        let (identity, outcome) = self
            .txns
            .init_producer_id(transactional_id, transaction_timeout_ms);
        if let Some(outcome) = outcome {
            self.complete_txn(outcome, now_us);
        }
        Ok(identity)
    }

    /// Starts a transaction. Its timeout counts from here (Kafka starts the clock at the
    /// first AddPartitionsToTxn, which for a driver that writes right after `begin` is one
    /// request later).
    pub fn begin_transaction(
        &mut self,
        transactional_id: &str,
        producer: ProducerIdentity,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        self.ensure_coordinator_up()?;
        self.txns.begin(transactional_id, producer, now_us)
    }

    /// Explicit AddPartitionsToTxn (a transactional produce also adds its partition).
    pub fn add_partitions_to_txn(
        &mut self,
        transactional_id: &str,
        producer: ProducerIdentity,
        partitions: &[TopicPartition],
    ) -> Result<(), ClusterError> {
        self.ensure_coordinator_up()?;
        for tp in partitions {
            self.topic(&tp.topic, tp.partition)?;
        }
        self.txns
            .add_partitions(transactional_id, producer, partitions)
    }

    /// AddOffsetsToTxn + TxnOffsetCommit: the offsets become the group's committed offsets
    /// only when the transaction commits, and are discarded if it aborts. The group
    /// metadata fences zombies from an older generation (KIP-447); a standalone
    /// metadata (generation -1, no member) skips that check.
    pub fn send_offsets_to_transaction(
        &mut self,
        transactional_id: &str,
        producer: ProducerIdentity,
        group: &ConsumerGroupMetadata,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), ClusterError> {
        self.ensure_coordinator_up()?;
        self.txns.check_ongoing(transactional_id, producer)?;
        self.groups.validate_txn_commit(group)?;
        self.txns
            .add_offsets(transactional_id, producer, &group.group_id, offsets)?;
        self.groups
            .add_pending(&group.group_id, offsets, producer.producer_id);
        Ok(())
    }

    /// EndTxn(commit): writes COMMIT markers to every partition the transaction touched and
    /// publishes its offsets to their groups.
    pub fn commit_transaction(
        &mut self,
        transactional_id: &str,
        producer: ProducerIdentity,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        self.end_transaction(transactional_id, producer, ControlKind::Commit, now_us)
    }

    /// EndTxn(abort): writes ABORT markers and discards the transaction's offsets.
    pub fn abort_transaction(
        &mut self,
        transactional_id: &str,
        producer: ProducerIdentity,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        self.end_transaction(transactional_id, producer, ControlKind::Abort, now_us)
    }

    /// The partitions of `transactional_id`'s ongoing transaction, or `None` if none is open.
    pub fn ongoing_transaction(&self, transactional_id: &str) -> Option<Vec<TopicPartition>> {
        self.txns.ongoing_partitions(transactional_id)
    }

    fn end_transaction(
        &mut self,
        transactional_id: &str,
        producer: ProducerIdentity,
        kind: ControlKind,
        now_us: u64,
    ) -> Result<(), ClusterError> {
        self.ensure_coordinator_up()?;
        if let Some(outcome) = self.txns.end(transactional_id, producer, kind)? {
            self.complete_txn(outcome, now_us);
        }
        Ok(())
    }

    /// Writes the markers of an ended transaction and settles its pending offsets.
    pub(super) fn complete_txn(&mut self, outcome: TxnOutcome, now_us: u64) {
        for tp in &outcome.partitions {
            let log = self
                .log_mut(&tp.topic, tp.partition)
                .expect("a transaction only touches existing partitions");
            log.append_marker(
                outcome.producer_id,
                outcome.marker_epoch,
                outcome.kind,
                now_us,
            );
        }
        let commit = outcome.kind == ControlKind::Commit;
        for (group_id, offsets) in &outcome.offsets {
            self.groups
                .complete_pending(group_id, offsets, outcome.producer_id, commit);
        }
    }
}
