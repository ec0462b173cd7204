//! Node 3 of the seed topology: `commands-indexed` left-join `snapshots`. When
//! the command's position matches the snapshot (or there is no snapshot yet),
//! validate and emit events; otherwise re-enqueue the command into its own
//! topic. Rejected commands are dropped silently, as in the original.

use super::{
    snapshot_store_key, undecodable, IndexedCommand, SeedConfig, SeedResolution, SeedSnapshot,
};
use crate::codec::{decode_value, encode_account_key};
use crate::command::OccToken;
use crate::decide::decide_with;
use crate::mark::Mark;
use crate::occ::{occ_turn, Turn};
use crate::task::{topics, InputRecord, KvStore, OutRecord, StoreWrite, StreamTask, TaskOutput};

pub struct SeedValidator {
    config: SeedConfig,
}

impl SeedValidator {
    pub fn new(config: SeedConfig) -> SeedValidator {
        SeedValidator { config }
    }

    /// The snapshots side of the join: keep the latest snapshot per key.
    fn on_snapshot(&self, input: &InputRecord<'_>) -> TaskOutput {
        let mut output = TaskOutput::default();
        match decode_value::<SeedSnapshot>(input.value) {
            Ok(_) => output.store_writes.push(StoreWrite::new(
                snapshot_store_key(input.key.unwrap_or_default()),
                input.value.map(<[u8]>::to_vec),
            )),
            Err(error) => undecodable(&self.config, &mut output, input, error.to_string()),
        }
        output
    }

    fn on_command(&self, store: &KvStore, input: &InputRecord<'_>) -> TaskOutput {
        let mut output = TaskOutput::default();
        let indexed: IndexedCommand = match decode_value(input.value) {
            Ok(indexed) => indexed,
            Err(error) => {
                undecodable(&self.config, &mut output, input, error.to_string());
                return output;
            }
        };
        let key = input.key.unwrap_or_default().to_vec();
        let position = match indexed.command.occ {
            OccToken::Position(position) => position,
            OccToken::Any | OccToken::ExpectedVersion(_) => 0,
        };
        let snapshot = store.get_typed::<SeedSnapshot>(&snapshot_store_key(&key));
        let turn = match &snapshot {
            None if self.config.w2_no_snapshot_skips_check => Turn::Now,
            None => occ_turn(0, position),
            Some(snapshot) => occ_turn(snapshot.occ_counter(&self.config), position),
        };
        let skipped = snapshot.is_none() && self.config.w2_no_snapshot_skips_check && position > 0;
        output
            .marks
            .extend(skipped.then_some(Mark::ValidatedWithoutSnapshot));
        let snapshot = snapshot.unwrap_or_else(|| SeedSnapshot::empty(indexed.command.account));
        match turn {
            Turn::Now => self.validate(&snapshot, &indexed, &mut output),
            Turn::NotYet | Turn::Stale => self.reenqueue(indexed, key, turn, input, &mut output),
        }
        output
    }

    fn validate(&self, snapshot: &SeedSnapshot, indexed: &IndexedCommand, output: &mut TaskOutput) {
        let command = &indexed.command;
        if !self.config.w4_no_idempotency && snapshot.applied_commands.contains(&command.id) {
            output.mark(Mark::DedupHit);
            self.mark_resolved(command, "duplicate command id".into(), output);
            return;
        }
        match decide_with(&self.config.rules(), &snapshot.account, command) {
            Ok(events) => {
                output
                    .marks
                    .extend(negative_amount(command).then_some(Mark::NegativeAmountAccepted));
                for event in &events {
                    let key = encode_account_key(event.account);
                    output.produce(OutRecord::message(topics::EVENTS, key, event));
                }
            }
            Err(rejection) => {
                output.marks.extend(Mark::of_rejection(&rejection));
                self.mark_resolved(command, rejection.to_string(), output)
            }
        }
    }

    /// The original drops a command resolved without events. With W1 fixed it
    /// leaves a marker so the resolved-command count stays aligned.
    fn mark_resolved(
        &self,
        command: &crate::command::Command,
        reason: String,
        output: &mut TaskOutput,
    ) {
        if self.config.w1_version_counts_events {
            return;
        }
        let marker = SeedResolution {
            account: command.account,
            command: command.id,
            reason,
        };
        let key = encode_account_key(command.account);
        output.produce(OutRecord::message(topics::EVENTS, key, &marker));
    }

    fn reenqueue(
        &self,
        mut indexed: IndexedCommand,
        key: Vec<u8>,
        turn: Turn,
        input: &InputRecord<'_>,
        output: &mut TaskOutput,
    ) {
        if !self.config.w5_unbounded_reenqueue
            && (turn == Turn::Stale || indexed.reenqueues >= self.config.max_reenqueues)
        {
            let why = format!("{turn:?} after {} re-enqueues", indexed.reenqueues);
            output.mark(Mark::ReenqueueLimitDeadLettered);
            output.dead_letter(input, why);
            return;
        }
        indexed.reenqueues = indexed.reenqueues.saturating_add(1);
        output.mark(Mark::Reenqueue);
        output.produce(OutRecord::message(topics::COMMANDS_INDEXED, key, &indexed));
    }
}

/// Whether a money command carries a negative amount (W7 lets it through).
fn negative_amount(command: &crate::command::Command) -> bool {
    use crate::command::CommandKind;
    matches!(
        command.kind,
        CommandKind::Deposit { amount_minor } | CommandKind::Withdraw { amount_minor }
            if amount_minor < 0
    )
}

impl StreamTask for SeedValidator {
    fn name(&self) -> &'static str {
        "seed-validator"
    }

    fn stored_accounts(&self, store: &KvStore) -> Vec<crate::Account> {
        super::snapshot_accounts(store)
    }

    fn input_topics(&self) -> &'static [&'static str] {
        &[topics::COMMANDS_INDEXED, topics::SNAPSHOTS]
    }

    fn process(&self, store: &KvStore, input: &InputRecord<'_>) -> TaskOutput {
        if input.topic == topics::SNAPSHOTS {
            self.on_snapshot(input)
        } else {
            self.on_command(store, input)
        }
    }
}
