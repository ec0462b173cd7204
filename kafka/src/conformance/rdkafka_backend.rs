//! The conformance suite's operations on a real broker through rdkafka. Every topic,
//! transactional id and group id is scoped to the run's namespace, every wait is bounded,
//! and group members are polled only while a step waits for them (an idle consumer makes
//! noida-db spin).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

use super::{BackendError, LogBackend, MetaSlot, ProducerSlot};
use crate::broker::BrokerUnderTest;
use crate::client::{
    self, base_config, create_producer, flush_deliveries, producer_config, ClientError,
    LoggedProducer, ReadIsolation, CLIENT_TIMEOUT_MS, POLL_STEP_MS,
};
use crate::deadline::Deadline;
use crate::topics::{RunNamespace, TopicSpec};

/// Bound on a group reaching a settled assignment (the mock's first join alone takes 3 s).
const GROUP_SETTLE_TIMEOUT_MS: u64 = 20_000;
/// Session timeout of the suite's group members (ms), the lowest most brokers allow.
const SESSION_TIMEOUT_MS: u64 = 6_000;
/// Transaction timeout of the suite's transactional producers (ms).
const TXN_TIMEOUT_MS: u64 = 60_000;

type Member = BaseConsumer<DefaultConsumerContext>;

/// One record to produce: partition (`None`: by key), key, value.
struct Outgoing<'a> {
    partition: Option<i32>,
    key: Option<&'a [u8]>,
    value: &'a [u8],
}

/// A real broker as a `LogBackend`.
pub struct RdkafkaBackend<'b> {
    broker: &'b BrokerUnderTest,
    bootstrap: String,
    ns: RunNamespace,
    admin: Option<AdminClient<DefaultClientContext>>,
    partitions: BTreeMap<String, u32>,
    producers: Vec<LoggedProducer>,
    members: Vec<Member>,
    metas: Vec<ConsumerGroupMetadata>,
}

fn timeout() -> Duration {
    Duration::from_millis(CLIENT_TIMEOUT_MS)
}

fn is_timeout(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
    )
}

/// A broker's answer is a rejection; a timeout or a local failure to act is not.
fn classify(e: ClientError) -> BackendError {
    match &e {
        ClientError::Kafka(k) => match k.rdkafka_error_code() {
            Some(code) if is_timeout(code) => BackendError::Failed(e.to_string()),
            Some(code) => BackendError::Rejected(format!("{code:?}")),
            None => BackendError::Failed(e.to_string()),
        },
        ClientError::Delivery { error, .. } if !error.contains("timed out") => {
            BackendError::Rejected(error.clone())
        }
        _ => BackendError::Failed(e.to_string()),
    }
}

fn kafka(e: KafkaError) -> BackendError {
    classify(ClientError::Kafka(e))
}

fn to_i32(n: u32) -> Result<i32, BackendError> {
    i32::try_from(n).map_err(|_| BackendError::Failed(format!("partition {n} out of range")))
}

impl<'b> RdkafkaBackend<'b> {
    pub fn new(broker: &'b BrokerUnderTest, ns: RunNamespace) -> Result<Self, BackendError> {
        let bootstrap = broker.bootstrap_servers();
        let admin = match broker {
            BrokerUnderTest::Mock(_) => None,
            BrokerUnderTest::External(_) => Some(base_config(&bootstrap).create().map_err(kafka)?),
        };
        Ok(RdkafkaBackend {
            broker,
            bootstrap,
            ns,
            admin,
            partitions: BTreeMap::new(),
            producers: Vec::new(),
            members: Vec::new(),
            metas: Vec::new(),
        })
    }

    /// Closes every client and deletes the run's topics (on a mock cluster they go away
    /// with the cluster). Returns the deleted topics.
    pub fn finish(mut self) -> Result<Vec<String>, BackendError> {
        self.metas.clear();
        // Members leave one at a time so each close is a clean LeaveGroup.
        while let Some(member) = self.members.pop() {
            drop(member);
        }
        self.producers.clear();
        match &self.admin {
            Some(admin) => self
                .ns
                .delete_all(admin)
                .map_err(|e| BackendError::Failed(e.to_string())),
            None => Ok(Vec::new()),
        }
    }

    fn topic(&self, short: &str) -> Result<String, BackendError> {
        self.ns
            .topic(short)
            .map_err(|e| BackendError::Failed(e.to_string()))
    }

    fn producer(&self, p: ProducerSlot) -> Result<&LoggedProducer, BackendError> {
        self.producers
            .get(p.0)
            .ok_or_else(|| BackendError::Failed("no such producer".into()))
    }

    fn produce_batch(
        &self,
        extra: &[(&str, &str)],
        topic: &str,
        records: &[Outgoing<'_>],
    ) -> Result<Vec<client::Delivery>, BackendError> {
        let mut config = producer_config(&self.bootstrap);
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let producer = create_producer(&config).map_err(classify)?;
        for r in records {
            client::send(&producer, &self.ns, topic, r.partition, r.key, r.value)
                .map_err(classify)?;
        }
        flush_deliveries(&producer).map_err(classify)
    }

    fn member_config(&self, group: &str) -> rdkafka::ClientConfig {
        let mut config = base_config(&self.bootstrap);
        config
            .set("group.id", format!("{}{group}", self.ns.prefix()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
            .set("heartbeat.interval.ms", "1000");
        config
    }

    fn assignment_sizes(&self) -> Vec<usize> {
        self.members
            .iter()
            .map(|m| m.assignment().map(|a| a.count()).unwrap_or(0))
            .collect()
    }

    /// Polls every member until each has partitions and together they have `partitions`.
    fn wait_settled(&self, partitions: u32) -> Result<Vec<usize>, BackendError> {
        let deadline = Deadline::after_ms(GROUP_SETTLE_TIMEOUT_MS);
        while !deadline.passed() {
            for member in &self.members {
                // Records and transient errors are irrelevant here: only the assignment is.
                let _ = member.poll(Duration::from_millis(POLL_STEP_MS));
            }
            let sizes = self.assignment_sizes();
            let total: usize = sizes.iter().sum();
            if sizes.iter().all(|s| *s > 0) && total == partitions as usize {
                return Ok(sizes);
            }
        }
        Err(BackendError::Failed(format!(
            "group did not settle within {GROUP_SETTLE_TIMEOUT_MS} ms: sizes {:?}",
            self.assignment_sizes()
        )))
    }

    fn group_partitions(&self) -> u32 {
        let subscribed = self.members.first().and_then(|m| m.subscription().ok());
        let topic = subscribed
            .and_then(|s| s.elements().first().map(|e| e.topic().to_owned()))
            .unwrap_or_default();
        self.partitions.get(&topic).copied().unwrap_or(0)
    }
}

impl LogBackend for RdkafkaBackend<'_> {
    fn create_topic(&mut self, topic: &str, partitions: u32) -> Result<(), BackendError> {
        let full = self.topic(topic)?;
        match (self.broker, &self.admin) {
            (BrokerUnderTest::Mock(cluster), _) => cluster
                .create_topic(&full, to_i32(partitions)?, 1)
                .map_err(kafka)?,
            (BrokerUnderTest::External(_), Some(admin)) => {
                let spec = TopicSpec::new(topic, partitions);
                self.ns
                    .create(admin, &[spec])
                    .map_err(|e| BackendError::Failed(e.to_string()))?;
            }
            (BrokerUnderTest::External(_), None) => {
                return Err(BackendError::Failed("no admin client".into()))
            }
        }
        self.partitions.insert(full, partitions);
        Ok(())
    }

    fn produce_keyed(&mut self, topic: &str, keys: &[String]) -> Result<Vec<u32>, BackendError> {
        let full = self.topic(topic)?;
        let records: Vec<_> = keys
            .iter()
            .map(|k| Outgoing {
                partition: None,
                key: Some(k.as_bytes()),
                value: b"k",
            })
            .collect();
        let deliveries = self.produce_batch(&[("enable.idempotence", "false")], &full, &records)?;
        let mut by_key = BTreeMap::new();
        for d in deliveries {
            let partition = u32::try_from(d.partition).unwrap_or(u32::MAX);
            by_key.insert(d.key.unwrap_or_default(), partition);
        }
        keys.iter()
            .map(|k| {
                by_key
                    .get(k.as_bytes())
                    .copied()
                    .ok_or_else(|| BackendError::Failed(format!("no delivery report for {k}")))
            })
            .collect()
    }

    fn produce_idempotent(
        &mut self,
        topic: &str,
        partition: u32,
        values: &[String],
    ) -> Result<(), BackendError> {
        let full = self.topic(topic)?;
        let p = Some(to_i32(partition)?);
        let records: Vec<_> = values
            .iter()
            .map(|v| Outgoing {
                partition: p,
                key: None,
                value: v.as_bytes(),
            })
            .collect();
        self.produce_batch(&[("enable.idempotence", "true")], &full, &records)?;
        Ok(())
    }

    fn produce_sized(
        &mut self,
        topic: &str,
        partition: u32,
        sizes_bytes: &[usize],
    ) -> Result<(), BackendError> {
        let full = self.topic(topic)?;
        let p = Some(to_i32(partition)?);
        let payloads: Vec<Vec<u8>> = sizes_bytes.iter().map(|n| vec![b'x'; *n]).collect();
        let records: Vec<_> = payloads
            .iter()
            .map(|v| Outgoing {
                partition: p,
                key: None,
                value: v,
            })
            .collect();
        self.produce_batch(&[("enable.idempotence", "false")], &full, &records)?;
        Ok(())
    }

    fn read_values(
        &mut self,
        topic: &str,
        partition: u32,
        isolation: ReadIsolation,
    ) -> Result<Vec<String>, BackendError> {
        let full = self.topic(topic)?;
        let records = client::read_partition(
            &self.bootstrap,
            &self.ns,
            &full,
            to_i32(partition)?,
            isolation,
        )
        .map_err(classify)?;
        let text = |r: client::ReadRecord| String::from_utf8_lossy(&r.value).into_owned();
        Ok(records.into_iter().map(text).collect())
    }

    fn watermarks(&mut self, topic: &str, partition: u32) -> Result<(u64, u64), BackendError> {
        let full = self.topic(topic)?;
        let consumer: Member = base_config(&self.bootstrap).create().map_err(kafka)?;
        let (low, high) = consumer
            .fetch_watermarks(&full, to_i32(partition)?, timeout())
            .map_err(kafka)?;
        let offset = |o: i64| u64::try_from(o).unwrap_or(0);
        Ok((offset(low), offset(high)))
    }

    fn txn_init(&mut self, transactional_id: &str) -> Result<ProducerSlot, BackendError> {
        let mut config = producer_config(&self.bootstrap);
        config
            .set(
                "transactional.id",
                format!("{}{transactional_id}", self.ns.prefix()),
            )
            .set("transaction.timeout.ms", TXN_TIMEOUT_MS.to_string());
        let producer = create_producer(&config).map_err(classify)?;
        producer.init_transactions(timeout()).map_err(kafka)?;
        self.producers.push(producer);
        Ok(ProducerSlot(self.producers.len() - 1))
    }

    fn txn_begin(&mut self, p: ProducerSlot) -> Result<(), BackendError> {
        self.producer(p)?.begin_transaction().map_err(kafka)
    }

    fn txn_send(
        &mut self,
        p: ProducerSlot,
        topic: &str,
        partition: u32,
        value: &str,
    ) -> Result<(), BackendError> {
        let full = self.topic(topic)?;
        let producer = self.producer(p)?;
        let partition = Some(to_i32(partition)?);
        client::send(producer, &self.ns, &full, partition, None, value.as_bytes())
            .map_err(classify)?;
        flush_deliveries(producer).map_err(classify)?;
        Ok(())
    }

    fn txn_send_offsets(
        &mut self,
        p: ProducerSlot,
        meta: MetaSlot,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), BackendError> {
        let full = self.topic(topic)?;
        let group = self
            .metas
            .get(meta.0)
            .ok_or_else(|| BackendError::Failed("no such metadata".into()))?;
        let offset = i64::try_from(offset).map_err(|_| BackendError::Failed("offset".into()))?;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&full, to_i32(partition)?, Offset::Offset(offset))
            .map_err(kafka)?;
        self.producer(p)?
            .send_offsets_to_transaction(&offsets, group, timeout())
            .map_err(kafka)
    }

    fn txn_commit(&mut self, p: ProducerSlot) -> Result<(), BackendError> {
        self.producer(p)?
            .commit_transaction(timeout())
            .map_err(kafka)
    }

    /// A BaseProducer does not serve delivery reports while aborting: flush first.
    fn txn_abort(&mut self, p: ProducerSlot) -> Result<(), BackendError> {
        let producer = self.producer(p)?;
        // A failed flush (a fenced producer) must not stop the abort attempt.
        let _ = producer.flush(timeout());
        producer.abort_transaction(timeout()).map_err(kafka)
    }

    fn group_join(
        &mut self,
        group: &str,
        topic: &str,
        new_members: usize,
    ) -> Result<Vec<usize>, BackendError> {
        let full = self.topic(topic)?;
        let topic = self
            .ns
            .guard(&full)
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        for _ in 0..new_members {
            let member: Member = self.member_config(group).create().map_err(kafka)?;
            member.subscribe(&[topic]).map_err(kafka)?;
            self.members.push(member);
        }
        self.wait_settled(self.group_partitions())
    }

    fn group_leave_last(&mut self, _group: &str) -> Result<Vec<usize>, BackendError> {
        let partitions = self.group_partitions();
        let leaver = self
            .members
            .pop()
            .ok_or_else(|| BackendError::Failed("no member to leave".into()))?;
        // Dropping closes the consumer: it revokes, commits nothing, and sends LeaveGroup.
        drop(leaver);
        self.wait_settled(partitions)
    }

    fn group_metadata(&mut self, member: usize) -> Result<MetaSlot, BackendError> {
        let meta = self
            .members
            .get(member)
            .and_then(Consumer::group_metadata)
            .ok_or_else(|| BackendError::Failed("no group metadata".into()))?;
        self.metas.push(meta);
        Ok(MetaSlot(self.metas.len() - 1))
    }

    fn committed(
        &mut self,
        _group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, BackendError> {
        let full = self.topic(topic)?;
        let member = self
            .members
            .first()
            .ok_or_else(|| BackendError::Failed("no member to ask".into()))?;
        let mut request = TopicPartitionList::new();
        request.add_partition(&full, to_i32(partition)?);
        let answer = member
            .committed_offsets(request, timeout())
            .map_err(kafka)?;
        let offset = answer
            .find_partition(&full, to_i32(partition)?)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => u64::try_from(o).ok(),
                _ => None,
            });
        Ok(offset)
    }
}
