//! Node 1 of the seed topology: count commands per account key and wrap each
//! with its position ("place in queue") into `commands-indexed`.

use super::{undecodable, IndexedCommand, SeedConfig};
use crate::codec::{decode_value, encode_account_key};
use crate::command::{Command, OccToken};
use crate::task::{topics, InputRecord, KvStore, OutRecord, StreamTask, TaskOutput};

pub struct SeedIndexer {
    config: SeedConfig,
}

impl SeedIndexer {
    pub fn new(config: SeedConfig) -> SeedIndexer {
        SeedIndexer { config }
    }
}

impl StreamTask for SeedIndexer {
    fn name(&self) -> &'static str {
        "seed-indexer"
    }

    fn input_topics(&self) -> &'static [&'static str] {
        &[topics::COMMANDS]
    }

    fn process(&self, store: &KvStore, input: &InputRecord<'_>) -> TaskOutput {
        let mut output = TaskOutput::default();
        let mut command: Command = match decode_value(input.value) {
            Ok(command) => command,
            Err(error) => {
                undecodable(&self.config, &mut output, input, error.to_string());
                return output;
            }
        };
        // The original grouped by the record key as it came; fixed, by account.
        let key = if self.config.w3_index_by_raw_key {
            input.key.unwrap_or_default().to_vec()
        } else {
            encode_account_key(command.account)
        };
        let count_key = [b"count/".as_slice(), &key].concat();
        let count = store.get(&count_key).map(decode_count).unwrap_or(0);
        command.occ = OccToken::Position(count);
        let indexed = IndexedCommand {
            command,
            reenqueues: 0,
        };
        output.produce(OutRecord::message(topics::COMMANDS_INDEXED, key, &indexed));
        output.store_writes.push(crate::task::StoreWrite::new(
            count_key,
            Some((count + 1).to_be_bytes().to_vec()),
        ));
        output
    }
}

fn decode_count(bytes: &[u8]) -> u64 {
    let array: [u8; 8] = bytes
        .try_into()
        .expect("the indexer writes 8-byte counts only");
    u64::from_be_bytes(array)
}
