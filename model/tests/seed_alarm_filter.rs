//! The seed design's alarm filter with W8 fixed: one alarm per downward
//! crossing, and none for a snapshot replayed after the filter's store moved
//! past it (the version-1 snapshot, balance 0 right after `opened`, replayed
//! under at-least-once used to look like a crossing from the later balance).

use marlow_model::codec::{decode, encode, encode_account_key};
use marlow_model::task::seed::{SeedAlarmFilter, SeedConfig, SeedSnapshot};
use marlow_model::task::{topics, InputRecord, KvStore, StreamTask};
use marlow_model::*;

const ACCOUNT: AccountId = AccountId(9);

fn snapshot(version: u64, balance_minor: i64) -> SeedSnapshot {
    let mut snapshot = SeedSnapshot::empty(ACCOUNT);
    snapshot.account.opened = true;
    snapshot.account.version = version;
    snapshot.account.balance_minor = balance_minor;
    snapshot.resolved_commands = version;
    snapshot
}

/// Feeds snapshots through the filter with one store, returning the version
/// of each alarm raised.
fn alarms(config: &SeedConfig, snapshots: &[SeedSnapshot]) -> Vec<u64> {
    let filter = SeedAlarmFilter::new(config.clone());
    let mut store = KvStore::new();
    let key = encode_account_key(ACCOUNT);
    let mut raised = Vec::new();
    for (offset, snapshot) in snapshots.iter().enumerate() {
        let value = encode(snapshot);
        let output = filter.process(
            &store,
            &InputRecord {
                topic: topics::SNAPSHOTS,
                partition: 0,
                offset: offset as u64,
                key: Some(&key),
                value: Some(&value),
            },
        );
        store.apply_all(&output.store_writes);
        for record in output.records {
            assert_eq!(record.topic, topics::ALARMS);
            let alarm: Alarm = decode(&record.value).expect("an alarm");
            raised.push(alarm.version);
        }
    }
    raised
}

#[test]
fn opening_is_not_a_crossing() {
    let fixed = SeedConfig::all_fixed();
    // Opened (0), deposited (5000), withdrawn to 500: one crossing, at 3.
    let log = [snapshot(1, 0), snapshot(2, 5_000), snapshot(3, 500)];
    assert_eq!(alarms(&fixed, &log), vec![3]);
}

#[test]
fn a_replayed_snapshot_is_not_a_crossing() {
    let fixed = SeedConfig::all_fixed();
    // At-least-once: the input is replayed from before version 1 while the
    // filter's store (restored from its changelog) already saw version 3.
    let log = [
        snapshot(1, 0),
        snapshot(2, 5_000),
        snapshot(3, 4_000),
        snapshot(1, 0),
        snapshot(2, 5_000),
        snapshot(3, 4_000),
        snapshot(4, 500),
    ];
    assert_eq!(alarms(&fixed, &log), vec![4], "only the real crossing");
    // W1 fixed: a rejection marker repeats a version and balance: no alarm.
    let log = [snapshot(1, 0), snapshot(2, 5_000), snapshot(2, 5_000)];
    assert!(alarms(&fixed, &log).is_empty());
}

#[test]
fn w8_on_still_alarms_on_every_update_below_the_threshold() {
    let original = SeedConfig {
        w8_alarm_every_update: true,
        ..SeedConfig::all_fixed()
    };
    let log = [snapshot(1, 0), snapshot(2, 5_000), snapshot(3, 500)];
    assert_eq!(alarms(&original, &log), vec![1, 3]);
}
