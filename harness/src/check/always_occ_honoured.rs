//! S8 OCC honoured: a command invoked with `OccToken::ExpectedVersion(e)` is
//! applied only when its account is at exactly version e, and refused as a
//! conflict only when it is not. Versions here are log positions (events
//! committed so far), whatever the events claim.
//!
//! Accepted: its first committed event comes at position e + 1 and claims
//! version e + 1. Refused with `VersionConflict { expected, actual }`:
//! `expected` is e, `actual` is not e, and the account's log was at `actual`
//! at some moment the decision may have been made (from the first invoke to
//! the answer, see `answer_window`). Positions only grow, so an `actual`
//! behind the position at the invoke is wrong at once; one ahead of the log
//! waits for it.
//!
//! Commands invoked without an expected version are not judged here (S9
//! judges a conflict given to them). The first answer seen counts, committed
//! or told: S9 holds the two equal.

use super::answer_window::{Claim, OpenClaims};
use super::id_map::{CommandMap, IdMap};
use super::{format_us, CheckConfig, Checker, Invariant, RecordRef, Violation};
use crate::history::{CommittedRecord, HistoryEntry, Step};
use marlow_model::{AccountId, Command, OccToken, Outcome, OutcomeResult, Rejection};

struct Conditional {
    account: AccountId,
    expected: u64,
    lo_position: u64,
    applied: bool,
    answered: bool,
}

pub struct AlwaysOccHonoured {
    slack_us: u64,
    /// Events committed per account so far.
    positions: IdMap<u64>,
    conditionals: CommandMap<Conditional>,
    /// Conflicts naming a version the log has not reached yet: the `actual`.
    claims: OpenClaims<u64>,
}

impl AlwaysOccHonoured {
    pub fn new(config: &CheckConfig) -> AlwaysOccHonoured {
        AlwaysOccHonoured {
            slack_us: config.answer_slack_us,
            positions: IdMap::default(),
            conditionals: CommandMap::default(),
            claims: OpenClaims::default(),
        }
    }

    fn position(&self, account: AccountId) -> u64 {
        self.positions.get(account.0).copied().unwrap_or(0)
    }

    fn on_invoke(&mut self, command: &Command) {
        let OccToken::ExpectedVersion(expected) = command.occ else {
            return;
        };
        let lo_position = self.position(command.account);
        self.conditionals
            .get_or_insert_with(command.id, || Conditional {
                account: command.account,
                expected,
                lo_position,
                applied: false,
                answered: false,
            });
    }

    fn on_event(&mut self, entry: &HistoryEntry, event: &marlow_model::Event) -> Option<Violation> {
        let position = self.positions.get_or_insert_with(event.account.0, || 0);
        let before = *position;
        *position += 1;
        let after = *position;
        self.claims
            .settle(event.account, |claim| claim.what == after);
        let conditional = self.conditionals.get_mut(&event.command)?;
        if conditional.applied {
            return None; // a second application: S2's
        }
        conditional.applied = true;
        let expected = conditional.expected;
        let problem = if before != expected {
            format!(
                "{} expected version {expected} but was applied to {} at version {before}",
                event.command, event.account
            )
        } else if event.version != expected + 1 {
            format!(
                "{} expected version {expected}; its first event claims version {}, not {}",
                event.command,
                event.version,
                expected + 1
            )
        } else {
            return None;
        };
        Some(Violation::about_event(Invariant::S8, entry, event, problem))
    }

    fn on_answer(&mut self, entry: &HistoryEntry, outcome: &Outcome) -> Option<Violation> {
        let slack_us = self.slack_us;
        let position = self.position(outcome.account);
        let conditional = self.conditionals.get_mut(&outcome.command)?;
        if conditional.answered {
            return None;
        }
        conditional.answered = true;
        let OutcomeResult::Rejected {
            rejection: Rejection::VersionConflict { expected, actual },
        } = outcome.result
        else {
            return None;
        };
        let id = outcome.command;
        let e = conditional.expected;
        let problem = if expected != e {
            format!("{id} expected version {e}, but its conflict says it expected {expected}")
        } else if actual == e {
            format!("{id} was refused a conflict at version {e}, the very version it expected")
        } else if actual < conditional.lo_position {
            format!(
                "{id} was refused a conflict at version {actual}, but {} was already at version {} when it was invoked",
                conditional.account, conditional.lo_position
            )
        } else if actual > position {
            self.claims.open(Claim {
                account: conditional.account,
                command: id,
                lo_position: conditional.lo_position,
                deadline_us: entry.at_us.saturating_add(slack_us),
                seq: entry.seq,
                at_us: entry.at_us,
                record: RecordRef::of(entry),
                what: actual,
            });
            return None;
        } else {
            return None;
        };
        let violation = Violation::at(Invariant::S8, entry, problem)
            .with_account(outcome.account)
            .with_command(id)
            .with_version(actual);
        Some(violation)
    }

    fn claim_violation(&self, claim: &Claim<u64>) -> Violation {
        let message = format!(
            "{} was refused a conflict at version {}, a version {} had not reached when the answer became visible at t={} (it reached {} later)",
            claim.command,
            claim.what,
            claim.account,
            format_us(claim.at_us),
            self.position(claim.account)
        );
        claim
            .violation(Invariant::S8, message)
            .with_version(claim.what)
    }
}

impl Checker for AlwaysOccHonoured {
    fn invariant(&self) -> Invariant {
        Invariant::S8
    }

    fn observe(&mut self, entry: &HistoryEntry) -> Option<Violation> {
        if let Some(claim) = self.claims.overdue(entry.at_us) {
            return Some(self.claim_violation(&claim));
        }
        match &entry.step {
            Step::Invoke { command, .. } => {
                self.on_invoke(command);
                None
            }
            Step::ClientOutcome { outcome, .. } => self.on_answer(entry, outcome),
            Step::Committed { record, .. } => match record {
                CommittedRecord::Event(event) => self.on_event(entry, event),
                CommittedRecord::Outcome(outcome) => self.on_answer(entry, outcome),
                _ => None,
            },
            _ => None,
        }
    }

    fn finish(&mut self, _end_at_us: u64) -> Option<Violation> {
        let claim = self.claims.first()?;
        Some(self.claim_violation(&claim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Story;
    use marlow_model::EventBody;

    fn run(story: &Story) -> Option<Violation> {
        let mut checker = AlwaysOccHonoured::new(&CheckConfig::default());
        let mut entries = story.entries().iter();
        let found = entries.by_ref().find_map(|entry| checker.observe(entry));
        found.or_else(|| checker.finish(story.now_us()))
    }

    #[test]
    fn quiet_on_good_conditional_histories() {
        assert_eq!(run(&Story::good()), None);
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000); // versions 1 and 2
        let right = Story::conditional(story.withdraw_command(1, 7, 70, 100), 2);
        story.run(&right); // applied at 2 -> 3
        let stale = Story::conditional(story.deposit_command(2, 7, 70, 100), 2);
        let outcome = story.run(&stale); // refused: the account is at 3
        assert!(matches!(
            outcome.result,
            OutcomeResult::Rejected {
                rejection: Rejection::VersionConflict {
                    expected: 2,
                    actual: 3
                }
            }
        ));
        story.end();
        assert_eq!(run(&story), None);
    }

    #[test]
    fn fires_on_a_conditional_command_applied_at_the_wrong_version() {
        // The planted bug: the expected-version check removed from the task.
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.deposit(2, 7, 70, 10); // the account moves on to version 3
        let stale = Story::conditional(story.withdraw_command(1, 7, 70, 100), 2);
        story.invoke(&stale);
        let seq = story.commit_event(&Story::event(
            &stale,
            4,
            EventBody::Withdrawn { amount_minor: 100 },
        ));
        let violation = run(&story).expect("the stale write is caught");
        assert_eq!(violation.invariant, Invariant::S8);
        assert_eq!(violation.history_seq, seq);
        assert_eq!(violation.command, Some(stale.id));
        assert!(
            violation.message.contains("at version 3"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn fires_on_a_conflict_given_when_the_version_matched() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let right = Story::conditional(story.withdraw_command(1, 7, 70, 100), 2);
        story.invoke(&right);
        let conflict = Rejection::VersionConflict {
            expected: 2,
            actual: 2,
        };
        let seq = story.commit_outcome(&Story::rejected(&right, conflict));
        let violation = run(&story).expect("a conflict at the expected version is caught");
        assert_eq!(violation.history_seq, seq);
        assert!(
            violation.message.contains("the very version"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn fires_on_a_conflict_naming_a_version_the_log_never_had() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let right = Story::conditional(story.withdraw_command(1, 7, 70, 100), 2);
        story.invoke(&right);
        let lie = Rejection::VersionConflict {
            expected: 2,
            actual: 5,
        };
        let seq = story.commit_outcome(&Story::rejected(&right, lie));
        story.deposit(2, 7, 70, 10); // later: the log reaches 3, never 5
        story.end();
        let violation = run(&story).expect("the invented version is caught");
        assert_eq!((violation.history_seq, violation.version), (seq, Some(5)));

        // The same conflict is right if the log reaches 5 in the same instant
        // (events committed with the outcome, seen after it).
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        let late = Story::conditional(story.withdraw_command(1, 7, 70, 100), 2);
        story.invoke(&late);
        let one = story.deposit_command(2, 7, 70, 10);
        let two = story.deposit_command(2, 7, 70, 10);
        story.invoke(&one);
        story.invoke(&two);
        story.step_us = 0;
        let lie = Rejection::VersionConflict {
            expected: 2,
            actual: 4,
        };
        story.commit_outcome(&Story::rejected(&late, lie));
        story.commit_decision(&one);
        story.commit_decision(&two);
        story.step_us = 1_000;
        story.end();
        assert_eq!(run(&story), None);
    }

    #[test]
    fn fires_on_a_conflict_with_the_wrong_expected_or_a_version_long_past() {
        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.deposit(2, 7, 70, 10); // version 3
        let stale = Story::conditional(story.withdraw_command(1, 7, 70, 100), 1);
        story.invoke(&stale);
        let wrong = Rejection::VersionConflict {
            expected: 0,
            actual: 3,
        };
        story.commit_outcome(&Story::rejected(&stale, wrong));
        let violation = run(&story).expect("the wrong expected version is caught");
        assert!(
            violation.message.contains("it expected 0"),
            "{}",
            violation.message
        );

        let mut story = Story::new();
        story.open(1, 7, 70, 5_000);
        story.deposit(2, 7, 70, 10); // version 3
        let stale = Story::conditional(story.withdraw_command(1, 7, 70, 100), 1);
        story.invoke(&stale);
        let past = Rejection::VersionConflict {
            expected: 1,
            actual: 2,
        };
        story.commit_outcome(&Story::rejected(&stale, past));
        let violation = run(&story).expect("a version passed before the invoke is caught");
        assert!(
            violation.message.contains("already at version 3"),
            "{}",
            violation.message
        );
    }
}
