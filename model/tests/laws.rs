//! Laws of `decide` and `apply`: a rejected command yields nothing; an accepted
//! one yields events that step the version by one each and never overdraw;
//! `apply` refuses a wrong version step or a foreign account.

mod common;

use common::{account_with_history, command};
use marlow_model::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// decide is a function of its inputs: the same state and command give the
    /// same answer, and an accepted command's events step the version by one
    /// each, are stamped with the command, and leave the balance non-negative.
    #[test]
    fn accepted_events_step_versions_and_keep_balance(account in account_with_history(), mut cmd in command()) {
        cmd.account = account.id;
        let first = decide(&account, &cmd);
        prop_assert_eq!(&first, &decide(&account, &cmd));
        if let Ok(events) = first {
            prop_assert!(!events.is_empty());
            let mut after = account.clone();
            for (index, event) in events.iter().enumerate() {
                prop_assert_eq!(event.version, account.version + 1 + index as u64);
                prop_assert_eq!(event.command, cmd.id);
                apply(&mut after, event);
            }
            prop_assert!(after.balance_minor >= 0);
            prop_assert_eq!(after.version, account.version + events.len() as u64);
        }
    }

    /// A rejected command changes nothing: folding its (absent) events leaves
    /// the state equal to the one it was decided against, and deciding again
    /// against that state rejects it for the same reason.
    #[test]
    fn a_rejected_command_changes_nothing(account in account_with_history(), mut cmd in command()) {
        cmd.account = account.id;
        if let Err(rejection) = decide(&account, &cmd) {
            let unchanged = account.clone();
            prop_assert_eq!(&unchanged, &account);
            prop_assert_eq!(decide(&unchanged, &cmd), Err(rejection));
        }
    }

    /// The balance always equals deposits minus withdrawals of the fold.
    #[test]
    fn balance_is_the_sum_of_money_events(commands in proptest::collection::vec(command(), 0..60)) {
        let mut account = Account::empty(AccountId(0));
        let mut log = Vec::new();
        for mut cmd in commands {
            cmd.account = account.id;
            if let Ok(events) = decide(&account, &cmd) {
                for event in events {
                    apply(&mut account, &event);
                    log.push(event);
                }
            }
        }
        let sum: i64 = log.iter().map(|event| event.body.balance_delta_minor()).sum();
        prop_assert_eq!(account.balance_minor, sum);
        prop_assert_eq!(&fold(account.id, &log), &account);
    }
}

fn opened_event(version: u64) -> Event {
    Event {
        account: AccountId(0),
        version,
        command: CommandId {
            client: ClientId(0),
            seq: 0,
        },
        body: EventBody::Opened { owner: OwnerId(1) },
    }
}

#[test]
#[should_panic(expected = "advance the account version by one")]
fn apply_refuses_a_version_gap() {
    let mut account = Account::empty(AccountId(0));
    apply(&mut account, &opened_event(2));
}

#[test]
#[should_panic(expected = "advance the account version by one")]
fn apply_refuses_a_repeated_version() {
    let mut account = Account::empty(AccountId(0));
    apply(&mut account, &opened_event(1));
    apply(&mut account, &opened_event(1));
}

#[test]
#[should_panic(expected = "wrong account")]
fn apply_refuses_a_foreign_event() {
    let mut account = Account::empty(AccountId(9));
    apply(&mut account, &opened_event(1));
}

#[test]
fn apply_counting_tolerates_what_apply_refuses() {
    let mut account = Account::empty(AccountId(0));
    apply_counting(&mut account, &opened_event(1));
    apply_counting(&mut account, &opened_event(1));
    assert_eq!(account.version, 2, "the seed aggregate counts events seen");
}
