//! The app host of one instance, sans IO: the design's stream tasks, one store
//! per (task, partition) they are assigned, the dispatch of each input record to
//! every task that reads its topic, the routing of store writes to changelogs,
//! and store restore. A driver (the simulator's world, a real-mode instance
//! thread) fetches, produces and commits; the host decides what to produce and
//! what a store holds.
//!
//! The rebuild rule: under at-least-once a changelog write is not atomic with
//! the outputs, so a task that can rebuild its store from its own outputs
//! (`StreamTask::rebuild_topics`) does so and writes no changelog; otherwise a
//! store is restored from its task's changelog.

use crate::history::{ReadTo, Step};
use marlow_model::task::{
    changelog_topic, InputRecord, KvStore, OutRecord, StoreWrite, StreamTask,
};
use marlow_model::{DesignConfig, Mark};
use std::collections::{BTreeMap, BTreeSet};

/// A (task index, partition) pair: where one store lives.
pub type Slot = (usize, u32);

/// Bound on the stores one host keeps: every task on every partition a scenario
/// may have (`marlow_scenarios` caps partitions at 1024).
const MAX_STORES: usize = 16 * 1024;

/// One store write on its way to a changelog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangelogWrite {
    pub task: usize,
    pub partition: u32,
    pub write: StoreWrite,
}

/// What a batch of input records asks the driver to do, and how to take it back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Records to produce, in order.
    pub records: Vec<OutRecord>,
    /// Store writes to produce to the changelogs (none for a store rebuilt from
    /// outputs).
    pub changelog: Vec<ChangelogWrite>,
    /// What each store write replaced, in write order: undone in reverse when the
    /// batch's transaction aborts and the instance survives it.
    pub undo: Vec<ChangelogWrite>,
    /// Coverage marks the tasks reached.
    pub marks: Vec<Mark>,
    /// The largest store value the batch wrote, so a driver can stop a design
    /// whose state grows with every command before each read costs a fortune.
    pub largest_store_value: Option<StoreValueSize>,
}

/// One store value's size: which task wrote it, under which key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreValueSize {
    pub task: &'static str,
    pub key: Vec<u8>,
    pub bytes: usize,
}

impl Dispatched {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.changelog.is_empty() && self.undo.is_empty()
    }
}

/// A store being restored: fed records one at a time by the driver, from the
/// topics `TaskHost::restore_sources` names, then installed by `finish_restore`.
pub struct StoreRestore {
    task: usize,
    partition: u32,
    from_outputs: bool,
    store: KvStore,
    replayed: u64,
    /// Per source topic, the offset after the last record folded.
    read_to: Vec<ReadTo>,
}

impl StoreRestore {
    pub fn records_replayed(&self) -> u64 {
        self.replayed
    }
}

pub struct TaskHost {
    tasks: Vec<Box<dyn StreamTask>>,
    stores: BTreeMap<Slot, KvStore>,
    exactly_once: bool,
}

impl TaskHost {
    pub fn new(design: &DesignConfig, exactly_once: bool) -> TaskHost {
        let tasks = design.tasks();
        assert!(!tasks.is_empty(), "a design without tasks");
        TaskHost {
            tasks,
            stores: BTreeMap::new(),
            exactly_once,
        }
    }

    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    pub fn task_name(&self, task: usize) -> &'static str {
        self.tasks[task].name()
    }

    /// The changelog topic of task `task` (short name).
    pub fn changelog_topic(&self, task: usize) -> String {
        changelog_topic(self.tasks[task].as_ref())
    }

    /// The union of the tasks' input topics, in data-flow order, each once.
    pub fn input_topics(&self) -> Vec<&'static str> {
        let mut inputs: Vec<&'static str> = Vec::new();
        for topic in self.tasks.iter().flat_map(|task| task.input_topics()) {
            if !inputs.contains(topic) {
                inputs.push(topic);
            }
        }
        inputs
    }

    /// The tasks that read `topic`, in task order.
    pub fn tasks_reading(&self, topic: &str) -> Vec<usize> {
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, task)| task.input_topics().contains(&topic))
            .map(|(index, _)| index)
            .collect()
    }

    /// How many (task, partition) stores the host holds.
    pub fn store_count(&self) -> usize {
        self.stores.len()
    }

    pub fn has_store(&self, slot: Slot) -> bool {
        self.stores.contains_key(&slot)
    }

    pub fn store(&self, slot: Slot) -> Option<&KvStore> {
        self.stores.get(&slot)
    }

    /// Whether every task reading `topic` has its store for `partition`: a record
    /// of a partition being restored or given away is not processed.
    pub fn ready(&self, topic: &str, partition: u32) -> bool {
        let reading = self.tasks_reading(topic);
        !reading.is_empty()
            && reading
                .iter()
                .all(|task| self.stores.contains_key(&(*task, partition)))
    }

    /// Forgets every store (a crash, or a failed batch the driver restores after).
    pub fn clear(&mut self) {
        self.stores.clear();
    }

    /// Keeps the stores of the tasks reading the `assigned` input partitions and
    /// returns the slots that still need a restore, in order.
    pub fn retain_assigned(&mut self, assigned: &BTreeSet<(String, u32)>) -> Vec<Slot> {
        let mut wanted = BTreeSet::new();
        for (topic, partition) in assigned {
            wanted.extend(
                self.tasks_reading(topic)
                    .into_iter()
                    .map(|t| (t, *partition)),
            );
        }
        self.stores.retain(|slot, _| wanted.contains(slot));
        wanted
            .into_iter()
            .filter(|slot| !self.stores.contains_key(slot))
            .collect()
    }

    /// Whether task `task` rebuilds its store from its outputs rather than from a
    /// changelog (the rebuild rule, in this file's header).
    pub fn rebuilds_from_outputs(&self, task: usize) -> bool {
        !self.exactly_once && !self.tasks[task].rebuild_topics().is_empty()
    }

    /// Whether an output to `topic` belongs to a batch's first wave under
    /// at-least-once: some task needs it durable before its other outputs
    /// (`StreamTask::durable_first_topics`).
    pub fn is_durable_first(&self, topic: &str) -> bool {
        !self.exactly_once
            && self
                .tasks
                .iter()
                .any(|task| task.durable_first_topics().contains(&topic))
    }

    /// The topics (short names) whose partition `partition` a restore of task
    /// `task` reads, from the start to the end, in order.
    pub fn restore_sources(&self, task: usize) -> Vec<String> {
        if self.rebuilds_from_outputs(task) {
            self.tasks[task]
                .rebuild_topics()
                .iter()
                .map(|topic| (*topic).to_owned())
                .collect()
        } else {
            vec![self.changelog_topic(task)]
        }
    }

    pub fn begin_restore(&self, slot: Slot) -> StoreRestore {
        assert!(slot.0 < self.tasks.len(), "no task {}", slot.0);
        StoreRestore {
            task: slot.0,
            partition: slot.1,
            from_outputs: self.rebuilds_from_outputs(slot.0),
            store: KvStore::new(),
            replayed: 0,
            // Every source, read or not: an empty read is "saw nothing", not
            // "unknown" (S7 tells the two apart).
            read_to: self
                .restore_sources(slot.0)
                .into_iter()
                .map(|topic| ReadTo {
                    topic,
                    next_offset: 0,
                })
                .collect(),
        }
    }

    /// Folds one record of a restore source into the store being restored.
    pub fn restore_record(&self, restore: &mut StoreRestore, input: &InputRecord<'_>) {
        assert_eq!(
            input.partition, restore.partition,
            "a record of another partition"
        );
        restore.replayed += 1;
        let next_offset = input.offset + 1;
        match restore.read_to.iter_mut().find(|r| r.topic == input.topic) {
            Some(read) => {
                assert!(read.next_offset <= next_offset, "a restore read backwards");
                read.next_offset = next_offset;
            }
            None => restore.read_to.push(ReadTo {
                topic: input.topic.to_owned(),
                next_offset,
            }),
        }
        if restore.from_outputs {
            self.tasks[restore.task].rebuild_from_output(&mut restore.store, input);
        } else if let Some(key) = input.key {
            restore.store.apply(&StoreWrite::new(
                key.to_vec(),
                input.value.map(<[u8]>::to_vec),
            ));
        }
    }

    /// Installs a restored store and returns the history step that records it
    /// (S4 compares the accounts it holds with the log).
    pub fn finish_restore(&mut self, restore: StoreRestore, instance: u32) -> Step {
        assert!(self.stores.len() < MAX_STORES, "over {MAX_STORES} stores");
        let task = &self.tasks[restore.task];
        let step = Step::Restore {
            instance,
            task: task.name().to_owned(),
            partition: restore.partition,
            records_replayed: restore.replayed,
            accounts: task.stored_accounts(&restore.store),
            read_to: restore.read_to,
        };
        self.stores
            .insert((restore.task, restore.partition), restore.store);
        step
    }

    /// Runs one input record through every task reading its topic, in task order,
    /// applying each task's store writes at once (a later record of the batch sees
    /// them), and adds what it asks for to `batch`. A task whose store is missing
    /// is skipped: the driver processes only `ready` partitions.
    pub fn process(&mut self, input: &InputRecord<'_>, batch: &mut Dispatched) {
        for task in self.tasks_reading(input.topic) {
            let slot = (task, input.partition);
            let from_outputs = self.rebuilds_from_outputs(task);
            let Some(store) = self.stores.get_mut(&slot) else {
                continue;
            };
            let output = self.tasks[task].process(store, input);
            for write in output.store_writes {
                let bytes = write.value.as_ref().map_or(0, Vec::len);
                let largest = batch.largest_store_value.as_ref().map_or(0, |l| l.bytes);
                if bytes > largest {
                    batch.largest_store_value = Some(StoreValueSize {
                        task: self.tasks[task].name(),
                        key: write.key.clone(),
                        bytes,
                    });
                }
                let before =
                    StoreWrite::new(write.key.clone(), store.get(&write.key).map(<[u8]>::to_vec));
                store.apply(&write);
                batch.undo.push(ChangelogWrite {
                    task,
                    partition: input.partition,
                    write: before,
                });
                if !from_outputs {
                    batch.changelog.push(ChangelogWrite {
                        task,
                        partition: input.partition,
                        write,
                    });
                }
            }
            batch.records.extend(output.records);
            batch.marks.extend(output.marks);
        }
    }

    /// Takes a batch's store writes back, newest first (its transaction aborted
    /// and the instance carries on with the stores it had before the batch).
    pub fn undo(&mut self, undo: &[ChangelogWrite]) {
        for entry in undo.iter().rev() {
            let store = self.stores.get_mut(&(entry.task, entry.partition));
            let store =
                store.expect("a batch's store writes belong to a store the host still holds");
            store.apply(&entry.write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::codec::{encode, encode_account_key};
    use marlow_model::task::hardened::HardenedConfig;
    use marlow_model::task::seed::SeedConfig;
    use marlow_model::task::topics;
    use marlow_model::{AccountId, ClientId, Command, CommandId, CommandKind, OccToken, OwnerId};

    fn seed_host() -> TaskHost {
        TaskHost::new(&DesignConfig::Seed(SeedConfig::original()), true)
    }

    /// A command record on partition 0 of `commands`.
    fn command_input<'a>(key: &'a [u8], value: &'a [u8]) -> InputRecord<'a> {
        InputRecord {
            topic: topics::COMMANDS,
            partition: 0,
            offset: 0,
            key: Some(key),
            value: Some(value),
        }
    }

    /// Restores an empty store for task 0 on partition 0 and runs one deposit.
    fn deposit_on_fresh_store(host: &mut TaskHost) -> Dispatched {
        let restore = host.begin_restore((0, 0));
        host.finish_restore(restore, 0);
        let (key, value) = deposit();
        let mut batch = Dispatched::default();
        host.process(&command_input(&key, &value), &mut batch);
        batch
    }

    fn deposit() -> (Vec<u8>, Vec<u8>) {
        let command = Command {
            id: CommandId {
                client: ClientId(0),
                seq: 0,
            },
            account: AccountId(0),
            issuer: OwnerId(0),
            occ: OccToken::Any,
            kind: CommandKind::Deposit { amount_minor: 5 },
        };
        (encode_account_key(AccountId(0)), encode(&command))
    }

    #[test]
    fn the_seed_design_reads_four_topics_and_the_hardened_one() {
        assert_eq!(
            seed_host().input_topics(),
            [
                topics::COMMANDS,
                topics::EVENTS,
                topics::COMMANDS_INDEXED,
                topics::SNAPSHOTS
            ]
        );
        let hardened = TaskHost::new(&DesignConfig::Hardened(HardenedConfig::default()), true);
        assert_eq!(hardened.input_topics(), [topics::COMMANDS]);
    }

    #[test]
    fn an_assignment_wants_a_store_per_reading_task_and_partition() {
        let mut host = seed_host();
        let assigned: BTreeSet<(String, u32)> = [
            (topics::COMMANDS.to_owned(), 1),
            (topics::SNAPSHOTS.to_owned(), 1),
        ]
        .into();
        // The indexer on 1, and the validator and the alarm filter on 1 (both read snapshots).
        assert_eq!(host.retain_assigned(&assigned), [(0, 1), (2, 1), (3, 1)]);
        assert!(!host.ready(topics::COMMANDS, 1));
        let restore = host.begin_restore((0, 1));
        let step = host.finish_restore(restore, 7);
        assert!(matches!(
            step,
            Step::Restore {
                instance: 7,
                partition: 1,
                ..
            }
        ));
        assert!(host.ready(topics::COMMANDS, 1));
        assert!(!host.ready(topics::COMMANDS, 0));
        assert!(!host.ready("not-an-input", 1));
    }

    #[test]
    fn a_write_goes_to_the_changelog_and_can_be_undone() {
        let mut host = seed_host();
        let batch = deposit_on_fresh_store(&mut host);
        assert_eq!(batch.records[0].topic, topics::COMMANDS_INDEXED);
        assert_eq!(batch.changelog.len(), 1);
        assert_eq!(
            host.changelog_topic(batch.changelog[0].task),
            "seed-indexer-changelog"
        );
        // The store already holds the new count: the batch's next record sees it.
        assert!(!host.store((0, 0)).expect("restored").is_empty());
        host.undo(&batch.undo);
        assert!(host.store((0, 0)).expect("restored").is_empty());
    }

    #[test]
    fn at_least_once_the_hardened_store_is_rebuilt_from_outputs_without_a_changelog() {
        let design = DesignConfig::Hardened(HardenedConfig::default());
        let mut host = TaskHost::new(&design, false);
        assert!(host.rebuilds_from_outputs(0));
        assert_eq!(host.restore_sources(0), ["events", "outcomes", "alarms"]);
        let batch = deposit_on_fresh_store(&mut host);
        assert!(batch.changelog.is_empty());
        assert!(!batch.undo.is_empty());
        let exactly_once = TaskHost::new(&design, true);
        assert_eq!(exactly_once.restore_sources(0), ["hardened-changelog"]);
    }
}
