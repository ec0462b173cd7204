//! S2 exactly-once application: a command's events are committed at most once
//! (one decision yields each kind of event at most once, so a second event of
//! the same kind for one command id is a second application); one command id
//! has effects on one account only and is never both rejected and applied; and
//! every outcome of one command id, committed or told to the client, is
//! identical (identical repeats are redeliveries, anything else is a second
//! answer).

use super::id_map::CommandMap;
use super::replay::committed;
use super::{Checker, Invariant, Violation};
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::{AccountId, Event, EventBody, Outcome, OutcomeResult};

/// The events committed so far for one command id.
struct Batch {
    account: AccountId,
    /// Bit i set: an event of kind i (see `kind_bit`) was committed.
    kinds: u8,
    first_version: u64,
    first_seq: u64,
}

/// What this checker knows of one command id.
#[derive(Default)]
struct Seen {
    batch: Option<Batch>,
    /// The first outcome, the seq of its entry and when it was recorded.
    outcome: Option<(Outcome, u64, u64)>,
}

#[derive(Default)]
pub struct AlwaysAppliedOnce {
    commands: CommandMap<Seen>,
}

fn kind_bit(body: &EventBody) -> u8 {
    match body {
        EventBody::Opened { .. } => 1,
        EventBody::Deposited { .. } => 2,
        EventBody::Withdrawn { .. } => 4,
        EventBody::OwnerAdded { .. } => 8,
        EventBody::OwnerRemoved { .. } => 16,
    }
}

impl AlwaysAppliedOnce {
    pub fn new() -> AlwaysAppliedOnce {
        AlwaysAppliedOnce::default()
    }

    fn on_event(&mut self, entry: &HistoryEntry, event: &Event) -> Option<Violation> {
        let seen = self
            .commands
            .get_or_insert_with(event.command, Seen::default);
        let message = event_problem(seen, entry, event)?;
        let violation = Violation::about_event(Invariant::S2, entry, event, message);
        Some(violation)
    }

    fn on_outcome(
        &mut self,
        entry: &HistoryEntry,
        outcome: &Outcome,
        told: bool,
    ) -> Option<Violation> {
        let seen = self
            .commands
            .get_or_insert_with(outcome.command, Seen::default);
        let message = outcome_problem(seen, entry, outcome, told)?;
        let violation = Violation::at(Invariant::S2, entry, message)
            .with_account(outcome.account)
            .with_command(outcome.command);
        Some(violation)
    }
}

fn event_problem(seen: &mut Seen, entry: &HistoryEntry, event: &Event) -> Option<String> {
    if let Some((outcome, _, _)) = &seen.outcome {
        if let OutcomeResult::Rejected { rejection } = &outcome.result {
            return Some(format!(
                "{} was answered rejected ({rejection}) but has an event: {:?}",
                event.command, event.body
            ));
        }
    }
    let bit = kind_bit(&event.body);
    let Some(batch) = &mut seen.batch else {
        seen.batch = Some(Batch {
            account: event.account,
            kinds: bit,
            first_version: event.version,
            first_seq: entry.seq,
        });
        return None;
    };
    if batch.account != event.account {
        return Some(format!(
            "{} has effects on two accounts: {} and {}",
            event.command, batch.account, event.account
        ));
    }
    if batch.kinds & bit != 0 {
        return Some(format!(
            "{} was applied twice: its events were first committed at version {} (history #{}), and again ({:?}) at version {}",
            event.command, batch.first_version, batch.first_seq, event.body, event.version
        ));
    }
    batch.kinds |= bit;
    None
}

fn outcome_problem(
    seen: &mut Seen,
    entry: &HistoryEntry,
    outcome: &Outcome,
    told: bool,
) -> Option<String> {
    if let Some((first, first_seq, _)) = &seen.outcome {
        if first == outcome {
            return None;
        }
        let how = if told { "told the client" } else { "committed" };
        return Some(format!(
            "{} got two different answers: {:?} (history #{first_seq}), then {:?} ({how})",
            outcome.command, first.result, outcome.result
        ));
    }
    seen.outcome = Some((outcome.clone(), entry.seq, entry.at_us));
    match (&outcome.result, &seen.batch) {
        (OutcomeResult::Rejected { rejection }, Some(batch)) => Some(format!(
            "{} was applied (first event at version {}) but answered rejected: {rejection}",
            outcome.command, batch.first_version
        )),
        _ => None,
    }
}

impl Checker for AlwaysAppliedOnce {
    fn invariant(&self) -> Invariant {
        Invariant::S2
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if let Step::ClientOutcome { outcome, .. } = &entry.step {
            return self.on_outcome(entry, outcome, true);
        }
        match committed(entry)? {
            CommittedRecord::Event(event) => self.on_event(entry, event),
            CommittedRecord::Outcome(outcome) => self.on_outcome(entry, outcome, false),
            _ => None,
        }
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        None
    }

    fn forget_answered_before(&mut self, answered_before_us: u64) {
        self.commands.retain(|_, seen| match &seen.outcome {
            Some((_, _, at_us)) => *at_us >= answered_before_us,
            None => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;
    use marlow_model::{Command, Rejection};

    fn run(story: &Story) -> Option<Violation> {
        let mut checker = AlwaysAppliedOnce::new();
        story
            .entries()
            .iter()
            .find_map(|entry| checker.observe(entry))
    }

    #[test]
    fn quiet_on_a_good_history_with_identical_repeats() {
        assert_eq!(run(&Story::good()), None);
    }

    #[test]
    fn fires_when_a_resubmission_under_the_same_id_is_applied_again() {
        // W4 with the id kept: no de-duplication, so the deposit lands twice.
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let deposit = story.deposit_command(1, 7, 70, 100);
        story.invoke(&deposit);
        story.commit_event(&Story::event(
            &deposit,
            2,
            EventBody::Deposited { amount_minor: 100 },
        ));
        story.timeout(&deposit, 0);
        story.resubmit(&deposit, 1);
        let seq = story.commit_event(&Story::event(
            &deposit,
            3,
            EventBody::Deposited { amount_minor: 100 },
        ));
        let violation = run(&story).expect("the double application is caught");
        assert_eq!(violation.invariant, Invariant::S2);
        assert_eq!(violation.account, Some(AccountId(7)));
        assert_eq!(violation.version, Some(3));
        assert_eq!(violation.command, Some(deposit.id));
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("applied twice"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn an_open_with_a_deposit_is_one_batch_not_two() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        assert_eq!(story.state_of(7).version, 2);
        assert_eq!(run(&story), None);
    }

    /// A forgotten command's late second application passes the windowed
    /// check (the final check's job), and one answered after the horizon is
    /// still caught: forgetting drops only what was answered before it.
    #[test]
    fn forgets_only_commands_answered_before_the_horizon() {
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let early = story.deposit(1, 7, 70, 100);
        let horizon_us = story.now_us() + 1;
        story.wait_us(10);
        let late = story.deposit(1, 7, 70, 200);
        let replay = |story: &mut Story, command: &Command, version: u64, amount_minor: i64| {
            story.commit_event(&Story::event(
                command,
                version,
                EventBody::Deposited { amount_minor },
            ))
        };
        let mut checker = AlwaysAppliedOnce::new();
        let forgotten_before = story.entries().len();
        for entry in story.entries() {
            assert_eq!(checker.observe(entry), None);
        }
        checker.forget_answered_before(horizon_us);
        assert!(checker.commands.get(&early.id).is_none());
        assert!(checker.commands.get(&late.id).is_some());
        replay(&mut story, &early, 4, 100);
        let second = replay(&mut story, &late, 5, 200);
        let found: Vec<Violation> = story.entries()[forgotten_before..]
            .iter()
            .filter_map(|entry| checker.observe(entry))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].history_seq, second);
        assert_eq!(found[0].command, Some(late.id));
        // Unwindowed, both double applications are seen (the first one fires).
        assert_eq!(run(&story).map(|v| v.command), Some(Some(early.id)));
    }

    #[test]
    fn fires_on_two_different_answers_to_one_command() {
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let withdraw = story.withdraw(1, 7, 70, 100); // rejected: insufficient funds
        let accepted = Story::accepted(&withdraw, 2);
        story.tell(&accepted);
        let violation = run(&story).expect("the second answer is caught");
        assert_eq!(violation.command, Some(withdraw.id));
        assert_eq!(violation.account, Some(AccountId(7)));
        assert!(
            violation.message.contains("two different answers"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn fires_on_an_event_of_a_rejected_command() {
        let mut story = Story::new();
        story.open(1, 7, 70, 0);
        let withdraw = story.withdraw_command(1, 7, 70, 100);
        story.invoke(&withdraw);
        let rejection = Rejection::InsufficientFunds {
            balance_minor: 0,
            amount_minor: 100,
        };
        story.commit_outcome(&Story::rejected(&withdraw, rejection));
        story.commit_event(&Story::event(
            &withdraw,
            2,
            EventBody::Withdrawn { amount_minor: 100 },
        ));
        let violation = run(&story).expect("the effect of a rejected command is caught");
        assert_eq!(
            (violation.account, violation.version),
            (Some(AccountId(7)), Some(2))
        );
    }
}
