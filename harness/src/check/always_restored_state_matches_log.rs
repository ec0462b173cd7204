//! S4 state = fold(events): every account a `Restore` entry lists equals the
//! fold of that account's events committed so far (balance, owners, opened,
//! version). With `restore_may_lag_log`, a store that consumes the log may hold
//! a prefix of it instead: it must then equal the fold of the first `version`
//! events, and can never be ahead of the log.

use super::id_map::IdMap;
use super::replay::{committed_event, delta_minor};
use super::{CheckConfig, Checker, Invariant, Violation};
use crate::history::{HistoryEntry, Step};
use marlow_model::{Account, AccountId, EventBody, OwnerId};
use std::collections::BTreeSet;

/// An account's log in a form whose every prefix folds cheaply: the balance
/// after each event, and the rare events that change owners or open it.
#[derive(Default)]
struct AccountLog {
    balances: Vec<i64>,
    /// (1-based position in the log, body) of Opened/OwnerAdded/OwnerRemoved.
    owner_events: Vec<(u64, EventBody)>,
}

impl AccountLog {
    fn len(&self) -> u64 {
        self.balances.len() as u64
    }

    /// The fold of the first `count` events.
    fn prefix(&self, id: AccountId, count: u64) -> Account {
        assert!(count <= self.len());
        let mut account = Account::empty(id);
        account.version = count;
        if count > 0 {
            account.balance_minor = self.balances[count as usize - 1];
        }
        for (_, body) in self.owner_events.iter().take_while(|(at, _)| *at <= count) {
            match body {
                EventBody::Opened { owner } => {
                    account.opened = true;
                    account.owners.insert(*owner);
                }
                EventBody::OwnerAdded { owner } => {
                    account.owners.insert(*owner);
                }
                EventBody::OwnerRemoved { owner } => {
                    account.owners.remove(owner);
                }
                EventBody::Deposited { .. } | EventBody::Withdrawn { .. } => {
                    unreachable!("only owner events are kept")
                }
            }
        }
        account
    }
}

pub struct AlwaysRestoredStateMatchesLog {
    may_lag: bool,
    logs: IdMap<AccountLog>,
}

impl AlwaysRestoredStateMatchesLog {
    pub fn new(config: &CheckConfig) -> AlwaysRestoredStateMatchesLog {
        AlwaysRestoredStateMatchesLog {
            may_lag: config.restore_may_lag_log,
            logs: IdMap::default(),
        }
    }

    fn expected(&self, restored: &Account) -> Result<Account, String> {
        let empty = AccountLog::default();
        let log = self.logs.get(restored.id.0).unwrap_or(&empty);
        if !self.may_lag {
            return Ok(log.prefix(restored.id, log.len()));
        }
        if restored.version > log.len() {
            return Err(format!(
                "is at version {} but only {} events of it are committed: the store is ahead of the log",
                restored.version,
                log.len()
            ));
        }
        Ok(log.prefix(restored.id, restored.version))
    }
}

fn differences(restored: &Account, expected: &Account) -> String {
    let mut parts = Vec::new();
    if restored.balance_minor != expected.balance_minor {
        parts.push(format!(
            "balance {} (log: {})",
            restored.balance_minor, expected.balance_minor
        ));
    }
    if restored.version != expected.version {
        parts.push(format!(
            "version {} (log: {})",
            restored.version, expected.version
        ));
    }
    if restored.opened != expected.opened {
        parts.push(format!(
            "opened {} (log: {})",
            restored.opened, expected.opened
        ));
    }
    if restored.owners != expected.owners {
        let show = |owners: &BTreeSet<OwnerId>| {
            owners
                .iter()
                .map(|owner| owner.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        parts.push(format!(
            "owners [{}] (log: [{}])",
            show(&restored.owners),
            show(&expected.owners)
        ));
    }
    parts.join(", ")
}

impl Checker for AlwaysRestoredStateMatchesLog {
    fn invariant(&self) -> Invariant {
        Invariant::S4
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if let Some(event) = committed_event(entry) {
            let log = self
                .logs
                .get_or_insert_with(event.account.0, AccountLog::default);
            let before = log.balances.last().copied().unwrap_or(0);
            log.balances
                .push(before.saturating_add(delta_minor(&event.body)));
            if !matches!(
                event.body,
                EventBody::Deposited { .. } | EventBody::Withdrawn { .. }
            ) {
                let position = log.len();
                log.owner_events.push((position, event.body.clone()));
            }
            return None;
        }
        let Step::Restore {
            instance,
            task,
            partition,
            accounts,
            ..
        } = &entry.step
        else {
            return None;
        };
        for restored in accounts {
            let problem = match self.expected(restored) {
                Ok(expected) if expected == *restored => continue,
                Ok(expected) => differences(restored, &expected),
                Err(problem) => problem,
            };
            let message = format!(
                "instance {instance} restored task {task} partition {partition}: {} {problem}",
                restored.id
            );
            let violation = Violation::at(Invariant::S4, entry, message)
                .with_account(restored.id)
                .with_version(restored.version);
            return Some(violation);
        }
        None
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;

    fn run(story: &Story, may_lag: bool) -> Option<Violation> {
        let config = CheckConfig {
            restore_may_lag_log: may_lag,
            ..CheckConfig::default()
        };
        let mut checker = AlwaysRestoredStateMatchesLog::new(&config);
        story
            .entries()
            .iter()
            .find_map(|entry| checker.observe(entry))
    }

    #[test]
    fn quiet_on_a_good_history() {
        assert_eq!(run(&Story::good(), false), None);
    }

    #[test]
    fn fires_when_a_restore_lost_the_last_event() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let stale = story.state_of(7);
        story.withdraw(1, 7, 70, 1_000);
        let seq = story.restore(vec![stale]);
        let violation = run(&story, false).expect("the stale store is caught");
        assert_eq!(violation.invariant, Invariant::S4);
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.version, Some(2));
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("balance 5000 (log: 4000)"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn a_lagging_consumer_may_hold_a_prefix_but_not_a_wrong_one() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let stale = story.state_of(7);
        story.withdraw(1, 7, 70, 1_000);
        story.restore(vec![stale.clone()]);
        assert_eq!(run(&story, true), None);

        let mut wrong = stale;
        wrong.owners.insert(OwnerId(99));
        story.restore(vec![wrong]);
        let violation = run(&story, true).expect("a wrong prefix is caught");
        assert!(
            violation.message.contains("owners [70,99] (log: [70])"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn a_store_ahead_of_the_log_fires_even_when_lag_is_allowed() {
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let mut ahead = story.state_of(7);
        ahead.version = 2;
        story.restore(vec![ahead]);
        let violation = run(&story, true).expect("a store ahead of the log is caught");
        assert!(
            violation.message.contains("ahead of the log"),
            "{}",
            violation.message
        );
    }
}
