//! The coverage marks tasks report in `TaskOutput`: each one appears exactly
//! when its path runs, and not on the ordinary path next to it.

use marlow_model::codec::{encode, encode_account_key};
use marlow_model::task::hardened::{HardenedConfig, HardenedTask};
use marlow_model::task::seed::{IndexedCommand, SeedConfig, SeedValidator};
use marlow_model::task::{topics, InputRecord, KvStore, StreamTask, TaskOutput};
use marlow_model::*;

fn command(seq: u64, occ: OccToken, kind: CommandKind) -> Command {
    Command {
        id: CommandId {
            client: ClientId(1),
            seq,
        },
        account: AccountId(7),
        issuer: OwnerId(1),
        occ,
        kind,
    }
}

/// Feeds commands to the hardened task on one store; the marks of each call.
fn hardened_marks(commands: &[Command]) -> Vec<Vec<Mark>> {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut store = KvStore::new();
    commands
        .iter()
        .map(|cmd| {
            let key = encode_account_key(cmd.account);
            let value = encode(cmd);
            let output = task.process(&store, &input(topics::COMMANDS, &key, &value));
            store.apply_all(&output.store_writes);
            output.marks
        })
        .collect()
}

fn input<'a>(topic: &'a str, key: &'a [u8], value: &'a [u8]) -> InputRecord<'a> {
    InputRecord {
        topic,
        partition: 0,
        offset: 0,
        key: Some(key),
        value: Some(value),
    }
}

#[test]
fn the_hardened_task_marks_dedup_conflict_overdraft_and_crossing() {
    let open = command(
        0,
        OccToken::Any,
        CommandKind::Open {
            initial_deposit_minor: 3000,
        },
    );
    let marks = hardened_marks(&[
        open.clone(),
        open, // a resubmission
        command(
            1,
            OccToken::ExpectedVersion(9),
            CommandKind::Deposit { amount_minor: 5 },
        ), // stale
        command(
            2,
            OccToken::Any,
            CommandKind::Withdraw { amount_minor: 9000 },
        ), // too much
        command(
            3,
            OccToken::ExpectedVersion(2),
            CommandKind::Withdraw { amount_minor: 2500 },
        ), // 3000 -> 500
    ]);
    assert_eq!(
        marks,
        vec![
            vec![],
            vec![Mark::DedupHit],
            vec![Mark::ConditionalCommandRejected],
            vec![Mark::OverdraftRefused],
            vec![Mark::AlarmCrossing],
        ]
    );
}

#[test]
fn the_hardened_task_marks_a_dead_letter() {
    let task = HardenedTask::new(HardenedConfig::default());
    let output = task.process(
        &KvStore::new(),
        &input(topics::COMMANDS, b"0", b"\xff garbage"),
    );
    assert_eq!(output.marks, vec![Mark::UndecodableDeadLettered]);
    assert_eq!(output.records.len(), 1, "the dead letter itself");
}

fn validate(config: &SeedConfig, position: u64, reenqueues: u32) -> TaskOutput {
    let indexed = IndexedCommand {
        command: command(
            position,
            OccToken::Position(position),
            CommandKind::Deposit { amount_minor: 10 },
        ),
        reenqueues,
    };
    let key = encode_account_key(AccountId(7));
    let value = encode(&indexed);
    // No snapshot: with W2 fixed the account counts as version 0.
    SeedValidator::new(config.clone()).process(
        &KvStore::new(),
        &input(topics::COMMANDS_INDEXED, &key, &value),
    )
}

#[test]
fn the_seed_validator_marks_reenqueues_and_giving_up() {
    let config = SeedConfig::all_fixed();
    assert!(
        validate(&config, 0, 0).marks.is_empty(),
        "its turn: no mark"
    );
    assert_eq!(validate(&config, 3, 0).marks, vec![Mark::Reenqueue]);
    let limit = config.max_reenqueues;
    assert_eq!(
        validate(&config, 3, limit).marks,
        vec![Mark::ReenqueueLimitDeadLettered]
    );
}

#[test]
fn the_seed_validator_marks_skipping_the_check_only_with_w2_on() {
    let w2 = SeedConfig {
        w2_no_snapshot_skips_check: true,
        ..SeedConfig::all_fixed()
    };
    assert_eq!(
        validate(&w2, 3, 0).marks,
        vec![Mark::ValidatedWithoutSnapshot]
    );
    assert!(
        validate(&w2, 0, 0).marks.is_empty(),
        "position 0 is its turn anyway"
    );
    assert_eq!(
        validate(&SeedConfig::all_fixed(), 3, 0).marks,
        vec![Mark::Reenqueue]
    );
}

#[test]
fn the_seed_validator_marks_a_negative_amount_only_when_it_accepts_one() {
    let negative = |config: &SeedConfig| {
        let indexed = IndexedCommand {
            command: command(
                0,
                OccToken::Position(0),
                CommandKind::Deposit { amount_minor: -50 },
            ),
            reenqueues: 0,
        };
        let key = encode_account_key(AccountId(7));
        let value = encode(&indexed);
        // An open account, so only the amount decides.
        let mut snapshot = task::seed::SeedSnapshot::empty(AccountId(7));
        snapshot.account.opened = true;
        snapshot.account.owners.insert(OwnerId(1));
        let mut store = KvStore::new();
        store.apply(&task::StoreWrite::new(
            [b"snap/".as_slice(), &key].concat(),
            Some(encode(&snapshot)),
        ));
        SeedValidator::new(config.clone())
            .process(&store, &input(topics::COMMANDS_INDEXED, &key, &value))
            .marks
    };
    let w7 = SeedConfig {
        w7_accept_negative_amounts: true,
        ..SeedConfig::all_fixed()
    };
    assert_eq!(negative(&w7), vec![Mark::NegativeAmountAccepted]);
    assert!(
        negative(&SeedConfig::all_fixed()).is_empty(),
        "rejected: no mark"
    );
}

#[test]
fn the_seed_design_marks_dropped_garbage_only_with_w7_on() {
    let garbage = input(topics::COMMANDS_INDEXED, b"0", b"\xff");
    let fixed = SeedValidator::new(SeedConfig::all_fixed()).process(&KvStore::new(), &garbage);
    assert_eq!(fixed.marks, vec![Mark::UndecodableDeadLettered]);
    let original = SeedValidator::new(SeedConfig::original()).process(&KvStore::new(), &garbage);
    assert_eq!(original.marks, vec![Mark::UndecodableDropped]);
    assert!(original.records.is_empty());
}
