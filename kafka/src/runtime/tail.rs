//! Reads the run's observed topics incrementally, read_committed, for a soak's mid-run
//! check: one consumer per topic, assigned to every partition from the start and kept for
//! the whole soak, so each `catch_up` reads only what was committed since the last one
//! (the final read-back still reads everything, once, at the end).

use std::collections::BTreeSet;
use std::time::Duration;

use marlow_harness::history::{CommittedRecord, Step};
use marlow_harness::observe::observe;
use marlow_scenarios::Scenario;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::Offset;

use super::{ClientSettings, RealError};
use crate::client::{ReadIsolation, CLIENT_TIMEOUT_MS, POLL_STEP_MS};
use crate::deadline::Deadline;
use crate::topics::RunNamespace;

/// A catch-up stops once nothing new has come for this long: what is left is held back by
/// a transaction still open (read_committed stops at its start), and the next catch-up
/// reads it.
const IDLE_CUTOFF_MS: u64 = 1_000;
/// librdkafka's prefetch queue per consumer, in KiB: small, so that the tail's memory
/// stays flat however far behind it starts.
const QUEUED_MAX_KBYTES: u32 = 4096;

/// One observed topic's consumer.
struct TopicTail {
    short: &'static str,
    full: String,
    partitions: Vec<i32>,
    consumer: BaseConsumer<DefaultConsumerContext>,
}

pub struct CommittedTail {
    topics: Vec<TopicTail>,
}

impl CommittedTail {
    /// Consumers for every observed topic of the scenario's design, at the start.
    pub fn new(
        scenario: &Scenario,
        ns: &RunNamespace,
        settings: &ClientSettings,
    ) -> Result<CommittedTail, RealError> {
        let mut topics = Vec::new();
        for &short in scenario.design_config().observed_topics() {
            let full = ns.topic(short)?;
            let mut config = settings.reader();
            config
                .set("group.id", format!("{}soak-tail", ns.prefix()))
                .set("enable.auto.commit", "false")
                .set("queued.max.messages.kbytes", QUEUED_MAX_KBYTES.to_string())
                .set(
                    "isolation.level",
                    ReadIsolation::ReadCommitted.config_value(),
                );
            let consumer: BaseConsumer<DefaultConsumerContext> = config.create()?;
            let count = i32::try_from(scenario.cluster.partitions_of(short)).unwrap_or(i32::MAX);
            let partitions: Vec<i32> = (0..count).collect();
            let mut assignment = TopicPartitionList::new();
            for &p in &partitions {
                assignment.add_partition_offset(ns.guard(&full)?, p, Offset::Beginning)?;
            }
            consumer.assign(&assignment)?;
            topics.push(TopicTail {
                short,
                full,
                partitions,
                consumer,
            });
        }
        Ok(CommittedTail { topics })
    }

    /// Reads each topic up to the ends its partitions have now, as history steps, topic by
    /// topic. What a transaction still open holds back, or what is not read within the
    /// client timeout, is read by the next call.
    pub fn catch_up(&mut self) -> Result<Vec<Step>, RealError> {
        let mut steps = Vec::new();
        for topic in &self.topics {
            topic.catch_up(&mut steps)?;
        }
        Ok(steps)
    }
}

impl TopicTail {
    fn catch_up(&self, steps: &mut Vec<Step>) -> Result<(), RealError> {
        let timeout = Duration::from_millis(CLIENT_TIMEOUT_MS);
        let mut open = BTreeSet::new();
        for &p in &self.partitions {
            let (_, high) = self.consumer.fetch_watermarks(&self.full, p, timeout)?;
            if self.position(p)? < high {
                open.insert((p, high));
            }
        }
        let deadline = Deadline::after_ms(CLIENT_TIMEOUT_MS);
        let mut idle = Deadline::after_ms(IDLE_CUTOFF_MS);
        while !open.is_empty() && !deadline.passed() && !idle.passed() {
            let mut reached = Vec::new();
            for &(p, high) in &open {
                if self.position(p)? >= high {
                    reached.push((p, high));
                }
            }
            reached.iter().for_each(|done| {
                open.remove(done);
            });
            match self.consumer.poll(Duration::from_millis(POLL_STEP_MS)) {
                None => {}
                Some(Err(error)) => return Err(error.into()),
                Some(Ok(message)) => {
                    idle = Deadline::after_ms(IDLE_CUTOFF_MS);
                    if let Some(record) =
                        observe(self.short, Some(message.payload().unwrap_or_default()))
                    {
                        steps.push(committed(self.short, &message, record));
                    }
                }
            }
        }
        Ok(())
    }

    /// The next offset this consumer reads on partition `p` (0 before its first read).
    fn position(&self, p: i32) -> Result<i64, RealError> {
        let position = self.consumer.position()?;
        let at = position.find_partition(&self.full, p).map(|e| e.offset());
        Ok(match at {
            Some(Offset::Offset(offset)) => offset,
            _ => 0,
        })
    }
}

fn committed(
    topic: &str,
    message: &rdkafka::message::BorrowedMessage<'_>,
    record: CommittedRecord,
) -> Step {
    Step::Committed {
        topic: topic.to_owned(),
        partition: u32::try_from(message.partition()).unwrap_or(0),
        offset: u64::try_from(message.offset()).unwrap_or(0),
        record,
    }
}
