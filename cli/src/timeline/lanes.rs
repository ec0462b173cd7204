//! Which swimlane and row each history entry is drawn on, and its label.
//! Accounts get what clients asked and were told (row 0) and what the log
//! committed (row 1, with the balance the events add up to, so an overdraft
//! reads as a negative number); app instances get restores, halts and the
//! faults that name them; the group and the cluster get rebalances, other
//! faults, the heal, retention and the end. Labels are for people; the hover
//! shows the entry's JSON line as `--history` writes it.

use marlow_model::{AccountId, CommandId, EventBody, OutcomeResult};
use marlow_sim::history::{CommittedRecord, HistoryEntry, Step};
use serde::Serialize;
use std::collections::BTreeMap;

/// A lane, in the order the page lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LaneKey {
    Cluster,
    Instance(u32),
    Account(u64),
}

impl LaneKey {
    fn name(self) -> String {
        match self {
            LaneKey::Cluster => "group & cluster".to_string(),
            LaneKey::Instance(index) => format!("instance {index}"),
            LaneKey::Account(id) => format!("account {id}"),
        }
    }
}

/// One shape on the page.
#[derive(Serialize)]
pub struct Item {
    pub seq: u64,
    pub at_us: u64,
    /// Index into the page's lanes (set by `Lanes::names`' order).
    pub lane: usize,
    /// 0: client side (asked, told, timed out); 1: the log and the app.
    pub row: u8,
    pub kind: &'static str,
    pub label: String,
    /// A few characters drawn next to the shape when there is room (an
    /// event's version and the balance after it).
    pub short: Option<String>,
    /// The entry as one JSON line.
    pub detail: String,
    /// Part of a violation's proof.
    pub proof: bool,
    #[serde(skip)]
    key: LaneKey,
}

/// Lanes met so far, the account of every command invoked (so a timeout or
/// a re-enqueue, which name only the command, land on its account), and each
/// account's balance as its committed events add up.
#[derive(Default)]
pub struct Lanes {
    keys: BTreeMap<LaneKey, usize>,
    account_of: BTreeMap<CommandId, AccountId>,
    balance_minor: BTreeMap<AccountId, i64>,
}

/// The command an entry is about, if it names one.
pub fn command_of(step: &Step) -> Option<CommandId> {
    match step {
        Step::Invoke { command, .. } => Some(command.id),
        Step::ClientOutcome { outcome, .. } => Some(outcome.command),
        Step::ClientTimeout { command, .. } | Step::DuplicateSend { command, .. } => Some(*command),
        Step::Committed { record, .. } | Step::Aborted { record, .. } => match record {
            CommittedRecord::Event(event) => Some(event.command),
            CommittedRecord::Outcome(outcome) => Some(outcome.command),
            CommittedRecord::Reenqueue { command } => Some(*command),
            CommittedRecord::Alarm(_)
            | CommittedRecord::DeadLetter(_)
            | CommittedRecord::Other { .. } => None,
        },
        _ => None,
    }
}

/// The instance a fault names ("instance: 3" or "instance 3"), if any.
fn instance_named(text: &str) -> Option<u32> {
    let at = text.find("instance")? + "instance".len();
    let rest = text[at..].trim_start_matches([':', ' ']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Lanes {
    /// The lane names in page order; call after every `place`, then
    /// `finish` the items.
    pub fn names(&self) -> Vec<String> {
        self.keys.keys().map(|key| key.name()).collect()
    }

    /// Sets each item's lane index to its lane's place in page order.
    pub fn finish(&mut self, items: &mut [Item]) {
        for (index, slot) in self.keys.values_mut().enumerate() {
            *slot = index;
        }
        for item in items {
            item.lane = self.keys[&item.key];
        }
    }

    fn account_lane(&self, command: CommandId) -> LaneKey {
        self.account_of
            .get(&command)
            .map_or(LaneKey::Cluster, |account| LaneKey::Account(account.0))
    }

    /// Takes in an entry that is not drawn (before a cut window): its
    /// command's account and its event's effect on the balance.
    pub fn learn(&mut self, entry: &HistoryEntry) {
        match &entry.step {
            Step::Invoke { command, .. } => {
                self.account_of.insert(command.id, command.account);
            }
            Step::Committed {
                record: CommittedRecord::Event(event),
                ..
            } => {
                *self.balance_minor.entry(event.account).or_insert(0) +=
                    event.body.balance_delta_minor();
            }
            _ => {}
        }
    }

    /// The item for `entry`, or `None` for entries not worth a shape (the
    /// header, input positions).
    pub fn place(&mut self, entry: &HistoryEntry) -> Option<Item> {
        let mut short = None;
        let (key, row, kind, label) = match &entry.step {
            Step::Header(_) | Step::InputConsumed { .. } => return None,
            Step::Invoke {
                command, attempt, ..
            } => {
                self.account_of.insert(command.id, command.account);
                let kind = if *attempt == 0 { "invoke" } else { "resubmit" };
                let label = format!(
                    "{} asks {:?} ({}, attempt {attempt})",
                    command.id.client, command.kind, command.id
                );
                (LaneKey::Account(command.account.0), 0, kind, label)
            }
            Step::ClientOutcome { outcome, .. } => {
                let told = match &outcome.result {
                    OutcomeResult::Accepted { version } => format!("accepted at v{version}"),
                    OutcomeResult::Rejected { rejection } => format!("rejected: {rejection:?}"),
                };
                let label = format!("{} told {told}", outcome.command);
                (LaneKey::Account(outcome.account.0), 0, "told", label)
            }
            Step::ClientTimeout {
                command, attempt, ..
            } => {
                let label = format!("{command} attempt {attempt} timed out at the client");
                (self.account_lane(*command), 0, "timeout", label)
            }
            Step::DuplicateSend {
                command, attempt, ..
            } => {
                let label = format!("{command} attempt {attempt} sent twice by the producer");
                (self.account_lane(*command), 0, "duplicate", label)
            }
            Step::Committed {
                topic,
                partition,
                offset,
                record,
            }
            | Step::Aborted {
                topic,
                partition,
                offset,
                record,
            } => {
                let aborted = matches!(entry.step, Step::Aborted { .. });
                let at = format!("{topic}/{partition}@{offset}");
                let placed = self.committed(record, &at, aborted);
                short = placed.4;
                (placed.0, placed.1, placed.2, placed.3)
            }
            Step::Restore {
                instance,
                task,
                partition,
                records_replayed,
                accounts,
                ..
            } => {
                let label = format!(
                    "restore {task}/{partition}: {records_replayed} records, {} accounts",
                    accounts.len()
                );
                (LaneKey::Instance(*instance), 1, "restore", label)
            }
            Step::Halted { instance, reason } => (
                LaneKey::Instance(*instance),
                1,
                "halted",
                format!("halted: {reason}"),
            ),
            Step::Fault { fault } => {
                let key = instance_named(fault).map_or(LaneKey::Cluster, LaneKey::Instance);
                (key, 1, "fault", fault.clone())
            }
            Step::Rebalance {
                generation,
                members,
                ..
            } => {
                let label = format!(
                    "rebalance: generation {generation}, members {}",
                    members.join(", ")
                );
                (LaneKey::Cluster, 1, "rebalance", label)
            }
            Step::Undecodable {
                topic,
                partition,
                offset,
            } => (
                LaneKey::Cluster,
                1,
                "undecodable",
                format!("undecodable record {topic}/{partition}@{offset}"),
            ),
            Step::Removed {
                topic,
                partition,
                cause,
                records,
                ..
            } => {
                let label = format!("{cause:?} removed {records} records of {topic}/{partition}");
                (LaneKey::Cluster, 1, "removed", label)
            }
            Step::Heal => (
                LaneKey::Cluster,
                1,
                "heal",
                "faults healed: the liveness phase starts".into(),
            ),
            Step::End => (LaneKey::Cluster, 1, "end", "end of the run".into()),
        };
        self.keys.entry(key).or_insert(0);
        Some(Item {
            seq: entry.seq,
            at_us: entry.at_us,
            lane: 0,
            row,
            kind,
            label,
            short,
            detail: serde_json::to_string(entry).expect("a history entry is plain data"),
            proof: false,
            key,
        })
    }

    fn committed(
        &mut self,
        record: &CommittedRecord,
        at: &str,
        aborted: bool,
    ) -> (LaneKey, u8, &'static str, String, Option<String>) {
        let aborted_note = if aborted {
            " (aborted: never visible)"
        } else {
            ""
        };
        match record {
            CommittedRecord::Event(event) => {
                let balance = self.balance_minor.entry(event.account).or_insert(0);
                if !aborted {
                    *balance += event.body.balance_delta_minor();
                }
                let short = (!aborted).then(|| format!("v{} {balance}", event.version));
                let body = match &event.body {
                    EventBody::Opened { owner } => format!("opened by owner {}", owner.0),
                    EventBody::Deposited { amount_minor } => format!("deposited {amount_minor}"),
                    EventBody::Withdrawn { amount_minor } => format!("withdrawn {amount_minor}"),
                    EventBody::OwnerAdded { owner } => format!("owner {} added", owner.0),
                    EventBody::OwnerRemoved { owner } => format!("owner {} removed", owner.0),
                };
                let label = format!(
                    "v{} {body} by {}: balance {balance} ({at}){aborted_note}",
                    event.version, event.command
                );
                let kind = if aborted { "aborted" } else { "event" };
                (LaneKey::Account(event.account.0), 1, kind, label, short)
            }
            CommittedRecord::Outcome(outcome) => {
                let label = format!("outcome of {} ({at}){aborted_note}", outcome.command);
                let kind = if aborted { "aborted" } else { "outcome" };
                (LaneKey::Account(outcome.account.0), 1, kind, label, None)
            }
            CommittedRecord::Alarm(alarm) => {
                let label = format!(
                    "alarm at v{}: balance {} below {} ({at}){aborted_note}",
                    alarm.version, alarm.balance_minor, alarm.threshold_minor
                );
                let kind = if aborted { "aborted" } else { "alarm" };
                (LaneKey::Account(alarm.account.0), 1, kind, label, None)
            }
            CommittedRecord::Reenqueue { command } => {
                let label = format!("{command} re-enqueued ({at}){aborted_note}");
                (self.account_lane(*command), 1, "reenqueue", label, None)
            }
            CommittedRecord::Other { message_kind } => {
                let label = format!("{message_kind} record ({at}){aborted_note}");
                (LaneKey::Cluster, 1, "other", label, None)
            }
            CommittedRecord::DeadLetter(letter) => {
                let label = format!("dead letter: {} ({at}){aborted_note}", letter.reason);
                (LaneKey::Cluster, 1, "dead_letter", label, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_that_names_an_instance_lands_on_its_lane() {
        assert_eq!(instance_named("CrashInstance { instance: 3 }"), Some(3));
        assert_eq!(
            instance_named("abortable transaction error on instance 12: aborted"),
            Some(12)
        );
        assert_eq!(instance_named("broker up"), None);
    }
}
