//! The world's side of coverage marks: the small questions a hit site asks
//! (is any transaction open? does a restored store resume mid-stream?) and the
//! one call every site makes. The sites themselves are one line each, in the
//! files where the moment happens; counting never draws and never traces.

use super::World;
use crate::cluster::{ClusterError, TopicPartition};
use marlow_model::task::KvStore;
use marlow_model::Mark;

/// Whether the broker refused a transaction because its producer was fenced
/// or its consumer generation is gone: the instance was a zombie.
pub(crate) fn fences_a_zombie(error: &ClusterError) -> bool {
    matches!(
        error,
        ClusterError::ProducerFenced { .. }
            | ClusterError::InvalidProducerEpoch { .. }
            | ClusterError::IllegalGeneration { .. }
            | ClusterError::UnknownMemberId { .. }
    )
}

impl World {
    /// Counts `mark` when `reached`.
    pub(crate) fn mark_if(&mut self, reached: bool, mark: Mark) {
        if reached {
            self.marks.hit(mark);
        }
    }

    /// Whether any instance's transactional id has a transaction open at the
    /// coordinator (a crashed instance's too: it stays open until fenced or timed out).
    pub(crate) fn any_transaction_open(&self) -> bool {
        self.exactly_once()
            && self.instances.iter().any(|instance| {
                self.cluster
                    .ongoing_transaction(&instance.transactional_id())
                    .is_some_and(|partitions| !partitions.is_empty())
            })
    }

    /// A store just restored for `tp`, whose reading starts at `start`: it
    /// resumes mid-stream when it holds state and the input has records beyond.
    pub(crate) fn restored_mid_stream(
        &self,
        tp: &TopicPartition,
        start: u64,
        store: &KvStore,
    ) -> bool {
        let end = self
            .cluster
            .log(&tp.topic, tp.partition)
            .map_or(0, |log| log.high_watermark());
        !store.is_empty() && start < end
    }
}
