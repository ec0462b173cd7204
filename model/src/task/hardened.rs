//! The `hardened` design: one task per commands partition is the single writer
//! of its accounts. It checks OCC against its own store, de-duplicates on the
//! client's command id, and for every command emits its events, its outcome and
//! (on a downward crossing) an alarm, with the store writes alongside, so that
//! an exactly-once driver commits all of it atomically. Undecodable records go to
//! the dead-letter topic with the reason. Under at-least-once the store is rebuilt
//! from the task's own `events`, `outcomes` and `alarms` instead of a separate
//! changelog.
//!
//! Alarms, the rule: exactly one alarm record per downward crossing. The store
//! keeps a marker per published alarm (`alarm/<account>/<version>`), written
//! with the alarm itself. A command answered again (a resubmission, or a replay
//! after a crash) repeats its outcome, identically, but its alarm only when the
//! store has no marker for it, i.e. only when the alarm may have been lost:
//! - Under exactly-once the marker is committed in the same transaction as the
//!   alarm (store writes go to the changelog), so a repeat never alarms again.
//! - Under at-least-once the store is rebuilt from the outputs, and the marker
//!   from the `alarms` topic (keyed and partitioned like the commands, so its
//!   partition `p` holds exactly the alarms of the accounts of commands
//!   partition `p`). An accepted command whose event reached the log but whose
//!   alarm did not (a crash between the two produces) has no marker, and its
//!   replay publishes the alarm then: late, but not lost. The only repeat left
//!   is an alarm produced twice because its marker was not yet visible to a
//!   second writer (a zombie instance, see below, or in real mode a produce
//!   still in flight when the next owner rebuilt), and that repeat is identical.
//!
//! The at-least-once rebuild follows the first-written chain of each account:
//! an event that does not advance the account by exactly one version (a
//! duplicate written by a zombie instance that resumed after its partitions
//! moved, or a fork), or that would take the balance below zero (the other
//! branch of a fork continuing with the next version number), is not folded. Its command is still recorded as answered
//! (so it is never applied a second time), and the forked log itself is left to
//! the checkers (S2/S3), which report it; the processor never panics on it.

use crate::account::{apply, Account};
use crate::alarm::{Alarm, AlarmRule};
use crate::codec::{decode, decode_account_key, decode_value, encode_account_key, WireMessage};
use crate::command::{Command, CommandKind, OccToken};
use crate::decide::decide;
use crate::event::{Event, EventBody};
use crate::ids::{AccountId, CommandId};
use crate::mark::Mark;
use crate::occ::{occ_turn, Turn};
use crate::record::{Outcome, OutcomeResult};
use crate::rejection::Rejection;
use crate::task::planted::PlantedBug;
use crate::task::{topics, InputRecord, KvStore, OutRecord, StreamTask, TaskOutput};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HardenedConfig {
    pub alarm: AlarmRule,
    /// A bug planted on purpose for the harness's self-test (`planted.rs`);
    /// `None` in every real use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planted_bug: Option<PlantedBug>,
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

/// Where an account's state lives in the hardened store.
const ACCOUNT_PREFIX: &[u8] = b"acct/";

pub fn account_store_key(account: AccountId) -> Vec<u8> {
    [ACCOUNT_PREFIX, &encode_account_key(account)].concat()
}

pub fn command_store_key(command: CommandId) -> Vec<u8> {
    format!("cmd/{}/{}", command.client.0, command.seq).into_bytes()
}

/// The marker that the alarm for `account` at `version` has been published.
pub fn alarm_store_key(account: AccountId, version: u64) -> Vec<u8> {
    [
        b"alarm/".as_slice(),
        &encode_account_key(account),
        b"/",
        &version.to_be_bytes(),
    ]
    .concat()
}

impl HardenedTask {
    pub fn new(config: HardenedConfig) -> HardenedTask {
        HardenedTask { config }
    }

    fn planted(&self, bug: PlantedBug) -> bool {
        self.config.planted_bug == Some(bug)
    }

    fn decode_input(&self, input: &InputRecord<'_>) -> Result<Command, String> {
        let command: Command = decode_value(input.value).map_err(|error| error.to_string())?;
        let key_account =
            decode_account_key(input.key.unwrap_or_default()).map_err(|error| error.to_string());
        if self.planted(PlantedBug::KeyMismatchProcessed) {
            return Ok(command);
        }
        let key_account = key_account?;
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
            let refused = if self.planted(PlantedBug::OccIgnored) {
                false
            } else if self.planted(PlantedBug::OccOnlyRefusesStale) {
                expected < account.version
            } else {
                occ_turn(account.version, expected) != Turn::Now
            };
            if refused {
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
        let crossed = if self.planted(PlantedBug::AlarmBelowNotAcross) {
            rule.is_below(after.balance_minor) && after.version > before.version
        } else if self.planted(PlantedBug::AlarmAtThreshold) {
            before.balance_minor > rule.threshold_minor
                && after.balance_minor <= rule.threshold_minor
        } else {
            rule.crossed_downward(before.balance_minor, after.balance_minor)
        };
        let balance_minor = if self.planted(PlantedBug::AlarmReportsBalanceBefore) {
            before.balance_minor
        } else {
            after.balance_minor
        };
        crossed.then_some(Alarm {
            account: after.id,
            version: after.version,
            balance_minor,
            threshold_minor: rule.threshold_minor,
        })
    }

    /// Emits a command's answer: its alarm (if any, and only if no alarm was
    /// published for that crossing yet, with the marker that says it now is)
    /// and then its outcome.
    fn emit_answer(&self, store: &KvStore, record: &CommandRecord, output: &mut TaskOutput) {
        let key = encode_account_key(record.outcome.account);
        if let Some(alarm) = &record.alarm {
            let marker = alarm_store_key(alarm.account, alarm.version);
            if store.get(&marker).is_none() || self.planted(PlantedBug::AlarmOnEveryAnswer) {
                output.produce(OutRecord::message(topics::ALARMS, key.clone(), alarm));
                output.write(marker, alarm);
            }
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
        let command = match self.decode_input(input) {
            Ok(command) => command,
            Err(reason) => {
                if !self.planted(PlantedBug::UndecodableDropped) {
                    output.mark(Mark::UndecodableDeadLettered);
                    output.dead_letter(input, reason);
                }
                return output;
            }
        };
        let command_key = command_store_key(command.id);
        let known = if self.planted(PlantedBug::NoDedup) {
            None
        } else {
            store.get_typed::<CommandRecord>(&command_key)
        };
        let account_key = account_store_key(command.account);
        let before = store
            .get_typed::<Account>(&account_key)
            .unwrap_or_else(|| Account::empty(command.account));
        if let Some(record) = known {
            // A resubmission or a replay: the same outcome again, and nothing
            // else unless its alarm may have been lost (see the module header).
            output.mark(Mark::DedupHit);
            if self.planted(PlantedBug::DedupRedecides) {
                let outcome = self.outcome_of(&before, &command);
                let key = encode_account_key(command.account);
                output.produce(OutRecord::message(topics::OUTCOMES, key, &outcome));
                return output;
            }
            self.emit_answer(store, &record, &mut output);
            return output;
        }
        let stale_check = self.planted(PlantedBug::WithdrawalChecksStaleBalance)
            && matches!(command.kind, CommandKind::Withdraw { .. });
        let checked = if stale_check {
            let stale = store.get_typed::<Account>(&stale_store_key(command.account));
            let balance_minor = stale.map_or(before.balance_minor, |s| s.balance_minor);
            Account {
                balance_minor,
                ..before.clone()
            }
        } else {
            before.clone()
        };
        let record = match self.resolve(&checked, &command) {
            Ok(events) => {
                let mut after = before.clone();
                for event in &events {
                    apply(&mut after, event);
                    let key = encode_account_key(event.account);
                    output.produce(OutRecord::message(topics::EVENTS, key, event));
                }
                // Off only for the planted bug that is an overdraft, so the
                // checkers (S1), not this assertion, must catch it.
                if !self.planted(PlantedBug::WithdrawalChecksStaleBalance) {
                    assert!(after.balance_minor >= 0, "decide let an overdraft through");
                }
                let owners_changed = matches!(
                    command.kind,
                    CommandKind::AddOwner { .. } | CommandKind::RemoveOwner { .. }
                );
                let stored = if self.planted(PlantedBug::OwnerChangesNotStored) && owners_changed {
                    Account {
                        owners: before.owners.clone(),
                        ..after.clone()
                    }
                } else {
                    after.clone()
                };
                output.write(account_key, &stored);
                if self.planted(PlantedBug::WithdrawalChecksStaleBalance) {
                    output.write(stale_store_key(command.account), &before);
                }
                let version = if self.planted(PlantedBug::OutcomeVersionBefore) {
                    before.version
                } else {
                    after.version
                };
                CommandRecord {
                    outcome: accepted(command.id, command.account, version),
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
        self.emit_answer(store, &record, &mut output);
        let rejected = matches!(record.outcome.result, OutcomeResult::Rejected { .. });
        if !(rejected && self.planted(PlantedBug::RejectionsNotRemembered)) {
            output.write(command_key, &record);
        }
        output
    }

    fn rebuild_topics(&self) -> &'static [&'static str] {
        &[topics::EVENTS, topics::OUTCOMES, topics::ALARMS]
    }

    fn durable_first_topics(&self) -> &'static [&'static str] {
        if self.planted(PlantedBug::AnswersBeforeFacts) {
            return &[];
        }
        &[topics::EVENTS]
    }

    fn stored_accounts(&self, store: &KvStore) -> Vec<Account> {
        store
            .iter()
            .filter(|(key, _)| key.starts_with(ACCOUNT_PREFIX))
            .filter_map(|(_, value)| decode::<Account>(value).ok())
            .collect()
    }

    /// Rebuilds the same store `process` wrote, from the task's own outputs.
    /// Events give the account state and the record of every accepted command
    /// (even one whose outcome was lost in a crash); outcomes give the rejected
    /// ones; alarms give the markers of published alarms. Only `Open` yields
    /// two events and it cannot cross the threshold downward, so per-event
    /// alarm detection equals per-command detection. The order of the topics
    /// does not matter: each writes keys the others only read or never touch.
    fn rebuild_from_output(&self, store: &mut KvStore, record: &InputRecord<'_>) {
        let Some(value) = record.value else { return };
        if record.topic == topics::EVENTS {
            let event: Event = decode(value).expect("the events topic holds only our events");
            self.rebuild_event(store, &event);
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
        } else if record.topic == topics::ALARMS && !self.planted(PlantedBug::RebuildForgetsAlarms)
        {
            let alarm: Alarm = decode(value).expect("the alarms topic holds only alarms");
            write_typed(store, alarm_store_key(alarm.account, alarm.version), &alarm);
        }
    }
}

impl HardenedTask {
    /// Planted bug `DedupRedecides` only: the outcome `command` would get now.
    fn outcome_of(&self, account: &Account, command: &Command) -> Outcome {
        let result = match self.resolve(account, command) {
            Ok(events) => OutcomeResult::Accepted {
                version: account.version + events.len() as u64,
            },
            Err(rejection) => OutcomeResult::Rejected { rejection },
        };
        Outcome {
            command: command.id,
            account: command.account,
            result,
        }
    }

    /// Folds one event of the log into the rebuilt store, along the
    /// first-written chain (see the module header): an event off that chain is
    /// a duplicate or a fork written by another instance; it is not folded,
    /// but its command still counts as answered so that it is never applied
    /// again.
    fn rebuild_event(&self, store: &mut KvStore, event: &Event) {
        let account_key = account_store_key(event.account);
        let command_key = command_store_key(event.command);
        let before = store
            .get_typed::<Account>(&account_key)
            .unwrap_or_else(|| Account::empty(event.account));
        // An event that would take the balance below zero is off the chain
        // too: after a fork, a later event of the other writer can carry the
        // next version number while it was validated against that writer's
        // own, richer branch (two zombies' branches stitched together). The
        // rebuilt state must be one the rules allow, or the next command on it
        // would trip `process`'s assertion.
        let breaks_the_rules = match event.body {
            EventBody::Withdrawn { amount_minor } => before.balance_minor < amount_minor,
            _ => false,
        };
        if event.version != before.version + 1 || breaks_the_rules {
            // Recorded at the version its own (off-chain) events reached: the
            // answer its writer gave. A command answered on the chain keeps that.
            let known = store.get_typed::<CommandRecord>(&command_key);
            let continues_off_chain = known.as_ref().is_some_and(|record| {
                record.outcome.result
                    == (OutcomeResult::Accepted {
                        version: event.version.saturating_sub(1),
                    })
            });
            if known.is_none() || continues_off_chain {
                let record = CommandRecord {
                    outcome: accepted(event.command, event.account, event.version),
                    alarm: None,
                };
                write_typed(store, command_key, &record);
            }
            return;
        }
        let mut after = before.clone();
        apply(&mut after, event);
        let alarm = if self.planted(PlantedBug::RebuildForgetsPendingAlarm) {
            None
        } else {
            self.alarm_for(&before, &after)
        };
        let command_record = CommandRecord {
            outcome: accepted(event.command, event.account, after.version),
            alarm,
        };
        write_typed(store, account_key, &after);
        write_typed(store, command_key, &command_record);
    }
}

/// Planted bug `WithdrawalChecksStaleBalance` only: the account as it was
/// before its latest command.
fn stale_store_key(account: AccountId) -> Vec<u8> {
    [b"stale/".as_slice(), &encode_account_key(account)].concat()
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
    store.apply(&crate::task::StoreWrite::new(
        key,
        Some(crate::codec::encode(value)),
    ));
}
