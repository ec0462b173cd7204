//! The sans-IO stream-task interface shared by the simulator and the real Kafka
//! runtime: a task receives one input record and a read-only view of its local
//! store, and returns the records to produce and the store writes to make. The
//! driver performs both (and writes the store writes to the changelog), so the
//! same task code runs under every runtime, and a store can be rebuilt by
//! replaying its changelog.

pub mod hardened;
pub mod planted;
pub mod seed;
mod store;

pub use store::{KvStore, StoreWrite};

use crate::codec::{encode, WireMessage};
use crate::mark::Mark;
use crate::record::DeadLetter;

/// Topic names the processors use. The real runtime prefixes each with the
/// run's namespace; the simulator uses them as they are.
pub mod topics {
    pub const COMMANDS: &str = "commands";
    pub const COMMANDS_INDEXED: &str = "commands-indexed";
    pub const EVENTS: &str = "events";
    pub const SNAPSHOTS: &str = "snapshots";
    pub const OUTCOMES: &str = "outcomes";
    pub const ALARMS: &str = "alarms";
    pub const DEAD_LETTER: &str = "dead-letter";
}

/// One input record as the driver hands it over.
#[derive(Clone, Copy, Debug)]
pub struct InputRecord<'a> {
    pub topic: &'a str,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// One record the task wants produced. The key decides the partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRecord {
    pub topic: &'static str,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl OutRecord {
    pub fn message<T: WireMessage>(topic: &'static str, key: Vec<u8>, message: &T) -> OutRecord {
        OutRecord {
            topic,
            key,
            value: encode(message),
        }
    }
}

/// Everything one `process` call asks the driver to do. Under exactly-once the
/// driver commits all of it with the input offset in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskOutput {
    pub records: Vec<OutRecord>,
    pub store_writes: Vec<StoreWrite>,
    /// Coverage marks this call reached, for the driver to count; never produced
    /// and never part of the transaction.
    pub marks: Vec<Mark>,
}

impl TaskOutput {
    /// Notes that this call reached a coverage mark.
    pub fn mark(&mut self, mark: Mark) {
        self.marks.push(mark);
    }

    pub fn produce(&mut self, record: OutRecord) {
        self.records.push(record);
    }

    pub fn write<T: WireMessage + Clone + Send + Sync + 'static>(
        &mut self,
        key: Vec<u8>,
        value: &T,
    ) {
        self.store_writes.push(StoreWrite::typed(key, value));
    }

    /// Sends an unusable input to the dead-letter topic with the reason.
    pub fn dead_letter(&mut self, input: &InputRecord<'_>, reason: String) {
        let letter = DeadLetter {
            source_topic: input.topic.to_string(),
            partition: input.partition,
            offset: input.offset,
            key: input.key.map(<[u8]>::to_vec),
            value: input.value.map(<[u8]>::to_vec),
            reason,
        };
        let key = input.key.map(<[u8]>::to_vec).unwrap_or_default();
        self.produce(OutRecord::message(topics::DEAD_LETTER, key, &letter));
    }
}

/// A stream task: pure, deterministic, one record at a time. A driver keeps one
/// instance and one store per input partition it owns.
pub trait StreamTask {
    /// The task's name; its changelog topic is `<name>-changelog`.
    fn name(&self) -> &'static str;

    fn input_topics(&self) -> &'static [&'static str];

    fn process(&self, store: &KvStore, input: &InputRecord<'_>) -> TaskOutput;

    /// Output topics from which the store can be rebuilt without a changelog
    /// (used under at-least-once, where a separate changelog write would not be
    /// atomic with the outputs). Empty if the task needs its changelog.
    fn rebuild_topics(&self) -> &'static [&'static str] {
        &[]
    }

    /// Output topics whose records must be durable before the task's other
    /// outputs of the same batch are sent, where nothing makes a batch atomic
    /// (at-least-once): the facts the other records are derived from. The
    /// hardened task names `events`, so an answer or an alarm is never in the
    /// log without the events it reports (a crash mid-flush would otherwise
    /// leave a client told "accepted" of a withdrawal the log never got).
    fn durable_first_topics(&self) -> &'static [&'static str] {
        &[]
    }

    /// Folds one record of a `rebuild_topics` topic into the store.
    fn rebuild_from_output(&self, _store: &mut KvStore, _record: &InputRecord<'_>) {}

    /// The account states this task's store holds (for the history's `Restore`
    /// steps, S4); the store's key layout is the task's own business. Empty for a
    /// task that keeps no account state.
    fn stored_accounts(&self, _store: &KvStore) -> Vec<crate::Account> {
        Vec::new()
    }
}

/// The changelog topic of a task.
pub fn changelog_topic(task: &dyn StreamTask) -> String {
    format!("{}-changelog", task.name())
}
