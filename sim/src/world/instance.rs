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
