//! The `hardened` design: one task per commands partition is the single writer
//! of its accounts. It checks OCC against its own store, de-duplicates on the
//! client's command id, and for every command emits its events, its outcome and
//! (on a downward crossing) an alarm, with the store writes alongside, so that
//! an exactly-once driver commits all of it atomically. Undecodable records go to
//! the dead-letter topic with the reason. Under at-least-once the store is rebuilt
//! from the task's own `events` and `outcomes` instead of a separate changelog.

use crate::account::{apply, Account};
use crate::alarm::{Alarm, AlarmRule};
use crate::codec::{decode, decode_account_key, decode_value, encode_account_key, WireMessage};
use crate::command::{Command, OccToken};
use crate::decide::decide;
use crate::event::Event;
use crate::ids::{AccountId, CommandId};
use crate::mark::Mark;
use crate::occ::{occ_turn, Turn};
use crate::record::{Outcome, OutcomeResult};
use crate::rejection::Rejection;
use crate::task::{topics, InputRecord, KvStore, OutRecord, StreamTask, TaskOutput};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HardenedConfig {
    pub alarm: AlarmRule,
}

/// What the task remembers of a command it has resolved: enough to answer a
/// resubmission (or an at-least-once replay) with identical records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub outcome: Outcome,
    pub alarm: Option<Alarm>,
}

impl WireMessage for CommandRecord {
    const KIND: &'static str = "command_record";
}

impl WireMessage for Account {
    const KIND: &'static str = "account_state";
}

pub struct HardenedTask {
    config: HardenedConfig,
}

pub fn account_store_key(account: AccountId) -> Vec<u8> {
    [b"acct/".as_slice(), &encode_account_key(account)].concat()
}

pub fn command_store_key(command: CommandId) -> Vec<u8> {
    format!("cmd/{}/{}", command.client.0, command.seq).into_bytes()
}

impl HardenedTask {
    pub fn new(config: HardenedConfig) -> HardenedTask {
        HardenedTask { config }
    }

    fn decode_input(input: &InputRecord<'_>) -> Result<Command, String> {
        let command: Command = decode_value(input.value).map_err(|error| error.to_string())?;
        let key_account =
            decode_account_key(input.key.unwrap_or_default()).map_err(|error| error.to_string())?;
        if key_account != command.account {
            return Err(format!(
                "record key names {key_account} but the command is for {}",
                command.account
            ));
        }
        Ok(command)
    }

    fn resolve(&self, account: &Account, command: &Command) -> Result<Vec<Event>, Rejection> {
        if let OccToken::ExpectedVersion(expected) = command.occ {
            if occ_turn(account.version, expected) != Turn::Now {
                return Err(Rejection::VersionConflict {
                    expected,
                    actual: account.version,
                });
            }
        }
        decide(account, command)
    }

    fn alarm_for(&self, before: &Account, after: &Account) -> Option<Alarm> {
        let rule = self.config.alarm;
        rule.crossed_downward(before.balance_minor, after.balance_minor)
            .then_some(Alarm {
                account: after.id,
                version: after.version,
                balance_minor: after.balance_minor,
                threshold_minor: rule.threshold_minor,
            })
    }

    /// Emits a command's answer: the alarm (if any) and then the outcome.
    fn emit_answer(record: &CommandRecord, output: &mut TaskOutput) {
        let key = encode_account_key(record.outcome.account);
        if let Some(alarm) = &record.alarm {
            output.produce(OutRecord::message(topics::ALARMS, key.clone(), alarm));
        }
        output.produce(OutRecord::message(topics::OUTCOMES, key, &record.outcome));
    }
}

impl StreamTask for HardenedTask {
    fn name(&self) -> &'static str {
        "hardened"
    }

    fn input_topics(&self) -> &'static [&'static str] {
        &[topics::COMMANDS]
    }

    fn process(&self, store: &KvStore, input: &InputRecord<'_>) -> TaskOutput {
        let mut output = TaskOutput::default();
        let command = match Self::decode_input(input) {
            Ok(command) => command,
            Err(reason) => {
                output.mark(Mark::UndecodableDeadLettered);
                output.dead_letter(input, reason);
                return output;
            }
        };
        let command_key = command_store_key(command.id);
        if let Some(record) = store.get_typed::<CommandRecord>(&command_key) {
            // A resubmission or a replay: answer again, identically, change nothing.
            output.mark(Mark::DedupHit);
            Self::emit_answer(&record, &mut output);
            return output;
        }
        let account_key = account_store_key(command.account);
        let before = store
            .get_typed::<Account>(&account_key)
            .unwrap_or_else(|| Account::empty(command.account));
        let record = match self.resolve(&before, &command) {
            Ok(events) => {
                let mut after = before.clone();
                for event in &events {
                    apply(&mut after, event);
                    let key = encode_account_key(event.account);
                    output.produce(OutRecord::message(topics::EVENTS, key, event));
                }
                assert!(after.balance_minor >= 0, "decide let an overdraft through");
                output.write(account_key, &after);
                CommandRecord {
                    outcome: accepted(command.id, command.account, after.version),
                    alarm: self.alarm_for(&before, &after),
                }
            }
            Err(rejection) => CommandRecord {
                outcome: Outcome {
                    command: command.id,
                    account: command.account,
                    result: OutcomeResult::Rejected { rejection },
                },
                alarm: None,
            },
        };
        output.marks.extend(answer_marks(&record));
        Self::emit_answer(&record, &mut output);
        output.write(command_key, &record);
        output
    }

    fn rebuild_topics(&self) -> &'static [&'static str] {
        &[topics::EVENTS, topics::OUTCOMES]
    }

    /// Rebuilds the same store `process` wrote, from the task's own outputs.
    /// Events give the account state and the record of every accepted command
    /// (even one whose outcome was lost in a crash); outcomes give the rejected
    /// ones. Only `Open` yields two events and it cannot cross the threshold
    /// downward, so per-event alarm detection equals per-command detection.
    fn rebuild_from_output(&self, store: &mut KvStore, record: &InputRecord<'_>) {
        let Some(value) = record.value else { return };
        if record.topic == topics::EVENTS {
            let event: Event = decode(value).expect("the events topic holds only our events");
            let account_key = account_store_key(event.account);
            let before = store
                .get_typed::<Account>(&account_key)
                .unwrap_or_else(|| Account::empty(event.account));
            let mut after = before.clone();
            apply(&mut after, &event);
            let command_record = CommandRecord {
                outcome: accepted(event.command, event.account, after.version),
                alarm: self.alarm_for(&before, &after),
            };
            write_typed(store, account_key, &after);
            write_typed(store, command_store_key(event.command), &command_record);
        } else if record.topic == topics::OUTCOMES {
            let outcome: Outcome = decode(value).expect("the outcomes topic holds only outcomes");
            let key = command_store_key(outcome.command);
            if store.get(&key).is_none() {
                write_typed(
                    store,
                    key,
                    &CommandRecord {
                        outcome,
                        alarm: None,
                    },
                );
            }
        }
    }
}

/// The marks a fresh answer reaches: its rejection's, and an alarm crossing.
fn answer_marks(record: &CommandRecord) -> impl Iterator<Item = Mark> + '_ {
    let rejection = match &record.outcome.result {
        OutcomeResult::Rejected { rejection } => Mark::of_rejection(rejection),
        OutcomeResult::Accepted { .. } => None,
    };
    rejection
        .into_iter()
        .chain(record.alarm.is_some().then_some(Mark::AlarmCrossing))
}

fn accepted(command: CommandId, account: AccountId, version: u64) -> Outcome {
    Outcome {
        command,
        account,
        result: OutcomeResult::Accepted { version },
    }
}

fn write_typed<T: WireMessage>(store: &mut KvStore, key: Vec<u8>, value: &T) {
    store.apply(&crate::task::StoreWrite {
        key,
        value: Some(crate::codec::encode(value)),
    });
}
