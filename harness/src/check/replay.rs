//! Shared pieces of the checkers: a lenient per-account fold of the committed
//! event log (it never panics, whatever a buggy design or a foreign history
//! committed), and accessors for the record kinds most checkers look at.

use super::id_map::IdMap;
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::money::event_amount_in_bounds;
use marlow_model::{apply_counting, Account, AccountId, CommandId, Event, EventBody};

/// The signed change an event makes to a balance, saturating instead of
/// overflowing on a pathological amount (e.g. a withdrawal of `i64::MIN`).
pub fn delta_minor(body: &EventBody) -> i64 {
    match body {
        EventBody::Deposited { amount_minor } => *amount_minor,
        EventBody::Withdrawn { amount_minor } => amount_minor.checked_neg().unwrap_or(i64::MAX),
        _ => 0,
    }
}

/// `apply_counting` (the version counts events, whatever the event claims),
/// except that an amount out of bounds is applied with saturation instead of
/// tripping the model's assertion: a checker must report, not crash.
pub fn apply_lenient(account: &mut Account, event: &Event) {
    let amount_ok = match event.body {
        EventBody::Deposited { amount_minor } | EventBody::Withdrawn { amount_minor } => {
            event_amount_in_bounds(amount_minor)
        }
        _ => true,
    };
    if amount_ok {
        apply_counting(account, event);
    } else {
        account.balance_minor = account
            .balance_minor
            .saturating_add(delta_minor(&event.body));
        account.version = account.version.saturating_add(1);
    }
}

/// The fold of the committed event log per account, in history order (the
/// order in which records became visible). An account's events share one
/// partition, so this is offset order; if a buggy run splits an account over
/// partitions, history order is the only total order there is.
#[derive(Default)]
pub struct LogReplay {
    accounts: IdMap<Account>,
}

/// What one event did to its account.
#[derive(Clone, Copy, Debug)]
pub struct Applied {
    pub balance_before_minor: i64,
    pub balance_after_minor: i64,
    /// The number of events of the account so far, this one included.
    pub position: u64,
}

impl LogReplay {
    pub fn apply(&mut self, event: &Event) -> Applied {
        let account = self
            .accounts
            .get_or_insert_with(event.account.0, || Account::empty(event.account));
        let balance_before_minor = account.balance_minor;
        apply_lenient(account, event);
        Applied {
            balance_before_minor,
            balance_after_minor: account.balance_minor,
            position: account.version,
        }
    }

    pub fn get(&self, account: AccountId) -> Option<&Account> {
        self.accounts.get(account.0)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }
}

/// The record of a `Committed` entry.
pub fn committed(entry: &HistoryEntry) -> Option<&CommittedRecord> {
    match &entry.step {
        Step::Committed { record, .. } => Some(record),
        _ => None,
    }
}

/// The event of a `Committed` entry that carries one.
pub fn committed_event(entry: &HistoryEntry) -> Option<&Event> {
    match committed(entry) {
        Some(CommittedRecord::Event(event)) => Some(event),
        _ => None,
    }
}

/// The command a dead letter carries, if its value decodes as a command (the
/// hardened design's bad-key case) or an indexed command (the seed design's
/// re-enqueue limit). Undecodable input has no command id to name.
pub fn dead_lettered_command(letter: &marlow_model::DeadLetter) -> Option<CommandId> {
    use marlow_model::codec::decode;
    use marlow_model::task::seed::IndexedCommand;
    let value = letter.value.as_deref()?;
    if let Ok(command) = decode::<marlow_model::Command>(value) {
        return Some(command.id);
    }
    decode::<IndexedCommand>(value)
        .ok()
        .map(|indexed| indexed.command.id)
}
