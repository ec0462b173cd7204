//! The app instances of a real run: each an OS thread with a consumer-group member on the
//! commands topic (read_committed) and a transactional producer. On assignment it restores
//! each new partition's store from the changelog; then, per polled batch, it runs the
//! hardened task and commits outputs, changelog writes and input offsets in one
//! transaction. Any transaction error aborts, drops the stores, rewinds to the committed
//! offsets and restores again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use marlow_model::task::hardened::HardenedTask;
use marlow_model::task::{topics, InputRecord, KvStore, StoreWrite, StreamTask};
use marlow_model::Account;
use marlow_sim::history::Step;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{ClientContext, Offset};

use super::capture::{read_topic_to_end, Recorder};
use super::{ClientSettings, RealError, CHANGELOG};
use crate::client::{
    create_producer, producer_config, LoggedProducer, ReadIsolation, CLIENT_TIMEOUT_MS,
    POLL_STEP_MS,
};
use crate::deadline::Deadline;
use crate::topics::RunNamespace;

/// Scenarios compress time for the simulator; a real broker refuses a session timeout
/// below its `group.min.session.timeout.ms` (6 s by default), so real mode uses at least this.
pub const MIN_SESSION_TIMEOUT_MS: u64 = 6_000;
/// librdkafka requires `transaction.timeout.ms` >= `message.timeout.ms`.
pub const MIN_TRANSACTION_TIMEOUT_MS: u64 = 2 * CLIENT_TIMEOUT_MS;

/// What one instance did, for the report.
#[derive(Debug, Clone, Default)]
pub struct InstanceStats {
    pub index: u32,
    pub records_processed: u64,
    pub transactions_committed: u64,
    pub transactions_aborted: u64,
    pub rebalances: u64,
    pub restores: u64,
    pub records_restored: u64,
    /// Why the instance stopped early, if it did (a fatal client error, a stuck stop).
    pub error: Option<String>,
}

/// A group member's context: notes that a rebalance happened (the default rebalance
/// handling assigns and revokes; the loop reacts between polls).
#[derive(Default)]
struct MemberContext {
    changed: AtomicBool,
    rebalances: AtomicU64,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
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
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Which commands partitions each instance owns now, for the start-up wait.
pub(super) type Assignments = Arc<Mutex<BTreeMap<u32, BTreeSet<i32>>>>;

/// Everything an instance thread needs.
pub(super) struct Instance {
    pub(super) index: u32,
    pub(super) ns: RunNamespace,
    pub(super) settings: ClientSettings,
    pub(super) task: HardenedTask,
    pub(super) max_poll_records: usize,
    pub(super) session_timeout_ms: u64,
    pub(super) transaction_timeout_ms: u64,
    pub(super) recorder: Arc<Recorder>,
    /// The run's stop flag.
    pub(super) stop_all: Arc<AtomicBool>,
    /// This instance's own stop flag (a clean stop or a scale-in).
    pub(super) stop: Arc<AtomicBool>,
    pub(super) assignments: Assignments,
}

impl Instance {
    pub(super) fn run(self) -> InstanceStats {
        let mut stats = InstanceStats {
            index: self.index,
            ..InstanceStats::default()
        };
        if let Err(error) = self.run_loop(&mut stats) {
            stats.error = Some(error.to_string());
        }
        self.publish_assignment(&BTreeSet::new());
        stats
    }

    fn member(&self) -> Result<Member, RealError> {
        let mut config = self.settings.base();
        config
            .set("group.id", format!("{}app", self.ns.prefix()))
            .set(
                "client.id",
                format!("{}app-{}", self.ns.prefix(), self.index),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "isolation.level",
                ReadIsolation::ReadCommitted.config_value(),
            )
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", "500");
        let member: Member = self
            .settings
            .apply(config)
            .create_with_context(MemberContext::default())?;
        member.subscribe(&[self.ns.guard(&self.ns.topic(topics::COMMANDS)?)?])?;
        Ok(member)
    }

    fn producer(&self) -> Result<LoggedProducer, RealError> {
        let mut config = producer_config(&self.settings.bootstrap);
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

    fn run_loop(&self, stats: &mut InstanceStats) -> Result<(), RealError> {
        let producer = self.producer()?;
        let member = self.member()?;
        let mut stores: BTreeMap<i32, KvStore> = BTreeMap::new();
        while !self.stop_all.load(Ordering::SeqCst) && !self.stop.load(Ordering::SeqCst) {
            let batch = self.poll_batch(&member, &mut stores, stats)?;
            if batch.is_empty() {
                continue;
            }
            if let Err(error) = self.process(&producer, &member, &mut stores, &batch, stats) {
                self.recover(&producer, &member, &mut stores, stats, error)?;
            }
        }
        // No transaction is open here. Dropping the member closes it: a clean LeaveGroup.
        drop(member);
        Ok(())
    }

    /// Polls up to `max_poll_records`. A rebalance ends the batch: records polled before it
    /// are dropped (their partitions restart from the committed offsets), the record of the
    /// poll that saw it is kept, and the stores are brought in line with the assignment.
    fn poll_batch(
        &self,
        member: &Member,
        stores: &mut BTreeMap<i32, KvStore>,
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
                    batch.push(Polled {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                    true
                }
                // Consumer errors are transient (librdkafka retries); the batch ends here.
                Some(Err(_)) | None => false,
            };
            if rebalanced {
                stats.rebalances = member.context().rebalances.load(Ordering::SeqCst);
                self.sync_stores(member, stores, stats)?;
                break;
            }
            if !got_record {
                break;
            }
        }
        batch.retain(|p| stores.contains_key(&p.partition));
        Ok(batch)
    }

    /// Drops the stores of partitions no longer assigned and restores the new ones.
    fn sync_stores(
        &self,
        member: &Member,
        stores: &mut BTreeMap<i32, KvStore>,
        stats: &mut InstanceStats,
    ) -> Result<(), RealError> {
        let assigned: BTreeSet<i32> = member
            .assignment()?
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        stores.retain(|p, _| assigned.contains(p));
        let new: Vec<i32> = assigned
            .iter()
            .copied()
            .filter(|p| !stores.contains_key(p))
            .collect();
        if !new.is_empty() {
            stores.extend(self.restore(&new, stats)?);
        }
        self.publish_assignment(&assigned);
        Ok(())
    }

    pub(super) fn publish_assignment(&self, assigned: &BTreeSet<i32>) {
        self.assignments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.index, assigned.clone());
    }

    /// Rebuilds the stores of `partitions` from their changelog partitions, read_committed
    /// to the end, and records each restore with the accounts the store holds.
    fn restore(
        &self,
        partitions: &[i32],
        stats: &mut InstanceStats,
    ) -> Result<BTreeMap<i32, KvStore>, RealError> {
        let topic = self.ns.topic(CHANGELOG)?;
        let by_partition = read_topic_to_end(
            self.settings.reader(),
            &self.ns,
            &topic,
            partitions,
            ReadIsolation::ReadCommitted,
        )?;
        let mut stores = BTreeMap::new();
        for (partition, records) in by_partition {
            let writes: Vec<StoreWrite> = records
                .into_iter()
                .map(|r| StoreWrite {
                    key: r.key.unwrap_or_default(),
                    value: Some(r.value),
                })
                .collect();
            let store = KvStore::from_changelog(&writes);
            stats.restores += 1;
            stats.records_restored += writes.len() as u64;
            let accounts: Vec<Account> = store
                .iter()
                .filter(|(key, _)| key.starts_with(b"acct/"))
                .filter_map(|(key, _)| store.get_typed::<Account>(key))
                .collect();
            self.recorder.defer_restore(Step::Restore {
                instance: self.index,
                task: self.task.name().to_owned(),
                partition: u32::try_from(partition).unwrap_or(0),
                records_replayed: writes.len() as u64,
                accounts,
            });
            stores.insert(partition, store);
        }
        Ok(stores)
    }

    /// Runs the task over a batch and commits everything in one transaction.
    fn process(
        &self,
        producer: &LoggedProducer,
        member: &Member,
        stores: &mut BTreeMap<i32, KvStore>,
        batch: &[Polled],
        stats: &mut InstanceStats,
    ) -> Result<(), RealError> {
        let changelog = self.ns.topic(CHANGELOG)?;
        let commands = self.ns.topic(topics::COMMANDS)?;
        producer.begin_transaction()?;
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        for polled in batch {
            let store = stores
                .get_mut(&polled.partition)
                .expect("the batch holds only partitions with a store");
            let input = InputRecord {
                topic: topics::COMMANDS,
                partition: u32::try_from(polled.partition).unwrap_or(0),
                offset: u64::try_from(polled.offset).unwrap_or(0),
                key: polled.key.as_deref(),
                value: polled.value.as_deref(),
            };
            let output = self.task.process(store, &input);
            for record in &output.records {
                let topic = self.ns.topic(record.topic)?;
                let out = BaseRecord::to(&topic)
                    .key(&record.key)
                    .payload(&record.value);
                producer.send(out).map_err(|(e, _)| e)?;
            }
            for write in &output.store_writes {
                let mut out: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&changelog)
                    .key(write.key.as_slice())
                    .partition(polled.partition);
                if let Some(value) = &write.value {
                    out = out.payload(value.as_slice());
                }
                producer.send(out).map_err(|(e, _)| e)?;
                store.apply(write);
            }
            let previous = next_offsets.insert(polled.partition, polled.offset + 1);
            assert!(
                previous.is_none_or(|p| p <= polled.offset),
                "offsets went backwards within one batch"
            );
            stats.records_processed += 1;
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in &next_offsets {
            offsets.add_partition_offset(&commands, *partition, Offset::Offset(*next))?;
        }
        let group = member.group_metadata().ok_or(RealError::NoGroupMetadata)?;
        let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS);
        producer.send_offsets_to_transaction(&offsets, &group, timeout)?;
        fast_flush(producer);
        producer.commit_transaction(timeout)?;
        let _ = producer.context().take();
        stats.transactions_committed += 1;
        Ok(())
    }

    /// After a failed transaction: abort it (a fatal error ends the instance), drop every
    /// store, rewind to the committed offsets and restore.
    fn recover(
        &self,
        producer: &LoggedProducer,
        member: &Member,
        stores: &mut BTreeMap<i32, KvStore>,
        stats: &mut InstanceStats,
        error: RealError,
    ) -> Result<(), RealError> {
        if let RealError::Kafka(KafkaError::Transaction(e)) = &error {
            if e.is_fatal() {
                return Err(error);
            }
        }
        let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS);
        // A BaseProducer serves no delivery reports while aborting: flush first.
        let _ = producer.flush(timeout);
        producer.abort_transaction(timeout)?;
        let _ = producer.context().take();
        stats.transactions_aborted += 1;
        stores.clear();
        let committed = member.committed(timeout)?;
        for e in committed.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            member.seek(e.topic(), e.partition(), offset, timeout)?;
        }
        self.sync_stores(member, stores, stats)
    }
}

/// Serves delivery reports in 1 ms steps until nothing is in flight (BaseProducer's flush
/// polls in 100 ms steps, which would dominate a small transaction's latency).
fn fast_flush(producer: &LoggedProducer) {
    let deadline = Deadline::after_ms(CLIENT_TIMEOUT_MS);
    while producer.in_flight_count() > 0 && !deadline.passed() {
        producer.poll(Duration::from_millis(1));
    }
}
