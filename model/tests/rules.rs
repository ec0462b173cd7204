//! One test per business rule, each showing the rule rejecting the bad case
//! (and accepting the good one next to it), plus the OCC turn, the alarm rule
//! and the strict key decoder.

use marlow_model::codec::{decode_account_key, encode_account_key, encode_account_key_legacy};
use marlow_model::*;

const ALICE: OwnerId = OwnerId(1);
const BOB: OwnerId = OwnerId(2);
const ACCOUNT: AccountId = AccountId(7);

fn command(issuer: OwnerId, kind: CommandKind) -> Command {
    Command {
        id: CommandId {
            client: ClientId(0),
            seq: 0,
        },
        account: ACCOUNT,
        issuer,
        occ: OccToken::Any,
        kind,
    }
}

/// An open account owned by Alice holding `balance_minor`.
fn open_account(balance_minor: i64) -> Account {
    let mut account = Account::empty(ACCOUNT);
    let open = command(
        ALICE,
        CommandKind::Open {
            initial_deposit_minor: balance_minor,
        },
    );
    for event in decide(&account, &open).expect("open succeeds") {
        apply(&mut account, &event);
    }
    assert_eq!(account.balance_minor, balance_minor);
    account
}

#[test]
fn only_an_owner_withdraws() {
    let account = open_account(500);
    let by_bob = command(BOB, CommandKind::Withdraw { amount_minor: 100 });
    assert_eq!(
        decide(&account, &by_bob),
        Err(Rejection::NotAnOwner { issuer: BOB })
    );
    let by_alice = command(ALICE, CommandKind::Withdraw { amount_minor: 100 });
    assert!(decide(&account, &by_alice).is_ok());
}

#[test]
fn anybody_deposits() {
    let account = open_account(0);
    let by_bob = command(BOB, CommandKind::Deposit { amount_minor: 100 });
    let events = decide(&account, &by_bob).expect("a non-owner may deposit");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].body, EventBody::Deposited { amount_minor: 100 });
}

#[test]
fn never_below_zero() {
    let account = open_account(500);
    let too_much = command(ALICE, CommandKind::Withdraw { amount_minor: 501 });
    assert_eq!(
        decide(&account, &too_much),
        Err(Rejection::InsufficientFunds {
            balance_minor: 500,
            amount_minor: 501
        })
    );
    let exactly = command(ALICE, CommandKind::Withdraw { amount_minor: 500 });
    assert!(
        decide(&account, &exactly).is_ok(),
        "down to exactly 0 is allowed"
    );
}

#[test]
fn only_an_owner_changes_owners() {
    let account = open_account(0);
    let add_by_bob = command(BOB, CommandKind::AddOwner { owner: BOB });
    assert_eq!(
        decide(&account, &add_by_bob),
        Err(Rejection::NotAnOwner { issuer: BOB })
    );
    let remove_by_bob = command(BOB, CommandKind::RemoveOwner { owner: ALICE });
    assert_eq!(
        decide(&account, &remove_by_bob),
        Err(Rejection::NotAnOwner { issuer: BOB })
    );
    let add_by_alice = command(ALICE, CommandKind::AddOwner { owner: BOB });
    assert!(decide(&account, &add_by_alice).is_ok());
}

#[test]
fn never_remove_the_last_owner() {
    let mut account = open_account(0);
    let remove_self = command(ALICE, CommandKind::RemoveOwner { owner: ALICE });
    assert_eq!(decide(&account, &remove_self), Err(Rejection::LastOwner));
    for event in decide(
        &account,
        &command(ALICE, CommandKind::AddOwner { owner: BOB }),
    )
    .unwrap()
    {
        apply(&mut account, &event);
    }
    assert!(
        decide(&account, &remove_self).is_ok(),
        "with two owners one may go"
    );
}

#[test]
fn owner_changes_must_make_sense() {
    let account = open_account(0);
    let add_again = command(ALICE, CommandKind::AddOwner { owner: ALICE });
    assert_eq!(
        decide(&account, &add_again),
        Err(Rejection::AlreadyOwner { owner: ALICE })
    );
    let remove_stranger = command(ALICE, CommandKind::RemoveOwner { owner: BOB });
    assert_eq!(
        decide(&account, &remove_stranger),
        Err(Rejection::UnknownOwner { owner: BOB })
    );
}

#[test]
fn zero_negative_and_oversized_amounts_are_rejected() {
    let account = open_account(1_000);
    for kind_of in [
        (|amount_minor| CommandKind::Deposit { amount_minor }) as fn(i64) -> CommandKind,
        |amount_minor| CommandKind::Withdraw { amount_minor },
        |initial_deposit_minor| CommandKind::Open {
            initial_deposit_minor,
        },
    ] {
        let target = match kind_of(1) {
            CommandKind::Open { .. } => Account::empty(ACCOUNT),
            _ => account.clone(),
        };
        let zero_is_ok_for_open = matches!(kind_of(1), CommandKind::Open { .. });
        let zero = decide(&target, &command(ALICE, kind_of(0)));
        if zero_is_ok_for_open {
            assert!(zero.is_ok(), "opening with no initial deposit is fine");
        } else {
            assert_eq!(zero, Err(Rejection::NonPositiveAmount { amount_minor: 0 }));
        }
        assert_eq!(
            decide(&target, &command(ALICE, kind_of(-5))),
            Err(Rejection::NonPositiveAmount { amount_minor: -5 })
        );
        assert_eq!(
            decide(&target, &command(ALICE, kind_of(MAX_AMOUNT_MINOR + 1))),
            Err(Rejection::AmountTooLarge {
                amount_minor: MAX_AMOUNT_MINOR + 1,
                max_minor: MAX_AMOUNT_MINOR
            })
        );
    }
}

#[test]
fn lax_rules_let_a_negative_deposit_debit() {
    let account = open_account(100);
    let lax = Rules {
        reject_negative_amounts: false,
    };
    let negative = command(BOB, CommandKind::Deposit { amount_minor: -300 });
    let events = decide_with(&lax, &account, &negative).expect("W7 lets it through");
    let mut after = account.clone();
    events.iter().for_each(|event| apply(&mut after, event));
    assert_eq!(after.balance_minor, -200, "an overdraft is representable");
    assert!(
        decide(&account, &negative).is_err(),
        "strict rules refuse it"
    );
}

#[test]
fn an_account_is_opened_once_and_used_only_when_open() {
    let empty = Account::empty(ACCOUNT);
    let deposit = command(ALICE, CommandKind::Deposit { amount_minor: 1 });
    assert_eq!(decide(&empty, &deposit), Err(Rejection::AccountNotOpen));
    let open = command(
        ALICE,
        CommandKind::Open {
            initial_deposit_minor: 0,
        },
    );
    assert_eq!(decide(&open_account(0), &open), Err(Rejection::AlreadyOpen));
}

#[test]
fn open_with_a_deposit_yields_two_events() {
    let open = command(
        ALICE,
        CommandKind::Open {
            initial_deposit_minor: 250,
        },
    );
    let events = decide(&Account::empty(ACCOUNT), &open).unwrap();
    let versions: Vec<u64> = events.iter().map(|event| event.version).collect();
    assert_eq!(versions, vec![1, 2]);
}

#[test]
fn a_balance_never_overflows() {
    let mut account = open_account(0);
    account.balance_minor = i64::MAX - 5;
    let deposit = command(BOB, CommandKind::Deposit { amount_minor: 10 });
    assert_eq!(decide(&account, &deposit), Err(Rejection::BalanceOverflow));
}

#[test]
fn occ_turn_orders_now_not_yet_and_stale() {
    assert_eq!(occ_turn(3, 3), Turn::Now);
    assert_eq!(occ_turn(2, 3), Turn::NotYet);
    assert_eq!(occ_turn(4, 3), Turn::Stale);
}

#[test]
fn alarm_fires_on_downward_crossings_only() {
    let rule = AlarmRule::default();
    assert_eq!(rule.threshold_minor, 1000);
    assert!(rule.crossed_downward(1000, 999));
    assert!(rule.crossed_downward(5000, 0));
    assert!(
        !rule.crossed_downward(999, 500),
        "staying below is not a crossing"
    );
    assert!(
        !rule.crossed_downward(500, 2000),
        "rising is not a crossing"
    );
    assert!(
        !rule.crossed_downward(2000, 1000),
        "reaching the threshold is not below it"
    );
    assert!(rule.is_below(999) && !rule.is_below(1000));
}

#[test]
fn account_keys_are_canonical_decimal() {
    assert_eq!(encode_account_key(AccountId(42)), b"42");
    assert_eq!(decode_account_key(b"42"), Ok(AccountId(42)));
    assert_eq!(decode_account_key(b"0"), Ok(AccountId(0)));
    for bad in [
        &b""[..],
        b"042",
        b"-1",
        b"4 2",
        b"99999999999999999999",
        b"abc",
    ] {
        assert!(decode_account_key(bad).is_err(), "{bad:?} must be refused");
    }
    let legacy = encode_account_key_legacy(AccountId(42));
    assert_ne!(legacy, encode_account_key(AccountId(42)));
    assert!(decode_account_key(&legacy).is_err());
}

/// W7's lax rules let a negative amount through, but only within the same
/// bound as a positive one: exactly the limit passes, one more is refused.
/// (Found by cargo mutants: no other test sent an oversized negative amount.)
#[test]
fn lax_rules_bound_negative_amounts_like_positive_ones() {
    let lax = Rules {
        reject_negative_amounts: false,
    };
    let account = open_account(500);
    let at_limit = command(
        ALICE,
        CommandKind::Deposit {
            amount_minor: -MAX_AMOUNT_MINOR,
        },
    );
    let events = decide_with(&lax, &account, &at_limit).expect("the limit itself passes");
    assert_eq!(
        events[0].body,
        EventBody::Deposited {
            amount_minor: -MAX_AMOUNT_MINOR
        }
    );
    let past_limit = command(
        ALICE,
        CommandKind::Deposit {
            amount_minor: -MAX_AMOUNT_MINOR - 1,
        },
    );
    assert_eq!(
        decide_with(&lax, &account, &past_limit),
        Err(Rejection::AmountTooLarge {
            amount_minor: -MAX_AMOUNT_MINOR - 1,
            max_minor: MAX_AMOUNT_MINOR,
        })
    );
}
