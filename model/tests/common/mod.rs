//! Proptest strategies shared by the model's property tests: commands over a
//! few accounts and owners, with amounts that include the bad cases (zero,
//! negative, oversized), so every rule is exercised.

#![allow(dead_code)]

use marlow_model::*;
use proptest::prelude::*;

pub fn raw_amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 1i64..5_000,
        1 => Just(0i64),
        1 => -5_000i64..0,
        1 => (MAX_AMOUNT_MINOR - 2)..(MAX_AMOUNT_MINOR + 3),
        1 => any::<i64>(),
    ]
}

pub fn owner() -> impl Strategy<Value = OwnerId> {
    (0u64..4).prop_map(OwnerId)
}

pub fn command_kind() -> impl Strategy<Value = CommandKind> {
    prop_oneof![
        2 => prop_oneof![Just(0i64), raw_amount()]
            .prop_map(|initial_deposit_minor| CommandKind::Open { initial_deposit_minor }),
        4 => raw_amount().prop_map(|amount_minor| CommandKind::Deposit { amount_minor }),
        4 => raw_amount().prop_map(|amount_minor| CommandKind::Withdraw { amount_minor }),
        1 => owner().prop_map(|owner| CommandKind::AddOwner { owner }),
        1 => owner().prop_map(|owner| CommandKind::RemoveOwner { owner }),
    ]
}

pub fn occ_token() -> impl Strategy<Value = OccToken> {
    prop_oneof![
        6 => Just(OccToken::Any),
        1 => (0u64..6).prop_map(OccToken::ExpectedVersion),
        1 => (0u64..6).prop_map(OccToken::Position),
    ]
}

/// A command with a command id drawn from a small space, so repeats (ATM
/// resubmissions) happen often.
pub fn command() -> impl Strategy<Value = Command> {
    (
        0u32..3,
        0u64..40,
        0u64..3,
        owner(),
        occ_token(),
        command_kind(),
    )
        .prop_map(|(client, seq, account, issuer, occ, kind)| Command {
            id: CommandId {
                client: ClientId(client),
                seq,
            },
            account: AccountId(account),
            issuer,
            occ,
            kind,
        })
}

/// A command whose id is always fresh is made by the caller; this gives an
/// account with some history by running accepted commands through decide/apply.
pub fn account_with_history() -> impl Strategy<Value = Account> {
    proptest::collection::vec(command(), 0..30).prop_map(|commands| {
        let mut account = Account::empty(AccountId(0));
        for mut command in commands {
            command.account = AccountId(0);
            if let Ok(events) = decide(&account, &command) {
                events.iter().for_each(|event| apply(&mut account, event));
            }
        }
        account
    })
}

pub fn event_body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        owner().prop_map(|owner| EventBody::Opened { owner }),
        (1i64..=MAX_AMOUNT_MINOR).prop_map(|amount_minor| EventBody::Deposited { amount_minor }),
        (-MAX_AMOUNT_MINOR..=MAX_AMOUNT_MINOR)
            .prop_filter("events carry non-zero amounts", |amount| *amount != 0)
            .prop_map(|amount_minor| EventBody::Withdrawn { amount_minor }),
        owner().prop_map(|owner| EventBody::OwnerAdded { owner }),
        owner().prop_map(|owner| EventBody::OwnerRemoved { owner }),
    ]
}
