//! The history is complete enough to audit offline: it opens with the run's
//! header, it records every duplicate send, every aborted output record and
//! every record the broker deleted, and `accepted.version` means the account's
//! version after the command in both designs.

use marlow_model::{CommandKind, OutcomeResult};
use marlow_scenarios::DesignKind;
use marlow_sim::history::{CommittedRecord, HistoryEntry, RemovalCause, Step};
use marlow_tests::{run_seed, scenario};
use std::collections::BTreeSet;

fn entries(name: &str, design: Option<DesignKind>, seed: u64) -> Vec<HistoryEntry> {
    run_seed(&scenario(name, design), seed)
        .history
        .entries()
        .to_vec()
}

#[test]
fn the_first_entry_is_the_header() {
    let history = entries("w8-alarms", None, 3);
    let Step::Header(header) = &history[0].step else {
        panic!("the first entry is {:?}", history[0].step);
    };
    assert_eq!(header.scenario, "w8-alarms");
    assert_eq!(header.design, "seed");
    assert_eq!(header.seed, 3);
    assert_eq!(header.mode, "simulated");
    assert_eq!(header.processing_guarantee, "exactly_once");
    assert_eq!(header.alarm_threshold_minor, 1000);
    assert!(!header.marlow_version.is_empty());
    let headers = history
        .iter()
        .filter(|entry| matches!(entry.step, Step::Header(_)))
        .count();
    assert_eq!(headers, 1, "exactly one header");
}

#[test]
fn duplicate_sends_and_aborted_records_are_recorded() {
    // chaos: 5% of client sends are sent twice, and crashes, fences and broker
    // restarts abort transactions. Some seed in the first few has both.
    let mut seen_duplicate = false;
    let mut seen_aborted = false;
    for seed in 0..6 {
        let history = entries("chaos", None, seed);
        let committed: BTreeSet<(&str, u32, u64)> = history
            .iter()
            .filter_map(|entry| match &entry.step {
                Step::Committed {
                    topic,
                    partition,
                    offset,
                    ..
                } => Some((topic.as_str(), *partition, *offset)),
                _ => None,
            })
            .collect();
        let invoked: BTreeSet<_> = history
            .iter()
            .filter_map(|entry| match &entry.step {
                Step::Invoke { command, .. } => Some(command.id),
                _ => None,
            })
            .collect();
        for entry in &history {
            match &entry.step {
                Step::DuplicateSend { command, .. } => {
                    seen_duplicate = true;
                    assert!(
                        invoked.contains(command),
                        "a duplicate of an invoked command"
                    );
                }
                Step::Aborted {
                    topic,
                    partition,
                    offset,
                    ..
                } => {
                    seen_aborted = true;
                    assert!(
                        !committed.contains(&(topic.as_str(), *partition, *offset)),
                        "an aborted record is never also committed: {topic}/{partition}@{offset}"
                    );
                }
                _ => {}
            }
        }
        if seen_duplicate && seen_aborted {
            return;
        }
    }
    panic!("six chaos seeds: duplicate sends seen {seen_duplicate}, aborted records seen {seen_aborted}");
}

#[test]
fn retention_deletions_are_recorded() {
    // w6-retention: a 60 s retention on the commands topic over a longer run.
    let history = entries("w6-retention", None, 0);
    let removed: Vec<_> = history
        .iter()
        .filter_map(|entry| match &entry.step {
            Step::Removed {
                topic,
                cause,
                first_offset,
                last_offset,
                records,
                ..
            } => Some((topic.clone(), *cause, *first_offset, *last_offset, *records)),
            _ => None,
        })
        .collect();
    assert!(
        removed
            .iter()
            .any(|(topic, cause, ..)| topic == "commands" && *cause == RemovalCause::Retention),
        "retention of the commands topic is recorded: {removed:?}"
    );
    for (_, _, first, last, records) in &removed {
        assert!(first <= last && *records > 0 && *records <= last - first + 1);
    }
}

#[test]
fn accepted_version_is_the_version_after_the_command_in_both_designs() {
    // An `open` with a deposit yields two events: the account is at version 2.
    for design in [DesignKind::Hardened, DesignKind::Seed] {
        let history = entries("w8-alarms", Some(design), 0);
        let opens: BTreeSet<_> = history
            .iter()
            .filter_map(|entry| match &entry.step {
                Step::Invoke { command, .. } => match command.kind {
                    CommandKind::Open {
                        initial_deposit_minor,
                    } if initial_deposit_minor > 0 => Some(command.id),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert!(
            !opens.is_empty(),
            "the scenario opens accounts with a deposit"
        );
        let told: Vec<u64> = history
            .iter()
            .filter_map(|entry| match &entry.step {
                Step::ClientOutcome { outcome, .. } if opens.contains(&outcome.command) => {
                    match outcome.result {
                        OutcomeResult::Accepted { version } => Some(version),
                        OutcomeResult::Rejected { .. } => None,
                    }
                }
                _ => None,
            })
            .collect();
        assert!(!told.is_empty(), "{design:?}: some open was answered");
        assert!(
            told.iter().all(|version| *version == 2),
            "{design:?}: an open with a deposit is accepted at version 2, told {told:?}"
        );
        let committed_opens = history.iter().any(|entry| {
            matches!(&entry.step, Step::Committed { record: CommittedRecord::Event(event), .. } if opens.contains(&event.command))
        });
        assert!(committed_opens);
    }
}
