//! Growing a topic mid-run (the timeline's `add_partitions`), as the simulator does it
//! (`sim/src/world/faults.rs`): the topic gains `count` partitions, and the changelog of
//! every task reading it grows to match, so each new input partition has its changelog
//! partition. Keys then move to other partitions, as in Kafka: the seed design's indexer
//! starts a fresh count for a moved key (W3's duplicate positions).

use marlow_model::task::changelog_topic;
use marlow_model::DesignConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use super::RealError;
use crate::topics::RunNamespace;

/// One topic the helper grew, by its full name, with its new partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grown {
    pub topic: String,
    pub partitions: u32,
}

/// Adds `count` partitions to the run's `topic` (a short model name, e.g. `commands`) and
/// grows the changelogs of the design's tasks reading it to the same count. Needs an
/// external broker's admin client (librdkafka's mock cluster cannot grow a topic).
///
/// The run's clients see the new partitions at their next metadata refresh (every second,
/// `client::base_config`): until then the ATM producer partitions by the old count.
pub fn add_partitions(
    admin: &AdminClient<DefaultClientContext>,
    ns: &RunNamespace,
    design: &DesignConfig,
    topic: &str,
    count: u32,
) -> Result<Vec<Grown>, RealError> {
    let full = ns.topic(topic)?;
    let total = ns.partition_count(admin, &full)? + count;
    let mut grown = vec![Grown {
        topic: full,
        partitions: total,
    }];
    for task in design.tasks() {
        if !task.input_topics().contains(&topic) {
            continue;
        }
        let changelog = ns.topic(&changelog_topic(task.as_ref()))?;
        if ns.partition_count(admin, &changelog)? < total {
            grown.push(Grown {
                topic: changelog,
                partitions: total,
            });
        }
    }
    let totals: Vec<(String, u32)> = grown
        .iter()
        .map(|g| (g.topic.clone(), g.partitions))
        .collect();
    ns.grow(admin, &totals)?;
    Ok(grown)
}
