//! `marlow check`'s engine: rebuilds the history of a run kept with `--keep` from its
//! topics alone (the output topics read back read_committed, merged with the client
//! history of `marlow.<run id>.history` when the run wrote one) and runs the checkers on
//! it. Without a client history only what the output topics can prove is judged, and the
//! audit says which invariants it could not check.

use std::collections::BTreeMap;
use std::time::Duration;

use marlow_harness::check::{check_history, CheckConfig, Invariant, Violation};
use marlow_harness::history::{History, Step};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;

use super::capture::read_committed_topics;
use super::history_topic::{read_client_history, ClientHistory, HistoryTopicError, HISTORY_TOPIC};
use super::restores::place_restores;
use super::{ClientSettings, RealError, OUTPUT_TOPICS};
use crate::topics::{RunNamespace, TopicError, ADMIN_TIMEOUT_MS};
use marlow_harness::counters::Counters;
use marlow_model::task::topics::COMMANDS_INDEXED;

/// The invariants a history without the clients' side cannot judge, and why.
pub const NEEDS_CLIENT_HISTORY: [(Invariant, &str); 6] = [
    (
        Invariant::S4,
        "store restores are recorded by the app instances, not in any topic",
    ),
    (
        Invariant::S5,
        "needs the commands clients invoked and the answers they were told",
    ),
    (
        Invariant::S6,
        "needs the commands clients invoked (commands in = outcomes + dead letters)",
    ),
    (
        Invariant::S8,
        "needs the expected version each client's invoke carried",
    ),
    (
        Invariant::L1,
        "needs the clients' invokes and the moment faults were healed",
    ),
    (
        Invariant::L4,
        "needs the clients' invokes and timeouts, and the faults and heal",
    ),
];

/// What a topic-only audit judges only in part, and how.
pub const PARTLY_CHECKED_WITHOUT_CLIENT_HISTORY: [(Invariant, &str); 4] = [
    (
        Invariant::S2,
        "committed records only (outcomes told to clients are not in any topic)",
    ),
    (
        Invariant::S9,
        "only that no rejected command has events (re-deciding an answer needs the command each client invoked)",
    ),
    (
        Invariant::L2,
        "only that every crossing is alarmed by the end (no heal time in any topic)",
    ),
    (Invariant::L3, "end of run only (no heal time in any topic)"),
];

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no topics named {prefix}* on the cluster: was the run kept with --keep, and is the run id right?")]
    NoSuchRun { prefix: String },
    #[error("the kept run lacks its topic {topic} (its topics: {found})")]
    MissingTopic { topic: String, found: String },
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("kafka error: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Real(#[from] RealError),
    #[error("reading the client history: {0}")]
    History(#[from] HistoryTopicError),
}

/// A kept run as its topics hold it.
#[derive(Debug, Clone)]
pub struct KeptRun {
    /// The run's topics on the cluster with their partition counts (nothing outside the
    /// run's namespace).
    pub topics: BTreeMap<String, u32>,
    /// The client history, if the run wrote `marlow.<run id>.history`.
    pub client: Option<ClientHistory>,
    /// One `Committed` step per record of the output topics, in read-back order.
    pub committed: Vec<Step>,
    pub counters: Counters,
}

/// The verdict of an audit.
#[derive(Debug, Clone)]
pub struct Audit {
    pub history: History,
    pub violations: Vec<Violation>,
    /// Enabled invariants the audit could not judge (no client history), with why.
    pub unchecked: Vec<(Invariant, &'static str)>,
    /// Invariants judged only in part (no client history), with how.
    pub partly: Vec<(Invariant, &'static str)>,
}

/// The run's topics on the cluster and their partition counts. Names outside the run's
/// namespace are dropped by the guard before anything else sees them.
pub fn run_topics(
    settings: &ClientSettings,
    ns: &RunNamespace,
) -> Result<BTreeMap<String, u32>, AuditError> {
    let admin: AdminClient<DefaultClientContext> = settings.base().create()?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_millis(ADMIN_TIMEOUT_MS))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| ns.guard(t.name()).is_ok())
        .map(|t| {
            let partitions = u32::try_from(t.partitions().len()).unwrap_or(u32::MAX);
            (t.name().to_owned(), partitions)
        })
        .collect())
}

/// Reads a kept run back: its output topics and, if present, its client history.
pub fn read_kept_run(settings: &ClientSettings, ns: &RunNamespace) -> Result<KeptRun, AuditError> {
    let topics = run_topics(settings, ns)?;
    if topics.is_empty() {
        return Err(AuditError::NoSuchRun {
            prefix: ns.prefix().to_owned(),
        });
    }
    let mut partitions = BTreeMap::new();
    for short in OUTPUT_TOPICS {
        let full = ns.topic(short)?;
        let Some(&count) = topics.get(&full) else {
            let found: Vec<&str> = topics.keys().map(String::as_str).collect();
            return Err(AuditError::MissingTopic {
                topic: full,
                found: found.join(", "),
            });
        };
        partitions.insert(short, count);
    }
    // A seed-design run also has its re-enqueues on commands-indexed, which the
    // simulator's observer reads too.
    let mut observed = OUTPUT_TOPICS.to_vec();
    if let Some(&count) = topics.get(&ns.topic(COMMANDS_INDEXED)?) {
        partitions.insert(COMMANDS_INDEXED, count);
        observed.push(COMMANDS_INDEXED);
    }
    let partitions_of = |short: &str| partitions.get(short).copied().unwrap_or(0);
    let committed = read_committed_topics(ns, settings, &observed, &partitions_of)?;
    // The topics alone do not say the design; acceptances are counted from outcomes
    // (a seed run's events are counted as events).
    let mut counters = Counters::default();
    committed.iter().for_each(|step| counters.count(step, true));
    let client = match topics.contains_key(&ns.topic(HISTORY_TOPIC)?) {
        true => Some(read_client_history(settings, ns)?),
        false => None,
    };
    Ok(KeptRun {
        topics,
        client,
        committed,
        counters,
    })
}

/// Rebuilds the run's history and checks it with `config`. With a client history the
/// history is the run's own: the client-side steps with their recorded times, then the
/// committed records with the restores placed among them (as at the end of a run), then
/// `End`. Without one, a `Heal` at time 0, the committed records and `End`, judged only by
/// the invariants the topics can prove.
pub fn audit(kept: KeptRun, config: &CheckConfig) -> Audit {
    let mut history = History::new();
    let mut config = config.clone();
    let (unchecked, partly) = match kept.client {
        Some(client) => {
            let mut restores = Vec::new();
            let mut last_us = 0;
            for entry in client.entries {
                match entry.step {
                    Step::Restore { .. } => restores.push(entry.step),
                    // A foreign writer could put these in; the read-back is their source.
                    Step::Committed { .. } | Step::End => {}
                    step => {
                        // Times from a topic are not trusted to be ordered: never go back.
                        last_us = last_us.max(entry.at_us);
                        history.push(last_us, step);
                    }
                }
            }
            for step in place_restores(kept.committed, restores) {
                history.push(last_us, step);
            }
            history.push(last_us, Step::End);
            (Vec::new(), Vec::new())
        }
        None => {
            history.push(0, Step::Heal);
            for step in kept.committed {
                history.push(0, step);
            }
            history.push(0, Step::End);
            let enabled = |list: &[(Invariant, &'static str)]| {
                list.iter()
                    .filter(|(i, _)| config.enabled.contains(i))
                    .copied()
                    .collect::<Vec<_>>()
            };
            let unchecked = enabled(&NEEDS_CLIENT_HISTORY);
            let partly = enabled(&PARTLY_CHECKED_WITHOUT_CLIENT_HISTORY);
            for (invariant, _) in &unchecked {
                config.enabled.remove(invariant);
            }
            (unchecked, partly)
        }
    };
    let violations = check_history(history.entries(), &config);
    Audit {
        history,
        violations,
        unchecked,
        partly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_harness::history::CommittedRecord;
    use marlow_model::{AccountId, ClientId, CommandId, Event, EventBody, OwnerId};

    fn kept(client: Option<ClientHistory>) -> KeptRun {
        let opened = Event {
            account: AccountId(1),
            version: 1,
            command: CommandId {
                client: ClientId(0),
                seq: 0,
            },
            body: EventBody::Opened { owner: OwnerId(0) },
        };
        KeptRun {
            topics: BTreeMap::new(),
            client,
            committed: vec![Step::Committed {
                topic: "events".into(),
                partition: 0,
                offset: 0,
                record: CommittedRecord::Event(opened),
            }],
            counters: Counters::default(),
        }
    }

    #[test]
    fn without_a_client_history_only_what_topics_prove_is_judged() {
        let audited = audit(kept(None), &CheckConfig::default());
        assert!(audited.violations.is_empty(), "{:?}", audited.violations);
        let unchecked: Vec<Invariant> = audited.unchecked.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            unchecked,
            [
                Invariant::S4,
                Invariant::S5,
                Invariant::S6,
                Invariant::S8,
                Invariant::L1,
                Invariant::L4
            ]
        );
        assert!(matches!(
            audited.history.entries().last().map(|e| &e.step),
            Some(Step::End)
        ));
    }

    #[test]
    fn with_a_client_history_an_event_no_client_invoked_is_caught() {
        let audited = audit(
            kept(Some(ClientHistory::default())),
            &CheckConfig::default(),
        );
        assert!(audited.unchecked.is_empty());
        let caught: Vec<Invariant> = audited.violations.iter().map(|v| v.invariant).collect();
        assert!(caught.contains(&Invariant::S6), "{caught:?}");
    }
}
