//! Committed consumer offsets, kept per group for as long as the cluster lives (across member
//! restarts and broker restarts; Kafka's `offsets.retention.minutes` expiry is not modelled),
//! with the generation checks that reject a zombie's commit, and the pending offsets of open
//! transactions (visible only once the transaction commits).

use std::collections::BTreeMap;

use super::error::ClusterError;
use super::group::{ConsumerGroupMetadata, Group, GroupState};
use super::group_coordinator::GroupCoordinator;
use super::producer::ProducerId;
use super::{Cluster, TopicPartition};

impl GroupCoordinator {
    /// Kafka's OffsetCommit checks, in Kafka's order: a standalone commit (generation < 0)
    /// into an Empty group is always accepted; a group completing a rebalance answers
    /// `RebalanceInProgress`; an unknown member gets `UnknownMemberId` (a member expired by
    /// its session timeout is unknown); a stale generation gets `IllegalGeneration`. During
    /// PreparingRebalance the previous generation may still commit: the generation only
    /// moves when the join completes, which is what lets a member commit while revoking.
    fn check_commit(group: &Group, meta: &ConsumerGroupMetadata) -> Result<(), ClusterError> {
        if meta.generation_id < 0 && meta.member_id.is_none() && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ClusterError::RebalanceInProgress {
                group: meta.group_id.clone(),
            });
        }
        Self::check_member_and_generation(group, meta)
    }

    fn check_member_and_generation(
        group: &Group,
        meta: &ConsumerGroupMetadata,
    ) -> Result<(), ClusterError> {
        let member = meta.member_id.as_ref();
        if !member.is_some_and(|m| group.members.contains_key(m)) {
            return Err(ClusterError::UnknownMemberId {
                group: meta.group_id.clone(),
                member_id: member.map_or(String::new(), |m| m.0.clone()),
            });
        }
        if meta.generation_id != group.generation_id {
            return Err(ClusterError::IllegalGeneration {
                group: meta.group_id.clone(),
                generation_id: meta.generation_id,
                current: group.generation_id,
            });
        }
        Ok(())
    }

    pub(super) fn commit(
        &mut self,
        meta: &ConsumerGroupMetadata,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), ClusterError> {
        let group = match self.groups.get_mut(&meta.group_id) {
            Some(group) => group,
            None if meta.generation_id < 0 => self
                .groups
                .entry(meta.group_id.clone())
                .or_insert_with(Group::new),
            None => {
                return Err(ClusterError::IllegalGeneration {
                    group: meta.group_id.clone(),
                    generation_id: meta.generation_id,
                    current: -1,
                })
            }
        };
        Self::check_commit(group, meta)?;
        group.offsets.extend(offsets.iter().cloned());
        Ok(())
    }

    /// TxnOffsetCommit's group checks: with member metadata (KIP-447) an unknown member or a
    /// stale generation is rejected, which fences a zombie that lost its partitions.
    pub(super) fn validate_txn_commit(
        &self,
        meta: &ConsumerGroupMetadata,
    ) -> Result<(), ClusterError> {
        if meta.member_id.is_none() && meta.generation_id < 0 {
            return Ok(());
        }
        match self.groups.get(&meta.group_id) {
            Some(group) => Self::check_member_and_generation(group, meta),
            None => Err(ClusterError::UnknownMemberId {
                group: meta.group_id.clone(),
                member_id: meta
                    .member_id
                    .as_ref()
                    .map_or(String::new(), |m| m.0.clone()),
            }),
        }
    }

    pub(super) fn add_pending(
        &mut self,
        group_id: &str,
        offsets: &[(TopicPartition, u64)],
        producer_id: ProducerId,
    ) {
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(Group::new);
        for (tp, _) in offsets {
            group.pending_txn.insert(tp.clone(), producer_id);
        }
    }

    /// A transaction that sent offsets for `group_id` ended: on commit its offsets become
    /// the committed ones; either way they stop being pending.
    pub(super) fn complete_pending(
        &mut self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, u64>,
        producer_id: ProducerId,
        commit: bool,
    ) {
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(Group::new);
        for (tp, offset) in offsets {
            if group.pending_txn.get(tp) == Some(&producer_id) {
                group.pending_txn.remove(tp);
            }
            if commit {
                group.offsets.insert(tp.clone(), *offset);
            }
        }
    }

    pub(super) fn committed(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
        require_stable: bool,
    ) -> Result<Vec<(TopicPartition, Option<u64>)>, ClusterError> {
        let Some(group) = self.groups.get(group_id) else {
            return Ok(partitions.iter().map(|tp| (tp.clone(), None)).collect());
        };
        if require_stable
            && partitions
                .iter()
                .any(|tp| group.pending_txn.contains_key(tp))
        {
            return Err(ClusterError::UnstableOffsetCommit {
                group: group_id.to_owned(),
            });
        }
        let lookup = |tp: &TopicPartition| (tp.clone(), group.offsets.get(tp).copied());
        Ok(partitions.iter().map(lookup).collect())
    }
}

impl Cluster {
    /// OffsetCommit. `meta` is the consumer's group metadata: `ConsumerGroupMetadata::member`
    /// for a group member, `standalone` for a consumer that only stores offsets. A zombie
    /// (stale generation, or expired and so unknown) is rejected.
    pub fn commit_offsets(
        &mut self,
        meta: &ConsumerGroupMetadata,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), ClusterError> {
        self.ensure_coordinator_up()?;
        self.groups.commit(meta, offsets)
    }

    /// OffsetFetch: the committed offset of each requested partition (`None`: never
    /// committed). With `require_stable` (what a read_committed consumer sends), a partition
    /// with offsets pending in an open transaction fails with the retriable
    /// `UnstableOffsetCommit` instead of returning a value about to change.
    pub fn committed_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
        require_stable: bool,
    ) -> Result<Vec<(TopicPartition, Option<u64>)>, ClusterError> {
        self.ensure_coordinator_up()?;
        self.groups.committed(group_id, partitions, require_stable)
    }

    /// Every committed offset of a group (a checker's view; ignores broker state).
    pub fn all_committed_offsets(&self, group_id: &str) -> BTreeMap<TopicPartition, u64> {
        self.groups
            .groups
            .get(group_id)
            .map(|g| g.offsets.clone())
            .unwrap_or_default()
    }
}
