//! Thin, bounded rdkafka helpers shared by real mode: client configs, a producer context that
//! records delivery reports, and the only produce and read paths of this crate, each of
//! which passes its topic through the run's namespace guard first.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{ClientContext, Offset};

use crate::deadline::Deadline;
use crate::topics::{RunNamespace, TopicError};

/// Bound on one flush, transaction call or read of a whole partition.
pub const CLIENT_TIMEOUT_MS: u64 = 15_000;
/// One poll's wait inside the bounded loops.
pub const POLL_STEP_MS: u64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("kafka error: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{what} did not finish within {timeout_ms} ms")]
    Timeout { what: String, timeout_ms: u64 },
    #[error("delivery of a record to {topic} failed: {error}")]
    Delivery { topic: String, error: String },
}

/// Which records a reader sees (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadIsolation {
    ReadUncommitted,
    ReadCommitted,
}

impl ReadIsolation {
    pub fn config_value(self) -> &'static str {
        match self {
            ReadIsolation::ReadUncommitted => "read_uncommitted",
            ReadIsolation::ReadCommitted => "read_committed",
        }
    }
}

/// The base config of every client: bootstrap list, quiet logs, and a metadata refresh
/// every second, so that partitions a run adds (`add_partitions`) are seen within about a
/// second rather than librdkafka's default 5 minutes.
pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set(
            "topic.metadata.refresh.interval.ms",
            METADATA_REFRESH_MS.to_string(),
        )
        .set_log_level(RDKafkaLogLevel::Error);
    config
}

/// See `base_config`.
const METADATA_REFRESH_MS: u64 = 1_000;

/// A producer config whose partitioner places keys as the simulator (and the Java client)
/// does: murmur2 of the key; records without a key go to a random partition.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = base_config(bootstrap);
    config
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("message.timeout.ms", CLIENT_TIMEOUT_MS.to_string());
    config
}

/// One delivery report: key, partition, offset, or the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub partition: i32,
    pub offset: i64,
    pub error: Option<String>,
}

/// A producer context that keeps every delivery report, in the order they arrive.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    deliveries: Mutex<Vec<Delivery>>,
}

impl DeliveryLog {
    /// Takes the reports received so far.
    pub fn take(&self) -> Vec<Delivery> {
        let mut guard = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *guard)
    }
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        let (message, error) = match result {
            Ok(m) => (m, None),
            Err((e, m)) => (m, Some(e.to_string())),
        };
        let delivery = Delivery {
            topic: message.topic().to_owned(),
            key: message.key().map(<[u8]>::to_vec),
            partition: message.partition(),
            offset: message.offset(),
            error,
        };
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(delivery);
    }
}

pub type LoggedProducer = BaseProducer<DeliveryLog>;

pub fn create_producer(config: &ClientConfig) -> Result<LoggedProducer, ClientError> {
    Ok(config.create_with_context(DeliveryLog::default())?)
}

/// Enqueues one record for `topic` (which must be inside `ns`). `partition: None` lets the
/// murmur2 partitioner choose from the key.
pub fn send(
    producer: &LoggedProducer,
    ns: &RunNamespace,
    topic: &str,
    partition: Option<i32>,
    key: Option<&[u8]>,
    value: &[u8],
) -> Result<(), ClientError> {
    let topic = ns.guard(topic)?;
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    // A full local queue (more records in flight than `queue.buffering.max.messages`)
    // is back-pressure, not failure: serve delivery reports and try again.
    let deadline = Deadline::after_ms(CLIENT_TIMEOUT_MS);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                if !deadline.passed() =>
            {
                record = returned;
                producer.poll(Duration::from_millis(QUEUE_FULL_BACKOFF_MS));
            }
            Err((error, _)) => return Err(ClientError::Kafka(error)),
        }
    }
}

/// How long `send` serves delivery reports before retrying a record refused by a
/// full local queue.
const QUEUE_FULL_BACKOFF_MS: u64 = 5;

/// Flushes and returns the delivery reports, failing on the first failed delivery.
pub fn flush_deliveries(producer: &LoggedProducer) -> Result<Vec<Delivery>, ClientError> {
    producer.flush(Duration::from_millis(CLIENT_TIMEOUT_MS))?;
    let deliveries = producer.context().take();
    if let Some(failed) = deliveries.iter().find(|d| d.error.is_some()) {
        return Err(ClientError::Delivery {
            topic: failed.topic.clone(),
            error: failed.error.clone().unwrap_or_default(),
        });
    }
    Ok(deliveries)
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Reads one partition of `topic` (inside `ns`) from the beginning to its end as the
/// isolation sees it (high watermark, or last stable offset for read_committed), without a
/// group: a manual assignment, no commits. Bounded by `CLIENT_TIMEOUT_MS`.
pub fn read_partition(
    bootstrap: &str,
    ns: &RunNamespace,
    topic: &str,
    partition: i32,
    isolation: ReadIsolation,
) -> Result<Vec<ReadRecord>, ClientError> {
    let topic = ns.guard(topic)?;
    let mut config = base_config(bootstrap);
    config
        .set("group.id", format!("{}reader", ns.prefix()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation.config_value());
    let consumer: BaseConsumer<DefaultConsumerContext> = config.create()?;
    {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        consumer.assign(&assignment)?;
    }
    let records = poll_to_eof(&consumer, topic, partition);
    // Unassign before the consumer is dropped: rdkafka's close waits for it otherwise.
    let _ = consumer.unassign();
    records
}

fn poll_to_eof(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    topic: &str,
    partition: i32,
) -> Result<Vec<ReadRecord>, ClientError> {
    let deadline = Deadline::after_ms(CLIENT_TIMEOUT_MS);
    let mut records = Vec::new();
    while !deadline.passed() {
        match consumer.poll(Duration::from_millis(POLL_STEP_MS)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(records),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => records.push(ReadRecord {
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
            }),
        }
    }
    Err(ClientError::Timeout {
        what: format!("reading {topic}-{partition} to its end"),
        timeout_ms: CLIENT_TIMEOUT_MS,
    })
}
