//! Run-scoped topics: every topic a run touches is named `marlow.<run id>.<name>`, and the
//! run refuses (with a typed error) any topic outside that prefix. A user pointing Marlow at a
//! shared staging cluster must not be able to read, write or delete anyone else's topics.

use std::future::Future;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Every run's topics start with this, followed by the run id and a dot.
pub const TOPIC_PREFIX_ROOT: &str = "marlow.";

/// How long one admin request (create, delete, list) may take before the run gives up.
pub const ADMIN_TIMEOUT_MS: u64 = 15_000;

/// Kafka's longest legal topic name.
const TOPIC_NAME_MAX_LEN: usize = 249;
/// A run id is short so that the full topic names stay readable and legal.
const RUN_ID_MAX_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("invalid run id {0:?}: use 1 to 64 characters from [A-Za-z0-9_-]")]
    InvalidRunId(String),
    #[error("invalid topic name {0:?}: use 1 to 249 characters from [A-Za-z0-9._-]")]
    InvalidName(String),
    #[error(
        "refusing topic {topic:?}: it is outside this run's namespace {prefix}* \
         (Marlow only touches the topics of its own run)"
    )]
    OutsideNamespace { topic: String, prefix: String },
    #[error("kafka client error: {0}")]
    Kafka(#[from] KafkaError),
    #[error("creating topic {topic} failed: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("deleting topic {topic} failed: {code}")]
    Delete {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("could not add partitions to {topic}: {code}")]
    Grow {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("admin request timed out after {0} ms")]
    Timeout(u64),
    #[error("could not start the admin runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// A topic to create: its short name inside the namespace, partitions and topic configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    /// Topic-level configs such as `("cleanup.policy", "compact")`.
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    pub fn new(name: &str, partitions: u32) -> Self {
        TopicSpec {
            name: name.to_owned(),
            partitions,
            configs: Vec::new(),
        }
    }

    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.configs.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// The topic namespace of one run: `marlow.<run id>.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNamespace {
    run_id: String,
    prefix: String,
}

impl RunNamespace {
    pub fn new(run_id: &str) -> Result<Self, TopicError> {
        let legal = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        // No dots in the run id: otherwise run "a" could own run "a.b"'s topics.
        if run_id.is_empty() || run_id.len() > RUN_ID_MAX_LEN || !run_id.chars().all(legal) {
            return Err(TopicError::InvalidRunId(run_id.to_owned()));
        }
        Ok(RunNamespace {
            run_id: run_id.to_owned(),
            prefix: format!("{TOPIC_PREFIX_ROOT}{run_id}."),
        })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// `marlow.<run id>.`, dot included.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of the run's topic `name`.
    pub fn topic(&self, name: &str) -> Result<String, TopicError> {
        let full = format!("{}{name}", self.prefix);
        self.guard(&full)?;
        Ok(full)
    }

    /// The guard every produce, consume, create and delete in this crate goes through:
    /// `Ok` only for a legal topic name strictly inside this run's namespace.
    pub fn guard<'t>(&self, topic: &'t str) -> Result<&'t str, TopicError> {
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if topic.is_empty() || topic.len() > TOPIC_NAME_MAX_LEN || !topic.chars().all(legal) {
            return Err(TopicError::InvalidName(topic.to_owned()));
        }
        match topic.strip_prefix(&self.prefix) {
            Some(rest) if !rest.is_empty() => Ok(topic),
            _ => Err(TopicError::OutsideNamespace {
                topic: topic.to_owned(),
                prefix: self.prefix.clone(),
            }),
        }
    }

    /// Creates the run's topics with their configs (replication factor 1: the brokers under
    /// test are single nodes; a staging run will pass its own). Returns the full names.
    pub fn create(
        &self,
        admin: &AdminClient<DefaultClientContext>,
        specs: &[TopicSpec],
    ) -> Result<Vec<String>, TopicError> {
        let names = specs
            .iter()
            .map(|s| self.topic(&s.name))
            .collect::<Result<Vec<_>, _>>()?;
        let new_topics: Vec<NewTopic<'_>> = specs
            .iter()
            .zip(&names)
            .map(|(spec, name)| new_topic(name, spec))
            .collect();
        let results = block_on_admin(admin.create_topics(&new_topics, &admin_options()))??;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(TopicError::Create { topic, code });
            }
        }
        Ok(names)
    }

    /// A run topic's partition count as the cluster's metadata has it now (0 if absent).
    pub fn partition_count(
        &self,
        admin: &AdminClient<DefaultClientContext>,
        full: &str,
    ) -> Result<u32, TopicError> {
        let full = self.guard(full)?;
        let metadata = admin
            .inner()
            .fetch_metadata(Some(full), Duration::from_millis(ADMIN_TIMEOUT_MS))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == full)
            .map_or(0, |t| t.partitions().len());
        Ok(u32::try_from(partitions).unwrap_or(u32::MAX))
    }

    /// Grows run topics (full name, new total partition count) through CreatePartitions.
    pub fn grow(
        &self,
        admin: &AdminClient<DefaultClientContext>,
        totals: &[(String, u32)],
    ) -> Result<(), TopicError> {
        let requests = totals
            .iter()
            .map(|(topic, total)| {
                let count = usize::try_from(*total).unwrap_or(usize::MAX);
                Ok(NewPartitions::new(self.guard(topic)?, count))
            })
            .collect::<Result<Vec<_>, TopicError>>()?;
        let results = block_on_admin(admin.create_partitions(&requests, &admin_options()))??;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(TopicError::Grow { topic, code });
            }
        }
        Ok(())
    }

    /// The cluster's topics inside this namespace, sorted.
    pub fn list(
        &self,
        admin: &AdminClient<DefaultClientContext>,
    ) -> Result<Vec<String>, TopicError> {
        let metadata = admin
            .inner()
            .fetch_metadata(None, Duration::from_millis(ADMIN_TIMEOUT_MS))?;
        let mut ours: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name())
            .filter(|name| self.guard(name).is_ok())
            .map(str::to_owned)
            .collect();
        ours.sort();
        Ok(ours)
    }

    /// Deletes every topic of this run, and only those: the names come from the cluster's
    /// metadata and each passes the guard before it is put in the request. Returns them.
    pub fn delete_all(
        &self,
        admin: &AdminClient<DefaultClientContext>,
    ) -> Result<Vec<String>, TopicError> {
        let ours = self.list(admin)?;
        if ours.is_empty() {
            return Ok(ours);
        }
        let names = ours
            .iter()
            .map(|t| self.guard(t))
            .collect::<Result<Vec<&str>, _>>()?;
        let results = block_on_admin(admin.delete_topics(&names, &admin_options()))??;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => return Err(TopicError::Delete { topic, code }),
            }
        }
        Ok(ours)
    }
}

fn new_topic<'a>(name: &'a str, spec: &'a TopicSpec) -> NewTopic<'a> {
    let partitions = i32::try_from(spec.partitions).unwrap_or(i32::MAX);
    spec.configs.iter().fold(
        NewTopic::new(name, partitions, TopicReplication::Fixed(1)),
        |topic, (k, v)| topic.set(k, v),
    )
}

fn admin_options() -> AdminOptions {
    let timeout = Some(Duration::from_millis(ADMIN_TIMEOUT_MS));
    AdminOptions::new()
        .operation_timeout(timeout)
        .request_timeout(timeout)
}

/// Runs one admin future to completion with a deadline. rdkafka's admin client polls on its
/// own thread, so a small current-thread runtime is enough to wait for the answer.
fn block_on_admin<F: Future>(future: F) -> Result<F::Output, TopicError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let deadline = Duration::from_millis(ADMIN_TIMEOUT_MS + 1_000);
    // The timer must be created inside the runtime, hence the async block.
    runtime
        .block_on(async { tokio::time::timeout(deadline, future).await })
        .map_err(|_| TopicError::Timeout(ADMIN_TIMEOUT_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_with_dots_or_spaces_are_refused() {
        for bad in ["", "a.b", "a b", "ü", &"x".repeat(65)] {
            assert!(RunNamespace::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RunNamespace::new("run-1_A").is_ok());
    }

    #[test]
    fn guard_accepts_only_the_runs_own_topics() {
        let ns = RunNamespace::new("r1").expect("valid run id");
        assert_eq!(ns.topic("accounts").expect("legal"), "marlow.r1.accounts");
        assert!(ns.guard("marlow.r1.accounts").is_ok());
        for outside in [
            "accounts",
            "marlow.r1.",
            "marlow.r1",
            "marlow.r10.accounts",
            "marlow.r2.accounts",
            "__consumer_offsets",
            "xmarlow.r1.accounts",
        ] {
            assert!(
                matches!(ns.guard(outside), Err(TopicError::OutsideNamespace { .. })),
                "{outside} accepted"
            );
        }
        assert!(matches!(
            ns.guard("marlow.r1.a/b"),
            Err(TopicError::InvalidName(_))
        ));
        assert!(ns.topic("bad name").is_err());
    }
}
