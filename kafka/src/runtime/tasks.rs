//! The design's stream tasks over one app instance's partitions, as the simulator runs them
//! (`sim/src/world/processing.rs`, `restore.rs`): one store per (task, partition), restored
//! on assignment from the task's changelog (or, under at-least-once, rebuilt from the
//! task's own outputs when it can be), and every polled record dispatched to each task
//! whose input topics hold its topic. Topic names here are the model's short ones; the
//! run's real topics are `ns.topic(name)`.

use std::collections::{BTreeMap, BTreeSet};

use marlow_model::codec::decode;
use marlow_model::task::seed::SeedSnapshot;
use marlow_model::task::{
    changelog_topic, InputRecord, KvStore, StoreWrite, StreamTask, TaskOutput,
};
use marlow_model::{Account, DesignConfig};
use marlow_sim::history::Step;

use super::capture::{read_topic_to_end, Recorder};
use super::{ClientSettings, RealError};
use crate::client::ReadIsolation;
use crate::topics::RunNamespace;

/// One input partition as the model names it: (short topic name, partition).
pub(super) type InputPartition = (&'static str, i32);

/// What one input record asks for: each reading task's output, and the changelog records
/// to write (full topic name, partition, write).
pub(super) struct Dispatched {
    pub(super) outputs: Vec<TaskOutput>,
    pub(super) changelog: Vec<(String, i32, StoreWrite)>,
}

pub(super) struct Tasks {
    tasks: Vec<Box<dyn StreamTask>>,
    /// Each task's changelog topic, full name, by task index.
    changelogs: Vec<String>,
    /// Each input topic's short name by its full one (as a polled record names it).
    inputs: BTreeMap<String, &'static str>,
    stores: BTreeMap<(usize, i32), KvStore>,
    exactly_once: bool,
}

impl Tasks {
    pub(super) fn new(
        design: &DesignConfig,
        ns: &RunNamespace,
        exactly_once: bool,
    ) -> Result<Tasks, RealError> {
        let tasks = design.tasks();
        let changelogs = tasks
            .iter()
            .map(|task| ns.topic(&changelog_topic(task.as_ref())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut built = Tasks {
            tasks,
            changelogs,
            inputs: BTreeMap::new(),
            stores: BTreeMap::new(),
            exactly_once,
        };
        for topic in built.input_topics() {
            built.inputs.insert(ns.topic(topic)?, topic);
        }
        Ok(built)
    }

    /// The short name of a polled record's topic (`None`: not an input of this design).
    pub(super) fn short_name(&self, full: &str) -> Option<&'static str> {
        self.inputs.get(full).copied()
    }

    /// The union of the tasks' input topics, in data-flow order, each once.
    pub(super) fn input_topics(&self) -> Vec<&'static str> {
        let mut topics: Vec<&'static str> = Vec::new();
        for topic in self.tasks.iter().flat_map(|t| t.input_topics().iter()) {
            if !topics.contains(topic) {
                topics.push(topic);
            }
        }
        topics
    }

    fn reading(&self, topic: &str) -> impl Iterator<Item = usize> + '_ {
        let topic = topic.to_owned();
        self.tasks
            .iter()
            .enumerate()
            .filter(move |(_, task)| task.input_topics().contains(&topic.as_str()))
            .map(|(index, _)| index)
    }

    /// Whether every task reading `topic` has its store for `partition` (a record of a
    /// partition being restored or given away is not processed).
    pub(super) fn ready(&self, topic: &str, partition: i32) -> bool {
        let mut reading = self.reading(topic).peekable();
        reading.peek().is_some() && reading.all(|t| self.stores.contains_key(&(t, partition)))
    }

    /// Drops every store (after a failed batch; the caller restores again).
    pub(super) fn clear(&mut self) {
        self.stores.clear();
    }

    /// Keeps the stores of the tasks reading `assigned` and returns the (task, partition)
    /// slots that still need a restore.
    pub(super) fn retain_assigned(
        &mut self,
        assigned: &BTreeSet<InputPartition>,
    ) -> Vec<(usize, i32)> {
        let mut wanted = BTreeSet::new();
        for (topic, partition) in assigned {
            wanted.extend(self.reading(topic).map(|t| (t, *partition)));
        }
        self.stores.retain(|slot, _| wanted.contains(slot));
        wanted
            .into_iter()
            .filter(|slot| !self.stores.contains_key(slot))
            .collect()
    }

    /// Whether task `t` rebuilds its store from its outputs rather than a changelog (the
    /// simulator's rule: at-least-once, and the task knows how).
    fn rebuilds_from_outputs(&self, t: usize) -> bool {
        !self.exactly_once && !self.tasks[t].rebuild_topics().is_empty()
    }

    /// Restores task `t`'s store for `partition` and records the restore. Returns the
    /// number of records replayed.
    pub(super) fn restore(
        &mut self,
        t: usize,
        partition: i32,
        ctx: &RestoreContext<'_>,
    ) -> Result<u64, RealError> {
        let task = &self.tasks[t];
        let from_outputs = self.rebuilds_from_outputs(t);
        let changelog = changelog_topic(task.as_ref());
        let sources: Vec<&str> = match from_outputs {
            true => task.rebuild_topics().to_vec(),
            false => vec![changelog.as_str()],
        };
        let mut store = KvStore::new();
        let mut replayed = 0u64;
        for source in sources {
            let full = ctx.ns.topic(source)?;
            let by_partition = read_topic_to_end(
                ctx.settings.reader(),
                ctx.ns,
                &full,
                &[partition],
                ctx.isolation,
            )?;
            for record in by_partition.into_values().flatten() {
                replayed += 1;
                if from_outputs {
                    let input = InputRecord {
                        topic: source,
                        partition: u32::try_from(partition).unwrap_or(0),
                        offset: u64::try_from(record.offset).unwrap_or(0),
                        key: record.key.as_deref(),
                        value: Some(&record.value),
                    };
                    task.rebuild_from_output(&mut store, &input);
                } else if let Some(key) = record.key {
                    store.apply(&StoreWrite {
                        key,
                        value: Some(record.value),
                    });
                }
            }
        }
        ctx.recorder.defer_restore(Step::Restore {
            instance: ctx.instance,
            task: task.name().to_owned(),
            partition: u32::try_from(partition).unwrap_or(0),
            records_replayed: replayed,
            accounts: restored_accounts(&store),
        });
        self.stores.insert((t, partition), store);
        Ok(replayed)
    }

    /// Runs one record through every task reading its topic, in task order, applying each
    /// task's store writes at once (a later record of the batch sees them).
    pub(super) fn process(&mut self, input: &InputRecord<'_>) -> Dispatched {
        let partition = i32::try_from(input.partition).unwrap_or(i32::MAX);
        let mut dispatched = Dispatched {
            outputs: Vec::new(),
            changelog: Vec::new(),
        };
        let reading: Vec<usize> = self.reading(input.topic).collect();
        for t in reading {
            let from_outputs = self.rebuilds_from_outputs(t);
            let store = self
                .stores
                .get_mut(&(t, partition))
                .expect("a record is processed only with every reading task's store");
            let output = self.tasks[t].process(store, input);
            store.apply_all(&output.store_writes);
            if !from_outputs {
                for write in &output.store_writes {
                    dispatched.changelog.push((
                        self.changelogs[t].clone(),
                        partition,
                        write.clone(),
                    ));
                }
            }
            dispatched.outputs.push(output);
        }
        dispatched
    }
}

/// What a restore needs besides the task and partition.
pub(super) struct RestoreContext<'a> {
    pub(super) instance: u32,
    pub(super) ns: &'a RunNamespace,
    pub(super) settings: &'a ClientSettings,
    pub(super) recorder: &'a Recorder,
    /// read_committed under exactly-once; read_uncommitted under at-least-once, as the
    /// simulator's instances read.
    pub(super) isolation: ReadIsolation,
}

/// The accounts a restored store holds, as the simulator records them: hardened account
/// entries and seed snapshots.
fn restored_accounts(store: &KvStore) -> Vec<Account> {
    store
        .iter()
        .filter_map(|(key, value)| {
            if key.starts_with(b"acct/") {
                decode::<Account>(value).ok()
            } else if key.starts_with(b"snap/") {
                decode::<SeedSnapshot>(value).ok().map(|s| s.account)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::codec::{encode, encode_account_key};
    use marlow_model::task::hardened::HardenedConfig;
    use marlow_model::task::seed::SeedConfig;
    use marlow_model::task::topics;
    use marlow_model::{AccountId, ClientId, Command, CommandId, CommandKind, OccToken, OwnerId};

    fn ns() -> RunNamespace {
        RunNamespace::new("tasks-test").expect("valid run id")
    }

    fn seed_tasks() -> Tasks {
        let design = DesignConfig::Seed(SeedConfig::original());
        Tasks::new(&design, &ns(), true).expect("tasks")
    }

    #[test]
    fn the_seed_design_reads_four_topics_and_the_hardened_one() {
        assert_eq!(
            seed_tasks().input_topics(),
            [
                topics::COMMANDS,
                topics::EVENTS,
                topics::COMMANDS_INDEXED,
                topics::SNAPSHOTS
            ]
        );
        let hardened = DesignConfig::Hardened(HardenedConfig::default());
        let tasks = Tasks::new(&hardened, &ns(), true).expect("tasks");
        assert_eq!(tasks.input_topics(), [topics::COMMANDS]);
        let full = ns().topic(topics::COMMANDS).expect("name");
        assert_eq!(tasks.short_name(&full), Some(topics::COMMANDS));
        assert_eq!(tasks.short_name(topics::COMMANDS), None);
    }

    #[test]
    fn an_assignment_wants_a_store_per_reading_task_and_partition() {
        let mut tasks = seed_tasks();
        let assigned: BTreeSet<InputPartition> =
            [(topics::COMMANDS, 1), (topics::SNAPSHOTS, 1)].into();
        // The indexer on 1, and the validator and the alarm filter on 1 (both read snapshots).
        assert_eq!(tasks.retain_assigned(&assigned), [(0, 1), (2, 1), (3, 1)]);
        assert!(!tasks.ready(topics::COMMANDS, 1));
        tasks.stores.insert((0, 1), KvStore::new());
        assert!(tasks.ready(topics::COMMANDS, 1));
        assert!(!tasks.ready(topics::COMMANDS, 0));
        assert!(!tasks.ready("not-an-input", 1));
    }

    #[test]
    fn a_command_goes_to_the_indexer_whose_count_goes_to_its_changelog() {
        let mut tasks = seed_tasks();
        tasks.stores.insert((0, 0), KvStore::new());
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
        let key = encode_account_key(AccountId(0));
        let value = encode(&command);
        let input = InputRecord {
            topic: topics::COMMANDS,
            partition: 0,
            offset: 0,
            key: Some(&key),
            value: Some(&value),
        };
        let dispatched = tasks.process(&input);
        assert_eq!(dispatched.outputs.len(), 1);
        assert_eq!(
            dispatched.outputs[0].records[0].topic,
            topics::COMMANDS_INDEXED
        );
        let changelog = ns().topic("seed-indexer-changelog").expect("name");
        assert_eq!(dispatched.changelog.len(), 1);
        assert_eq!(dispatched.changelog[0].0, changelog);
        assert_eq!(dispatched.changelog[0].1, 0);
        // The store already holds the new count: the batch's next record sees it.
        assert!(!tasks.stores[&(0, 0)].is_empty());
    }
}
