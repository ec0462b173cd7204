//! `[cluster]`: the (simulated or real) Kafka cluster the processor runs on:
//! partitions per topic, app instances, the processing guarantee, retention and
//! cleanup of the command and event topics, broker latency, and the client
//! settings (session and transaction timeouts, commit interval, poll size).

use crate::range::MinMax;
use crate::validate::Validator;
use marlow_model::task::topics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_PARTITIONS: u32 = 1024;
pub const MAX_APP_INSTANCES: u32 = 64;
/// One day, the longest timeout or interval a scenario may set.
pub const MAX_MS: u64 = 86_400_000;
/// Ten seconds, the longest base broker latency a scenario may set.
pub const MAX_BROKER_LATENCY_US: u64 = 10_000_000;
/// One year, the longest retention a scenario may set.
pub const MAX_RETENTION_MS: u64 = 365 * 86_400_000;

/// The topics a scenario may name (partition overrides, timeline actions).
/// Changelog topics are not listed: they always have the partition count of
/// their task's input topics.
pub const TOPICS: [&str; 7] = [
    topics::COMMANDS,
    topics::COMMANDS_INDEXED,
    topics::EVENTS,
    topics::SNAPSHOTS,
    topics::OUTCOMES,
    topics::ALARMS,
    topics::DEAD_LETTER,
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Partitions of every topic unless overridden below.
    pub partitions: u32,
    /// Per-topic partition counts, e.g. `{ "commands-indexed" = 8 }`. Topics a
    /// task reads together must agree (Kafka Streams co-partitioning).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions_per_topic: BTreeMap<String, u32>,
    /// App instances (consumer-group members) at the start, numbered from 0.
    pub app_instances: u32,
    /// Scale-outs (random or in the timeline) never go beyond this many.
    pub max_app_instances: u32,
    pub processing_guarantee: ProcessingGuarantee,
    /// `retention.ms` of the command topics (`commands`, `commands-indexed`).
    /// The original used 60 000 (W6); the default is Kafka's 7 days.
    pub commands_retention_ms: u64,
    /// `cleanup.policy` of the `events` topic. Events are meant to be kept
    /// forever; `compact` loses history (W6).
    pub events_cleanup: CleanupPolicy,
    /// How often the log cleaner applies retention and compaction.
    pub log_cleaner_interval_ms: u64,
    /// Broker latency of one request (produce, fetch, commit), drawn per request.
    /// Latency spikes are a fault: see `faults.latency_spike_probability`.
    pub broker_latency_us: MinMax<u64>,
    /// A member that has not polled or heartbeated for this long is dropped from
    /// the group and its partitions move.
    pub session_timeout_ms: u64,
    /// A transaction open this long is aborted by the coordinator.
    pub transaction_timeout_ms: u64,
    /// How often an instance commits (its transaction under exactly-once, its
    /// offsets under at-least-once).
    pub commit_interval_ms: u64,
    /// Records one poll returns at most.
    pub max_poll_records: u32,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            partitions: 4,
            partitions_per_topic: BTreeMap::new(),
            app_instances: 2,
            max_app_instances: 8,
            processing_guarantee: ProcessingGuarantee::ExactlyOnce,
            commands_retention_ms: 7 * 24 * 3_600_000,
            events_cleanup: CleanupPolicy::Delete,
            log_cleaner_interval_ms: 1_000,
            broker_latency_us: MinMax::new(500, 2_000),
            session_timeout_ms: 10_000,
            transaction_timeout_ms: 10_000,
            commit_interval_ms: 100,
            max_poll_records: 500,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingGuarantee {
    /// Transactional producer, offsets committed in the transaction,
    /// read_committed consumers.
    #[default]
    ExactlyOnce,
    /// Outputs first, offsets later: a crash replays the uncommitted input.
    AtLeastOnce,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupPolicy {
    #[default]
    Delete,
    Compact,
}

impl Cluster {
    /// The partition count of a topic at the start of a run.
    pub fn partitions_of(&self, topic: &str) -> u32 {
        self.partitions_per_topic
            .get(topic)
            .copied()
            .unwrap_or(self.partitions)
    }

    pub(crate) fn validate(&self, v: &mut Validator) {
        v.int_in("cluster.partitions", self.partitions, 1, MAX_PARTITIONS);
        for (topic, count) in &self.partitions_per_topic {
            let field = format!("cluster.partitions_per_topic.{topic}");
            if !TOPICS.contains(&topic.as_str()) {
                v.fail(
                    field,
                    format!("a topic name, one of {}", TOPICS.join(", ")),
                    format!("`{topic}`"),
                );
            } else {
                v.int_in(&field, *count, 1, MAX_PARTITIONS);
            }
        }
        v.int_in(
            "cluster.app_instances",
            self.app_instances,
            1,
            MAX_APP_INSTANCES,
        );
        v.int_in(
            "cluster.max_app_instances",
            self.max_app_instances,
            self.app_instances.clamp(1, MAX_APP_INSTANCES),
            MAX_APP_INSTANCES,
        );
        v.int_in(
            "cluster.commands_retention_ms",
            self.commands_retention_ms,
            1,
            MAX_RETENTION_MS,
        );
        v.int_in(
            "cluster.log_cleaner_interval_ms",
            self.log_cleaner_interval_ms,
            1,
            MAX_MS,
        );
        self.broker_latency_us
            .validate(v, "cluster.broker_latency_us", 0, MAX_BROKER_LATENCY_US);
        v.int_in(
            "cluster.session_timeout_ms",
            self.session_timeout_ms,
            1,
            MAX_MS,
        );
        v.int_in(
            "cluster.transaction_timeout_ms",
            self.transaction_timeout_ms,
            1,
            MAX_MS,
        );
        v.int_in(
            "cluster.commit_interval_ms",
            self.commit_interval_ms,
            1,
            self.transaction_timeout_ms.clamp(1, MAX_MS),
        );
        v.int_in(
            "cluster.max_poll_records",
            self.max_poll_records,
            1,
            100_000,
        );
    }

    /// Co-partitioning: every task must find its input topics (and, under
    /// at-least-once, its rebuild topics) with one partition count, or
    /// partition `p` of one would not hold the same keys as partition `p` of
    /// another.
    pub(crate) fn validate_copartitioning(
        &self,
        v: &mut Validator,
        design: &marlow_model::DesignConfig,
    ) {
        for task in design.tasks() {
            // Rebuild topics replace the changelog only under at-least-once.
            let rebuild: &[&str] = match self.processing_guarantee {
                ProcessingGuarantee::AtLeastOnce => task.rebuild_topics(),
                ProcessingGuarantee::ExactlyOnce => &[],
            };
            let read = task.input_topics().iter().chain(rebuild);
            let mut first: Option<(&str, u32)> = None;
            for topic in read {
                let count = self.partitions_of(topic);
                match first {
                    None => first = Some((topic, count)),
                    Some((first_topic, first_count)) if first_count != count => v.fail(
                        format!("cluster.partitions_per_topic.{topic}"),
                        format!(
                            "{first_count} partitions like `{first_topic}`, which task `{}` reads with it",
                            task.name()
                        ),
                        count,
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}
