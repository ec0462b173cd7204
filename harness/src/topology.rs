//! The topics of a run, stated once for both modes: every topic a scenario may
//! name, each with the scenario's partition count, and per stream task of the
//! design a compacted changelog partitioned like the task's first input. The
//! simulator creates exactly these in its cluster and real mode on the broker;
//! `kafka/tests/topology.rs` compares what each mode creates.
//!
//! Retention applies to both command topics (`commands`, `commands-indexed`): a
//! lagging command expires from either (W6). The events topic is compacted only
//! when the scenario says so (the other half of W6).

use marlow_model::task::{changelog_topic, topics};
use marlow_scenarios::{CleanupPolicy, Scenario};

/// How the broker cleans a topic's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Records go by age (`retention_ms`) only.
    Delete,
    /// Only the newest record of each key is kept.
    Compact,
}

/// One topic as a run creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPlan {
    /// The model's short name; real mode prefixes it with the run's namespace.
    pub name: String,
    pub partitions: u32,
    pub cleanup: Cleanup,
    /// `retention.ms`; `None` keeps the broker's default.
    pub retention_ms: Option<u64>,
}

/// The topics of a run of `scenario` (its design's changelogs included), in the
/// order they are created.
pub fn topology(scenario: &Scenario) -> Vec<TopicPlan> {
    let cluster = &scenario.cluster;
    let mut plans = Vec::new();
    for topic in marlow_scenarios::TOPICS {
        let is_command_topic = topic == topics::COMMANDS || topic == topics::COMMANDS_INDEXED;
        let compacted = topic == topics::EVENTS && cluster.events_cleanup == CleanupPolicy::Compact;
        plans.push(TopicPlan {
            name: topic.to_owned(),
            partitions: cluster.partitions_of(topic),
            cleanup: if compacted {
                Cleanup::Compact
            } else {
                Cleanup::Delete
            },
            // 0 keeps the broker's default (no retention of Marlow's own).
            retention_ms: (is_command_topic && cluster.commands_retention_ms > 0)
                .then_some(cluster.commands_retention_ms),
        });
    }
    for task in scenario.design_config().tasks() {
        let input = task.input_topics()[0];
        plans.push(TopicPlan {
            name: changelog_topic(task.as_ref()),
            partitions: cluster.partitions_of(input),
            cleanup: Cleanup::Compact,
            retention_ms: None,
        });
    }
    assert!(
        plans.iter().all(|plan| plan.partitions > 0),
        "a topic without partitions"
    );
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_scenarios::DesignKind;

    fn named(name: &str) -> Scenario {
        Scenario::load_named(name).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn w6_keeps_commands_for_its_retention_in_both_command_topics() {
        let plans = topology(&named("w6-retention").with_design(DesignKind::Hardened));
        let retention = |name: &str| {
            plans
                .iter()
                .find(|plan| plan.name == name)
                .and_then(|plan| plan.retention_ms)
        };
        assert_eq!(retention(topics::COMMANDS), Some(60_000));
        assert_eq!(retention(topics::COMMANDS_INDEXED), Some(60_000));
        assert_eq!(retention(topics::EVENTS), None);
        let changelog = plans
            .iter()
            .find(|plan| plan.name == "hardened-changelog")
            .expect("the hardened task's changelog");
        assert_eq!(changelog.cleanup, Cleanup::Compact);
    }

    #[test]
    fn each_task_of_the_seed_design_has_a_changelog() {
        let plans = topology(&named("w3-check-then-act"));
        let changelogs = plans
            .iter()
            .filter(|plan| plan.name.ends_with("-changelog"))
            .count();
        assert_eq!(changelogs, 4);
        assert_eq!(plans.len(), marlow_scenarios::TOPICS.len() + 4);
    }
}
