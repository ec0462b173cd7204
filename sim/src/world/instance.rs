//! An app instance: a consumer-group member that runs the design's stream
//! tasks for the partitions it is assigned. This file holds its state; the
//! world (`app.rs`) drives it through the cluster. A crash drops everything
//! here but the instance's index and its next incarnation number.

use super::events::SimEvent;
use crate::cluster::{MemberId, NewRecord, ProducerIdentity, ProducerSession, TopicPartition};
use marlow_harness::batch::{Batch, Stage};
use marlow_harness::host::TaskHost;
use std::collections::{BTreeMap, VecDeque};

/// At-least-once: the records of a batch bound for one partition, sent as one
/// request that lands at `land_at_us`. A producer sends each partition's
/// records on their own, so a crash during a flush leaves some partitions'
/// records in the log and not others (an event without its alarm).
pub struct FlushPart {
    pub land_at_us: u64,
    pub topic: String,
    pub partition: u32,
    pub records: Vec<NewRecord>,
}

/// Where the instance is in its group's protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Crashed or stopped: not a member, does nothing.
    Down,
    /// Asked to join; waiting for the coordinator's answer.
    Joining { member: Option<MemberId> },
    /// Holds an assignment for `generation`.
    Stable {
        member: MemberId,
        generation: i32,
        assignment: Vec<TopicPartition>,
    },
}

/// A processed batch on its way to the broker: the shared batch (its records, its
/// input offsets and its stage) and what the simulator adds to it.
pub struct PendingBatch {
    /// Unique per instance; events about a batch carry it.
    pub id: u64,
    pub batch: Batch<TopicPartition>,
    /// Partitions this batch's transaction touched.
    pub touched: Vec<TopicPartition>,
    /// Exactly-once: an abortable error was drawn for this batch's commit.
    pub abort_at_commit: bool,
    /// At-least-once: the per-partition requests of the flush not landed yet,
    /// in landing order; `None` until the flush starts.
    pub flush_parts: Option<VecDeque<FlushPart>>,
}

impl PendingBatch {
    pub fn new(exactly_once: bool) -> PendingBatch {
        PendingBatch {
            id: 0,
            batch: Batch::new(exactly_once),
            touched: Vec::new(),
            abort_at_commit: false,
            flush_parts: None,
        }
    }

    /// Exactly-once: its transaction has begun and holds its offsets (Flush happened).
    pub fn flushed(&self) -> bool {
        self.batch.stage() == Stage::OffsetsSent
    }
}

pub struct Instance {
    pub index: u32,
    pub incarnation: u32,
    pub membership: Membership,
    /// Paused instances defer their events until resumed.
    pub paused: bool,
    /// Cleanly stopped instances stay down even when faults heal.
    pub stopped: bool,
    /// Exactly-once producer, after `init_producer_id`.
    pub producer: Option<(ProducerIdentity, ProducerSession)>,
    /// The design's tasks and their stores per (task, partition), restored on
    /// assignment.
    pub host: TaskHost,
    /// Next offset to read per assigned input partition.
    pub positions: BTreeMap<TopicPartition, u64>,
    /// Positions as last committed (at-least-once) or sent (exactly-once).
    pub committed: BTreeMap<TopicPartition, u64>,
    /// A batch between Poll and Flush (or Flush and CommitTxn).
    pub in_flight: Option<PendingBatch>,
    /// The id the next batch gets.
    pub next_batch_id: u64,
    /// Rotates which partition a poll reads first, for fairness.
    pub poll_cursor: usize,
    /// When the current join request was sent; a join unanswered for too long
    /// is sent again, as a client's request timeout would.
    pub joining_since_us: u64,
    /// Events that arrived while paused, replayed in order on resume.
    pub deferred: Vec<SimEvent>,
    /// Why the instance stopped processing for good (it fails closed); kept
    /// across crashes, since a restart finds the same cause.
    pub halted: Option<String>,
    /// The generation whose assignment the stores in `host` hold, while they
    /// may be kept into the next one (`membership.rs`, `revoke`); `None` once
    /// they are dropped.
    pub stores_generation: Option<i32>,
}

impl Instance {
    pub fn new(index: u32, host: TaskHost) -> Instance {
        Instance {
            index,
            incarnation: 0,
            membership: Membership::Down,
            paused: false,
            stopped: false,
            producer: None,
            host,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            in_flight: None,
            poll_cursor: 0,
            next_batch_id: 0,
            joining_since_us: 0,
            deferred: Vec::new(),
            halted: None,
            stores_generation: None,
        }
    }

    /// The transactional id survives restarts, so a restarted instance fences
    /// its own previous incarnation.
    pub fn transactional_id(&self) -> String {
        format!("marlow-app-{}", self.index)
    }

    /// Forgets everything held in memory (a crash, or a failed transaction
    /// whose local effects must be rolled back by restoring).
    pub fn drop_tasks(&mut self) {
        self.host.clear();
        self.positions.clear();
        self.committed.clear();
        self.in_flight = None;
        self.stores_generation = None;
    }

    /// Whether everything the stores hold is committed: no batch in flight and
    /// every position at its committed (or, under exactly-once, sent) offset.
    /// Only such stores may outlive a revocation: a store holding an aborted
    /// or uncommitted batch's writes would apply them twice when that input
    /// is read again.
    pub fn stores_settled(&self) -> bool {
        self.in_flight.is_none() && self.positions == self.committed
    }

    /// Gives up the assignment's positions but keeps the stores, for the next
    /// generation to reuse where it assigns the same partitions again.
    pub fn revoke_keeping_stores(&mut self) {
        assert!(
            self.in_flight.is_none(),
            "a batch in flight is aborted first"
        );
        self.positions.clear();
        self.committed.clear();
    }

    /// At the sync of `generation`: keeps the stores of the partitions in
    /// `assignment` if they were held through the previous generation, else
    /// drops every store. Returns how many stores were kept.
    pub fn sync_stores(&mut self, generation: i32, assignment: &[TopicPartition]) -> usize {
        assert!(
            self.stores_generation.is_none_or(|held| generation > held),
            "generations only grow: held {:?}, synced {generation}",
            self.stores_generation
        );
        let held_through_previous = self.stores_generation == Some(generation - 1);
        self.positions.clear();
        self.committed.clear();
        self.in_flight = None;
        if !held_through_previous {
            self.host.clear();
        }
        let assigned = assignment
            .iter()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect();
        // The slots still missing are restored at the next poll (`restore.rs`).
        let _missing = self.host.retain_assigned(&assigned);
        let kept = self.host.store_count();
        assert!(held_through_previous || kept == 0);
        self.stores_generation = Some(generation);
        kept
    }

    /// A crash: memory gone, a new incarnation, not a member any more (the
    /// group notices only when the session times out).
    pub fn crash(&mut self) {
        self.drop_tasks();
        self.producer = None;
        self.membership = Membership::Down;
        self.incarnation += 1;
        self.paused = false;
    }

    pub fn is_live(&self, incarnation: u32) -> bool {
        self.incarnation == incarnation && self.membership != Membership::Down
    }

    pub fn member_id(&self) -> Option<&MemberId> {
        match &self.membership {
            Membership::Joining { member } => member.as_ref(),
            Membership::Stable { member, .. } => Some(member),
            Membership::Down => None,
        }
    }

    pub fn assignment(&self) -> &[TopicPartition] {
        match &self.membership {
            Membership::Stable { assignment, .. } => assignment,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::task::hardened::HardenedConfig;
    use marlow_model::task::topics;
    use marlow_model::DesignConfig;

    fn instance_holding(partitions: &[u32], generation: i32) -> Instance {
        let host = TaskHost::new(&DesignConfig::Hardened(HardenedConfig::default()), true);
        let mut instance = Instance::new(0, host);
        let assignment = commands(partitions);
        instance.sync_stores(generation, &assignment);
        for tp in &assignment {
            let restore = instance.host.begin_restore((0, tp.partition));
            let _step = instance.host.finish_restore(restore, 0);
        }
        assert_eq!(instance.host.store_count(), partitions.len());
        instance
    }

    fn commands(partitions: &[u32]) -> Vec<TopicPartition> {
        partitions
            .iter()
            .map(|p| TopicPartition::new(topics::COMMANDS, *p))
            .collect()
    }

    /// The next generation reuses the stores of the partitions it gives back
    /// and drops the others; a later one (a generation skipped, in which
    /// another member may have had them) drops every store.
    #[test]
    fn stores_are_kept_only_into_the_generation_that_follows() {
        let mut next = instance_holding(&[0, 1, 2], 4);
        next.revoke_keeping_stores();
        assert_eq!(next.sync_stores(5, &commands(&[1, 2, 3])), 2);
        assert!(next.host.has_store((0, 1)) && !next.host.has_store((0, 0)));
        let mut skipped = instance_holding(&[0, 1], 4);
        skipped.revoke_keeping_stores();
        assert_eq!(skipped.sync_stores(6, &commands(&[0, 1])), 0);
        assert_eq!(skipped.stores_generation, Some(6));
        let mut dropped = instance_holding(&[0], 4);
        dropped.drop_tasks();
        assert_eq!(dropped.sync_stores(5, &commands(&[0])), 0);
    }

    /// Positions ahead of what was committed, or a batch in flight, leave the
    /// stores unsettled: they hold writes the log does not.
    #[test]
    fn stores_are_settled_only_when_everything_is_committed() {
        let mut instance = instance_holding(&[0], 1);
        assert!(instance.stores_settled());
        let tp = TopicPartition::new(topics::COMMANDS, 0);
        instance.positions.insert(tp.clone(), 5);
        instance.committed.insert(tp.clone(), 3);
        assert!(!instance.stores_settled());
        instance.committed.insert(tp, 5);
        assert!(instance.stores_settled());
        instance.in_flight = Some(PendingBatch::new(true));
        assert!(!instance.stores_settled());
    }

    #[test]
    #[should_panic(expected = "generations only grow")]
    fn a_generation_older_than_the_stores_is_refused() {
        let mut instance = instance_holding(&[0], 4);
        instance.sync_stores(3, &commands(&[0]));
    }
}
