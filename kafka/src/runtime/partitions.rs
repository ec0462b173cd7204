//! Growing a topic mid-run (the timeline's `add_partitions`), as the simulator does it
//! (`sim/src/world/faults.rs`): the topic gains `count` partitions, and the changelog of
//! every task reading it grows to match, so each new input partition has its changelog
//! partition. Keys then move to other partitions, as in Kafka: the seed design's indexer
//! starts a fresh count for a moved key (W3's duplicate positions).

use std::future::Future;
use std::time::Duration;

use marlow_model::task::changelog_topic;
use marlow_model::DesignConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;

use super::RealError;
use crate::client::CLIENT_TIMEOUT_MS;
use crate::topics::{RunNamespace, TopicError};

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
/// The run's clients see the new partitions only at their next metadata refresh
/// (`topic.metadata.refresh.interval.ms`, 5 min by default): the ATM producer keeps
/// partitioning by the old count until then, and the app group rebalances onto the new
/// partitions only when a member notices them.
pub fn add_partitions(
    admin: &AdminClient<DefaultClientContext>,
    ns: &RunNamespace,
    design: &DesignConfig,
    topic: &str,
    count: u32,
) -> Result<Vec<Grown>, RealError> {
    let full = ns.topic(topic)?;
    let total = partition_count(admin, ns, &full)? + count;
    let mut grown = vec![Grown {
        topic: full,
        partitions: total,
    }];
    for task in design.tasks() {
        if !task.input_topics().contains(&topic) {
            continue;
        }
        let changelog = ns.topic(&changelog_topic(task.as_ref()))?;
        if partition_count(admin, ns, &changelog)? < total {
            grown.push(Grown {
                topic: changelog,
                partitions: total,
            });
        }
    }
    let requests: Vec<NewPartitions<'_>> = grown
        .iter()
        .map(|g| NewPartitions::new(&g.topic, usize::try_from(g.partitions).unwrap_or(0)))
        .collect();
    let results = block_on(admin.create_partitions(&requests, &admin_options()))??;
    for result in results {
        if let Err((topic, code)) = result {
            return Err(RealError::Unsupported(format!(
                "adding partitions to {topic} failed: {code}"
            )));
        }
    }
    Ok(grown)
}

/// A run topic's partition count as the cluster's metadata has it now.
pub fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    ns: &RunNamespace,
    full: &str,
) -> Result<u32, RealError> {
    let full = ns.guard(full)?;
    let metadata = admin
        .inner()
        .fetch_metadata(Some(full), Duration::from_millis(CLIENT_TIMEOUT_MS))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == full)
        .map_or(0, |t| t.partitions().len());
    Ok(u32::try_from(partitions).unwrap_or(u32::MAX))
}

fn admin_options() -> AdminOptions {
    let timeout = Some(Duration::from_millis(CLIENT_TIMEOUT_MS));
    AdminOptions::new()
        .operation_timeout(timeout)
        .request_timeout(timeout)
}

/// Runs one admin future to completion with a deadline (rdkafka's admin client polls on
/// its own thread, so a current-thread runtime is enough to wait for the answer).
fn block_on<F: Future>(future: F) -> Result<F::Output, RealError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let deadline = Duration::from_millis(CLIENT_TIMEOUT_MS + 1_000);
    runtime
        .block_on(async { tokio::time::timeout(deadline, future).await })
        .map_err(|_| RealError::Topic(TopicError::Timeout(CLIENT_TIMEOUT_MS)))
}
