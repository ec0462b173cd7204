//! The hardened task, fed any sequence of commands serially (with repeated
//! command ids, bad amounts, bad keys and undecodable records mixed in), keeps
//! every safety invariant, answers every command exactly once (identical
//! repeats only), alarms once per crossing (never again on a repeat), and its store can be rebuilt both from its changelog and
//! from its own outputs.

mod common;

use common::command;
use marlow_model::codec::{decode, encode, encode_account_key};
use marlow_model::task::hardened::{HardenedConfig, HardenedTask};
use marlow_model::task::{topics, InputRecord, KvStore, OutRecord, StoreWrite, StreamTask};
use marlow_model::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// What the serial driver fed and what came out.
#[derive(Default)]
struct Run {
    outputs: Vec<OutRecord>,
    changelog: Vec<StoreWrite>,
    store: KvStore,
    fed: Vec<Command>,
    dead_letters_expected: usize,
}

#[derive(Clone, Debug)]
enum Input {
    Good(Command),
    Garbage(Vec<u8>),
    WrongKey(Command),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        18 => command().prop_map(Input::Good),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Input::Garbage),
        1 => command().prop_map(Input::WrongKey),
    ]
}

fn feed(task: &HardenedTask, inputs: &[Input]) -> Run {
    let mut run = Run::default();
    for (offset, item) in inputs.iter().enumerate() {
        let (key, value) = match item {
            Input::Good(cmd) => {
                run.fed.push(cmd.clone());
                (encode_account_key(cmd.account), encode(cmd))
            }
            Input::Garbage(bytes) => {
                run.dead_letters_expected += 1;
                (b"0".to_vec(), bytes.clone())
            }
            Input::WrongKey(cmd) => {
                run.dead_letters_expected += 1;
                (
                    encode_account_key(AccountId(cmd.account.0 + 100)),
                    encode(cmd),
                )
            }
        };
        let record = InputRecord {
            topic: topics::COMMANDS,
            partition: 0,
            offset: offset as u64,
            key: Some(&key),
            value: Some(&value),
        };
        let output = task.process(&run.store, &record);
        run.store.apply_all(&output.store_writes);
        run.changelog.extend(output.store_writes);
        run.outputs.extend(output.records);
    }
    run
}

fn decoded<T: marlow_model::codec::WireMessage>(run: &Run, topic: &str) -> Vec<T> {
    run.outputs
        .iter()
        .filter(|record| record.topic == topic)
        .map(|record| decode(&record.value).expect("our own outputs decode"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn serial_hardened_keeps_every_invariant(inputs in proptest::collection::vec(input(), 0..120)) {
        let task = HardenedTask::new(HardenedConfig::default());
        let run = feed(&task, &inputs);
        let events: Vec<Event> = decoded(&run, topics::EVENTS);
        let outcomes: Vec<Outcome> = decoded(&run, topics::OUTCOMES);

        // S3 and S4: per account, versions 1, 2, 3, ... and the stored state is
        // the fold of the events (fold asserts the version step).
        let mut per_account: BTreeMap<AccountId, Vec<Event>> = BTreeMap::new();
        for event in &events {
            per_account.entry(event.account).or_default().push(event.clone());
        }
        for (account, log) in &per_account {
            let state = fold(*account, log);
            let stored: Account = run.store.get_typed(
                &marlow_model::task::hardened::account_store_key(*account)).expect("stored");
            prop_assert_eq!(&stored, &state);
            // S1: no prefix of the log goes below zero.
            let mut prefix = Account::empty(*account);
            for event in log {
                apply(&mut prefix, event);
                prop_assert!(prefix.balance_minor >= 0, "overdraft at {:?}", event);
            }
        }

        // S2: each command id has at most one effect: its events are one
        // contiguous batch, never repeated later.
        let mut effects: BTreeMap<CommandId, u64> = BTreeMap::new();
        let mut last: Option<CommandId> = None;
        for event in &events {
            if last != Some(event.command) {
                *effects.entry(event.command).or_default() += 1;
            }
            last = Some(event.command);
        }
        prop_assert!(effects.values().all(|count| *count == 1), "{:?}", effects);

        // L1 (serially): every fed command has an outcome, and all outcomes of
        // one command id are identical.
        prop_assert_eq!(outcomes.len(), run.fed.len());
        let mut first_outcome: BTreeMap<CommandId, &Outcome> = BTreeMap::new();
        for outcome in &outcomes {
            let first = first_outcome.entry(outcome.command).or_insert(outcome);
            prop_assert_eq!(*first, outcome);
        }
        for cmd in &run.fed {
            prop_assert!(first_outcome.contains_key(&cmd.id));
        }
        // S7, strict: one alarm record per downward crossing, however often a
        // command is resubmitted; only outcomes repeat.
        let alarms: Vec<Alarm> = decoded(&run, topics::ALARMS);
        let mut crossings: BTreeMap<(AccountId, u64), usize> = BTreeMap::new();
        for alarm in &alarms {
            *crossings.entry((alarm.account, alarm.version)).or_default() += 1;
        }
        prop_assert!(crossings.values().all(|count| *count == 1), "{:?}", crossings);
        // Undecodable input and mismatched keys go to the dead-letter topic.
        let letters: Vec<DeadLetter> = decoded(&run, topics::DEAD_LETTER);
        prop_assert_eq!(letters.len(), run.dead_letters_expected);
    }

    /// The store rebuilt from the changelog, and the store rebuilt from the
    /// task's own events, outcomes and alarms (at-least-once restore), both
    /// equal the live store.
    #[test]
    fn store_rebuilds_from_changelog_and_from_outputs(inputs in proptest::collection::vec(input(), 0..120)) {
        let task = HardenedTask::new(HardenedConfig::default());
        let run = feed(&task, &inputs);
        prop_assert_eq!(&KvStore::from_changelog(&run.changelog), &run.store);
        let mut rebuilt = KvStore::new();
        for (offset, record) in run.outputs.iter().enumerate() {
            if task.rebuild_topics().contains(&record.topic) {
                task.rebuild_from_output(&mut rebuilt, &InputRecord {
                    topic: record.topic,
                    partition: 0,
                    offset: offset as u64,
                    key: Some(&record.key),
                    value: Some(&record.value),
                });
            }
        }
        prop_assert_eq!(&rebuilt, &run.store);
    }
}

/// A command replayed after an at-least-once crash, against a store rebuilt
/// from outputs, is answered identically and not applied twice, even when its
/// outcome record was lost (only its event was written before the crash).
#[test]
fn a_replay_after_a_lost_outcome_is_not_applied_twice() {
    let task = HardenedTask::new(HardenedConfig::default());
    let open = Command {
        id: CommandId {
            client: ClientId(1),
            seq: 1,
        },
        account: AccountId(3),
        issuer: OwnerId(1),
        occ: OccToken::Any,
        kind: CommandKind::Open {
            initial_deposit_minor: 5000,
        },
    };
    let run = feed(&task, &[Input::Good(open.clone())]);
    let mut rebuilt = KvStore::new();
    for record in run.outputs.iter().filter(|r| r.topic == topics::EVENTS) {
        task.rebuild_from_output(
            &mut rebuilt,
            &InputRecord {
                topic: record.topic,
                partition: 0,
                offset: 0,
                key: Some(&record.key),
                value: Some(&record.value),
            },
        );
    }
    let key = encode_account_key(open.account);
    let value = encode(&open);
    let replay = task.process(
        &rebuilt,
        &InputRecord {
            topic: topics::COMMANDS,
            partition: 0,
            offset: 0,
            key: Some(&key),
            value: Some(&value),
        },
    );
    assert!(replay.store_writes.is_empty());
    assert!(replay.records.iter().all(|r| r.topic != topics::EVENTS));
    let original = run.outputs.iter().find(|r| r.topic == topics::OUTCOMES);
    let again = replay.records.iter().find(|r| r.topic == topics::OUTCOMES);
    assert_eq!(original, again, "the replayed outcome is identical");
}

#[test]
fn alarms_fire_once_per_downward_crossing() {
    let task = HardenedTask::new(HardenedConfig::default());
    let cmd = |seq, kind| {
        Input::Good(Command {
            id: CommandId {
                client: ClientId(0),
                seq,
            },
            account: AccountId(1),
            issuer: OwnerId(1),
            occ: OccToken::Any,
            kind,
        })
    };
    let withdraw = |amount_minor| CommandKind::Withdraw { amount_minor };
    let run = feed(
        &task,
        &[
            cmd(
                0,
                CommandKind::Open {
                    initial_deposit_minor: 3000,
                },
            ),
            cmd(1, withdraw(2500)), // 3000 -> 500: crossing
            cmd(2, withdraw(100)),  // still below: no alarm
            cmd(3, CommandKind::Deposit { amount_minor: 2000 }),
            cmd(4, withdraw(1700)), // 2400 -> 700: crossing
        ],
    );
    let alarms: Vec<Alarm> = decoded(&run, topics::ALARMS);
    let versions: Vec<u64> = alarms.iter().map(|alarm| alarm.version).collect();
    assert_eq!(versions, vec![3, 6]);
}
