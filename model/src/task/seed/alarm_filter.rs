//! Node 4 of the seed topology: `snapshots` filtered to balances below the
//! threshold become alarms. The original fires on every such update (W8);
//! fixed, it remembers the last balance and fires on downward crossings only.

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
            // A new account starts at 0, so opening it is not a crossing.
            let before = store.get(&last_key).map(decode_balance).unwrap_or(0);
            output.store_writes.push(StoreWrite {
                key: last_key,
                value: Some(balance.to_be_bytes().to_vec()),
            });
            rule.crossed_downward(before, balance)
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

fn decode_balance(bytes: &[u8]) -> i64 {
    let array: [u8; 8] = bytes
        .try_into()
        .expect("the alarm filter writes 8-byte balances only");
    i64::from_be_bytes(array)
}
