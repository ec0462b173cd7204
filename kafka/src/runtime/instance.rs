//! The app instances of a real run: each an OS thread with a consumer-group member on the
//! design's input topics and a producer. On assignment it restores each new partition's
//! task stores (`tasks.rs`); then, per polled batch, it runs the design's tasks and, under
//! exactly-once, commits outputs, changelog writes and input offsets in one transaction
//! (read_committed, transactional producer); under at-least-once it produces and flushes
//! the outputs first and then commits the input offsets through the consumer, so a crash in
//! between processes the batch again (read_uncommitted, idempotent producer). The batch's
//! order and what a failure leads to are the shared ones (`marlow_harness::batch`): an
//! abortable error aborts, undoes the batch's store writes and rewinds to the committed
//! offsets; a fenced or fatal producer is replaced by a new one with the same
//! transactional id, and the stores are restored; any other error aborts, drops the
//! stores, rewinds and restores again.
//!
//! Faults are driven through `InstanceControl`: a clean stop leaves the group; a crash ends
//! the thread wherever it is, with its transaction left open and without a LeaveGroup (every
//! member is a static member, `group.instance.id`, and librdkafka never sends LeaveGroup
//! when a static member is closed); a pause stops polling and holds an open transaction, so
//! a pause past `max.poll.interval.ms` returns as a zombie that the broker must fence.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use marlow_model::task::{topics, InputRecord};
use marlow_model::DesignConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{ClientContext, Offset};
use serde::{Deserialize, Serialize};

use super::reports::Reports;
use super::tasks::{InputPartition, RestoreContext, Tasks};
use super::{ClientSettings, RealError};
use crate::client::{
    create_producer, producer_config, LoggedProducer, ReadIsolation, CLIENT_TIMEOUT_MS,
    POLL_STEP_MS,
};
use crate::deadline::Deadline;
use crate::topics::RunNamespace;
use marlow_harness::batch::{recovery, Batch, Destination, Failure, Produce, Recovery, Stage};

/// Scenarios compress time for the simulator; a real broker refuses a session timeout
/// below its `group.min.session.timeout.ms` (6 s by default), so real mode uses at least this.
pub const MIN_SESSION_TIMEOUT_MS: u64 = 6_000;
/// An instance producer's `message.timeout.ms`: librdkafka requires `transaction.timeout.ms`
/// to be at least this.
const INSTANCE_MESSAGE_TIMEOUT_MS: u64 = 5_000;
/// The floor of `transaction.timeout.ms`. A crashed instance's open transaction blocks
/// read_committed readers of its partitions until it times out (or a restart fences it),
/// so it is kept short.
pub const MIN_TRANSACTION_TIMEOUT_MS: u64 = 2 * INSTANCE_MESSAGE_TIMEOUT_MS;
/// How long a clean stop waits for the group to take its partitions back.
const LEAVE_TIMEOUT_MS: u64 = 10_000;
/// How often a paused instance looks at its control.
const PAUSE_STEP_MS: u64 = 5;
/// See `InstanceControl::paused_idle`.
const PAUSE_GRACE_MS: u64 = 1_000;

/// The app instances' consumer group.
pub(super) fn group_id(ns: &RunNamespace) -> String {
    format!("{}app", ns.prefix())
}

/// An incarnation's `client.id`: the instance and how many times it was restarted.
pub(super) fn member_name(ns: &RunNamespace, index: u32, incarnation: u32) -> String {
    format!("{}app-{index}.{incarnation}", ns.prefix())
}

/// An instance's static `group.instance.id`, the same for every incarnation, as a
/// deployment with static membership keeps one per pod: a restart takes over the
/// crashed member's place at once instead of waiting for the broker to drop it (noida-db
/// never does, CI.md). Static membership also means a crash sends no LeaveGroup.
pub(super) fn group_instance_id(ns: &RunNamespace, index: u32) -> String {
    format!("{}app-{index}", ns.prefix())
}

/// How the run steers one instance from outside its thread.
#[derive(Debug, Default)]
pub struct InstanceControl {
    /// Finish the batch, leave the group, stop (a clean stop or a scale-in).
    pub stop: AtomicBool,
    /// Stop at once, leaving the transaction open and the group unaware.
    pub crash: AtomicBool,
    /// Paused until this time on the recorder's clock (0: running; `u64::MAX`: until told).
    pub paused_until_us: AtomicU64,
    /// When the current pause was asked for.
    pub paused_since_us: AtomicU64,
    /// Pauses that froze the instance holding an open transaction.
    pub paused_mid_transaction: AtomicU64,
}

impl InstanceControl {
    /// Paused, at a point with a transaction open.
    pub(super) fn paused(&self, now_us: u64) -> bool {
        now_us < self.paused_until_us.load(Ordering::SeqCst)
    }

    /// Paused, at the top of the loop with no transaction open. For its first
    /// `PAUSE_GRACE_MS` a pause lets the loop run on, so that it freezes inside its next
    /// transaction if one comes (where a pause does harm: the zombie case) rather than
    /// nearly always between polls.
    fn paused_idle(&self, now_us: u64) -> bool {
        self.paused(now_us)
            && now_us >= self.paused_since_us.load(Ordering::SeqCst) + PAUSE_GRACE_MS * 1000
    }
}

/// Why an instance thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceEnd {
    /// It left the group (a clean stop, or the end of the run).
    #[default]
    Stopped,
    /// It was crashed by the fault plan.
    Crashed,
    /// A fatal client error ended it (see `InstanceStats::error`).
    Failed,
}

/// What one instance did, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStats {
    pub index: u32,
    /// 0 for the first start, then one more per restart.
    pub incarnation: u32,
    pub end: InstanceEnd,
    pub records_processed: u64,
    pub transactions_committed: u64,
    pub transactions_aborted: u64,
    /// Aborts survived with the stores kept (the batch undone, no restore).
    pub aborts_survived: u64,
    /// Producers replaced after a fatal error or a fence (a new epoch fences the old).
    pub producers_replaced: u64,
    pub rebalances: u64,
    pub restores: u64,
    pub records_restored: u64,
    /// Transactions the broker refused because this instance had been fenced (a zombie).
    pub fenced: u64,
    /// Pauses that froze it holding an open transaction.
    pub paused_mid_transaction: u64,
    /// Why the instance stopped early, if it did (a fatal client error, a stuck stop).
    pub error: Option<String>,
}

/// A group member's context: notes that a rebalance happened (the default rebalance
/// handling assigns and revokes; the loop reacts between polls), and whether the
/// assignment was lost rather than revoked.
#[derive(Default)]
struct MemberContext {
    changed: AtomicBool,
    rebalances: AtomicU64,
    /// The member's session expired (it was paused, or cut off): the group went on
    /// without it, so another member may have processed its partitions meanwhile, and a
    /// store kept for one of them would be stale. Its stores are dropped, not retained.
    lost: AtomicBool,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Revoke(_)) && consumer.assignment_lost() {
            self.lost.store(true, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Error(_)) {
            self.changed.store(true, Ordering::SeqCst);
            self.rebalances.fetch_add(1, Ordering::SeqCst);
        }
    }
}

type Member = BaseConsumer<MemberContext>;

/// One polled input record, owned.
struct Polled {
    /// The model's (short) name of the record's topic.
    topic: &'static str,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Everything an instance thread needs.
pub(super) struct Instance {
    pub(super) index: u32,
    pub(super) incarnation: u32,
    pub(super) ns: RunNamespace,
    pub(super) settings: ClientSettings,
    pub(super) design: DesignConfig,
    /// Exactly-once (transactions, read_committed) or at-least-once processing.
    pub(super) exactly_once: bool,
    pub(super) max_poll_records: usize,
    pub(super) session_timeout_ms: u64,
    pub(super) transaction_timeout_ms: u64,
    /// Where its restores and assignments go: the run's recorder, or a parent process.
    pub(super) reports: Reports,
    /// The run's stop flag.
    pub(super) stop_all: Arc<AtomicBool>,
    pub(super) control: Arc<InstanceControl>,
}

/// How processing a batch ended.
enum BatchEnd {
    Committed,
    Crashed,
    Failed(RealError, Box<RealBatch>),
}

/// A batch as real mode names input partitions.
type RealBatch = Batch<InputPartition>;

impl Instance {
    pub(super) fn run(self) -> InstanceStats {
        let mut stats = InstanceStats {
            index: self.index,
            incarnation: self.incarnation,
            ..InstanceStats::default()
        };
        stats.end = match self.run_loop(&mut stats) {
            Ok(end) => end,
            Err(error) => {
                stats.error = Some(error.to_string());
                InstanceEnd::Failed
            }
        };
        self.publish_assignment(&BTreeSet::new());
        stats.paused_mid_transaction = self.control.paused_mid_transaction.load(Ordering::SeqCst);
        self.reports.finished(&stats);
        stats
    }

    pub(super) fn member_name(&self) -> String {
        member_name(&self.ns, self.index, self.incarnation)
    }

    fn member(&self, tasks: &Tasks) -> Result<Member, RealError> {
        let mut config = self.settings.base();
        let name = self.member_name();
        let isolation = self.isolation();
        config
            .set("group.id", group_id(&self.ns))
            .set("client.id", &name)
            .set("group.instance.id", group_instance_id(&self.ns, self.index))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", isolation.config_value())
            // Range assigns partition p of every (equally partitioned) input topic to one
            // member, so a task reading two topics (the seed validator's join) finds both
            // sides of partition p in one store, as in the simulator.
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            // A paused instance stops polling; past this it is out of the group, and its
            // open transaction must be refused when it comes back.
            .set("max.poll.interval.ms", self.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", "500");
        let member: Member = self
            .settings
            .apply(config)
            .create_with_context(MemberContext::default())?;
        let inputs = tasks
            .input_topics()
            .into_iter()
            .map(|t| Ok(self.ns.guard(&self.ns.topic(t)?)?.to_owned()))
            .collect::<Result<Vec<String>, RealError>>()?;
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        member.subscribe(&inputs)?;
        Ok(member)
    }

    /// How this instance reads its inputs and changelogs (the simulator's rule).
    fn isolation(&self) -> ReadIsolation {
        match self.exactly_once {
            true => ReadIsolation::ReadCommitted,
            false => ReadIsolation::ReadUncommitted,
        }
    }

    fn producer(&self) -> Result<LoggedProducer, RealError> {
        let mut config = producer_config(&self.settings.bootstrap);
        config.set(
            "message.timeout.ms",
            INSTANCE_MESSAGE_TIMEOUT_MS.to_string(),
        );
        if !self.exactly_once {
            // At-least-once: no transactions, but no duplicates from the producer's own
            // retries either; duplicates come from re-processing after a crash.
            config.set("enable.idempotence", "true");
            return Ok(create_producer(&self.settings.apply(config))?);
        }
        // The same transactional id across incarnations: a restart fences the crashed
        // incarnation's producer and aborts its open transaction.
        config
            .set(
                "transactional.id",
                format!("{}app-{}", self.ns.prefix(), self.index),
            )
            .set(
                "transaction.timeout.ms",
                self.transaction_timeout_ms.to_string(),
            );
        let producer = create_producer(&self.settings.apply(config))?;
        producer.init_transactions(Duration::from_millis(CLIENT_TIMEOUT_MS))?;
        Ok(producer)
    }

    fn run_loop(&self, stats: &mut InstanceStats) -> Result<InstanceEnd, RealError> {
        let mut producer = self.producer()?;
        let mut tasks = Tasks::new(&self.design, &self.ns, self.exactly_once)?;
        let member = self.member(&tasks)?;
        loop {
            if self.control.crash.load(Ordering::SeqCst) {
                return Ok(self.crash(member, producer));
            }
            if self.stop_all.load(Ordering::SeqCst) || self.control.stop.load(Ordering::SeqCst) {
                break;
            }
            if self.control.paused_idle(self.reports.now_us()) {
                std::thread::sleep(Duration::from_millis(PAUSE_STEP_MS));
                continue;
            }
            let batch = self.poll_batch(&member, &mut tasks, stats)?;
            if batch.is_empty() {
                continue;
            }
            match self.process(&producer, &member, &mut tasks, &batch, stats) {
                BatchEnd::Committed => self.reports.progress(stats),
                BatchEnd::Crashed => return Ok(self.crash(member, producer)),
                BatchEnd::Failed(error, mut batch) => {
                    let lost =
                        self.recover(&producer, &member, &mut tasks, stats, error, &mut batch)?;
                    if lost {
                        // The same transactional id: the new producer's epoch fences the old.
                        drop(producer);
                        producer = self.producer()?;
                        stats.producers_replaced += 1;
                    }
                }
            }
        }
        self.leave(&member);
        Ok(InstanceEnd::Stopped)
    }

    /// A clean stop: no transaction is open here. A static member's close does not leave
    /// the group, so it unsubscribes first (that sends LeaveGroup) and serves the revoke.
    fn leave(&self, member: &Member) {
        member.unsubscribe();
        let deadline = Deadline::after_ms(LEAVE_TIMEOUT_MS);
        while !deadline.passed() {
            let _ = member.poll(Duration::from_millis(POLL_STEP_MS));
            if member.assignment().map_or(true, |a| a.count() == 0) {
                break;
            }
        }
    }

    /// Ends the thread as a crash would: the member is closed without LeaveGroup (static
    /// membership), and the producer is dropped with its transaction open and unaborted.
    fn crash(&self, member: Member, producer: LoggedProducer) -> InstanceEnd {
        drop(member);
        drop(producer);
        InstanceEnd::Crashed
    }

    /// Holds the thread while paused (it neither polls nor commits). True if it was crashed
    /// meanwhile, or is to crash now.
    fn pause_point(&self) -> bool {
        if self.control.paused(self.reports.now_us()) {
            self.control
                .paused_mid_transaction
                .fetch_add(1, Ordering::SeqCst);
        }
        while self.control.paused(self.reports.now_us())
            && !self.control.crash.load(Ordering::SeqCst)
            && !self.stop_all.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(PAUSE_STEP_MS));
        }
        self.control.crash.load(Ordering::SeqCst)
    }

    /// Polls up to `max_poll_records`. A rebalance ends the batch: records polled before it
    /// are dropped (their partitions restart from the committed offsets), the record of the
    /// poll that saw it is kept, and the stores are brought in line with the assignment.
    fn poll_batch(
        &self,
        member: &Member,
        tasks: &mut Tasks,
        stats: &mut InstanceStats,
    ) -> Result<Vec<Polled>, RealError> {
        let mut batch = Vec::new();
        let mut wait = Duration::from_millis(POLL_STEP_MS);
        while batch.len() < self.max_poll_records {
            let polled = member.poll(wait);
            wait = Duration::ZERO;
            let rebalanced = member.context().changed.swap(false, Ordering::SeqCst);
            if rebalanced {
                batch.clear();
            }
            let got_record = match polled {
                Some(Ok(m)) => {
                    if let Some(topic) = tasks.short_name(m.topic()) {
                        batch.push(Polled {
                            topic,
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            value: m.payload().map(<[u8]>::to_vec),
                        });
                    }
                    true
                }
                // Consumer errors are transient (librdkafka retries); the batch ends here.
                Some(Err(_)) | None => false,
            };
            if rebalanced {
                stats.rebalances = member.context().rebalances.load(Ordering::SeqCst);
                self.sync_stores(member, tasks, stats)?;
                break;
            }
            if !got_record {
                break;
            }
        }
        batch.retain(|p| tasks.ready(p.topic, p.partition));
        Ok(batch)
    }

    /// Drops the stores of partitions no longer assigned (every store, when the assignment
    /// was lost) and restores the new ones.
    fn sync_stores(
        &self,
        member: &Member,
        tasks: &mut Tasks,
        stats: &mut InstanceStats,
    ) -> Result<(), RealError> {
        let assigned: BTreeSet<InputPartition> = member
            .assignment()?
            .elements()
            .iter()
            .filter_map(|e| Some((tasks.short_name(e.topic())?, e.partition())))
            .collect();
        if member.context().lost.swap(false, Ordering::SeqCst) {
            tasks.clear();
        }
        let missing = tasks.retain_assigned(&assigned);
        if !missing.is_empty() {
            self.wait_stable_offsets(member, &assigned)?;
            let ctx = RestoreContext {
                instance: self.index,
                ns: &self.ns,
                settings: &self.settings,
                reports: &self.reports,
                isolation: self.isolation(),
            };
            for (task, partition) in missing {
                stats.records_restored += tasks.restore(task, partition, &ctx)?;
                stats.restores += 1;
            }
        }
        let commands: BTreeSet<i32> = assigned
            .iter()
            .filter(|(topic, _)| *topic == topics::COMMANDS)
            .map(|(_, p)| *p)
            .collect();
        self.publish_assignment(&commands);
        Ok(())
    }

    /// Waits until no transaction that commits offsets of `partitions` is still open (the
    /// broker answers a read_committed member's offset fetch only then, KIP-447). A crashed
    /// owner's open transaction may still commit; restoring before it resolves would miss
    /// its changelog writes while the offsets move past its inputs.
    fn wait_stable_offsets(
        &self,
        member: &Member,
        partitions: &BTreeSet<InputPartition>,
    ) -> Result<(), RealError> {
        let mut wanted = TopicPartitionList::new();
        for (topic, p) in partitions {
            wanted.add_partition(&self.ns.topic(topic)?, *p);
        }
        member.committed_offsets(wanted, Duration::from_millis(CLIENT_TIMEOUT_MS))?;
        Ok(())
    }

    /// Publishes the commands partitions this instance owns (the start-up wait and the
    /// fault plan look at the commands topic only).
    pub(super) fn publish_assignment(&self, assigned: &BTreeSet<i32>) {
        self.reports.assigned(self.index, assigned);
    }

    /// Runs the tasks over a batch and commits it, in the order the shared batch fixes
    /// (`marlow_harness::batch`): one transaction under exactly-once, or flushed outputs
    /// then a synchronous offset commit under at-least-once. The group metadata is taken
    /// before the batch runs: a rebalance during a pause then makes the broker refuse the
    /// offsets (the zombie is fenced) rather than accept them under the new generation.
    fn process(
        &self,
        producer: &LoggedProducer,
        member: &Member,
        tasks: &mut Tasks,
        polled: &[Polled],
        stats: &mut InstanceStats,
    ) -> BatchEnd {
        let mut batch = RealBatch::new(self.exactly_once);
        let Some(group) = member.group_metadata() else {
            return BatchEnd::Failed(RealError::NoGroupMetadata, Box::new(batch));
        };
        for record in polled {
            let input = InputRecord {
                topic: record.topic,
                partition: u32::try_from(record.partition).unwrap_or(0),
                offset: u64::try_from(record.offset).unwrap_or(0),
                key: record.key.as_deref(),
                value: record.value.as_deref(),
            };
            batch.consume(tasks.host_mut(), (record.topic, record.partition), &input);
            stats.records_processed += 1;
        }
        if let Err(error) = self.produce_batch(producer, tasks, &mut batch) {
            return BatchEnd::Failed(error, Box::new(batch));
        }
        if self.pause_point() {
            return BatchEnd::Crashed;
        }
        let committed = match self.exactly_once {
            true => self.commit(producer, &mut batch, &group),
            false => self.commit_offsets(member, &batch),
        };
        match committed {
            Ok(()) => {
                stats.transactions_committed += 1;
                BatchEnd::Committed
            }
            Err(error) => {
                if is_fencing(&error) {
                    stats.fenced += 1;
                }
                BatchEnd::Failed(error, Box::new(batch))
            }
        }
    }

    /// Produces the batch's outputs and changelog writes: in a new transaction under
    /// exactly-once; flushed and checked under at-least-once.
    fn produce_batch(
        &self,
        producer: &LoggedProducer,
        tasks: &Tasks,
        batch: &mut RealBatch,
    ) -> Result<(), RealError> {
        if self.exactly_once {
            producer.begin_transaction()?;
            batch.begun();
        }
        // At-least-once, each wave is flushed before the next is sent
        // (`Batch::waves`: the facts before the answers derived from them).
        for wave in batch.waves(tasks.host()) {
            for Produce { to, key, value } in wave {
                let output;
                let mut out: BaseRecord<'_, [u8], [u8]> = match to {
                    Destination::Output(topic) => {
                        output = self.ns.topic(topic)?;
                        BaseRecord::to(&output).key(key)
                    }
                    Destination::Changelog { task, partition } => {
                        BaseRecord::to(tasks.changelog(task))
                            .key(key)
                            .partition(i32::try_from(partition).unwrap_or(i32::MAX))
                    }
                };
                if let Some(value) = value {
                    out = out.payload(value);
                }
                producer.send(out).map_err(|(e, _)| e)?;
            }
            if !self.exactly_once {
                fast_flush(producer);
                let failed = producer.context().take().into_iter().find_map(|d| d.error);
                if let Some(error) = failed {
                    return Err(RealError::Delivery(error));
                }
                // A flush that ran out of time is not durable: the next wave must
                // not go out ahead of this one.
                let in_flight = producer.in_flight_count();
                if in_flight > 0 {
                    return Err(RealError::Delivery(format!(
                        "{in_flight} records still in flight after the flush"
                    )));
                }
            }
        }
        batch.produced();
        if !self.exactly_once {
            batch.flushed();
        }
        Ok(())
    }

    fn offsets_list(&self, batch: &RealBatch) -> Result<TopicPartitionList, RealError> {
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in batch.next_offsets() {
            let topic = self.ns.topic(topic)?;
            let next = i64::try_from(*next).unwrap_or(i64::MAX);
            offsets.add_partition_offset(&topic, *partition, Offset::Offset(next))?;
        }
        Ok(offsets)
    }

    /// Adds the input offsets to the transaction under `group` and commits it.
    fn commit(
        &self,
        producer: &LoggedProducer,
        batch: &mut RealBatch,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), RealError> {
        let offsets = self.offsets_list(batch)?;
        let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS);
        producer.send_offsets_to_transaction(&offsets, group, timeout)?;
        batch.offsets_sent();
        fast_flush(producer);
        producer.commit_transaction(timeout)?;
        batch.committed();
        let _ = producer.context().take();
        Ok(())
    }

    /// At-least-once: the outputs are flushed; now the input offsets are committed through
    /// the consumer, synchronously. A crash before this point re-processes the batch.
    fn commit_offsets(&self, member: &Member, batch: &RealBatch) -> Result<(), RealError> {
        assert_eq!(batch.stage(), Stage::Flushed, "offsets before the outputs");
        let offsets = self.offsets_list(batch)?;
        member.commit(&offsets, CommitMode::Sync)?;
        Ok(())
    }

    /// After a failed batch, what the shared rule (`marlow_harness::batch::recovery`)
    /// says: abort its transaction under exactly-once (unless the producer is lost), then
    /// either undo its store writes (an abortable error) or drop every store and restore;
    /// both rewind to the committed offsets. librdkafka rejoins the group by itself. Returns
    /// whether the producer is lost (fenced, or a fatal error such as a broker that forgot
    /// its sequence numbers), for the caller to start a new one.
    fn recover(
        &self,
        producer: &LoggedProducer,
        member: &Member,
        tasks: &mut Tasks,
        stats: &mut InstanceStats,
        error: RealError,
        batch: &mut RealBatch,
    ) -> Result<bool, RealError> {
        let recovery = recovery(failure_of(&error));
        let lost = matches!(
            recovery,
            Recovery::Restore {
                new_producer: true,
                ..
            }
        );
        let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS);
        let survive = recovery == Recovery::Survive;
        if !lost {
            // A BaseProducer serves no delivery reports while aborting: flush first.
            let _ = producer.flush(timeout);
            if self.exactly_once {
                producer.abort_transaction(timeout)?;
            }
        }
        if self.exactly_once {
            // A lost producer's transaction is aborted by the broker when the new
            // producer fences it.
            batch.aborted(tasks.host_mut(), survive);
        }
        let _ = producer.context().take();
        stats.transactions_aborted += 1;
        if !survive {
            tasks.clear();
        }
        let committed = member.committed(timeout)?;
        for e in committed.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            member.seek(e.topic(), e.partition(), offset, timeout)?;
        }
        match survive {
            true => stats.aborts_survived += 1,
            false => self.sync_stores(member, tasks, stats)?,
        }
        Ok(lost)
    }
}

/// rdkafka's error, as the shared recovery rule names failures.
fn failure_of(error: &RealError) -> Failure {
    let RealError::Kafka(kafka) = error else {
        return Failure::Retriable;
    };
    if let KafkaError::Transaction(e) = kafka {
        if e.is_fatal() {
            return Failure::ProducerLost;
        }
    }
    match error_code(kafka) {
        Some(
            RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::Fenced,
        ) => Failure::ProducerLost,
        Some(RDKafkaErrorCode::UnknownMemberId) => Failure::UnknownMember,
        Some(RDKafkaErrorCode::IllegalGeneration | RDKafkaErrorCode::FencedInstanceId) => {
            Failure::GroupFenced
        }
        _ => match kafka {
            KafkaError::Transaction(e) if e.txn_requires_abort() => Failure::Abortable,
            _ => Failure::Retriable,
        },
    }
}

/// The broker's error code inside an rdkafka error, if it carries one.
fn error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::Transaction(e) => Some(e.code()),
        other => other.rdkafka_error_code(),
    }
}

/// Whether a transaction failed because this instance is no longer who the broker thinks
/// owns the work: a stale group generation or member, or a newer producer with its id.
fn is_fencing(error: &RealError) -> bool {
    let RealError::Kafka(error) = error else {
        return false;
    };
    matches!(
        error_code(error),
        Some(
            RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
        )
    )
}

/// Serves delivery reports in 1 ms steps until nothing is in flight (BaseProducer's flush
/// polls in 100 ms steps, which would dominate a small transaction's latency).
fn fast_flush(producer: &LoggedProducer) {
    let deadline = Deadline::after_ms(CLIENT_TIMEOUT_MS);
    while producer.in_flight_count() > 0 && !deadline.passed() {
        producer.poll(Duration::from_millis(1));
    }
}
