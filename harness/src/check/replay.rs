//! Shared pieces of the checkers: their own per-account fold of the committed
//! event log and their own alarm rule, written apart from the model's `apply`
//! and `AlarmRule` (an oracle that called them would pass their bugs: a
//! crossing rule that alarms on every update below the threshold would define
//! every such alarm as due). The fold is lenient: it never panics, whatever a
//! buggy design or a foreign history committed. Also accessors for the record
//! kinds most checkers look at.

use super::id_map::IdMap;
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::{Account, AccountId, CommandId, Event, EventBody};

/// The signed change an event makes to a balance, saturating instead of
/// overflowing on a pathological amount (e.g. a withdrawal of `i64::MIN`).
pub fn delta_minor(body: &EventBody) -> i64 {
    match body {
        EventBody::Deposited { amount_minor } => *amount_minor,
        EventBody::Withdrawn { amount_minor } => amount_minor.checked_neg().unwrap_or(i64::MAX),
        _ => 0,
    }
}

/// Folds one event into `account` as the checkers read the rules: the version
/// counts events (whatever the event claims: S3 judges the claim), deposits
/// add, withdrawals subtract (saturating), opening and adding an owner add one,
/// removing an owner removes it. No call into the model's fold.
pub fn apply_lenient(account: &mut Account, event: &Event) {
    let versions_before = account.version;
    match &event.body {
        EventBody::Opened { owner } => {
            account.opened = true;
            account.owners.insert(*owner);
        }
        EventBody::Deposited { .. } | EventBody::Withdrawn { .. } => {
            account.balance_minor = account
                .balance_minor
                .saturating_add(delta_minor(&event.body));
        }
        EventBody::OwnerAdded { owner } => {
            account.owners.insert(*owner);
        }
        EventBody::OwnerRemoved { owner } => {
            account.owners.remove(owner);
        }
    }
    account.version = versions_before.saturating_add(1);
    assert!(account.version > versions_before || versions_before == u64::MAX);
}

/// The checkers' alarm rule: a downward crossing is a step from a balance at or
/// above the threshold to one below it. Staying below, or rising, is none.
pub fn crossed_downward(threshold_minor: i64, before_minor: i64, after_minor: i64) -> bool {
    let was_at_or_above = before_minor >= threshold_minor;
    let is_below = after_minor < threshold_minor;
    was_at_or_above && is_below
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
