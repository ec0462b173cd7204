//! Node 2 of the seed topology: fold `events` per account into the snapshot
//! (version = events seen) and publish it on `snapshots`.

use super::{snapshot_store_key, undecodable, SeedConfig, SeedResolution, SeedSnapshot};
use crate::account::apply_counting;
use crate::codec::{decode, encode, DecodeError};
use crate::event::Event;
use crate::ids::{AccountId, CommandId};
use crate::task::{topics, InputRecord, KvStore, OutRecord, StoreWrite, StreamTask, TaskOutput};

pub struct SeedAggregator {
    config: SeedConfig,
}

impl SeedAggregator {
    pub fn new(config: SeedConfig) -> SeedAggregator {
        SeedAggregator { config }
    }
}

/// A record of the events topic: an event, or (W1 fixed) a resolution marker.
enum LogEntry {
    Event(Event),
    Resolution(SeedResolution),
}

fn decode_entry(value: Option<&[u8]>) -> Result<LogEntry, DecodeError> {
    let bytes = value.ok_or(DecodeError::MissingValue)?;
    match decode::<Event>(bytes) {
        Ok(event) => Ok(LogEntry::Event(event)),
        Err(DecodeError::WrongKind { .. }) => decode(bytes).map(LogEntry::Resolution),
        Err(error) => Err(error),
    }
}

impl StreamTask for SeedAggregator {
    fn name(&self) -> &'static str {
        "seed-aggregator"
    }

    fn stored_accounts(&self, store: &KvStore) -> Vec<crate::Account> {
        super::snapshot_accounts(store)
    }

    fn input_topics(&self) -> &'static [&'static str] {
        &[topics::EVENTS]
    }

    fn process(&self, store: &KvStore, input: &InputRecord<'_>) -> TaskOutput {
        let mut output = TaskOutput::default();
        let entry = match decode_entry(input.value) {
            Ok(entry) => entry,
            Err(error) => {
                undecodable(&self.config, &mut output, input, error.to_string());
                return output;
            }
        };
        let key = input.key.unwrap_or_default().to_vec();
        let store_key = snapshot_store_key(&key);
        let account: AccountId = match &entry {
            LogEntry::Event(event) => event.account,
            LogEntry::Resolution(marker) => marker.account,
        };
        let mut snapshot = store
            .get_typed::<SeedSnapshot>(&store_key)
            .unwrap_or_else(|| SeedSnapshot::empty(account));
        match &entry {
            LogEntry::Event(event) => {
                apply_counting(&mut snapshot.account, event);
                count_resolution(&mut snapshot, event.command);
                if !self.config.w4_no_idempotency {
                    snapshot.applied_commands.insert(event.command);
                }
            }
            LogEntry::Resolution(_) => {
                // A marker always stands for one resolution of its own, even a
                // duplicate's whose id equals the last applied command's.
                snapshot.resolved_commands += 1;
                snapshot.last_command = None;
            }
        }
        let value = encode(&snapshot);
        output.produce(OutRecord {
            topic: topics::SNAPSHOTS,
            key,
            value: value.clone(),
        });
        output
            .store_writes
            .push(StoreWrite::new(store_key, Some(value)));
        output
    }
}

/// Counts a command once, however many consecutive records it produced.
fn count_resolution(snapshot: &mut SeedSnapshot, command: CommandId) {
    if snapshot.last_command != Some(command) {
        snapshot.resolved_commands += 1;
        snapshot.last_command = Some(command);
    }
}
