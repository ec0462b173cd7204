//! The hardened task's at-least-once rules, driven by hand: a command answered
//! again alarms again only when its alarm may have been lost, and a store
//! rebuilt from outputs that a zombie instance duplicated or forked follows the
//! first-written chain instead of panicking, never applying a command twice.

use marlow_model::codec::{decode, encode, encode_account_key};
use marlow_model::task::hardened::{account_store_key, HardenedConfig, HardenedTask};
use marlow_model::task::{topics, InputRecord, KvStore, OutRecord, StreamTask, TaskOutput};
use marlow_model::*;

const ACCOUNT: AccountId = AccountId(4);

fn cmd(seq: u64, kind: CommandKind) -> Command {
    Command {
        id: CommandId {
            client: ClientId(2),
            seq,
        },
        account: ACCOUNT,
        issuer: OwnerId(1),
        occ: OccToken::Any,
        kind,
    }
}

fn open(seq: u64, initial_deposit_minor: i64) -> Command {
    cmd(
        seq,
        CommandKind::Open {
            initial_deposit_minor,
        },
    )
}

fn withdraw(seq: u64, amount_minor: i64) -> Command {
    cmd(seq, CommandKind::Withdraw { amount_minor })
}

/// Processes one command against `store` and applies its store writes, as a
/// driver does.
fn process(task: &HardenedTask, store: &mut KvStore, command: &Command) -> TaskOutput {
    let key = encode_account_key(command.account);
    let value = encode(command);
    let output = task.process(
        store,
        &InputRecord {
            topic: topics::COMMANDS,
            partition: 0,
            offset: 0,
            key: Some(&key),
            value: Some(&value),
        },
    );
    store.apply_all(&output.store_writes);
    output
}

/// Rebuilds a store from output records, topic by topic in the task's order,
/// as the at-least-once restore does.
fn rebuild(task: &HardenedTask, records: &[OutRecord]) -> KvStore {
    let mut store = KvStore::new();
    for topic in task.rebuild_topics() {
        for (offset, record) in records.iter().filter(|r| r.topic == *topic).enumerate() {
            task.rebuild_from_output(
                &mut store,
                &InputRecord {
                    topic,
                    partition: 0,
                    offset: offset as u64,
                    key: Some(&record.key),
                    value: Some(&record.value),
                },
            );
        }
    }
    store
}

fn on(output: &TaskOutput, topic: &str) -> Vec<OutRecord> {
    output
        .records
        .iter()
        .filter(|record| record.topic == topic)
        .cloned()
        .collect()
}

fn account(store: &KvStore) -> Account {
    store
        .get_typed(&account_store_key(ACCOUNT))
        .expect("the account is stored")
}

/// The exactly-once rule: a resubmission of the command that crossed the
/// threshold gets its outcome again, identically, and no second alarm.
#[test]
fn a_resubmission_repeats_the_outcome_but_not_the_alarm() {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut store = KvStore::new();
    process(&task, &mut store, &open(0, 3_000));
    let first = process(&task, &mut store, &withdraw(1, 2_500));
    assert_eq!(on(&first, topics::ALARMS).len(), 1, "3000 -> 500 crosses");
    for _ in 0..3 {
        let again = process(&task, &mut store, &withdraw(1, 2_500));
        assert!(on(&again, topics::ALARMS).is_empty(), "alarmed again");
        assert_eq!(on(&again, topics::OUTCOMES), on(&first, topics::OUTCOMES));
        assert!(on(&again, topics::EVENTS).is_empty());
    }
}

/// At-least-once: the event reached the log but the alarm did not (a crash
/// between the two produces). The store rebuilt from outputs has no marker,
/// so the replay publishes the alarm, once; a later repeat does not.
#[test]
fn a_replay_publishes_an_alarm_that_was_lost_once() {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut live = KvStore::new();
    let mut written = on(&process(&task, &mut live, &open(0, 3_000)), topics::EVENTS);
    let crossing = process(&task, &mut live, &withdraw(1, 2_500));
    let alarm = on(&crossing, topics::ALARMS);
    assert_eq!(alarm.len(), 1);
    written.extend(on(&crossing, topics::EVENTS)); // the alarm and outcome are lost

    let mut rebuilt = rebuild(&task, &written);
    let replay = process(&task, &mut rebuilt, &withdraw(1, 2_500));
    assert_eq!(
        on(&replay, topics::ALARMS),
        alarm,
        "the lost alarm, identical"
    );
    assert_eq!(
        on(&replay, topics::OUTCOMES),
        on(&crossing, topics::OUTCOMES)
    );
    assert!(on(&replay, topics::EVENTS).is_empty(), "not applied twice");
    let again = process(&task, &mut rebuilt, &withdraw(1, 2_500));
    assert!(on(&again, topics::ALARMS).is_empty(), "published once");

    // Had the alarm reached the log, the rebuilt store knows it: no repeat.
    written.extend(alarm);
    let mut rebuilt = rebuild(&task, &written);
    let replay = process(&task, &mut rebuilt, &withdraw(1, 2_500));
    assert!(on(&replay, topics::ALARMS).is_empty(), "alarmed again");
}

/// A zombie instance (paused past its session, resumed after its partitions
/// moved) writes again an event another instance already wrote: the events
/// log holds versions 1, 2, 3, 3. The rebuild used to fold the second 3 and
/// panic ("event version must advance the account version by one"); it now
/// follows the first-written chain, and the duplicated command stays applied
/// once.
#[test]
fn a_rebuild_over_a_duplicated_event_follows_the_first_chain() {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut live = KvStore::new();
    let mut written = on(&process(&task, &mut live, &open(0, 3_000)), topics::EVENTS);
    let spend = process(&task, &mut live, &withdraw(1, 700));
    written.extend(on(&spend, topics::EVENTS));
    written.extend(on(&spend, topics::EVENTS)); // the zombie's copy
    let mut rebuilt = rebuild(&task, &written);
    assert_eq!(account(&rebuilt), account(&live));
    assert_eq!(account(&rebuilt).balance_minor, 2_300);
    let replay = process(&task, &mut rebuilt, &withdraw(1, 700));
    assert!(on(&replay, topics::EVENTS).is_empty(), "applied twice");
    let next = process(&task, &mut rebuilt, &withdraw(2, 300));
    let events: Vec<Event> = on(&next, topics::EVENTS)
        .iter()
        .map(|record| decode(&record.value).expect("our event"))
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].version, 4, "the next version of the first chain");
}

/// A divergent fork: two writers each appended a different version-3 event.
/// The store keeps the first; the second command is recorded as answered with
/// the version its writer gave it, so a resubmission is not applied again.
#[test]
fn a_rebuild_over_a_forked_log_keeps_the_first_writer() {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut first = KvStore::new();
    let mut written = on(&process(&task, &mut first, &open(0, 3_000)), topics::EVENTS);
    let mut zombie = first.clone();
    written.extend(on(
        &process(&task, &mut first, &withdraw(1, 700)),
        topics::EVENTS,
    ));
    let forked = process(&task, &mut zombie, &withdraw(2, 100));
    written.extend(on(&forked, topics::EVENTS));
    let mut rebuilt = rebuild(&task, &written);
    assert_eq!(account(&rebuilt), account(&first));
    let resubmitted = process(&task, &mut rebuilt, &withdraw(2, 100));
    assert!(on(&resubmitted, topics::EVENTS).is_empty(), "applied twice");
    assert_eq!(
        on(&resubmitted, topics::OUTCOMES),
        on(&forked, topics::OUTCOMES),
        "answered as its writer answered it"
    );
}

/// A command answered on the first-written chain keeps that answer when a
/// zombie's copy of it turns up further along the log at another version.
/// (Found by cargo mutants: no test had an off-chain copy of an on-chain
/// command.)
#[test]
fn an_on_chain_answer_survives_an_off_chain_copy_at_another_version() {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut first = KvStore::new();
    let mut written = on(&process(&task, &mut first, &open(0, 3_000)), topics::EVENTS);
    let mut zombie = first.clone();
    let on_chain = process(&task, &mut first, &withdraw(1, 700));
    written.extend(on(&on_chain, topics::EVENTS));
    // The zombie answered two other commands first, so its copy of command 1
    // lands at version 5, not 3; only that copy reaches the log.
    process(&task, &mut zombie, &withdraw(2, 100));
    process(&task, &mut zombie, &withdraw(3, 100));
    let copy = on(
        &process(&task, &mut zombie, &withdraw(1, 700)),
        topics::EVENTS,
    );
    assert_eq!(copy[0].topic, topics::EVENTS);
    let copied: Event = decode(&copy[0].value).expect("an event");
    assert_eq!(copied.version, 5);
    written.extend(copy);
    let mut rebuilt = rebuild(&task, &written);
    assert_eq!(account(&rebuilt), account(&first));
    let resubmitted = process(&task, &mut rebuilt, &withdraw(1, 700));
    assert!(on(&resubmitted, topics::EVENTS).is_empty(), "applied twice");
    assert_eq!(
        on(&resubmitted, topics::OUTCOMES),
        on(&on_chain, topics::OUTCOMES),
        "answered as the first writer answered it"
    );
}

/// Two writers forked the log, and the second writer's branch continues past
/// the first's: v3 of writer X (withdraw 100 of 100), then writer Y's v3
/// (withdraw 50, off the chain) and Y's v4 (withdraw 50, validated against
/// Y's balance of 50). Folding Y's v4 after X's v3 stitched the two branches
/// into a balance of -50, and the next deposit tripped `process`'s assertion
/// ("decide let an overdraft through"): a long at-least-once run with zombies
/// and a short command retention panicked. The rebuilt state must be one the
/// rules allow.
#[test]
fn a_rebuild_never_stitches_two_branches_of_a_fork_below_zero() {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut x = KvStore::new();
    let mut written = on(&process(&task, &mut x, &open(0, 100)), topics::EVENTS);
    let mut y = x.clone();
    written.extend(on(
        &process(&task, &mut x, &withdraw(1, 100)),
        topics::EVENTS,
    ));
    written.extend(on(
        &process(&task, &mut y, &withdraw(2, 50)),
        topics::EVENTS,
    ));
    written.extend(on(
        &process(&task, &mut y, &withdraw(3, 50)),
        topics::EVENTS,
    ));
    let mut rebuilt = rebuild(&task, &written);
    assert_eq!(account(&rebuilt), account(&x), "X's chain, and only it");
    assert_eq!(account(&rebuilt).balance_minor, 0);
    let deposit = cmd(4, CommandKind::Deposit { amount_minor: 10 });
    let answered = process(&task, &mut rebuilt, &deposit);
    assert_eq!(on(&answered, topics::EVENTS).len(), 1);
    assert_eq!(account(&rebuilt).balance_minor, 10);
    // Y's commands count as answered: neither is applied again.
    for seq in [2, 3] {
        let again = process(&task, &mut rebuilt, &withdraw(seq, 50));
        assert!(
            on(&again, topics::EVENTS).is_empty(),
            "cmd {seq} applied twice"
        );
    }
}

/// The task reads its own store layout for the history's `Restore` steps (S4):
/// exactly its accounts, not its command records or alarm markers.
#[test]
fn the_stored_accounts_are_the_accounts_and_nothing_else() {
    let task = HardenedTask::new(HardenedConfig::default());
    let mut store = KvStore::new();
    process(&task, &mut store, &open(0, 500));
    process(&task, &mut store, &withdraw(1, 100));
    assert!(
        store.len() > 1,
        "command records are stored beside the account"
    );
    assert_eq!(task.stored_accounts(&store), vec![account(&store)]);
    assert_eq!(task.stored_accounts(&store)[0].version, 3);
    assert!(task.stored_accounts(&KvStore::new()).is_empty());
}
