//! The slice of history that led to a violation, for reports and `--trace`.

use super::Violation;
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::{AccountId, CommandId};

/// The `before` entries up to and including the violation's entry (fewer at
/// the start of the history). Entries are found by `seq`, so a history read
/// back from JSON lines works too.
pub fn trace_slice<'a>(
    history: &'a [HistoryEntry],
    violation: &Violation,
    before: usize,
) -> &'a [HistoryEntry] {
    let end = history.partition_point(|entry| entry.seq <= violation.history_seq);
    let start = end.saturating_sub(before);
    &history[start..end]
}

/// Up to `max` entries at or before the violation that concern its account or
/// its command, plus faults, rebalances, restores and phase changes (which
/// explain most stories), in history order. One backward scan, so it is cheap.
pub fn related_entries<'a>(
    history: &'a [HistoryEntry],
    violation: &Violation,
    max: usize,
) -> Vec<&'a HistoryEntry> {
    let end = history.partition_point(|entry| entry.seq <= violation.history_seq);
    let mut related: Vec<&HistoryEntry> = history[..end]
        .iter()
        .rev()
        .filter(|entry| concerns_violation(entry, violation))
        .take(max)
        .collect();
    related.reverse();
    related
}

/// `related_entries` over a history streamed in order (one read through a file): keeps
/// only the newest `max` related entries seen so far, so memory stays at `max` entries.
pub fn related_entries_streamed<E>(
    history: impl IntoIterator<Item = Result<HistoryEntry, E>>,
    violation: &Violation,
    max: usize,
) -> Result<Vec<HistoryEntry>, E> {
    let mut related = std::collections::VecDeque::with_capacity(max.min(1024));
    for entry in history {
        let entry = entry?;
        if entry.seq > violation.history_seq {
            break;
        }
        if max > 0 && concerns_violation(&entry, violation) {
            if related.len() == max {
                related.pop_front();
            }
            related.push_back(entry);
        }
        assert!(related.len() <= max, "the story is bounded");
    }
    Ok(related.into())
}

/// Whether `entry` belongs to the story of `violation`: it concerns the violation's
/// account or command, or is a fault, rebalance, restore or phase change.
pub fn concerns_violation(entry: &HistoryEntry, violation: &Violation) -> bool {
    concerns(entry, violation.account, violation.command)
}

fn concerns(entry: &HistoryEntry, account: Option<AccountId>, command: Option<CommandId>) -> bool {
    let is_account = |id: AccountId| account == Some(id);
    let is_command = |id: CommandId| command == Some(id);
    match &entry.step {
        Step::Invoke {
            command: invoked, ..
        } => is_account(invoked.account) || is_command(invoked.id),
        Step::ClientOutcome { outcome, .. } => {
            is_account(outcome.account) || is_command(outcome.command)
        }
        Step::ClientTimeout { command: id, .. } => is_command(*id),
        Step::Committed { record, .. } | Step::Aborted { record, .. } => {
            record_concerns(record, account, command)
        }
        Step::Restore { accounts, .. } => {
            account.is_none() || accounts.iter().any(|restored| is_account(restored.id))
        }
        Step::Fault { .. }
        | Step::Rebalance { .. }
        | Step::Undecodable { .. }
        | Step::InputConsumed { .. }
        | Step::Halted { .. } => true,
        Step::Heal | Step::End => true,
        Step::DuplicateSend { command: id, .. } => is_command(*id),
        Step::Header(_) | Step::Removed { .. } => true,
    }
}

fn record_concerns(
    record: &CommittedRecord,
    account: Option<AccountId>,
    command: Option<CommandId>,
) -> bool {
    let is_account = |id: AccountId| account == Some(id);
    let is_command = |id: CommandId| command == Some(id);
    match record {
        CommittedRecord::Event(event) => is_account(event.account) || is_command(event.command),
        CommittedRecord::Outcome(outcome) => {
            is_account(outcome.account) || is_command(outcome.command)
        }
        CommittedRecord::Alarm(alarm) => is_account(alarm.account),
        CommittedRecord::Reenqueue { command: id } => is_command(*id),
        CommittedRecord::DeadLetter(_) | CommittedRecord::Other { .. } => false,
    }
}
