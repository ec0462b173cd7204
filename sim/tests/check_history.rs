//! The checkers as a whole: a good history is quiet under every invariant; a
//! bad one is reported once per invariant, in history order, with a trace
//! slice that leads to it; and a history survives the JSON-lines round trip.

use marlow_model::{AccountId, EventBody};
use marlow_sim::check::testkit::Story;
use marlow_sim::check::{
    check_history, related_entries, trace_slice, CheckConfig, CheckSuite, Invariant,
};
use marlow_sim::history::{CommittedRecord, History, Step};

/// The W4 story: an ATM times out on a withdrawal, resubmits it under a new
/// command id, and both withdrawals are applied.
fn double_withdrawal() -> Story {
    let mut story = Story::new();
    story.open(1, 7, 70, 5_000);
    story.deposit(2, 8, 80, 100); // noise on another account
    let first = story.withdraw_command(1, 7, 70, 300);
    story.invoke(&first);
    story.timeout(&first, 0);
    let again = story.withdraw_command(1, 7, 70, 300);
    story.resubmit(&again, 1);
    story.commit_event(&Story::event(
        &first,
        3,
        EventBody::Withdrawn { amount_minor: 300 },
    ));
    story.commit_outcome(&Story::accepted(&first, 3));
    let outcome = story.commit_decision(&again);
    story.tell(&outcome);
    story.heal();
    story.end();
    story
}

#[test]
fn a_good_history_is_quiet_under_every_invariant() {
    let story = Story::good();
    let violations = check_history(story.entries(), &CheckConfig::default());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn a_double_withdrawal_is_reported_with_the_trace_that_led_to_it() {
    let story = double_withdrawal();
    let violations = check_history(story.entries(), &CheckConfig::default());
    let found: Vec<Invariant> = violations
        .iter()
        .map(|violation| violation.invariant)
        .collect();
    assert_eq!(found, vec![Invariant::S5], "{violations:#?}");
    let violation = &violations[0];
    assert_eq!(violation.account, Some(AccountId(7)));
    assert_eq!(violation.version, Some(3));

    let shown = violation.to_string();
    assert!(
        shown.starts_with("S5 conservation violated: cmd 1/2 timed out"),
        "{shown}"
    );
    assert!(
        shown.contains("account 7, version 3, record events/3@2, cmd 1/2"),
        "{shown}"
    );

    let slice = trace_slice(story.entries(), violation, 4);
    assert_eq!(slice.len(), 4);
    assert_eq!(
        slice.last().map(|entry| entry.seq),
        Some(violation.history_seq)
    );

    let related = related_entries(story.entries(), violation, 100);
    assert!(related
        .iter()
        .all(|entry| entry.seq <= violation.history_seq));
    let mentions_account_8 = related.iter().any(|entry| match &entry.step {
        Step::Invoke { command, .. } => command.account == AccountId(8),
        _ => false,
    });
    assert!(
        !mentions_account_8,
        "the other account's steps are left out"
    );
    let invoke_of_first = related.iter().any(|entry| match &entry.step {
        Step::Invoke { command, .. } => Some(command.id) == violation.command,
        _ => false,
    });
    assert!(
        invoke_of_first,
        "the slice shows the invoke of the withdrawal"
    );
}

#[test]
fn violations_come_one_per_invariant_in_history_order_and_only_if_enabled() {
    let mut story = Story::new();
    let open = story.open(1, 7, 70, 500);
    let first = story.withdraw_command(1, 7, 70, 400);
    let second = story.withdraw_command(2, 7, 70, 400);
    story.invoke(&first);
    story.invoke(&second);
    story.commit_event(&Story::event(
        &first,
        3,
        EventBody::Withdrawn { amount_minor: 400 },
    ));
    story.commit_event(&Story::event(
        &second,
        3,
        EventBody::Withdrawn { amount_minor: 400 },
    ));
    story.commit_event(&Story::event(
        &second,
        4,
        EventBody::Withdrawn { amount_minor: 400 },
    ));
    story.end();
    let _ = open;

    let violations = check_history(story.entries(), &CheckConfig::default());
    let seqs: Vec<u64> = violations
        .iter()
        .map(|violation| violation.history_seq)
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted);
    let mut invariants: Vec<Invariant> = violations
        .iter()
        .map(|violation| violation.invariant)
        .collect();
    for expected in [Invariant::S1, Invariant::S2, Invariant::S3] {
        assert!(
            invariants.contains(&expected),
            "{expected} missing from {invariants:?}"
        );
    }
    invariants.dedup();
    assert_eq!(
        invariants.len(),
        violations.len(),
        "one violation per invariant"
    );

    let only_s3 = check_history(story.entries(), &CheckConfig::only(&[Invariant::S3]));
    assert_eq!(only_s3.len(), 1);
    assert_eq!(only_s3[0].invariant, Invariant::S3);
}

#[test]
fn end_of_run_judgements_wait_for_the_end_entry() {
    let mut story = Story::new();
    story.heal();
    let pending = story.deposit_command(1, 7, 70, 100);
    story.invoke(&pending);
    assert!(check_history(story.entries(), &CheckConfig::default()).is_empty());

    let mut suite = CheckSuite::new(&CheckConfig::default());
    for entry in story.entries() {
        suite.observe(entry);
    }
    assert!(!suite.is_finished());
    suite.finish(story.now_us());
    let violations = suite.into_violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].invariant, Invariant::L1);
}

#[test]
fn a_history_reads_back_equal_from_json_lines() {
    let mut story = double_withdrawal();
    story.push(Step::Rebalance {
        group: "hardened".to_string(),
        generation: 3,
        members: vec!["instance-0".to_string(), "instance-1".to_string()],
    });
    let restored = vec![story.state_of(7)];
    story.restore(restored);
    let command = story.withdraw_command(3, 9, 90, -5);
    story.dead_letter(&command, "bad key");
    story.reenqueue(&command);
    story.commit(
        "snapshots",
        1,
        CommittedRecord::Other {
            message_kind: "seed_snapshot".to_string(),
        },
    );
    story.fault("broker 0 restart");
    let history = story.into_history();

    let mut bytes = Vec::new();
    history
        .write_jsonl(&mut bytes)
        .expect("writing to memory succeeds");
    assert_eq!(
        bytes.iter().filter(|byte| **byte == b'\n').count(),
        history.len()
    );
    let read = History::read_jsonl(bytes.as_slice()).expect("our own output reads back");
    assert_eq!(read.entries(), history.entries());

    let broken = b"{\"seq\":0,\"at_us\":1,\"step\":\"heal\"}\n{\"seq\":1,\"step\":\"end\"}\n";
    let error = History::read_jsonl(broken.as_slice()).expect_err("a missing field is an error");
    assert!(error.starts_with("line 2:"), "{error}");
}
