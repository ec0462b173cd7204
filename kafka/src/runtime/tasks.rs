//! The design's stream tasks over one app instance's partitions: the shared app host
//! (`marlow_harness::host`, the same one the simulator runs) with real mode's names
//! around it. The host keeps the stores, dispatches records and decides the restore
//! sources; this file maps the run's full topic names to the model's short ones and
//! reads the restore sources from the broker. Topic names in the host are the model's
//! short ones; the run's real topics are `ns.topic(name)`.

use std::collections::{BTreeMap, BTreeSet};

use marlow_harness::host::TaskHost;
use marlow_model::task::InputRecord;
use marlow_model::DesignConfig;

use super::capture::read_topic_to_end;
use super::reports::Reports;
use super::{ClientSettings, RealError};
use crate::client::ReadIsolation;
use crate::topics::RunNamespace;

/// One input partition as the model names it: (short topic name, partition).
pub(super) type InputPartition = (&'static str, i32);

pub(super) struct Tasks {
    host: TaskHost,
    /// Each input topic's short name by its full one (as a polled record names it).
    inputs: BTreeMap<String, &'static str>,
    /// Each task's changelog topic, full name, by task index.
    changelogs: Vec<String>,
}

impl Tasks {
    pub(super) fn new(
        design: &DesignConfig,
        ns: &RunNamespace,
        exactly_once: bool,
    ) -> Result<Tasks, RealError> {
        let host = TaskHost::new(design, exactly_once);
        let changelogs = (0..host.task_count())
            .map(|task| ns.topic(&host.changelog_topic(task)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut inputs = BTreeMap::new();
        for topic in host.input_topics() {
            inputs.insert(ns.topic(topic)?, topic);
        }
        Ok(Tasks {
            host,
            inputs,
            changelogs,
        })
    }

    /// The short name of a polled record's topic (`None`: not an input of this design).
    pub(super) fn short_name(&self, full: &str) -> Option<&'static str> {
        self.inputs.get(full).copied()
    }

    /// The union of the tasks' input topics, in data-flow order, each once.
    pub(super) fn input_topics(&self) -> Vec<&'static str> {
        self.host.input_topics()
    }

    /// Whether every task reading `topic` has its store for `partition`.
    pub(super) fn ready(&self, topic: &str, partition: i32) -> bool {
        u32::try_from(partition).is_ok_and(|p| self.host.ready(topic, p))
    }

    /// Drops every store (after a failed batch; the caller restores again).
    pub(super) fn clear(&mut self) {
        self.host.clear();
    }

    /// Keeps the stores of the tasks reading `assigned` and returns the (task, partition)
    /// slots that still need a restore.
    pub(super) fn retain_assigned(
        &mut self,
        assigned: &BTreeSet<InputPartition>,
    ) -> Vec<(usize, i32)> {
        let assigned: BTreeSet<(String, u32)> = assigned
            .iter()
            .filter_map(|(topic, p)| Some(((*topic).to_owned(), u32::try_from(*p).ok()?)))
            .collect();
        self.host
            .retain_assigned(&assigned)
            .into_iter()
            .map(|(task, p)| (task, i32::try_from(p).unwrap_or(i32::MAX)))
            .collect()
    }

    /// Restores task `t`'s store for `partition` from the sources the host names, read
    /// from the broker, and records the restore. Returns the number of records replayed.
    pub(super) fn restore(
        &mut self,
        t: usize,
        partition: i32,
        ctx: &RestoreContext<'_>,
    ) -> Result<u64, RealError> {
        let model_partition = u32::try_from(partition).unwrap_or(0);
        let mut restore = self.host.begin_restore((t, model_partition));
        for source in self.host.restore_sources(t) {
            let full = ctx.ns.topic(&source)?;
            let by_partition = read_topic_to_end(
                ctx.settings.reader(),
                ctx.ns,
                &full,
                &[partition],
                ctx.isolation,
            )?;
            for record in by_partition.into_values().flatten() {
                let input = InputRecord {
                    topic: &source,
                    partition: model_partition,
                    offset: u64::try_from(record.offset).unwrap_or(0),
                    key: record.key.as_deref(),
                    value: Some(&record.value),
                };
                self.host.restore_record(&mut restore, &input);
            }
        }
        let replayed = restore.records_replayed();
        let step = self.host.finish_restore(restore, ctx.instance);
        ctx.reports.restore(step);
        Ok(replayed)
    }

    /// The host, for a batch to run its records through and to undo them.
    pub(super) fn host_mut(&mut self) -> &mut TaskHost {
        &mut self.host
    }

    pub(super) fn host(&self) -> &TaskHost {
        &self.host
    }

    /// The full changelog topic of task `t`.
    pub(super) fn changelog(&self, t: usize) -> &str {
        &self.changelogs[t]
    }
}

/// What a restore needs besides the task and partition.
pub(super) struct RestoreContext<'a> {
    pub(super) instance: u32,
    pub(super) ns: &'a RunNamespace,
    pub(super) settings: &'a ClientSettings,
    pub(super) reports: &'a Reports,
    /// read_committed under exactly-once; read_uncommitted under at-least-once, as the
    /// simulator's instances read.
    pub(super) isolation: ReadIsolation,
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::task::hardened::HardenedConfig;
    use marlow_model::task::topics;

    #[test]
    fn a_polled_topic_is_known_by_its_full_name_only() {
        let ns = RunNamespace::new("tasks-test").expect("valid run id");
        let hardened = DesignConfig::Hardened(HardenedConfig::default());
        let tasks = Tasks::new(&hardened, &ns, true).expect("tasks");
        assert_eq!(tasks.input_topics(), [topics::COMMANDS]);
        let full = ns.topic(topics::COMMANDS).expect("name");
        assert_eq!(tasks.short_name(&full), Some(topics::COMMANDS));
        assert_eq!(tasks.short_name(topics::COMMANDS), None);
        assert_eq!(
            tasks.changelog(0),
            ns.topic("hardened-changelog").expect("name")
        );
    }
}
