//! A kept run's client history on the cluster: with `--keep`, a run writes the steps no
//! output topic holds (invokes, client outcomes and timeouts, undecodable sends, faults,
//! rebalances, restores, heal) to its topic `marlow.<run id>.history`, so that `marlow
//! check` can later audit the run with every checker. One partition; a header record the
//! caller chooses (the CLI stores the scenario there), then one record per history entry,
//! each the JSON line of docs/history.md.

use marlow_harness::history::{History, HistoryEntry, Step};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;

use super::capture::read_topic_to_end;
use super::run_history::RunHistory;
use super::ClientSettings;
use crate::client::{
    create_producer, flush_deliveries, producer_config, send, ClientError, ReadIsolation,
};
use crate::topics::{RunNamespace, TopicError, TopicSpec};

/// The short name of the history topic inside the run's namespace.
pub const HISTORY_TOPIC: &str = "history";
/// The key of the header record (first record of the topic).
pub const HEADER_KEY: &[u8] = b"header";
/// The key of every history entry record.
pub const ENTRY_KEY: &[u8] = b"entry";
/// Bound on the records read back from a history topic, so that a foreign or corrupt topic
/// cannot exhaust memory (a real run's history is far smaller).
pub const MAX_HISTORY_RECORDS: usize = 5_000_000;

#[derive(Debug, thiserror::Error)]
pub enum HistoryTopicError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("kafka error: {0}")]
    Kafka(#[from] KafkaError),
    #[error("encoding the history as JSON lines: {0}")]
    Encode(#[from] std::io::Error),
    #[error("{topic} offset {offset}: {problem}")]
    Malformed {
        topic: String,
        offset: i64,
        problem: String,
    },
    #[error("{topic} holds more than {MAX_HISTORY_RECORDS} records")]
    TooLong { topic: String },
    #[error("reading the run's history: {0}")]
    History(String),
}

/// What a history topic holds: the header's bytes (if its first record is one) and the
/// client-side entries in the order they were written (their `seq` and `at_us` as the run
/// recorded them).
#[derive(Debug, Clone, Default)]
pub struct ClientHistory {
    pub header: Option<Vec<u8>>,
    pub entries: Vec<HistoryEntry>,
}

/// Whether an entry belongs in the history topic: everything but the committed records
/// (they are in the output topics) and `End` (the audit ends its own history).
fn is_client_side(step: &Step) -> bool {
    !matches!(step, Step::Committed { .. } | Step::End)
}

/// Creates `marlow.<run id>.history` (1 partition) through the namespace's guarded create
/// and writes `header`, then every client-side entry of `history` (streamed, so a soak's
/// file is never read whole). Returns how many entries it wrote.
pub fn keep_client_history(
    settings: &ClientSettings,
    ns: &RunNamespace,
    header: &[u8],
    history: &RunHistory,
) -> Result<usize, HistoryTopicError> {
    let entries = history.stream().map_err(HistoryTopicError::History)?;
    let admin: AdminClient<DefaultClientContext> = settings.base().create()?;
    ns.create(&admin, &[TopicSpec::new(HISTORY_TOPIC, 1)])?;
    let topic = ns.topic(HISTORY_TOPIC)?;
    let producer = create_producer(&settings.apply(producer_config(&settings.bootstrap)))?;
    send(&producer, ns, &topic, Some(0), Some(HEADER_KEY), header)?;
    let mut written = 0;
    let mut line = Vec::new();
    for entry in entries {
        let entry = entry.map_err(HistoryTopicError::History)?;
        if is_client_side(&entry.step) {
            // One JSON line per entry: serde_json's compact output has no raw newline.
            line.clear();
            entry.write_jsonl(&mut line)?;
            line.pop();
            send(&producer, ns, &topic, Some(0), Some(ENTRY_KEY), &line)?;
            written += 1;
        }
    }
    flush_deliveries(&producer)?;
    Ok(written)
}

/// Reads `marlow.<run id>.history` back (read_committed, to its end). The caller has
/// checked that the topic exists.
pub fn read_client_history(
    settings: &ClientSettings,
    ns: &RunNamespace,
) -> Result<ClientHistory, HistoryTopicError> {
    let topic = ns.topic(HISTORY_TOPIC)?;
    let records = read_topic_to_end(
        settings.reader(),
        ns,
        &topic,
        &[0],
        ReadIsolation::ReadCommitted,
    )?
    .into_values()
    .flatten()
    .collect::<Vec<_>>();
    if records.len() > MAX_HISTORY_RECORDS {
        return Err(HistoryTopicError::TooLong { topic });
    }
    let mut history = ClientHistory::default();
    for (index, record) in records.iter().enumerate() {
        let malformed = |problem: String| HistoryTopicError::Malformed {
            topic: topic.clone(),
            offset: record.offset,
            problem,
        };
        if record.key.as_deref() == Some(HEADER_KEY) {
            if index != 0 {
                return Err(malformed("a header record after the first record".into()));
            }
            history.header = Some(record.value.clone());
            continue;
        }
        let parsed = History::read_jsonl(record.value.as_slice()).map_err(malformed)?;
        match parsed.entries() {
            [entry] => history.entries.push(entry.clone()),
            other => {
                return Err(malformed(format!(
                    "expected one history entry, found {}",
                    other.len()
                )))
            }
        }
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::noida_or_skip;
    use marlow_model::{ClientId, CommandId};

    /// A long soak's history is more records than the producer's local queue
    /// holds: writing it must wait for room, not fail with QueueFull (a 1-hour
    /// soak's `--keep` did). The queue is shrunk here to make it happen.
    #[test]
    fn a_history_longer_than_the_producer_queue_is_written_whole() {
        let Some(broker) = noida_or_skip("history_topic").expect("noida-db starts") else {
            return;
        };
        let settings = ClientSettings {
            bootstrap: broker.bootstrap_servers(),
            extra: vec![("queue.buffering.max.messages".to_string(), "10".to_string())],
        };
        let ns = RunNamespace::new("queuefull").expect("valid run id");
        let mut history = History::default();
        for seq in 0..500u64 {
            let client = ClientId(u32::try_from(seq % 7).expect("small"));
            let command = CommandId { client, seq };
            history.push(
                seq * 10,
                Step::ClientTimeout {
                    client,
                    command,
                    attempt: 0,
                },
            );
        }
        let written = keep_client_history(&settings, &ns, b"{}", &RunHistory::Memory(history))
            .expect("the whole history is written");
        assert_eq!(written, 500);
        let read = read_client_history(&settings, &ns).expect("read back");
        assert_eq!(read.entries.len(), 500);
    }

    #[test]
    fn only_committed_records_and_the_end_stay_out_of_the_history_topic() {
        assert!(is_client_side(&Step::Heal));
        assert!(is_client_side(&Step::Fault {
            fault: "stop".into()
        }));
        assert!(!is_client_side(&Step::End));
        assert!(!is_client_side(&Step::Committed {
            topic: "events".into(),
            partition: 0,
            offset: 0,
            record: marlow_harness::history::CommittedRecord::Other {
                message_kind: "x".into()
            },
        }));
    }
}
