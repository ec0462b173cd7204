//! S1 no overdraft: folding each account's committed events in order, no
//! prefix leaves the balance below 0; and no restored store holds a negative
//! balance.

use super::replay::{committed_event, LogReplay};
use super::{Checker, Invariant, Violation};
use crate::history::{HistoryEntry, Step};

#[derive(Default)]
pub struct AlwaysBalanceNonNegative {
    log: LogReplay,
}

impl AlwaysBalanceNonNegative {
    pub fn new() -> AlwaysBalanceNonNegative {
        AlwaysBalanceNonNegative::default()
    }
}

impl Checker for AlwaysBalanceNonNegative {
    fn invariant(&self) -> Invariant {
        Invariant::S1
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if let Step::Restore { accounts, task, .. } = &entry.step {
            let negative = accounts.iter().find(|account| account.balance_minor < 0)?;
            let message = format!(
                "task {task} restored {} with balance {}",
                negative.id, negative.balance_minor
            );
            let violation = Violation::at(Invariant::S1, entry, message)
                .with_account(negative.id)
                .with_version(negative.version);
            return Some(violation);
        }
        let event = committed_event(entry)?;
        let applied = self.log.apply(event);
        if applied.balance_after_minor >= 0 {
            return None;
        }
        let message = format!(
            "{} went from balance {} to {} ({:?} by {}, event #{} of the account)",
            event.account,
            applied.balance_before_minor,
            applied.balance_after_minor,
            event.body,
            event.command,
            applied.position
        );
        let violation = Violation::about_event(Invariant::S1, entry, event, message);
        Some(violation)
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;
    use crate::check::RecordRef;
    use marlow_model::{AccountId, EventBody};

    fn run(story: &Story) -> Option<Violation> {
        let mut checker = AlwaysBalanceNonNegative::new();
        story
            .entries()
            .iter()
            .find_map(|entry| checker.observe(entry))
    }

    #[test]
    fn quiet_on_a_good_history() {
        assert_eq!(run(&Story::good()), None);
    }

    #[test]
    fn fires_when_two_withdrawals_pass_against_the_same_state() {
        // W3: both withdrawals were validated against balance 500.
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
        let seq = story.commit_event(&Story::event(
            &second,
            3,
            EventBody::Withdrawn { amount_minor: 400 },
        ));
        let violation = run(&story).expect("the overdraft is caught");
        assert_eq!(violation.invariant, Invariant::S1);
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.version, Some(3));
        assert_eq!(violation.command, Some(second.id));
        assert_eq!(violation.history_seq, seq);
        let record = RecordRef {
            topic: "events".into(),
            partition: 3,
            offset: 3,
        };
        assert_eq!(violation.record, Some(record));
        assert!(
            violation.message.contains("to -300"),
            "{}",
            violation.message
        );
        let _ = open;
    }

    #[test]
    fn fires_on_a_restored_negative_balance() {
        let mut story = Story::new();
        story.open(1, 7, 70, 500);
        let mut restored = story.state_of(7);
        restored.balance_minor = -1;
        story.restore(vec![restored]);
        let violation = run(&story).expect("the negative store is caught");
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(2))
        );
    }
}
