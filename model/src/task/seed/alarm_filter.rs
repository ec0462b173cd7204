//! Node 4 of the seed topology: `snapshots` filtered to balances below the
//! threshold become alarms. The original fires on every such update (W8);
//! fixed, it remembers the version and balance of the last snapshot it saw per
//! account and fires on downward crossings only. A snapshot no newer than the
//! remembered one is a replay (at-least-once reprocessing after a crash, whose
//! store was restored ahead of its input position): comparing it with the newer
//! balance would invent a crossing, typically the version-1 snapshot (balance 0
//! right after `opened`) compared with a later, larger balance. It is ignored.

use super::{undecodable, SeedConfig, SeedSnapshot};
use crate::alarm::Alarm;
use crate::codec::{decode_value, encode_account_key};
use crate::task::{topics, InputRecord, KvStore, OutRecord, StoreWrite, StreamTask, TaskOutput};

pub struct SeedAlarmFilter {
    config: SeedConfig,
}

impl SeedAlarmFilter {
    pub fn new(config: SeedConfig) -> SeedAlarmFilter {
        SeedAlarmFilter { config }
    }
}

impl StreamTask for SeedAlarmFilter {
    fn name(&self) -> &'static str {
        "seed-alarm-filter"
    }

    fn input_topics(&self) -> &'static [&'static str] {
        &[topics::SNAPSHOTS]
    }

    fn process(&self, store: &KvStore, input: &InputRecord<'_>) -> TaskOutput {
        let mut output = TaskOutput::default();
        let snapshot: SeedSnapshot = match decode_value(input.value) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                undecodable(&self.config, &mut output, input, error.to_string());
                return output;
            }
        };
        let rule = self.config.alarm;
        let balance = snapshot.account.balance_minor;
        let fire = if self.config.w8_alarm_every_update {
            rule.is_below(balance)
        } else {
            let last_key = [b"last/".as_slice(), input.key.unwrap_or_default()].concat();
            // A new account starts at version 0 and balance 0, so opening it is
            // not a crossing.
            let last = store
                .get(&last_key)
                .map(LastSeen::decode)
                .unwrap_or(LastSeen {
                    version: 0,
                    balance_minor: 0,
                });
            let seen = LastSeen {
                version: snapshot.account.version,
                balance_minor: balance,
            };
            // With W1 fixed a rejection marker yields a second snapshot at the
            // same version and balance: not newer, and not a crossing either.
            if seen.version > last.version {
                output
                    .store_writes
                    .push(StoreWrite::new(last_key, Some(seen.encode())));
                rule.crossed_downward(last.balance_minor, balance)
            } else {
                false
            }
        };
        if fire {
            output.mark(crate::mark::Mark::AlarmCrossing);
            let alarm = Alarm {
                account: snapshot.account.id,
                version: snapshot.account.version,
                balance_minor: balance,
                threshold_minor: rule.threshold_minor,
            };
            let key = encode_account_key(alarm.account);
            output.produce(OutRecord::message(topics::ALARMS, key, &alarm));
        }
        output
    }
}

/// What the filter remembers per account: the newest snapshot it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LastSeen {
    version: u64,
    balance_minor: i64,
}

impl LastSeen {
    fn encode(self) -> Vec<u8> {
        [self.version.to_be_bytes(), self.balance_minor.to_be_bytes()].concat()
    }

    fn decode(bytes: &[u8]) -> LastSeen {
        assert_eq!(
            bytes.len(),
            16,
            "the alarm filter writes 16-byte entries only"
        );
        let (version, balance) = bytes.split_at(8);
        LastSeen {
            version: u64::from_be_bytes(version.try_into().expect("8 bytes")),
            balance_minor: i64::from_be_bytes(balance.try_into().expect("8 bytes")),
        }
    }
}
