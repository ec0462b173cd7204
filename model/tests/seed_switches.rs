//! The seed design's switches bite: run serially through the whole topology,
//! each weak point shows its symptom with the switch on and not with it off.

use marlow_model::codec::{decode, encode, encode_account_key};
use marlow_model::pipeline::{RunResult, SerialPipeline};
use marlow_model::task::seed::{seed_tasks, SeedConfig};
use marlow_model::task::topics;
use marlow_model::*;

const ACCOUNT: AccountId = AccountId(5);

fn cmd(seq: u64, issuer: u64, kind: CommandKind) -> Command {
    Command {
        id: CommandId {
            client: ClientId(0),
            seq,
        },
        account: ACCOUNT,
        issuer: OwnerId(issuer),
        occ: OccToken::Any,
        kind,
    }
}

fn pipeline(config: &SeedConfig, commands: &[Command]) -> SerialPipeline {
    let mut pipeline = SerialPipeline::new(seed_tasks(config));
    for command in commands {
        pipeline.append(
            topics::COMMANDS,
            encode_account_key(command.account),
            encode(command),
        );
    }
    pipeline
}

fn events(pipeline: &SerialPipeline) -> Vec<Event> {
    pipeline
        .log(topics::EVENTS)
        .iter()
        .filter_map(|record| decode::<Event>(&record.value).ok())
        .collect()
}

/// W1: a rejected withdrawal (0 events) followed by a deposit: the deposit's
/// position never matches the event-counting version, so it is re-enqueued
/// forever. W2 is fixed here so that only W1 is in play.
#[test]
fn w1_a_rejected_command_livelocks_every_later_one() {
    let commands = [
        cmd(
            0,
            1,
            CommandKind::Open {
                initial_deposit_minor: 0,
            },
        ),
        cmd(1, 1, CommandKind::Withdraw { amount_minor: 500 }),
        cmd(2, 1, CommandKind::Deposit { amount_minor: 100 }),
    ];
    let original = SeedConfig {
        w2_no_snapshot_skips_check: false,
        ..SeedConfig::original()
    };
    let mut stuck = pipeline(&original, &commands);
    assert!(matches!(stuck.run(20_000), RunResult::StepLimit { .. }));
    assert_eq!(events(&stuck).len(), 1, "only the open was ever applied");
    assert!(
        stuck.log(topics::COMMANDS_INDEXED).len() > 5_000,
        "the deposit retries forever"
    );

    let fixed = SeedConfig {
        w1_version_counts_events: false,
        ..original
    };
    let mut done = pipeline(&fixed, &commands);
    assert!(matches!(done.run(20_000), RunResult::Quiescent { .. }));
    let bodies: Vec<EventBody> = events(&done).into_iter().map(|event| event.body).collect();
    assert_eq!(
        bodies,
        vec![
            EventBody::Opened { owner: OwnerId(1) },
            EventBody::Deposited { amount_minor: 100 }
        ]
    );
}

/// W2: two opens of a new account both pass against the empty state: two
/// events claim version 1.
#[test]
fn w2_a_burst_on_a_new_account_skips_the_check() {
    let commands = [
        cmd(
            0,
            1,
            CommandKind::Open {
                initial_deposit_minor: 0,
            },
        ),
        cmd(
            1,
            2,
            CommandKind::Open {
                initial_deposit_minor: 0,
            },
        ),
    ];
    let mut original = pipeline(&SeedConfig::original(), &commands);
    original.run(1_000);
    let versions: Vec<u64> = events(&original)
        .iter()
        .map(|event| event.version)
        .collect();
    assert_eq!(versions, vec![1, 1], "duplicate version 1");

    let fixed = SeedConfig {
        w2_no_snapshot_skips_check: false,
        w1_version_counts_events: false,
        ..SeedConfig::original()
    };
    let mut checked = pipeline(&fixed, &commands);
    assert!(matches!(checked.run(1_000), RunResult::Quiescent { .. }));
    let versions: Vec<u64> = events(&checked).iter().map(|event| event.version).collect();
    assert_eq!(
        versions,
        vec![1],
        "the second open is rejected against the real state"
    );
}

/// The original's W7 and W8 with the ordering weak points (W1, W2) fixed, so
/// that only the bad-input and alarm behaviour is in play.
fn only_w7_w8() -> SeedConfig {
    SeedConfig {
        w7_silent_drop_undecodable: true,
        w7_accept_negative_amounts: true,
        w8_alarm_every_update: true,
        ..SeedConfig::all_fixed()
    }
}

/// W7: a negative deposit by a stranger debits the account into overdraft;
/// an undecodable record vanishes instead of being dead-lettered.
#[test]
fn w7_bad_input_is_applied_or_lost() {
    let commands = [
        cmd(
            0,
            1,
            CommandKind::Open {
                initial_deposit_minor: 0,
            },
        ),
        cmd(1, 1, CommandKind::Deposit { amount_minor: 100 }),
        cmd(2, 9, CommandKind::Deposit { amount_minor: -700 }),
    ];
    let mut original = pipeline(&only_w7_w8(), &commands);
    original.append(topics::COMMANDS, b"5".to_vec(), b"not json".to_vec());
    original.run(1_000);
    let balance: i64 = events(&original)
        .iter()
        .map(|e| e.body.balance_delta_minor())
        .sum();
    assert_eq!(balance, -600, "overdraft by a negative deposit");
    assert!(
        original.log(topics::DEAD_LETTER).is_empty(),
        "the bad record vanished"
    );

    let mut fixed = pipeline(&SeedConfig::all_fixed(), &commands);
    fixed.append(topics::COMMANDS, b"5".to_vec(), b"not json".to_vec());
    fixed.run(1_000);
    let balance: i64 = events(&fixed)
        .iter()
        .map(|e| e.body.balance_delta_minor())
        .sum();
    assert_eq!(balance, 100);
    assert_eq!(fixed.log(topics::DEAD_LETTER).len(), 1);
}

/// W8: every update below the threshold raises an alarm, not just the crossing.
#[test]
fn w8_alarms_fire_on_every_update_below_the_threshold() {
    let commands = [
        cmd(
            0,
            1,
            CommandKind::Open {
                initial_deposit_minor: 0,
            },
        ),
        cmd(1, 1, CommandKind::Deposit { amount_minor: 2000 }),
        cmd(2, 1, CommandKind::Withdraw { amount_minor: 1500 }),
        cmd(3, 1, CommandKind::Withdraw { amount_minor: 100 }),
    ];
    let alarms = |config: &SeedConfig| {
        let mut run = pipeline(config, &commands);
        run.run(1_000);
        run.log(topics::ALARMS).len()
    };
    // Opened (balance 0), then 500 and 400 are all below 1000.
    assert_eq!(alarms(&only_w7_w8()), 3);
    assert_eq!(alarms(&SeedConfig::all_fixed()), 1);
}

/// W4: the same command id submitted twice is applied twice by the original.
#[test]
fn w4_a_resubmission_is_applied_twice() {
    let deposit = cmd(1, 2, CommandKind::Deposit { amount_minor: 300 });
    let commands = [
        cmd(
            0,
            1,
            CommandKind::Open {
                initial_deposit_minor: 0,
            },
        ),
        deposit.clone(),
        deposit,
    ];
    let count = |config: &SeedConfig| {
        let mut run = pipeline(config, &commands);
        assert!(matches!(run.run(5_000), RunResult::Quiescent { .. }));
        events(&run).len()
    };
    let no_w2 = SeedConfig {
        w2_no_snapshot_skips_check: false,
        ..SeedConfig::original()
    };
    assert_eq!(count(&no_w2), 3);
    assert_eq!(count(&SeedConfig::all_fixed()), 2);
}
