//! One batch of an app instance, from its poll to its end, written once for both drivers:
//! the polled records run through the host, the next input offset of each partition it
//! read, the records it produces (outputs, then changelog writes), and the order of its
//! commit, which each guarantee fixes and every step asserts:
//!
//! - exactly-once: `Polled → Begun → Produced → OffsetsSent → Committed`; an abortable
//!   error at any step before `Committed` ends it `Aborted`.
//! - at-least-once: `Polled → Produced → Flushed`: the outputs are durable before the
//!   input offsets may be committed (per batch or on a timer, as the driver does), so a
//!   crash between the two replays the batch and never loses it.
//!
//! A driver performs each step on its transport (the simulator spreads them over broker
//! latencies; real mode calls rdkafka one step after another) and tells the batch; a step
//! out of order is a driver bug and panics. What a failed batch leads to is decided once,
//! too (`recovery`).

use std::collections::BTreeMap;

use marlow_model::task::{InputRecord, OutRecord};

use crate::host::{ChangelogWrite, Dispatched, TaskHost};

/// Where a batch is in its commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Records are being polled and run through the host.
    Polled,
    /// Exactly-once: the transaction has begun.
    Begun,
    /// Every output and changelog write was handed to the producer.
    Produced,
    /// Exactly-once: the input offsets were added to the transaction.
    OffsetsSent,
    /// Exactly-once: the transaction committed. The batch is over.
    Committed,
    /// At-least-once: the outputs are durable; the offsets may be committed. Over.
    Flushed,
    /// Exactly-once: the transaction was aborted. Over.
    Aborted,
}

/// Where one record of a batch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An output topic (short name); the producer's partitioner picks by key.
    Output(&'static str),
    /// Task `task`'s changelog, partition `partition` (the input partition's store).
    Changelog { task: usize, partition: u32 },
}

/// One record to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Produce<'a> {
    pub to: Destination,
    pub key: &'a [u8],
    /// `None`: a tombstone (a store delete).
    pub value: Option<&'a [u8]>,
}

/// One batch; `P` names an input partition as the driver does.
#[derive(Debug)]
pub struct Batch<P: Ord + Clone + std::fmt::Debug> {
    exactly_once: bool,
    stage: Stage,
    /// What the tasks asked for: records, changelog writes, the undo log, marks.
    pub dispatched: Dispatched,
    /// The offset after the last record consumed, per input partition: what the batch
    /// commits.
    next_offsets: BTreeMap<P, u64>,
    records_consumed: u64,
}

impl<P: Ord + Clone + std::fmt::Debug> Batch<P> {
    pub fn new(exactly_once: bool) -> Batch<P> {
        Batch {
            exactly_once,
            stage: Stage::Polled,
            dispatched: Dispatched::default(),
            next_offsets: BTreeMap::new(),
            records_consumed: 0,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn exactly_once(&self) -> bool {
        self.exactly_once
    }

    /// Runs one polled record of partition `at` through `host`; the batch has consumed it.
    /// Offsets only grow within a partition.
    pub fn consume(&mut self, host: &mut TaskHost, at: P, input: &InputRecord<'_>) {
        assert_eq!(
            self.stage,
            Stage::Polled,
            "a record consumed after the poll"
        );
        let next = input.offset + 1;
        let previous = self.next_offsets.insert(at.clone(), next);
        assert!(
            previous.is_none_or(|p| p <= input.offset),
            "offsets went backwards within one batch on {at:?}"
        );
        host.process(input, &mut self.dispatched);
        self.records_consumed += 1;
    }

    /// Partition `at` moved to `offset` without a record (the consumer's reset after
    /// retention deleted what it had not read).
    pub fn skip_to(&mut self, at: P, offset: u64) {
        assert_eq!(self.stage, Stage::Polled, "a reset after the poll");
        let previous = self.next_offsets.insert(at.clone(), offset);
        assert!(
            previous.is_none_or(|p| p <= offset),
            "a reset went backwards on {at:?}"
        );
    }

    /// Nothing to produce and no offset moved: the poll found nothing.
    pub fn is_empty(&self) -> bool {
        self.dispatched.records.is_empty()
            && self.dispatched.changelog.is_empty()
            && self.next_offsets.is_empty()
    }

    pub fn records_consumed(&self) -> u64 {
        self.records_consumed
    }

    /// The next offset per input partition, for the commit.
    pub fn next_offsets(&self) -> &BTreeMap<P, u64> {
        &self.next_offsets
    }

    /// Every record to produce, in order: the tasks' outputs, then their changelog writes.
    /// A store rebuilt from outputs writes no changelog (the host's rebuild rule).
    pub fn to_produce<'a>(&'a self, host: &TaskHost) -> impl Iterator<Item = Produce<'a>> + 'a {
        for change in &self.dispatched.changelog {
            assert!(
                !host.rebuilds_from_outputs(change.task),
                "a store rebuilt from outputs writes no changelog"
            );
        }
        let outputs = self
            .dispatched
            .records
            .iter()
            .map(|OutRecord { topic, key, value }| Produce {
                to: Destination::Output(topic),
                key,
                value: Some(value),
            });
        let changelog = self.dispatched.changelog.iter().map(
            |ChangelogWrite {
                 task,
                 partition,
                 write,
             }| Produce {
                to: Destination::Changelog {
                    task: *task,
                    partition: *partition,
                },
                key: &write.key,
                value: write.value.as_deref(),
            },
        );
        outputs.chain(changelog)
    }

    /// `to_produce` in the waves a driver sends them: under at-least-once
    /// the records of the durable-first topics (the facts) are flushed before
    /// the rest is sent (`StreamTask::durable_first_topics`), so a crash
    /// between the two leaves facts without their answers, which a replay
    /// answers, and never an answer without its facts. Exactly-once, one wave
    /// (the transaction makes it atomic). Empty waves are left out; order within a
    /// wave is `to_produce` order.
    pub fn waves<'a>(&'a self, host: &TaskHost) -> Vec<Vec<Produce<'a>>> {
        let (first, rest): (Vec<Produce<'a>>, Vec<Produce<'a>>) =
            self.to_produce(host).partition(|produce| match produce.to {
                Destination::Output(topic) => host.is_durable_first(topic),
                Destination::Changelog { .. } => false,
            });
        assert!(
            first.is_empty() || !self.exactly_once,
            "exactly-once sends one wave"
        );
        [first, rest]
            .into_iter()
            .filter(|wave| !wave.is_empty())
            .collect()
    }

    /// Exactly-once: the transaction began.
    pub fn begun(&mut self) {
        assert!(self.exactly_once, "at-least-once has no transaction");
        self.advance(Stage::Polled, Stage::Begun);
    }

    /// Every record of `to_produce` was handed to the producer.
    pub fn produced(&mut self) {
        let from = if self.exactly_once {
            Stage::Begun
        } else {
            Stage::Polled
        };
        self.advance(from, Stage::Produced);
    }

    /// Exactly-once: the input offsets were added to the transaction.
    pub fn offsets_sent(&mut self) {
        assert!(
            self.exactly_once,
            "at-least-once sends no offsets to a transaction"
        );
        self.advance(Stage::Produced, Stage::OffsetsSent);
    }

    /// Exactly-once: the transaction committed; returns the offsets it committed.
    pub fn committed(&mut self) -> &BTreeMap<P, u64> {
        assert!(self.exactly_once, "at-least-once commits no transaction");
        self.advance(Stage::OffsetsSent, Stage::Committed);
        &self.next_offsets
    }

    /// At-least-once: the outputs are durable; returns the offsets now safe to commit.
    pub fn flushed(&mut self) -> &BTreeMap<P, u64> {
        assert!(!self.exactly_once, "exactly-once commits a transaction");
        self.advance(Stage::Produced, Stage::Flushed);
        &self.next_offsets
    }

    /// Exactly-once: the transaction was aborted before it committed. Takes the batch's
    /// store writes back out of `host` (newest first) when the instance survives the
    /// abort with its stores (`Recovery::Survive`); otherwise the driver drops them.
    pub fn aborted(&mut self, host: &mut TaskHost, keep_stores: bool) {
        assert!(
            self.exactly_once,
            "at-least-once has no transaction to abort"
        );
        assert!(
            !matches!(self.stage, Stage::Committed | Stage::Aborted),
            "a batch already over was aborted ({:?})",
            self.stage
        );
        self.stage = Stage::Aborted;
        if keep_stores {
            host.undo(&self.dispatched.undo);
        }
    }

    fn advance(&mut self, from: Stage, to: Stage) {
        assert_eq!(
            self.stage, from,
            "a batch step out of order: {to:?} after {:?}",
            self.stage
        );
        self.stage = to;
    }
}

/// Why a batch failed, as a driver classifies its transport's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The transaction must be aborted, but the producer and the membership are sound
    /// (Kafka's TRANSACTION_ABORTABLE).
    Abortable,
    /// The producer cannot go on: a newer one holds its transactional id (fenced), or
    /// its error is fatal.
    ProducerLost,
    /// The group moved on without this member's generation (a stale generation, or a
    /// rebalance it missed).
    GroupFenced,
    /// The coordinator no longer knows the member (its session expired).
    UnknownMember,
    /// Anything a retry may get past (a broker away, an unstable offset).
    Retriable,
}

/// What an instance does after a failed batch. Every path aborts an exactly-once
/// batch's transaction first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Undo the batch's store writes and poll again from the committed positions, with
    /// the same member and producer.
    Survive,
    /// Drop every store, go back to the committed positions and restore; `rejoin` the
    /// group first (as a new member if `new_member`), with a new producer if
    /// `new_producer`.
    Restore {
        rejoin: bool,
        new_member: bool,
        new_producer: bool,
    },
}

/// The one rule for a failed batch.
pub fn recovery(failure: Failure) -> Recovery {
    let restore = |rejoin, new_member, new_producer| Recovery::Restore {
        rejoin,
        new_member,
        new_producer,
    };
    match failure {
        Failure::Abortable => Recovery::Survive,
        Failure::Retriable => restore(false, false, false),
        Failure::ProducerLost => restore(true, false, true),
        Failure::GroupFenced => restore(true, false, false),
        Failure::UnknownMember => restore(true, true, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::codec::{encode, encode_account_key};
    use marlow_model::task::hardened::HardenedConfig;
    use marlow_model::task::topics;
    use marlow_model::DesignConfig;
    use marlow_model::{AccountId, ClientId, Command, CommandId, CommandKind, OccToken, OwnerId};

    type TestBatch = Batch<(&'static str, u32)>;

    /// A hardened host (exactly-once: it writes a changelog) with partition 0's store.
    fn host() -> TaskHost {
        host_under(true)
    }

    /// A hardened host under the given guarantee, with partition 0's store.
    fn host_under(exactly_once: bool) -> TaskHost {
        let mut host = TaskHost::new(
            &DesignConfig::Hardened(HardenedConfig::default()),
            exactly_once,
        );
        let restore = host.begin_restore((0, 0));
        host.finish_restore(restore, 0);
        host
    }

    /// Opens account 0 with a deposit, as a command record at `offset`.
    fn open(host: &mut TaskHost, batch: &mut TestBatch, offset: u64) {
        let command = Command {
            id: CommandId {
                client: ClientId(0),
                seq: offset,
            },
            account: AccountId(0),
            issuer: OwnerId(0),
            occ: OccToken::Any,
            kind: CommandKind::Open {
                initial_deposit_minor: 100,
            },
        };
        let (key, value) = (encode_account_key(AccountId(0)), encode(&command));
        let input = InputRecord {
            topic: topics::COMMANDS,
            partition: 0,
            offset,
            key: Some(&key),
            value: Some(&value),
        };
        batch.consume(host, (topics::COMMANDS, 0), &input);
    }

    #[test]
    fn a_batch_produces_its_outputs_then_its_changelog_and_commits_the_next_offsets() {
        let mut host = host();
        let mut batch = TestBatch::new(true);
        open(&mut host, &mut batch, 7);
        let produced: Vec<Destination> = batch.to_produce(&host).map(|p| p.to).collect();
        let first_changelog = produced
            .iter()
            .position(|to| matches!(to, Destination::Changelog { .. }))
            .expect("the hardened store writes a changelog under exactly-once");
        assert!(first_changelog > 0, "outputs first: {produced:?}");
        assert!(produced[first_changelog..].iter().all(|to| matches!(
            to,
            Destination::Changelog {
                task: 0,
                partition: 0
            }
        )));
        batch.begun();
        batch.produced();
        batch.offsets_sent();
        let committed = batch.committed();
        assert_eq!(committed.get(&(topics::COMMANDS, 0)), Some(&8));
        assert_eq!(batch.stage(), Stage::Committed);
    }

    /// At least once the events go out in a wave of their own, before the
    /// outcome; exactly once everything is one wave.
    #[test]
    fn at_least_once_the_events_are_a_wave_before_the_answers() {
        let topics_of = |wave: &Vec<Produce<'_>>| -> Vec<&'static str> {
            wave.iter()
                .map(|p| match p.to {
                    Destination::Output(topic) => topic,
                    Destination::Changelog { .. } => "changelog",
                })
                .collect()
        };
        let mut host = host_under(false);
        let mut batch = TestBatch::new(false);
        open(&mut host, &mut batch, 0);
        let waves = batch.waves(&host);
        assert_eq!(
            waves.len(),
            2,
            "{:?}",
            waves.iter().map(topics_of).collect::<Vec<_>>()
        );
        assert_eq!(topics_of(&waves[0]), [topics::EVENTS, topics::EVENTS]);
        assert_eq!(topics_of(&waves[1]), [topics::OUTCOMES]);
        let all: usize = waves.iter().map(Vec::len).sum();
        assert_eq!(
            all,
            batch.to_produce(&host).count(),
            "nothing lost or doubled"
        );

        let mut host = host_under(true);
        let mut batch = TestBatch::new(true);
        open(&mut host, &mut batch, 0);
        let waves = batch.waves(&host);
        assert_eq!(waves.len(), 1);
        assert_eq!(waves[0].len(), batch.to_produce(&host).count());
    }

    #[test]
    fn an_aborted_batch_that_is_survived_leaves_the_store_as_before_it() {
        let mut host = host();
        let before = host.store((0, 0)).cloned().expect("restored");
        let mut batch = TestBatch::new(true);
        open(&mut host, &mut batch, 0);
        assert_ne!(
            host.store((0, 0)),
            Some(&before),
            "the open wrote the store"
        );
        batch.begun();
        batch.aborted(&mut host, true);
        assert_eq!(host.store((0, 0)), Some(&before));
        assert_eq!(batch.stage(), Stage::Aborted);
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn committing_before_the_offsets_are_sent_is_a_driver_bug() {
        let mut batch = TestBatch::new(true);
        batch.begun();
        batch.produced();
        batch.committed();
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn at_least_once_flushes_only_what_it_produced() {
        let mut batch = TestBatch::new(false);
        batch.flushed();
    }

    #[test]
    #[should_panic(expected = "offsets went backwards")]
    fn a_batch_refuses_an_offset_that_goes_backwards() {
        let mut host = host();
        let mut batch = TestBatch::new(true);
        open(&mut host, &mut batch, 5);
        open(&mut host, &mut batch, 4);
    }

    #[test]
    fn only_an_abortable_error_is_survived_with_the_stores_and_only_a_lost_producer_replaces_it() {
        let all = [
            Failure::Abortable,
            Failure::ProducerLost,
            Failure::GroupFenced,
            Failure::UnknownMember,
            Failure::Retriable,
        ];
        for failure in all {
            let survived = recovery(failure) == Recovery::Survive;
            assert_eq!(survived, failure == Failure::Abortable, "{failure:?}");
            if let Recovery::Restore {
                rejoin,
                new_member,
                new_producer,
            } = recovery(failure)
            {
                assert_eq!(new_producer, failure == Failure::ProducerLost);
                assert_eq!(new_member, failure == Failure::UnknownMember);
                assert_eq!(rejoin, failure != Failure::Retriable);
            }
        }
    }
}
