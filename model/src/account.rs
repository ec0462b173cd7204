//! The account state and `apply`, the fold of events into it. `apply` checks the
//! version step and the account id (a broken step is an internal bug, so it
//! asserts); `apply_counting` is the seed design's lenient aggregate.

use crate::event::{Event, EventBody};
use crate::ids::{AccountId, OwnerId};
use crate::money::{checked_balance_add, event_amount_in_bounds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub opened: bool,
    pub owners: BTreeSet<OwnerId>,
    /// Signed so that an overdraft is representable (and detectable).
    pub balance_minor: i64,
    /// The number of events applied: the version of the last one.
    pub version: u64,
}

impl Account {
    /// The empty state of an account that has seen no event.
    pub fn empty(id: AccountId) -> Account {
        Account {
            id,
            opened: false,
            owners: BTreeSet::new(),
            balance_minor: 0,
            version: 0,
        }
    }

    pub fn is_owner(&self, who: OwnerId) -> bool {
        self.owners.contains(&who)
    }
}

/// Applies one event. Panics if the event is for another account or does not
/// advance the version by exactly one: either means the caller folded a log out
/// of order, which no input can excuse.
pub fn apply(account: &mut Account, event: &Event) {
    assert_eq!(
        event.account, account.id,
        "event applied to the wrong account"
    );
    assert_eq!(
        event.version,
        account.version + 1,
        "event version must advance the account version by one"
    );
    apply_body(account, &event.body);
    account.version = event.version;
    assert!(account.version > 0);
}

/// The seed design's aggregate: applies the body and counts events, whatever
/// version the event claims. It never panics, so duplicated or out-of-order
/// versions produced by the seed design's races stay visible to the checkers.
pub fn apply_counting(account: &mut Account, event: &Event) {
    apply_body(account, &event.body);
    account.version = account.version.saturating_add(1);
}

fn apply_body(account: &mut Account, body: &EventBody) {
    match body {
        EventBody::Opened { owner } => {
            account.opened = true;
            account.owners.insert(*owner);
        }
        EventBody::Deposited { amount_minor } | EventBody::Withdrawn { amount_minor } => {
            assert!(
                event_amount_in_bounds(*amount_minor),
                "event amount out of bounds: the codec and decide must not let it through"
            );
            // Bounded amounts cannot overflow an i64 balance within any run's length;
            // saturating keeps a pathological seed-design log foldable rather than a panic.
            let delta = body.balance_delta_minor();
            account.balance_minor = checked_balance_add(account.balance_minor, delta)
                .unwrap_or(if delta > 0 { i64::MAX } else { i64::MIN });
        }
        EventBody::OwnerAdded { owner } => {
            account.owners.insert(*owner);
        }
        EventBody::OwnerRemoved { owner } => {
            account.owners.remove(owner);
        }
    }
}

/// Folds a log of events from the empty state with `apply`.
pub fn fold<'a>(id: AccountId, events: impl IntoIterator<Item = &'a Event>) -> Account {
    let mut account = Account::empty(id);
    for event in events {
        apply(&mut account, event);
    }
    account
}
